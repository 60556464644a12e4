"""Bench metrics: how well planted spots were removed, and how well they were found.

Removal (per spot over its footprint, against the clean photo, then averaged over the spots to
remove; moles are judged separately):

- ``dE``: mean CIE76 dE in Lab, result vs clean.
- ``lf_dE``: the same after a Gaussian blur of the Lab channels of both (sigma = 2 px at face
  scale): colour and tone match without the texture.
- ``texture_ratio``: std of the high-pass L* (L* - Gaussian(L*, sigma = 1 px at face scale)) inside
  the footprint, result / clean, for spots whose footprint has at least 40 px. 1 is perfect, a
  smooth fill gives about 0.5. ``texture_ok`` is the fraction of those spots in [0.7, 1.3].
  ``ring_texture_ratio`` is the same ratio for a fill that had exactly the strength of the clean
  skin in a ring ``RING_CEILING_PX`` wide around the method's mask (std there / std in the
  footprint, both clean): the share of it in range (``texture_ok_ring_ceiling``) is what a fill
  that can only learn the strength from around the hole reaches at best.
- ``dL``, ``da``, ``db``: signed mean of result - clean in L*, a*, b* over the footprint: the
  bias of a fill (a ghost of the blemish is dark and red: dL < 0, da > 0), which absolute errors
  hide. Pooled per kind and per skin-tone group (:func:`skin_tone_group`).
- ``seam_lf_dE``, ``seam_grad``: the ring just OUTSIDE the method's mask (``SEAM_RING_PX`` wide):
  its pixels are untouched, so anything there comes from the fill leaking across the boundary
  through a small blur (tone step: lf dE at sigma ``SEAM_SIGMA``) or from an edge drawn at the
  boundary (``seam_grad``: mean gradient magnitude of L* there, result / clean; 1 is seamless,
  above 1 a visible contour).
- ``collateral``: fraction of the pixels farther than ``COLLATERAL_MARGIN_PX`` (times the scale)
  from every planted spot's footprint (moles included) that changed by more than 3 levels of 255.

Detection (from a mask):

- ``recall``: a spot is found when the mask covers at least half of its core.
- ``false_regions``: connected mask components (8-connected) touching no planted footprint,
  divided by the number of spots to remove.
- ``moles_hit``: moles whose core is at least 20 % covered. Must be 0.

Lab conversions use ``skimage.color.rgb2lab`` (float64) for accuracy; everything is computed on a
crop around each spot, with a margin wide enough for the blurs.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.color import rgb2lab

__all__ = [
    "COLLATERAL_LEVELS",
    "COLLATERAL_MARGIN_PX",
    "MIN_TEXTURE_FOOTPRINT_PX",
    "TEXTURE_OK_RANGE",
    "detection_metrics",
    "removal_metrics",
    "skin_tone_group",
    "spot_removal_metrics",
]

LOW_FREQUENCY_SIGMA = 2.0  # px at face scale
HIGH_PASS_SIGMA = 1.0  # px at face scale
MIN_TEXTURE_FOOTPRINT_PX = 40
TEXTURE_OK_RANGE = (0.7, 1.3)
COLLATERAL_LEVELS = 3  # of 255
COLLATERAL_MARGIN_PX = 5.0  # px at face scale around each footprint
SEAM_RING_PX = 2.0  # px at face scale
RING_CEILING_PX = 4.0  # px at face scale (the width of the ring the removal kernels measure)
SEAM_SIGMA = 1.0  # px at face scale
# Skin-tone groups by the Individual Typology Angle (ITA, degrees) of the clean skin:
# Chardon et al. 1991 / Del Bino et al. 2006 classes, lower bounds.
ITA_GROUPS = (("very_light", 55.0), ("light", 41.0), ("intermediate", 28.0), ("tan", 10.0),
              ("brown", -30.0), ("dark", -float("inf")))  # fmt: skip
RECALL_CORE_FRACTION = 0.5
MOLE_HIT_CORE_FRACTION = 0.2


def removal_metrics(
    result: np.ndarray,
    clean: np.ndarray,
    spots,
    *,
    scale: float,
    blemished: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> dict:
    """Removal quality of ``result`` against ``clean`` over the planted spots.

    Parameters
    ----------
    result, clean : (H, W, 3) ndarray
        RGB, uint8 in [0, 255] or float in [0, 1].
    spots : sequence of PlantedSpot
    scale : float
        Face scale of the photo; multiplies the blur sigmas and the collateral margin.
    blemished : (H, W, 3) ndarray, optional
        The input the method was given. When present the untouched input's figures are
        reported too (``input_dE``, ``input_lf_dE``) and ``moles_dE``: how much the result
        changed the moles (result vs blemished over their footprints; should be about 0).
    mask : (H, W) bool ndarray, optional
        The mask the method was given; the seam ring lies just outside it. Without it the
        ring lies just outside each footprint.

    Returns
    -------
    dict
        ``dE``, ``lf_dE``, ``texture_ratio`` (mean), ``texture_ratio_median``, ``texture_ok``,
        ``collateral``, ``n_spots``, ``n_texture_spots``, ``per_kind`` ({kind: {dE, lf_dE, n}}),
        ``per_spot`` (list of dicts) and the ``input_*``/``moles_dE`` entries described above.
        Averages over no spots are NaN.
    """
    result = _as_unit_float(result, "result")
    clean = _as_unit_float(clean, "clean")
    if result.shape != clean.shape:
        raise ValueError(f"result {result.shape} and clean {clean.shape} differ in shape")
    removable = [spot for spot in spots if not spot.keep]
    per_spot = [spot_removal_metrics(result, clean, spot, scale=scale, mask=mask) for spot in removable]
    summary = _summarise(per_spot)
    summary["collateral"] = collateral_fraction(result, clean, spots, scale=scale)
    summary["per_kind"] = {
        kind: {
            "dE": float(np.mean([s["dE"] for s in per_spot if s["kind"] == kind])),
            "lf_dE": float(np.mean([s["lf_dE"] for s in per_spot if s["kind"] == kind])),
            **{key: float(np.mean([s[key] for s in per_spot if s["kind"] == kind])) for key in SIGNED_KEYS},
            "n": sum(1 for s in per_spot if s["kind"] == kind),
        }
        for kind in sorted({s["kind"] for s in per_spot})
    }
    summary["per_spot"] = per_spot
    if blemished is not None:
        blemished = _as_unit_float(blemished, "blemished")
        untouched = _summarise(
            [spot_removal_metrics(blemished, clean, spot, scale=scale) for spot in removable]
        )
        summary["input_dE"] = untouched["dE"]
        summary["input_lf_dE"] = untouched["lf_dE"]
        summary["input_texture_ratio_median"] = untouched["texture_ratio_median"]
        moles = [spot for spot in spots if spot.keep]
        summary["moles_dE"] = (
            float(np.mean([_mean_de_over(result, blemished, spot.footprint) for spot in moles]))
            if moles
            else float("nan")
        )
    return summary


SIGNED_KEYS = ("dL", "da", "db")


def spot_removal_metrics(
    result: np.ndarray, clean: np.ndarray, spot, *, scale: float, mask: np.ndarray | None = None
) -> dict:
    """dE, lf_dE, texture ratio, signed bias and seam of one spot; images are float RGB in [0, 1].

    ``mask`` is the method's mask (the seam ring lies outside it); None: the footprint.
    """
    reach = SEAM_RING_PX * scale + 4.0 * SEAM_SIGMA * scale
    margin = int(np.ceil(max(4.0 * LOW_FREQUENCY_SIGMA * scale, reach))) + 2
    if mask is not None:  # the mask may reach beyond the footprint: the window must hold it
        margin += int(np.ceil(_mask_reach(mask, spot.footprint)))
    window = _window(spot.footprint, margin)
    footprint = spot.footprint[window]
    result_lab = rgb2lab(result[window])
    clean_lab = rgb2lab(clean[window])
    de = np.linalg.norm(result_lab - clean_lab, axis=-1)
    sigma = LOW_FREQUENCY_SIGMA * scale
    lf_de = np.linalg.norm(_blur_lab(result_lab, sigma) - _blur_lab(clean_lab, sigma), axis=-1)
    size = int(footprint.sum())
    ratio = float("nan")
    clean_high = None
    if size >= MIN_TEXTURE_FOOTPRINT_PX:
        clean_high = _high_pass(clean_lab[..., 0], HIGH_PASS_SIGMA * scale)
        clean_detail = clean_high[footprint].std()
        result_detail = _high_pass(result_lab[..., 0], HIGH_PASS_SIGMA * scale)[footprint].std()
        ratio = float(result_detail / clean_detail) if clean_detail > 1e-9 else float("nan")
    signed = (result_lab - clean_lab)[footprint].mean(axis=0)
    local_mask = footprint if mask is None else _component_over(mask[window], footprint)
    ring_ratio = float("nan")
    if clean_high is not None:
        ring = ndi.binary_dilation(local_mask, iterations=max(1, round(RING_CEILING_PX * scale))) & ~local_mask
        if mask is not None:
            ring &= ~mask[window]
        if ring.sum() >= 8 and clean_detail > 1e-9:
            ring_ratio = float(clean_high[ring].std() / clean_detail)
    seam_lf, seam_grad = _seam(result_lab, clean_lab, local_mask, scale)
    return {
        "kind": spot.kind,
        "center": [float(spot.center[0]), float(spot.center[1])],
        "footprint_px": size,
        "dE": float(de[footprint].mean()),
        "lf_dE": float(lf_de[footprint].mean()),
        "texture_ratio": ratio,
        "ring_texture_ratio": ring_ratio,
        "dL": float(signed[0]),
        "da": float(signed[1]),
        "db": float(signed[2]),
        "seam_lf_dE": seam_lf,
        "seam_grad": seam_grad,
    }


def skin_tone_group(clean: np.ndarray, skin: np.ndarray) -> tuple[str, float]:
    """Skin-tone group of a photo from the median L* and b* of its skin: (group, ITA degrees).

    ITA = atan((L* - 50) / b*) in degrees; the groups are ``ITA_GROUPS`` (very light > 55 ...
    dark < -30).
    """
    skin = np.asarray(skin, dtype=bool)
    if not skin.any():
        raise ValueError("skin region is empty")
    ys, xs = np.nonzero(skin)
    step = max(1, ys.size // 20000)  # a sample is plenty for a median
    pixels = _as_unit_float(clean, "clean")[ys[::step], xs[::step]]
    lab = rgb2lab(pixels[None])[0]
    lightness, yellow = np.median(lab[:, 0]), np.median(lab[:, 2])
    ita = float(np.degrees(np.arctan2(lightness - 50.0, max(yellow, 1e-6))))
    for group, lower in ITA_GROUPS:
        if ita > lower:
            return group, ita
    return ITA_GROUPS[-1][0], ita


def _mask_reach(mask: np.ndarray, footprint: np.ndarray) -> float:
    """How far the mask's part over this footprint extends beyond the footprint's box, px."""
    window = _window(footprint, 0)
    component = _component_over(mask, footprint)
    ys, xs = np.nonzero(component)
    if ys.size == 0:
        return 0.0
    return float(max(window[0].start - ys.min(), ys.max() + 1 - window[0].stop,
                     window[1].start - xs.min(), xs.max() + 1 - window[1].stop, 0))  # fmt: skip


def _component_over(mask: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """The connected parts of ``mask`` that overlap ``footprint`` (the footprint itself if none)."""
    labels, _ = ndi.label(mask, structure=np.ones((3, 3), dtype=bool))
    touched = np.unique(labels[footprint & mask])
    touched = touched[touched > 0]
    if touched.size == 0:
        return footprint.copy()
    return np.isin(labels, touched)


def _seam(result_lab, clean_lab, mask, scale) -> tuple[float, float]:
    """(lf dE, gradient ratio) over the ring just outside ``mask``."""
    width = max(1, int(round(SEAM_RING_PX * scale)))
    ring = ndi.binary_dilation(mask, structure=np.ones((3, 3), dtype=bool), iterations=width) & ~mask
    if not ring.any():
        return float("nan"), float("nan")
    sigma = SEAM_SIGMA * scale
    lf = np.linalg.norm(_blur_lab(result_lab, sigma) - _blur_lab(clean_lab, sigma), axis=-1)
    grad_result = np.hypot(ndi.sobel(result_lab[..., 0], 0), ndi.sobel(result_lab[..., 0], 1))
    grad_clean = np.hypot(ndi.sobel(clean_lab[..., 0], 0), ndi.sobel(clean_lab[..., 0], 1))
    clean_mean = grad_clean[ring].mean()
    ratio = float(grad_result[ring].mean() / clean_mean) if clean_mean > 1e-9 else float("nan")
    return float(lf[ring].mean()), ratio


def collateral_fraction(result: np.ndarray, clean: np.ndarray, spots, *, scale: float) -> float:
    """Fraction of far-from-spot pixels changed by more than ``COLLATERAL_LEVELS`` of 255."""
    result = _as_unit_float(result, "result")
    clean = _as_unit_float(clean, "clean")
    near = np.zeros(clean.shape[:2], dtype=bool)
    for spot in spots:
        near |= spot.footprint
    if near.any():
        far = ndi.distance_transform_edt(~near) > COLLATERAL_MARGIN_PX * scale
    else:
        far = np.ones_like(near)
    if not far.any():
        return float("nan")
    changed = np.abs(result - clean).max(axis=-1) * 255.0 > COLLATERAL_LEVELS
    return float(changed[far].mean())


def detection_metrics(mask: np.ndarray, spots) -> dict:
    """How well a detection mask finds the planted blemishes and spares the moles.

    Parameters
    ----------
    mask : (H, W) bool ndarray
    spots : sequence of PlantedSpot

    Returns
    -------
    dict
        ``recall``, ``recall_per_kind`` ({kind: recall}), ``found``, ``n_spots``,
        ``false_regions`` (count), ``false_regions_per_spot``, ``moles_hit``, ``n_moles``,
        ``mask_fraction`` (share of the photo masked).
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {mask.shape}")
    removable = [spot for spot in spots if not spot.keep]
    moles = [spot for spot in spots if spot.keep]
    found_by_kind: dict[str, list[bool]] = {}
    for spot in removable:
        covered = mask[spot.core].mean() if spot.core.any() else 0.0
        found_by_kind.setdefault(spot.kind, []).append(bool(covered >= RECALL_CORE_FRACTION))
    found = sum(sum(flags) for flags in found_by_kind.values())

    labels, count = ndi.label(mask, structure=np.ones((3, 3), dtype=bool))
    planted = np.zeros(mask.shape, dtype=bool)
    for spot in spots:
        planted |= spot.footprint
    touching = np.unique(labels[planted & mask])
    false_regions = count - int(np.count_nonzero(touching))

    moles_hit = sum(
        1 for spot in moles if spot.core.any() and mask[spot.core].mean() >= MOLE_HIT_CORE_FRACTION
    )
    n_spots = len(removable)
    return {
        "recall": found / n_spots if n_spots else float("nan"),
        "recall_per_kind": {
            kind: sum(flags) / len(flags) for kind, flags in sorted(found_by_kind.items())
        },
        "found": found,
        "n_spots": n_spots,
        "false_regions": false_regions,
        "false_regions_per_spot": false_regions / n_spots if n_spots else float("nan"),
        "moles_hit": moles_hit,
        "n_moles": len(moles),
        "mask_fraction": float(mask.mean()),
    }


