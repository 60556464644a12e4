"""The removal routes: what replaces a blemish inside its (dilated) mask.

All functions take a crop around ONE region: ``image`` ``(h, w, 3)`` float32 sRGB in
``[0, 1]``, ``hole`` ``(h, w)`` bool (the spot dilated by a few px, so its outer pixels are
clean skin), ``avoid`` ``(h, w)`` bool (pixels never used as texture donors: other spots,
eyes, moles, hair). Results are new arrays equal to ``image`` outside ``hole`` exactly (an
empty hole, or one covering the whole crop, gives an unchanged copy).
``scale`` is the face-scale factor (:mod:`skinretouch.scale`): every sigma and radius
below is given at face scale and multiplied by it.

Frequency separation, as retouchers do it (:func:`remove_freqsplit`), in CIE Lab; the blemish
reaches neither layer:

- **tone layer** (:mod:`.tone`): a low-pass of the skin OUTSIDE the hole, a quadratic trend
  fitted on a ring of it, and the ring's residual carried into the hole by a screened membrane
  that meets the boundary and fades towards the trend. It carries the whole of a* and b*.
- **texture layer** (L* only): real skin texture copied from clean donors around the hole
  (:mod:`.donor`; large holes: :mod:`.tiled_donor`), from the crop's ``(1 - G_2px)^2``
  high-pass with the hole's pixels replaced by the tone, so not even the donors' high-pass
  sees the blemish's edge. It is made zero-mean and scaled towards the ring's strength,
  measured as the texture check measures it (the ``L - G_1px`` high-pass, on the result). The
  spot's own fine texture is never kept (it carried the blemish's edge and darkness: on unseen
  portraits that fill came out dL -0.84, da +0.47).

The fill meets the surround in value by construction, so it needs no feathering; on a tight
mask (the spot's footprint plus 1 px) a feather inside the hole blends part of the blemish
back in (bench: dE 4.2 with a 2-px feather, 2.05 without).

Figures: ``python -m skinretouch.benchmark.removal_study --part dev|test`` and
``python -m skinretouch.benchmark.removal_real_acne --part dev|test`` (README of bench/).
Tried and measured worse: a membrane tone fill for small holes (dE 2.32 vs 2.07), the tone
from a plain blur (spot colour leaks in on tight masks: dE 4.3), bilateral or median texture
splits (pores are the large excursions and went into the tone), keeping the hole's own
a*/b* texture (dE +0.2), per-pixel PatchMatch refinement of the donor block (dE +0.04); for
the tone, a plane instead of the quadratic trend (dev tone-only lf_dE 1.05 vs 0.95) and a
short fade on small spots (lf_dE 1.03 at 4 px vs 0.95); for holes whose ring is inflamed (real
acne), a trend from a wider ring beyond the halo with a short fade: on real acne it took the
redness out (dev, tone only: lf_dE 2.20 -> 2.00, da +0.65 -> +0.30), but on planted faces the
wide ring reaches shading, brows and hair (dev large spots: lf_dE 1.23 -> 3.99, dL -0.41 ->
-2.9), and an a* step between the near and the wide ring fired there too.
"""

from __future__ import annotations

import math

import numpy as np

from ._checks import as_image, as_mask, as_optional_mask
from .ahead_of_time import njit
from .blur import blur_into, blur_region_into, gaussian_taps, masked_blur_into, masked_blur_region_into
from .color import lab_to_rgb, pixel_rgb, rgb_to_lab, rgb_to_lab_into, rgb_to_lightness_into
from .donor import donor_into
from .freqsplit import high_pass, high_pass_into, high_pass_region_into
from .labels import mask_box
from .lowfill import biharmonic_into, membrane_into, ring_into
from .patchmatch import patchmatch_fill
from .poisson import poisson_blend
from .tiled_donor import structure_mask, tiled_donor_into
from .tone import tone_fill_into
from .tuning import (
    BIHARMONIC_MAX_EXTENT,
    BLUR_TRUNCATE_SIGMAS,
    DONOR_PATCH_RADIUS,
    DONOR_RADIUS,
    DONOR_REACH,
    ENERGY_SHRINK,
    ENERGY_SIGMA,
    ENERGY_TOLERANCE,
    GAIN_MIN,
    LARGE_EXTENT,
    LARGE_MARGIN_MAX,
    LARGE_MARGIN_SHARE,
    LARGE_TILE,
    OUTLIER_HIGH,
    OUTLIER_LOW,
    RATIO_HIGH_PASS_SIGMA,
    RING_WIDTH,
    SHARE_SIGMA,
    SPOT_DE,
    TEXTURE_GAIN,
    TEXTURE_MATCH,
    TEXTURE_ORDER,
    TEXTURE_SIGMA,
    TONE_DECAY,
    TONE_LOWPASS_SIGMA,
    TONE_SIGMA,
    TREND_GAP,
    TREND_NEAR_WEIGHT,
    TREND_RING,
    TREND_TUKEY_DE,
)

__all__ = [
    "crop_margin",
    "freqsplit_fill_into",
    "reinject_high_frequencies",
    "remove_freqsplit",
    "remove_patchmatch_poisson",
    "route_taps",
]


def crop_margin(scale: float, extent_px: int = 0) -> int:
    """Context in px a kernel needs on every side of a hole's bounding box.

    Parameters
    ----------
    scale : float
        Face-scale factor.
    extent_px : int
        The hole's larger bounding-box side in px; a large hole needs wider clean skin to
        copy its texture from.

    Returns
    -------
    int
        The donor search reach plus its patch and the texture filter's support; for a
        large hole at least ``LARGE_MARGIN_SHARE`` of its extent.
    """
    scale = max(float(scale), 1e-3)
    reach = DONOR_RADIUS + DONOR_PATCH_RADIUS + 2.0 * TEXTURE_SIGMA
    margin = int(math.ceil(reach * scale))
    if extent_px > LARGE_EXTENT * scale:
        wide = min(LARGE_MARGIN_SHARE * extent_px, LARGE_MARGIN_MAX * scale)
        margin = max(margin, int(math.ceil(wide + (DONOR_PATCH_RADIUS + 2.0 * TEXTURE_SIGMA) * scale)))
    return margin


def remove_freqsplit(
    image: np.ndarray,
    hole: np.ndarray,
    *,
    avoid: np.ndarray | None = None,
    scale: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """Remove a small spot by frequency separation (route ``"freqsplit"``).

    Parameters
    ----------
    image : (h, w, 3) float ndarray
        Crop, sRGB in ``[0, 1]``.
    hole : (h, w) bool ndarray
        Dilated spot mask.
    avoid : (h, w) bool ndarray or None
        Pixels never used as texture donors.
    scale : float
        Face-scale factor.
    seed : int
        Seed of the donor search.

    Returns
    -------
    (h, w, 3) float32 ndarray
        ``image`` outside ``hole`` (bit-identical), the repaired skin inside.
    """
    image, hole, avoid = _check(image, hole, avoid)
    out = image.copy()
    if not hole.any() or hole.all():  # nothing to fill, or nothing to fill it from
        return out
    # One jitted call per spot: it runs without the GIL, so spots fill in parallel threads.
    lab = np.empty_like(image)
    rgb_to_lab_into(image, lab)
    freqsplit_fill_into(image, lab, hole, avoid, float(scale), int(seed), *route_taps(float(scale)), out)
    return out


def reinject_high_frequencies(
    fill: np.ndarray,
    image: np.ndarray,
    hole: np.ndarray,
    *,
    avoid: np.ndarray | None = None,
    scale: float = 1.0,
    seed: int = 0,
    keep_own: bool = False,
) -> np.ndarray:
    """Give a smooth fill (Telea, a neural engine) real skin texture.

    Keeps ``fill``'s low frequencies inside ``hole`` and replaces its fine texture by
    texture copied from clean skin around the hole (:mod:`.donor`).

    Parameters
    ----------
    fill : (h, w, 3) float ndarray
        The other method's result, sRGB in ``[0, 1]``; only its values inside ``hole`` are
        used.
    image : (h, w, 3) float ndarray
        The original crop: the donor texture comes from it.
    hole : (h, w) bool ndarray
    avoid : (h, w) bool ndarray or None
        Pixels never used as texture donors.
    scale : float
        Face-scale factor.
    seed : int
        Seed of the donor search.
    keep_own : bool
        Also keep the original's own texture where it is skin-like (as
        :func:`remove_freqsplit` does); off by default because a region sent to another
        method is usually not skin inside.

    Returns
    -------
    (h, w, 3) float32 ndarray
        ``image`` outside ``hole`` (bit-identical).
    """
    image, hole, avoid = _check(image, hole, avoid)
    fill = as_image(fill, "fill")
    if fill.shape != image.shape:
        raise ValueError(f"fill must have shape {image.shape}, got {fill.shape}")
    if not hole.any() or hole.all():  # nothing to fill, or nothing to fill it from
        return image.copy()
    merged = image.copy()
    merged[hole] = fill[hole]
    smooth = rgb_to_lab(merged)
    smooth[:, :, 0] -= high_pass(smooth[:, :, 0], TEXTURE_SIGMA * scale, order=TEXTURE_ORDER)
    _, texture_taps, share_taps, energy_taps, _ = route_taps(float(scale))
    texture = _outside_texture(image, texture_taps)
    height, width = hole.shape
    window = np.array((0, height, 0, width), np.int64)
    if keep_own:
        window = _work_window_of(hole, float(scale))
        own_tone_taps = gaussian_taps(TONE_SIGMA * float(scale))
        _split_window(rgb_to_lab(image), hole, window, float(scale), own_tone_taps, texture_taps, texture)
    layer = np.empty((window[1] - window[0], window[3] - window[2]), np.float32)
    _skin_texture_into(texture, hole, avoid, window, float(scale), int(seed), keep_own, keep_own, share_taps,
                       energy_taps, layer)  # fmt: skip
    y0, y1, x0, x1 = (int(v) for v in window)
    smooth[y0:y1, x0:x1, 0] += layer
    out = image.copy()
    out[hole] = lab_to_rgb(smooth)[hole]
    return out


def remove_patchmatch_poisson(
    image: np.ndarray,
    hole: np.ndarray,
    *,
    avoid: np.ndarray | None = None,
    scale: float = 1.0,
    patch_size: int = 3,
    seed: int = 0,
) -> np.ndarray:
    """Remove a larger spot: PatchMatch on the crop, then a Poisson NORMAL clone.

    PatchMatch brings real texture; cloning its gradients into the original with the
    hole's boundary fixed removes any tone step at the boundary.

    Parameters
    ----------
    image, hole, avoid, seed : see :func:`remove_freqsplit`.
    scale : float
        Face-scale factor (PatchMatch itself works in pixels; kept for a uniform signature).
    patch_size : int
        pypatchmatch's patch radius, 1 to 7.

    Returns
    -------
    (h, w, 3) float32 ndarray
        ``image`` outside ``hole`` (bit-identical).
    """
    image, hole, avoid = _check(image, hole, avoid)
    if not hole.any() or hole.all():  # nothing to fill, or nothing to fill it from
        return image.copy()
    filled = patchmatch_fill(image, hole, avoid=avoid, patch_size=patch_size, seed=seed)
    blended = poisson_blend(filled, image, hole, max_iter=3000, tol=1e-5)
    out = image.copy()
    out[hole] = blended[hole]
    return out


def _check(image, hole, avoid):
    image = as_image(image)
    hole = as_mask(hole, image.shape, "hole")
    avoid = as_optional_mask(avoid, image.shape, "avoid") & ~hole
    return image, hole, avoid


def route_taps(scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian taps of the tone, texture, own-share, energy and texture-ratio filters at this scale."""
    return (
        gaussian_taps(TONE_LOWPASS_SIGMA * scale),
        gaussian_taps(TEXTURE_SIGMA * scale),
        gaussian_taps(SHARE_SIGMA * scale),
        gaussian_taps(ENERGY_SIGMA * scale),
        gaussian_taps(RATIO_HIGH_PASS_SIGMA * scale),
    )


def _outside_texture(image: np.ndarray, texture_taps: np.ndarray) -> np.ndarray:
    """The sharp high-pass of L* over the crop, (h, w, 1): the skin texture donors copy."""
    texture = np.empty(image.shape[:2] + (1,), np.float32)
    _outside_texture_into(image, texture_taps, texture)
    return texture


@njit(cache=True, nogil=True)
def freqsplit_fill_into(image, lab, hole, avoid, scale, seed, tone_taps, texture_taps, share_taps,
                    energy_taps, ratio_taps, out):  # fmt: skip
    """:func:`remove_freqsplit` into ``out`` (a copy of ``image``; ``lab`` is its L*a*b*):
    every step in one call.

    The blemish never reaches the result: the tone layer is filled from a low-pass of the
    pixels OUTSIDE the hole only (:mod:`.tone`), and the texture inside the hole is
    copied from real skin around it, taken from the crop's L* with the hole's pixels
    replaced by that tone, so not even the donors' high-pass sees the blemish's edge.
    (Keeping the spot's own fine texture, as this route did before, carried its edge and
    darkness into the fill: on unseen portraits the fill came out dL -0.84, da +0.47,
    blackheads -1.55.)
    """
    window = _work_window_of(hole, scale, int(np.ceil(TREND_RING * scale)) + 1)
    y0, y1, x0, x1 = window[0], window[1], window[2], window[3]
    tone = np.empty((y1 - y0, x1 - x0, 3), np.float32)
    tone_fill_into(lab[y0:y1, x0:x1].copy(), hole[y0:y1, x0:x1].copy(), avoid[y0:y1, x0:x1].copy(), tone_taps,
                   TREND_RING * scale, TREND_NEAR_WEIGHT, TREND_TUKEY_DE, TONE_DECAY * scale, TREND_GAP * scale, True,
                   True, tone)  # fmt: skip
    lightness = lab[:, :, 0:1].copy()  # one copy (ascontiguousarray already made one)
    for y in range(y1 - y0):
        for x in range(x1 - x0):
            if hole[y0 + y, x0 + x]:
                lightness[y0 + y, x0 + x, 0] = tone[y, x, 0]
    texture = np.empty((hole.shape[0], hole.shape[1], 1), np.float32)
    high_pass_into(lightness, texture_taps, TEXTURE_ORDER, texture)
    layer = np.empty((y1 - y0, x1 - x0), np.float32)
    box = mask_box(hole)
    extent = max(box[1] - box[0], box[3] - box[2]) + 1
    if extent > LARGE_EXTENT * scale:
        patch_radius = max(1, int(np.rint(DONOR_PATCH_RADIUS * scale)))
        tile = max(4, int(np.rint(LARGE_TILE * scale)))
        whole = np.empty(hole.shape, np.float32)
        reach = extent + 2 * patch_radius + int(np.rint(DONOR_REACH * scale))
        tiled_donor_into(texture, hole, avoid, tile, patch_radius, reach, seed, whole)
        layer[:] = whole[y0:y1, x0:x1]
    else:
        # Donors never come from structure (hair, rims); a copy louder than the ring is damped.
        patch_radius = max(1, int(np.rint(DONOR_PATCH_RADIUS * scale)))
        clear = structure_mask(texture, hole, avoid, patch_radius)
        _skin_texture_into(texture, hole, clear, window, scale, seed, False, True, share_taps, energy_taps, layer)
    _match_ring_texture(layer, lightness, hole, avoid, window, scale, ratio_taps)
    for y in range(y1 - y0):
        for x in range(x1 - x0):
            if hole[y0 + y, x0 + x]:
                value = tone[y, x, 0] + layer[y, x]
                red, green, blue = pixel_rgb(value, tone[y, x, 1], tone[y, x, 2])
                out[y0 + y, x0 + x, 0] = red
                out[y0 + y, x0 + x, 1] = green
                out[y0 + y, x0 + x, 2] = blue


@njit(cache=True, nogil=True)
def _split_window(lab, hole, window, scale, tone_taps, texture_taps, texture):
    """Split the crop's ``lab`` on ``window`` (see :func:`_split_into`): returns the tone
    layer there, and overwrites ``texture`` inside the hole with the hole's own texture."""
    y0, y1, x0, x1 = window[0], window[1], window[2], window[3]
    inside = hole[y0:y1, x0:x1].copy()
    window_lab = lab[y0:y1, x0:x1].copy()
    tone = np.empty_like(window_lab)
    own = np.empty((y1 - y0, x1 - x0, 1), np.float32)
    _split_into(window_lab, inside, tone_taps, texture_taps, _tone_fill_share(inside, scale), tone, own)
    for y in range(y1 - y0):
        for x in range(x1 - x0):
            if inside[y, x]:
                texture[y0 + y, x0 + x, 0] = own[y, x, 0]
    return tone


@njit(cache=True, nogil=True)
def _work_window_of(hole, scale, reach=0):
    """The hole's bounding box grown by the support of the tone and texture filters (and at
    least ``reach`` px), as ``(y0, y1, x0, x1)`` (ends exclusive)."""
    pad = max(int(np.ceil(2 * BLUR_TRUNCATE_SIGMAS * TEXTURE_SIGMA * scale)) + 2, reach)
    box = mask_box(hole)
    height, width = hole.shape
    return np.array([max(0, box[0] - pad), min(height, box[1] + pad + 1),
                     max(0, box[2] - pad), min(width, box[3] + pad + 1)], np.int64)  # fmt: skip


@njit(cache=True, nogil=True)
def _outside_texture_into(image, texture_taps, out):
    """The sharp high-pass of L* over the crop: the skin texture donors copy.

    (Taking it from the image minus its 1-px tone layer instead, like the texture inside
    the hole, would be weaker than the real texture: donor-filled pixels came out at ~0.8
    of the ring's texture.)
    """
    lightness = np.empty((image.shape[0], image.shape[1], 1), np.float32)
    rgb_to_lightness_into(image, lightness)
    high_pass_into(lightness, texture_taps, TEXTURE_ORDER, out)


@njit(cache=True, nogil=True)
def _tone_fill_share(hole, scale):
    """Share of the biharmonic fill in the tone layer (the rest is the membrane fill).

    The biharmonic fill continues the ring's slope, which wins while the hole is small
    (CIE76 dE 2.0 vs 2.2 at 12-18 px); across a large hole it also carries the slope of
    a spot's faint halo just outside the mask a long way in, and the membrane wins (dE 1.8
    vs 3.5 at 30-36 px). Measured on planted spots, tight masks, extents at face scale.
    """
    box = mask_box(hole)
    extent = (max(box[1] - box[0], box[3] - box[2]) + 1) / max(scale, 1e-3)
    low_extent, high_extent = BIHARMONIC_MAX_EXTENT
    return min(max((high_extent - extent) / (high_extent - low_extent), 0.0), 1.0)


@njit(cache=True, nogil=True)
def _split_into(lab, hole, tone_taps, texture_taps, biharmonic_share, tone, own):
    """Tone layer (biharmonic / membrane blend of the clean low-pass) and own texture
    (set on the hole's bounding box only, 0 elsewhere)."""
    low = np.empty_like(lab)
    _clean_low_pass_into(lab, hole, tone_taps, low)
    if biharmonic_share >= 1.0:
        tone[:] = low
        biharmonic_into(tone, hole)
    else:
        tone[:] = low
        membrane_into(tone, hole, 2000, 1e-3)
        if biharmonic_share > 0.0:
            smooth = low.copy()
            biharmonic_into(smooth, hole)
            for y in range(lab.shape[0]):
                for x in range(lab.shape[1]):
                    for c in range(3):
                        tone[y, x, c] = np.float32(biharmonic_share * smooth[y, x, c]
                                                   + (1.0 - biharmonic_share) * tone[y, x, c])
    detail = np.empty((lab.shape[0], lab.shape[1], 1), np.float32)
    for y in range(lab.shape[0]):
        for x in range(lab.shape[1]):
            detail[y, x, 0] = lab[y, x, 0] - tone[y, x, 0]
    # The own texture is used inside the hole only: computed on the hole's box.
    box = mask_box(hole)
    own[:] = 0.0
    high_pass_region_into(detail, texture_taps, TEXTURE_ORDER, box[0], box[2],
                          own[box[0] : box[1] + 1, box[2] : box[3] + 1])  # fmt: skip


@njit(cache=True, nogil=True)
def _clean_low_pass_into(lab, hole, taps, out):
    """Gaussian low-pass of Lab that ignores the hole's spot-coloured pixels.

    A plain blur would carry the spot's colour onto the pixels just outside a tight hole,
    and the biharmonic fill would continue it inward (measured with 1-px oracle masks:
    dE 4.3 instead of 2.0). Ignoring the whole hole instead wastes its clean outer rim when
    the mask was dilated generously (dE 2.6 instead of 2.3 with 3-px masks). So: a first
    membrane fill from the blur of the outside only, then every hole pixel whose blurred
    colour stays within ``SPOT_DE`` of it (clean rim) joins the outside for the real blur.
    """
    height, width = hole.shape
    # The first guess matters on the hole and its 1-px ring only: it is computed on the
    # hole's box grown by that ring and the blur's reach (same values there).
    reach = 1 + taps.size // 2
    box = mask_box(hole)
    y0, y1 = max(0, box[0] - reach), min(height, box[1] + reach + 1)
    x0, x1 = max(0, box[2] - reach), min(width, box[3] + reach + 1)
    near_hole = hole[y0:y1, x0:x1]
    first_guess = np.empty((y1 - y0, x1 - x0, 3), np.float32)
    masked_blur_into(lab[y0:y1, x0:x1], ~near_hole, taps, first_guess)
    membrane_into(first_guess, near_hole, 2000, 0.05)
    blur_into(lab, taps, out)
    far = np.zeros((height, width), np.bool_)
    for y in range(height):
        for x in range(width):
            if hole[y, x]:
                distance2 = 0.0
                for c in range(3):
                    diff = np.float64(out[y, x, c]) - first_guess[y - y0, x - x0, c]
                    distance2 += diff * diff
                far[y, x] = np.sqrt(distance2) > SPOT_DE
    # The spot pixels, grown by one pixel (3 x 3) and kept inside the hole.
    spot = np.zeros((height, width), np.bool_)
    any_spot = False
    for y in range(height):
        for x in range(width):
            if not hole[y, x]:
                continue
            for yy in range(max(0, y - 1), min(height, y + 2)):
                for xx in range(max(0, x - 1), min(width, x + 2)):
                    if far[yy, xx]:
                        spot[y, x] = True
            any_spot |= spot[y, x]
    if any_spot:
        # Away from the spot the normalised blur is the plain one: redo only its reach.
        box = mask_box(spot)
        radius = taps.size // 2
        y0, y1 = max(0, box[0] - radius), min(height, box[1] + radius + 1)
        x0, x1 = max(0, box[2] - radius), min(width, box[3] + radius + 1)
        masked_blur_region_into(lab, ~spot, taps, y0, x0, out[y0:y1, x0:x1])


@njit(cache=True, nogil=True)
def _skin_texture_into(texture, hole, avoid, window, scale, seed, keep_own, damp, share_taps, energy_taps,
                       layer):  # fmt: skip
    """The texture inside the hole, into ``layer`` (over ``window``, 0 outside the hole):
    own where skin-like (with ``keep_own``), donor texture elsewhere.

    ``texture`` is ``(h, w, 1)`` float32 (L* units) over the crop (donors may lie anywhere in
    it). Every step but the donor search only looks within a few px of the hole, so it runs
    on ``window`` = ``(y0, y1, x0, x1)``, which must hold the hole with
    :func:`_work_window_of`'s padding (or be the whole crop).
    """
    y0, y1, x0, x1 = window[0], window[1], window[2], window[3]
    height, width = hole.shape
    own_texture = np.ascontiguousarray(texture[y0:y1, x0:x1, 0])
    inside = hole[y0:y1, x0:x1].copy()
    ring = np.empty(inside.shape, np.bool_)
    if ring_into(inside, max(1, int(np.rint(RING_WIDTH * scale))), avoid[y0:y1, x0:x1].copy(), ring) < 8:
        ring_into(inside, max(1, int(np.rint(2 * RING_WIDTH * scale))), np.zeros(inside.shape, np.bool_),
                  ring)  # fmt: skip
    any_clean = False
    for y in range(height):
        for x in range(width):
            if not (hole[y, x] or avoid[y, x]):
                any_clean = True
                break
        if any_clean:
            break
    if not any_clean:
        # No clean skin anywhere in the crop to copy from: keep the own texture as it is.
        for y in range(y1 - y0):
            for x in range(x1 - x0):
                layer[y, x] = own_texture[y, x] if inside[y, x] else np.float32(0.0)
        return
    own_share = np.zeros(inside.shape, np.float32)
    if keep_own:
        _own_share_into(own_texture, inside, ring, max(1, int(np.rint(scale))), share_taps, own_share)
    crop_share = np.zeros((height, width), np.float32)
    crop_share[y0:y1, x0:x1] = own_share
    targets = np.zeros((height, width), np.bool_)
    for y in range(height):
        for x in range(width):
            targets[y, x] = hole[y, x] and crop_share[y, x] < 0.999
    patch_radius = max(1, int(np.rint(DONOR_PATCH_RADIUS * scale)))
    donor = texture.copy()
    offsets = np.zeros((height, width, 2), np.int32)
    # One coherent block copy measured better than refining it per pixel with PatchMatch
    # (dE 2.00 vs 2.04 on the bench's tight masks; equal texture): no sweeps.
    donor_into(texture, hole, avoid, crop_share, targets, _donor_radius(inside, scale, patch_radius),
               patch_radius, 0, seed, donor, offsets)  # fmt: skip
    _combine_into(own_texture, np.ascontiguousarray(donor[y0:y1, x0:x1, 0]), own_share, inside, ring,
                  damp, energy_taps, layer)  # fmt: skip


@njit(cache=True, nogil=True)
def _own_share_into(texture, inside, ring, radius, taps, own_share):
    """Trust in the hole's own texture: 1 where it is skin-like, 0 where it is an outlier.

    Own texture beyond ``OUTLIER_LOW`` robust sigmas of the ring's is not skin (the share of
    donor texture ramps up to 1 at ``OUTLIER_HIGH``); an outlier's neighbours (``radius``)
    belong to the same structure (a rim, a highlight), and the share is smoothed by ``taps``.
    """
    height, width = inside.shape
    count = 0
    for y in range(height):
        for x in range(width):
            if ring[y, x]:
                count += 1
    values = np.empty(count, np.float32)
    k = 0
    for y in range(height):
        for x in range(width):
            if ring[y, x]:
                values[k] = texture[y, x]
                k += 1
    centre = np.float32(np.median(values))
    robust_sigma = 1.4826 * float(np.median(np.abs(values - centre))) + 1e-3
    # The share is needed inside the hole only: the smoothing reads the grown map on the
    # hole's box plus the taps' reach, which reads the outlier map up to ``radius`` further.
    box = mask_box(inside)
    reach = taps.size // 2
    gy0, gy1 = max(0, box[0] - reach), min(height, box[1] + 1 + reach)
    gx0, gx1 = max(0, box[2] - reach), min(width, box[3] + 1 + reach)
    sy0, sy1 = max(0, gy0 - radius), min(height, gy1 + radius)
    sx0, sx1 = max(0, gx0 - radius), min(width, gx1 + radius)
    donor_share = np.empty((sy1 - sy0, sx1 - sx0), np.float32)
    for y in range(sy0, sy1):
        for x in range(sx0, sx1):
            z = abs(texture[y, x] - centre) / robust_sigma
            donor_share[y - sy0, x - sx0] = min(max((z - OUTLIER_LOW) / (OUTLIER_HIGH - OUTLIER_LOW), 0.0), 1.0)
    grown = np.empty((gy1 - gy0, gx1 - gx0, 1), np.float32)
    for y in range(gy0, gy1):
        for x in range(gx0, gx1):
            largest = np.float32(0.0)
            for yy in range(max(sy0, y - radius), min(sy1, y + radius + 1)):
                for xx in range(max(sx0, x - radius), min(sx1, x + radius + 1)):
                    largest = max(largest, donor_share[yy - sy0, xx - sx0])
            grown[y - gy0, x - gx0, 0] = largest
    smooth = np.empty((box[1] + 1 - box[0], box[3] + 1 - box[2], 1), np.float32)
    blur_region_into(grown, taps, box[0] - gy0, box[2] - gx0, smooth)
    own_share[:] = 0.0
    for y in range(box[0], box[1] + 1):
        for x in range(box[2], box[3] + 1):
            if inside[y, x]:
                own_share[y, x] = np.float32(1.0) - smooth[y - box[0], x - box[2], 0]


@njit(cache=True, nogil=True)
def _combine_into(texture, donor, own_share, inside, ring, damp, taps, layer):
    """Own and donor texture blended inside the hole (0 outside), excess energy damped.

    Own and donor textures are uncorrelated: weights whose squares sum to 1 keep the
    blend's energy (a linear cross-fade would dip to half the energy midway). With
    ``damp``, where the layer's local RMS (Gaussian window ``taps``) exceeds the ring's
    texture RMS by more than ``ENERGY_TOLERANCE`` (leftover shading of the spot's rim), it
    is damped down to it, by at most ``GAIN_MIN``.
    """
    height, width = inside.shape
    for y in range(height):
        for x in range(width):
            share = own_share[y, x]
            norm = np.sqrt(share * share + (np.float32(1.0) - share) ** 2)
            layer[y, x] = (share * texture[y, x] + (np.float32(1.0) - share) * donor[y, x]) / norm
    if damp:
        ring_energy = 0.0
        count = 0
        for y in range(height):
            for x in range(width):
                if ring[y, x]:
                    ring_energy += np.float64(texture[y, x]) ** 2
                    count += 1
        ring_energy = ring_energy / max(count, 1) + 1e-6
        energy = np.empty((height, width, 1), np.float32)
        for y in range(height):
            for x in range(width):
                energy[y, x, 0] = layer[y, x] * layer[y, x]
        # Only the hole's pixels are kept: the local energy is needed on its box only.
        box = mask_box(inside)
        local = np.empty((box[1] + 1 - box[0], box[3] + 1 - box[2], 1), np.float32)
        masked_blur_region_into(energy, inside, taps, box[0], box[2], local)
        for y in range(box[0], box[1] + 1):
            for x in range(box[2], box[3] + 1):
                shrunk = (1.0 - ENERGY_SHRINK) * local[y - box[0], x - box[2], 0] + ENERGY_SHRINK * ring_energy
                gain = min(max(ENERGY_TOLERANCE * np.sqrt(ring_energy / (shrunk + 1e-6)), GAIN_MIN), 1.0)
                layer[y, x] = np.float32(layer[y, x] * gain)
    for y in range(height):
        for x in range(width):
            if not inside[y, x]:
                layer[y, x] = 0.0


@njit(cache=True, nogil=True)
def _donor_radius(hole, scale, patch_radius):
    """Search radius: just far enough for a clean block to clear the hole, within the cap.

    A block copy needs an offset of at least the hole's extent plus two patch radii; skin
    much farther away is rarely a better match (the cap of 12 px measured as 20 px did), and
    the search costs the square of the radius.
    """
    box = mask_box(hole)
    extent = max(box[1] - box[0], box[3] - box[2]) + 1
    wanted = extent + 2 * patch_radius + DONOR_REACH * scale
    return max(2, int(np.rint(min(wanted, DONOR_RADIUS * scale))))


@njit(cache=True, nogil=True)
def _match_ring_texture(layer, lightness, hole, avoid, window, scale, ratio_taps):
    """Make the donor texture in ``layer`` zero-mean inside the hole and move its strength
    towards the ring's: a donor patch brings real pores, but not its own mean brightness.

    Strength is measured as the texture check measures it (:mod:`.texture`: the RMS of the
    ``L - G_1px`` high-pass) on the result itself, ``lightness`` (the crop's L* with the tone
    in the hole) plus the scaled layer, so the boundary's share and the layer's spectrum
    are counted. The wanted strength is ring ** ``TEXTURE_MATCH`` x donor ** (1 -
    ``TEXTURE_MATCH``), the gain clamped to ``TEXTURE_GAIN``: both the ring and the donor are
    estimates of the skin's strength under the spot (the clean ring is rougher than the skin
    under the spot by 6 % in the median, and in 17 % of the dev spots by more than 30 %), so
    the copy lands between them, nearer the ring."""
    y0, y1, x0, x1 = window[0], window[1], window[2], window[3]
    inside = hole[y0:y1, x0:x1].copy()
    ring = np.empty(inside.shape, np.bool_)
    if ring_into(inside, max(1, int(np.rint(RING_WIDTH * scale))), avoid[y0:y1, x0:x1].copy(), ring) < 8:
        ring_into(inside, max(1, int(np.rint(RING_WIDTH * scale))), np.zeros(inside.shape, np.bool_), ring)
    total = 0.0
    count = 0
    for y in range(y1 - y0):
        for x in range(x1 - x0):
            if inside[y, x]:
                total += layer[y, x]
                count += 1
    if count == 0:
        return
    mean = total / count
    padded = np.zeros((y1 - y0, x1 - x0, 1), np.float32)
    for y in range(y1 - y0):
        for x in range(x1 - x0):
            if inside[y, x]:
                padded[y, x, 0] = layer[y, x] - mean
    # base: the high-pass of the result without the layer; added: the layer's own high-pass.
    base = np.empty((y1 - y0, x1 - x0, 1), np.float32)
    high_pass_region_into(lightness, ratio_taps, 1, y0, x0, base)
    added = np.empty_like(padded)
    high_pass_into(padded, ratio_taps, 1, added)
    ring_energy = 0.0
    ring_count = 0
    base_mean = 0.0
    added_mean = 0.0
    for y in range(y1 - y0):
        for x in range(x1 - x0):
            if ring[y, x]:
                ring_energy += np.float64(base[y, x, 0]) ** 2
                ring_count += 1
            if inside[y, x]:
                base_mean += base[y, x, 0]
                added_mean += added[y, x, 0]
    if ring_count == 0:
        return
    base_mean /= count
    added_mean /= count
    # Sums over the hole of the centred high-passes: |base + g added|^2 = bb + 2 g ba + g^2 aa.
    bb = 0.0
    ba = 0.0
    aa = 0.0
    for y in range(y1 - y0):
        for x in range(x1 - x0):
            if inside[y, x]:
                b = base[y, x, 0] - base_mean
                a = added[y, x, 0] - added_mean
                bb += b * b
                ba += b * a
                aa += a * a
    ring_rms = np.sqrt(ring_energy / ring_count)
    donor_rms = np.sqrt((bb + 2.0 * ba + aa) / count)
    low, high = TEXTURE_GAIN
    gain = low
    if aa > 1e-12 and donor_rms > 1e-6:
        wanted = donor_rms * min(max((ring_rms / donor_rms) ** TEXTURE_MATCH, low), high)
        discriminant = ba * ba - aa * (bb - count * wanted * wanted)
        if discriminant > 0.0:
            gain = min(max((-ba + np.sqrt(discriminant)) / aa, low), high)
    for y in range(y1 - y0):
        for x in range(x1 - x0):
            if inside[y, x]:
                layer[y, x] = np.float32((layer[y, x] - mean) * gain)


@njit(cache=True, nogil=True)
def _robust_spread(values):
    """1.4826 x the median absolute deviation: the std of the bulk, blind to a few outliers."""
    centre = np.median(values)
    return 1.4826 * np.median(np.abs(values - centre))