def finite_texture_ratios(entries: list[dict], key: str = "texture_ratio") -> np.ndarray:
    """The finite ``key`` values (a texture ratio) of per-spot (or per-region) entries."""
    ratios = np.array([e[key] for e in entries], dtype=np.float64)
    return ratios[np.isfinite(ratios)]


def texture_summary(ratios: np.ndarray) -> dict:
    """Median texture ratio and the share inside ``TEXTURE_OK_RANGE`` (NaN when there are none)."""
    low, high = TEXTURE_OK_RANGE
    if not ratios.size:
        return {"texture_ratio_median": float("nan"), "texture_ok": float("nan")}
    return {"texture_ratio_median": float(np.median(ratios)),
            "texture_ok": float(np.mean((ratios >= low) & (ratios <= high)))}  # fmt: skip


def _summarise(per_spot: list[dict]) -> dict:
    ratios = finite_texture_ratios(per_spot)
    return {
        "dE": _mean([s["dE"] for s in per_spot]),
        "lf_dE": _mean([s["lf_dE"] for s in per_spot]),
        "texture_ratio": _mean(ratios),
        **texture_summary(ratios),
        **{key: _mean([s[key] for s in per_spot]) for key in SIGNED_KEYS},
        "seam_lf_dE": _nanmean([s["seam_lf_dE"] for s in per_spot]),
        "seam_grad": _nanmean([s["seam_grad"] for s in per_spot]),
        "n_spots": len(per_spot),
        "n_texture_spots": int(ratios.size),
    }


def _mean_de_over(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    window = _window(region, 1)
    de = np.linalg.norm(rgb2lab(a[window]) - rgb2lab(b[window]), axis=-1)
    return float(de[region[window]].mean())


def _mean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()) if values.size else float("nan")


def _nanmean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def _blur_lab(lab: np.ndarray, sigma: float) -> np.ndarray:
    return np.stack([ndi.gaussian_filter(lab[..., c], sigma) for c in range(3)], axis=-1)


def _high_pass(lightness: np.ndarray, sigma: float) -> np.ndarray:
    return lightness - ndi.gaussian_filter(lightness, sigma)


def _window(region: np.ndarray, margin: int) -> tuple[slice, slice]:
    ys, xs = np.nonzero(region)
    if ys.size == 0:
        raise ValueError("spot has an empty footprint")
    height, width = region.shape
    return (
        slice(max(0, ys.min() - margin), min(height, ys.max() + margin + 1)),
        slice(max(0, xs.min() - margin), min(width, xs.max() + margin + 1)),
    )


def _as_unit_float(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"{name} must be (H, W, 3) RGB, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    if np.issubdtype(image.dtype, np.floating):
        return np.clip(image.astype(np.float64), 0.0, 1.0)
    raise TypeError(f"{name} must be uint8 or float, got {image.dtype}")
