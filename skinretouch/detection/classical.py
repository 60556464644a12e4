"""The classical blemish detector: colour statistics and shape rules, no model weights.

Steps for one photo:

1. Faces (Haar cascades, :mod:`.face`) set the face scale and the protected features
   (eyes, brows, lips; nostrils are found as dark blobs under the nose). Without a face
   the whole photo is searched and skin is found by colour alone (``method="skin_colour"``).
2. The search area (the faces and a margin, or the whole photo) is cropped and shrunk so
   one face unit is at most ``WORK_FACE_SCALE`` pixels (a face about 256 px wide):
   detection runs at face scale, not at 24 megapixels.
3. Skin: a colour model fitted to the face's cheeks (or to skin-coloured pixels of the
   whole photo) with the holes a spot makes filled, inside the face's ellipse (a landmark
   outline also grows into the skin joined to it: forehead, nose), minus the
   protected features; hair strands (Hessian valleys darker than both sides) cannot seed
   a spot and are protected where no spot covers them.
4. Spots: Lab contrast against the local skin background (normalised convolution that
   skips non-skin and spot pixels), in units of thresholds that grow with the local
   texture; regions flood downhill from strong seeds, each down to a share of its own
   peak, so the mask follows the outline; then they are measured and classified (papule,
   pustule, dark spot, blackhead) or rejected (too big, elongated like a hair or a
   wrinkle, jagged, a busy or non-skin ring, too faint for its kind). Every papule must
   also rise a few local a* SDs (and every dark spot drop a few local L SDs) above the
   skin's own noise; spots too faint for the Lab rules are taken when they stand out of
   that noise (dim papules, faint blackheads, faint dark spots: ``dark_rel``), away from
   eyes, brows and lips. Moles and (on a freckled face) freckles are recognised and
   protected rather than returned.
5. Labels are brought back to the photo's pixel grid; where the search ran shrunk, each
   spot's outline is redrawn at full resolution from the full-resolution contrast.
6. A photo with no face searched (a close-up: its face scale is only guessed from its size)
   is looked at again at twice that scale; the papules and pustules found there (larger than
   the guess expects) are added where the first look found at most a small piece of them.
"""

from __future__ import annotations

import dataclasses
import math
import time

import cv2
import numpy as np

from ..config import DetectConfig
from ..imageio import unit_floats
from ..logs import get_logger
from .analysis import SkinAnalysis
from .types import BBox, Background, BackgroundTile, Detection, ProtectedFeature, Spot, bbox_of
from ..kernels import detect as kd
from ..kernels import skin as ks
from ..kernels.labels import label_boxes, label_windows, lazy_zeros, sparse_copy, sparse_or, sparse_put
from ..scale import image_scale
from .faces import DEFAULT_FACE_MODEL, find_faces
from .grid import grow_mask, grow_to_full, point_small, shrink_mask, to_photo, union_box
from .haar_faces import draw_feature_masks
from .lips import lips_by_colour
from .pixels import checked_pixels, shrunk_unit_floats
from .protection import drop_protected, face_ellipse, face_region, hair_features, nostril_area

__all__ = ["ClassicalDetector"]

log = get_logger(__name__)

# Detection runs at most at this many pixels per face unit (1 unit = 1 px of a face
# 256 px wide), i.e. on a face at most ~256 px wide; larger photos are shrunk.
WORK_FACE_SCALE = 1.0
# Background of the contrast: two passes, the second without the first's spots (face units).
BG_SIGMAS = (8.0, 6.0)

_COL = {name: i for i, name in enumerate(kd.FEATURES)}


class _Thresholds:
    """Contrasts in Lab units at sensitivity 0.5 (divided by the sensitivity gain); sizes
    in face units (px of a 256-px-wide face).

    Constants, read through an instance that holds nothing of its own (empty ``__slots__``:
    assigning one raises); not a dataclass, whose generated methods for ~80 fields cost every
    start-up 5 ms."""

    __slots__ = ()

    # Seeds and growth (strength units: contrast / threshold).
    # Floors below which a contrast is not visible whatever the skin; above them a seed must
    # stand out of the photo's own skin texture (noise_k local SDs): real inflamed papules
    # rise 3-8 a* units over skin that is itself red and blotchy.
    red: float = 3.0  # a* above the background for a red seed
    dark: float = 8.0  # L below the background for a dark seed
    yellow: float = 4.5  # b* above the background, with dark, for a brown seed
    grow: float = 0.45  # absolute growth floor (strength)
    relative_grow: float = 0.3  # growth floor as a fraction of the spot's own peak
    merge: float = 0.6  # peaks joined by a saddle this high (of the lower peak) are one spot
    noise_k: float = 2.5  # seeds must also exceed this many local texture SDs
    texture_sigma: float = 10.0  # window of the local texture SD
    wide_background: float = 0.0  # a second, wider background in face units (0 = off; measured worse)
    # A second look inside large rejected regions (a spot on a flushed or shaded patch).
    patch_min_r: float = 2.5  # regions at least this big are looked into
    patch_sigma: float = 3.0  # near background: Gaussian sigma
    # Acceptance of a region as a spot at all.
    max_r: float = 28.0  # larger regions are shading, not spots (inflamed halos are big)
    max_elongation: float = 3.5  # major/minor axis ratio above which a region is a line
    min_solidity: float = 0.5  # area / convex hull: jagged pieces are texture
    # ...but inflamed papules side by side flood into one jagged region: a region far redder
    # than the local a* noise (this many SDs) is a cluster, taken down to a lower solidity.
    cluster_red_k: float = 8.0
    cluster_min_solidity: float = 0.3
    max_ring_busy: float = 0.25  # share of the ring as strong as the spot's edge
    min_ring_allowed: float = 0.6  # share of the ring that is searchable skin
    min_ring_skin: float = 0.08  # mean skin likelihood of the ring
    # Kinds (over the spot's core: the part at >= 60 % of its peak).
    papule_red: float = 4.5  # a* rise of a papule/pustule
    papule_red_share: float = 0.95  # a* rise at least this share of the L drop (else: a furrow's shadow)
    papule_max_ring_sd: float = 6.0  # L SD of the ring: red creases sit in busy skin
    shaded_papule_red_share: float = 0.8  # ...or this share, with a quiet ring (shaded bumps)
    shaded_papule_max_ring_sd: float = 3.6
    strong_red: float = 9.0  # an a* rise this big is a papule however dark (no shadow is this red)
    red_in_noise: bool = True  # ...as is a bump redder than dark in local-noise units (_red_bump)
    shaded_papule_max_edge: float = 2.0  # mean L gradient on the outline (Lab units per px)
    papule_min_dark: float = -1.0  # L drop at least this (paler cores are scars or shine)
    large_papule_r: float = 5.0
    ring_texture_k: float = 0.0  # ring L SD limits grow once this many skin texture SDs exceed them  # ...but a papule this big shades its own ring (up to its a* rise)
    pustule_head: float = 7.0  # L of the pale head above the core
    blackhead_dark: float = 22.0  # L drop of a blackhead (a grey-black plug)...
    blackhead_max_chroma: float = 2.0  # ... less saturated than skin: a* + b* rise at most
    blackhead_dark_any: float = 35.0  # L drop that makes a blackhead whatever its colour
    blackhead_max_r: float = 2.6
    blackhead_max_ring_sd: float = 10.0  # ring L SD: a dark notch in a rim or fold is not one
    dark_spot_dark: float = 6.0  # L drop of a dark spot
    dark_spot_yellow: float = 3.0  # b* rise of a dark spot (brown, not grey)
    dark_spot_brown: float = 1.7  # L drop / dark + b* rise / yellow
    dark_spot_max_red: float = 6.0  # a* rise (or 0.4 of the L drop): brown, not a red bump
    dark_spot_min_r: float = 2.2  # smaller brown dots are pores or freckles
    dark_spot_min_peak: float = 1.45  # strength: faint brown patches are skin tone
    dark_spot_max_ring_sd: float = 4.5  # L SD of the ring: wrinkles and pores are not spots
    mole_dark: float = 20.0  # L drop of a mole
    mole_r: tuple[float, float] = (3.0, 11.0)
    mole_plateau: float = 0.75  # moles are flat-topped with a sharp edge
    large_mark_max_r: float = 30.0  # a dark mark between mole_r[1] and this is kept whole
    large_mark_dark: float = 10.0  # L drop of such a mark
    freckle_dark: float = 9.0  # freckles are fainter than this
    freckle_max_r: float = 2.2
    freckle_min_count: int = 6  # this many faint small brown spots make a freckled face
    # Dim papules: red bumps too faint for the Lab rules above, judged against the a* noise of
    # the skin around them (its own local SD), so one setting serves pale, dark and noisy skin.
    # A faint spot right against a feature (a brow's head, a lip's corner) is more likely that
    # feature's own edge: the faint rules below want nearly all of the ring searchable skin.
    dim_min_ring_allowed: float = 0.9
    dim_feature_clearance: float = 3.0  # ...and keep this far (face units) from eyes, brows, lips
    # Every papule or pustule: an a* rise of at least this many local a* SDs; every dark spot:
    # an L drop of this many local L SDs (else it is the skin's own blotches, grain or light).
    papule_noise_k: float = 4.0
    dark_spot_noise_k: float = 3.0
    dim_papule_noise_k: float = 4.0  # a* rise in local a* SDs
    dim_papule_red: float = 3.0  # ...and at least this a* rise (below it nothing is visible)
    dim_papule_red_share: float = 0.35  # a* rise at least this share of the L drop
    dim_papule_dark_k: float = 0.5  # L drop at least this many local L SDs (raised, shaded)
    dim_papule_min_r: float = 2.5
    dim_papule_max_elongation: float = 3.0
    dim_papule_min_solidity: float = 0.55
    dim_papule_max_ring_busy: float = 0.15
    dim_papule_ring_k: float = 2.0  # ring L SD at most this many local L SDs (or the a* rise)
    dim_papule_min_peak: float = 1.6
    dim_papule_ring_red_k: float = 1.5  # the ring's own a* rise, in local a* SDs: a piece of a red patch
    # Faint blackheads: a small plug darker than the local L noise by this many SDs, and greyer
    # than the skin (its a* + b* fall by this many local a*/b* SDs together).
    dim_blackhead_dark_k: float = 5.0
    dim_blackhead_dark: float = 8.0  # ...and at least this L drop
    dim_blackhead_grey_k: float = 4.0
    dim_blackhead_max_ring_busy: float = 0.25
    # Faint dark spots: brown (b* rise as for dark spots) and darker than the local L noise by
    # this many SDs (dark_rel), where the L drop in Lab units is too small for the rule above;
    # not flat-topped (moles are) and not mole-dark.
    dark_rel: float = 5.0
    dark_rel_min_peak: float = 1.0
    dark_rel_max_plateau: float = 0.75
    dark_rel_max_elongation: float = 2.5
    dark_rel_ring_k: float = 2.5  # ring L SD at most this many local L SDs (or the fixed limits)
    # ... or, without the b* rise, not grey: a* + b* fall by less than this many local a*/b*
    # SDs together (the faint-blackhead measure). On tan and brown skin a darker mark is often
    # no yellower than the skin around it, only darker.
    dark_rel_grey_k: float = 4.0
    # Without the colour cue the shape must say "spot": round and compact (a crease's crossing
    # or a notch where an ear meets the hair is darker, not yellower, but irregular).
    dark_rel_grey_min_solidity: float = 0.8
    dark_rel_grey_max_elongation: float = 1.5
    # ... and soft-edged: a round, uniform, not-yellow mark whose edge is as steep as a mole's
    # (L gradient at the edge at least this share of its L drop) is kept as one.
    dark_rel_grey_max_edge: float = 0.4


class ClassicalDetector:
    """Blemish detector from colour contrast and shape rules (CPU, no weights)."""

    name = "classical"
    # Nothing of a photo is kept on the detector: two threads may detect at once.
    thread_safe = True
    # A photo's stored integers are read as they are (see :mod:`.pixels`).
    reads_stored_integers = True

    def __init__(self, config: DetectConfig) -> None:
        self.config = config
        # Contrast thresholds are divided by this: sensitivity 0 -> x1.5 (only obvious
        # spots), 0.5 -> x1, 1 -> x0.5 (faint ones too).
        self._gain = 1.0 / (1.5 - float(config.sensitivity))
        self._t = _Thresholds()

    def detect(self, image: np.ndarray, *, orientation: int = 1) -> Detection:
        """Find blemishes and protected features in one photo.

        Parameters
        ----------
        image : (H, W, 3) RGB, the stored pixel grid
            float32 in [0, 1], or the stored integers (uint8, uint16): detection reads only
            crops and shrunk copies of it (:mod:`.pixels`).
        orientation : int
            The photo's EXIF orientation (1..8): faces are parsed on the upright view;
            labels and masks stay in the stored grid.

        Returns
        -------
        Detection
            Labels and protected mask in the photo's pixel grid.
        """
        started = time.perf_counter()
        image = checked_pixels(image)
        analysis = self.analyse(image, orientation=orientation)
        detection = self.find_spots(image, analysis)
        log.debug(
            "detected", method=analysis.method, scale=round(analysis.scale, 3),
            spots=len(detection.spots), protected=len(detection.protected),
            ms=round(1000.0 * (time.perf_counter() - started), 1),
        )
        return detection

    def analyse(self, image: np.ndarray, *, orientation: int = 1, faces=None,
                scale_factor: float = 1.0) -> SkinAnalysis:
        """Faces, working grid, skin, hair and protected features of one photo (no spots).

        The reference, anomaly and ONNX modes start from this too. ``faces`` (an earlier
        analysis' faces) skips the face parsing; ``scale_factor`` multiplies the face scale
        guessed for a photo with no searched face (the coarse look of :meth:`find_spots`).
        """
        image = checked_pixels(image)
        h, w = image.shape[:2]
        if faces is None:
            faces = find_faces(image, orientation=orientation,
                               model_path=self.config.face_model or str(DEFAULT_FACE_MODEL))
        searched = [f for f in faces if not f.guard_only]  # the faces the search keeps to
        if searched:
            scale = image_scale(h, w, face_width_px=float(searched[0].width))
            method = "face"
            roi = union_box([face_region(f, h, w) for f in searched])
        else:
            scale = image_scale(h, w) * scale_factor
            method = "skin_colour"
            roi = (0, 0, w, h)
        work = min(1.0, WORK_FACE_SCALE / scale)
        unit = scale * work  # pixels per face unit at the working resolution

        rx, ry, rw, rh = roi
        crop = image[ry : ry + rh, rx : rx + rw]
        if work < 1.0:
            small = shrunk_unit_floats(crop, (max(8, round(rw * work)), max(8, round(rh * work))))
        else:
            small = unit_floats(crop)
        small = _despeckle(small)
        sh, sw = small.shape[:2]
        to_small = (sw / rw, sh / rh)

        protected_full = lazy_zeros((h, w), bool)
        features: list[ProtectedFeature] = []
        in_face_small = np.ones((sh, sw), bool)
        for face in faces:
            masks = draw_feature_masks((h, w), face)
            named = (("eye", face.eyes), ("brow", face.brows), ("lips", (face.mouth,)))
            for kind, box_list in named:
                sparse_or(protected_full, masks[kind])
                features.extend(ProtectedFeature(kind=kind, bbox=b) for b in box_list)
        if searched:
            in_face_small = np.zeros((sh, sw), np.uint8)
            for face in searched:
                face_ellipse(in_face_small, face, roi, to_small)
            in_face_small = in_face_small.astype(bool)

        lab = ks.rgb_to_lab(small)
        protected_small = shrink_mask(protected_full[ry : ry + rh, rx : rx + rw], (sh, sw))

        # Nostrils: the landmark outline, or (Haar faces) dark blobs under the nose.
        for face in faces:
            nostril_mask, boxes = nostril_area(lab[..., 0], face, roi, to_small, unit)
            protected_small |= nostril_mask
            features.extend(
                ProtectedFeature(kind="nostril", bbox=to_photo(b, roi, to_small, h, w))
                for b in boxes
            )

        skin = self._skin_map(lab, searched, roi, to_small, in_face_small)
        if not faces:
            # No face drew the lips: a close-up of a cheek and a mouth's corner.
            lips, lip_boxes = lips_by_colour(lab, skin, unit)
            protected_small |= lips
            features.extend(ProtectedFeature(kind="lips", bbox=to_photo(b, roi, to_small, h, w)) for b in lip_boxes)
        if any(face.landmarks is not None for face in searched):
            # Inside a landmark face outline (features cut out later) the pixels are skin
            # even where light or make-up moves them off the colour fitted on the cheeks.
            # Only where the colour model failed on a good part of the face (one side in
            # other light): where it holds, it also keeps glasses rims and brow hairs out.
            inside = in_face_small & ~protected_small
            if inside.any() and (skin[inside] >= 0.08).mean() < FACE_SKIN_COVERAGE:
                skin = np.maximum(skin, np.float32(LANDMARK_FACE_SKIN) * in_face_small)
        hair = self._hair_map(lab[..., 0], unit)
        skin_area = _skin_area(skin >= 0.08, unit, max_hole_r=self._t.max_r)
        if any(face.landmarks is not None for face in searched):
            in_face_small = _with_adjacent_skin(
                in_face_small, skin, hair | protected_small | ~_extension_zone(searched, (sh, sw), roi, to_small, unit),
                unit, max_hole_r=self._t.max_r,
            )
        allowed = skin_area & in_face_small & ~protected_small
        if not faces and not _looks_like_skin(skin, hair):
            # No face, and not a skin close-up either (a landscape, a pet, clothes): a
            # skin-coloured patch here is no evidence of skin, so nothing is searched.
            log.debug("no skin to search", skin=float((skin >= 0.3).mean()),
                      strands=float(hair.mean()))
            allowed = np.zeros_like(allowed)
        features.extend(
            ProtectedFeature(kind="hair", bbox=to_photo(b, roi, to_small, h, w))
            for b in hair_features(hair, unit)
        )
        return SkinAnalysis(
            shape=(h, w), faces=faces, method=method, scale=float(scale), unit=float(unit),
            roi=roi, to_small=to_small, small=small, lab_small=lab, skin_small=skin,
            hair_small=hair, allowed_small=allowed, protected_small=protected_small,
            protected_mask=protected_full, features=features,
        )

    def find_spots(self, image: np.ndarray, analysis: SkinAnalysis) -> Detection:
        """Spots on the analysed skin, classified; moles and freckles protected.

        Without a face to measure, the face scale of a photo is a guess from its size, made
        for a portrait; a skin close-up shows its lesions larger than that, and a large
        inflamed papule then fills the background window it is measured against. Such a photo
        gets a second, coarser look (``COARSE_LOOK`` times the guessed scale, the same faces):
        its inflamed spots that the first look's spots cover at most ``COARSE_MAX_TAKEN`` of are
        added where they are free.
        """
        if analysis.method != "skin_colour" or COARSE_LOOK <= 1.0:
            return self._spots_at_scale(image, analysis)
        strands = lazy_zeros(analysis.shape, bool)
        detection = self._spots_at_scale(image, analysis, strands_out=strands)
        coarse = self._spots_at_scale(image, self.analyse(image, faces=analysis.faces, scale_factor=COARSE_LOOK))
        return _with_coarse_spots(detection, coarse, strands)

    def _spots_at_scale(self, image: np.ndarray, analysis: SkinAnalysis, *,
                        strands_out: np.ndarray | None = None) -> Detection:
        """Spots of one look at the analysed skin. ``strands_out`` (photo-sized, bool) also gets
        the hair-strand pixels this look protects and nothing else protects."""
        a = analysis
        h, w = a.shape
        rx, ry, rw, rh = a.roi
        sh, sw = a.allowed_small.shape
        roi, to_small, unit, hair = a.roi, a.to_small, a.unit, a.hair_small
        crop = image[ry : ry + rh, rx : rx + rw]
        labels_small, spots, kept_protected, contrast = self._find_spots(
            a.lab_small, a.skin_small, hair, a.allowed_small, unit, features=a.protected_small
        )
        # Skin spots surround is the lesion's (a scab, a pale crust): left out, it stays in the
        # photo ringed by the repaired skin. Up to a spot's largest size: a larger crust is
        # beyond a classical repair (filled, a quarter of a cheek came out as flat tiles).
        labels_small = kd.take_enclosed_skin(labels_small, max(1, round(ENCLOSED_GAP * unit)), ENCLOSED_HOLE_SHARE,
                                             int(math.pi * (self._t.max_r * unit) ** 2))  # fmt: skip
        features = list(a.features)
        protected_small = a.protected_small.copy()
        protected_full = sparse_copy(a.protected_mask)
        # Protected things found on the working grid.
        for kind, mask in kept_protected:
            protected_small |= mask
            box = to_photo(bbox_of(mask), roi, to_small, h, w)
            features.append(ProtectedFeature(kind=kind, bbox=box))

        labels = lazy_zeros((h, w), np.int32)
        roi_labels = grow_to_full(labels_small, (rh, rw))
        if (sh, sw) != (rh, rw) and spots:
            roi_labels = self._refine_outlines(crop, roi_labels, len(spots), a.scale, to_small,
                                               contrast)
            # Filled once the coarse labels are gone: two search-area maps alive, not three.
            roi_labels = kd.fill_label_holes(roi_labels, max_hole_px=int(math.pi * (2.0 / min(to_small)) ** 2),
                                             in_place=True)  # fmt: skip
        protected_crop = protected_full[ry : ry + rh, rx : rx + rw]
        sparse_or(protected_crop, grow_mask(protected_small, (rh, rw)))
        # On the search area's own (contiguous) labels, before they go into the photo's map.
        _, spots = drop_protected(roi_labels, spots, protected_crop)  # in place
        # Hair strands are kept where they are not inside a spot (a spot with a hair over
        # it is replaced whole; the strand is not a texture donor elsewhere). Inside is also
        # a channel narrower than the enclosed-skin gap through a spot: a scratch across a
        # lesion passes for a strand, and kept it stayed in the photo, ringed by the repair.
        across = _closing(labels_small > 0, max(1, round(ENCLOSED_GAP * unit))) if spots else None
        strands = hair & ~across if across is not None else hair
        kept_strands = grow_mask(strands, (rh, rw)) & (roi_labels == 0)
        if strands_out is not None:
            unprotected = np.logical_not(protected_crop)
            unprotected &= kept_strands  # in place: no more search-area maps alive than the line above
            sparse_or(strands_out[ry : ry + rh, rx : rx + rw], unprotected)
            del unprotected
        sparse_or(protected_crop, kept_strands)
        del kept_strands
        # Into the photo's map window by window around the spots: its pages elsewhere are
        # never touched (a whole search-area put wrote them all: +130 MB at 100 MP).
        roi_boxes = label_boxes(roi_labels, len(spots))
        target = labels[ry : ry + rh, rx : rx + rw]
        if roi_boxes is None:
            sparse_put(target, roi_labels)
        else:
            for y0, y1, x0, x1 in label_windows(roi_boxes, roi_labels.shape):
                sparse_put(target[y0:y1, x0:x1], roi_labels[y0:y1, x0:x1])
        del roi_labels, target  # a search-area-sized copy: the labels now live in ``labels`` alone
        return Detection(
            labels=labels,
            spots=spots,
            protected_mask=protected_full,
            protected=features,
            scale=float(a.scale),
            method=a.method,
            # Not skin by the same measure that keeps a spot's ring statistics off it.
            background=Background((BackgroundTile(a.skin_small < SKIN_RING_MIN_LIKELIHOOD, ry, rx, rh, rw),)),
        )

    # --- maps -------------------------------------------------------------------------

    def _skin_map(self, lab, faces, roi, to_small, in_face) -> np.ndarray:
        prior = ks.skin_likelihood(lab, ks.generic_skin_model(), lightness_weight=0.3)
        sample = np.zeros(lab.shape[:2], np.float32)
        if faces:
            for face in faces:
                if face.landmarks is not None:
                    for poly in face.landmarks.cheeks:
                        pts = (poly - (roi[0], roi[1])) * to_small
                        cv2.fillPoly(sample, [np.round(pts).astype(np.int32)], 1.0)
                    continue
                fx, fy, fw, fh = face.face
                # Cheeks and nose bridge: skin in nearly every frontal face.
                for bx0, by0, bx1, by1 in ((0.15, 0.45, 0.40, 0.68), (0.60, 0.45, 0.85, 0.68),
                                           (0.30, 0.08, 0.70, 0.22)):
                    x0, y0 = point_small(fx + bx0 * fw, fy + by0 * fh, roi, to_small)
                    x1, y1 = point_small(fx + bx1 * fw, fy + by1 * fh, roi, to_small)
                    sample[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = 1.0
            sample *= prior
        else:
            sample = prior * (prior >= 0.3)
        model = ks.fit_skin_colour(lab, sample)
        if model is None:
            return prior
        skin = ks.skin_likelihood(_inflamed_as_skin(lab, model.mean), model,
                                  lightness_weight=0.3, spread=2.0)
        return cv2.GaussianBlur(skin, (0, 0), 1.0)

    def _hair_map(self, lightness: np.ndarray, unit: float) -> np.ndarray:
        strands = ks.strand_map(lightness, sigmas=(0.8 * unit, 1.4 * unit), min_depth=2.0)
        mask = (strands > 0).astype(np.uint8)
        # A dark ring (a pustule's red rim around its pale head) is a valley too: fill
        # small enclosed holes, and a component whose filled area grows a lot is a ring.
        n_holes, holes, hole_stats, _ = cv2.connectedComponentsWithStats(1 - mask, connectivity=4)
        h, w = mask.shape
        hx, hy, hw, hh, ha = (hole_stats[:, i] for i in range(5))
        small_hole = (hx > 0) & (hy > 0) & (hx + hw < w) & (hy + hh < h)
        small_hole &= ha <= math.pi * (8.0 * unit) ** 2
        small_hole[0] = False
        filled = mask | small_hole[holes].astype(np.uint8)
        n, lab, stats, _ = cv2.connectedComponentsWithStats(filled, connectivity=8)
        if n <= 1:
            return np.zeros(lightness.shape, bool)
        own_area = np.bincount(lab.ravel(), weights=mask.ravel(), minlength=n)
        extent = np.hypot(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
        area = stats[:, cv2.CC_STAT_AREA]
        # A strand is long for its area (thin) and encloses nothing.
        long_thin = (extent >= 16.0 * unit) & (own_area <= 3.0 * unit * extent)
        long_thin &= area <= 1.3 * own_area
        long_thin[0] = False
        hair = long_thin[lab] & (mask > 0)
        return cv2.dilate(hair.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)

    # --- spots ------------------------------------------------------------------------

    def _refine_outlines(self, crop, labels, count, scale, to_small, ctx):
        """Redraw each spot's outline on the full-resolution pixels (the high-res path).

        The working grid is shrunk; a spot found there is re-thresholded at full
        resolution, against the same background and the same floor, in a band around its
        shrunk outline, so the mask follows the spot to the pixel. The caller fills the
        outlines' small holes (:func:`.kernels.detect.fill_label_holes`).

        ``labels`` is redrawn in place and returned. Each spot is judged on the coarse
        outlines only: its window of them is kept before any spot is redrawn (a copy of the
        whole search area did that before: 130 MB at 100 MP).
        """
        t = self._t
        background, divisors = ctx["background"], ctx["divisors"]
        sources = ctx["sources"]
        floors = np.maximum(t.grow, t.relative_grow * ctx["peaks"][np.maximum(sources, 0)])
        sx, sy = to_small
        band = max(2, math.ceil(1.5 / min(sx, sy)))
        sigma = 0.6 * scale  # the working grid's smoothing, in full-resolution pixels
        h, w = labels.shape
        boxes = label_boxes(labels, max(count, int(labels.max(initial=0))))
        coarse = {}
        for label in range(1, count + 1):
            y0, x0, y1, x1 = (int(v) for v in boxes[label])
            if y0 >= y1 or sources[label] < 0:
                continue
            x0, y0 = max(0, x0 - 2 * band), max(0, y0 - 2 * band)
            x1, y1 = min(w, x1 + 2 * band), min(h, y1 + 2 * band)
            coarse[label] = (y0, y1, x0, x1, labels[y0:y1, x0:x1].copy())
        for label, (y0, y1, x0, x1, before) in coarse.items():
            own = before == label
            rgb = cv2.GaussianBlur(np.ascontiguousarray(unit_floats(crop[y0:y1, x0:x1])), (0, 0), sigma)
            lab = ks.rgb_to_lab(rgb)
            gx, gy = np.meshgrid(
                (np.arange(x0, x1, dtype=np.float32) + 0.5) * sx - 0.5,
                (np.arange(y0, y1, dtype=np.float32) + 0.5) * sy - 0.5,
            )
            bg = cv2.remap(background, gx, gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            div = cv2.remap(divisors, gx, gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            strength = _strength(lab - bg, div)
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1,) * 2)
            near = cv2.dilate(own.astype(np.uint8), kernel).astype(bool)
            region = (strength >= floors[label]) & near
            free = (before == 0) | own
            region &= free
            n, pieces = cv2.connectedComponents(region.astype(np.uint8), connectivity=8)
            if n <= 1:
                continue
            touching = np.unique(pieces[own & region])
            region = np.isin(pieces, touching[touching > 0])
            if region.sum() < 0.3 * own.sum():
                continue  # the full-resolution contrast disagrees: keep the coarse outline
            window = labels[y0:y1, x0:x1]
            window[own] = 0
            window[region] = label
        return labels


    def _find_spots(self, lab, skin, hair, allowed, unit, features=None):
        t = self._t
        g = self._gain
        red_t, dark_t = t.red / g, t.dark / g
        smooth = cv2.GaussianBlur(lab, (0, 0), 0.6 * unit) if unit > 1.2 else lab
        weights = allowed.astype(np.float32) * np.clip(skin, 0.0, 1.0)
        exclude = np.zeros(allowed.shape, bool)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * round(2 * unit) + 1,) * 2)
        for sigma in (BG_SIGMAS[0] * unit, BG_SIGMAS[1] * unit):
            bg = kd.normalized_blur(smooth, weights * ~exclude, sigma)
            delta = smooth - bg
            strength = np.maximum(delta[..., 1] / red_t, -delta[..., 0] / dark_t)
            exclude = cv2.dilate((strength >= t.grow).astype(np.uint8), kernel).astype(bool)
        # Local texture: seeds must stand out from it, not only from the thresholds.
        # Only clear spots are left out of it: wrinkles and pores are the texture.
        clear = cv2.dilate((strength >= 1.0).astype(np.uint8), kernel).astype(bool)
        quiet = weights * ~clear
        sd_sigma = t.texture_sigma * unit
        sd_l = np.sqrt(kd.normalized_blur(delta[..., 0] ** 2, quiet, sd_sigma))
        sd_a = np.sqrt(kd.normalized_blur(delta[..., 1] ** 2, quiet, sd_sigma))
        sd_b = np.sqrt(kd.normalized_blur(delta[..., 2] ** 2, quiet, sd_sigma))
        divisors = np.stack(
            [
                np.maximum(dark_t, t.noise_k * sd_l),
                np.maximum(red_t, t.noise_k * sd_a),
                np.maximum(t.yellow / g, t.noise_k * sd_b),
            ],
            axis=-1,
        ).astype(np.float32)
        strength = _strength(delta, divisors)
        if t.wide_background > 0:
            # Inflamed lesions sit in red skin and in clusters: against a wider background
            # (the same noise units) they stand out where the near background has caught
            # their halo. Each pixel keeps the contrast of the scale where it stands out most.
            wide_bg = kd.normalized_blur(smooth, weights * ~exclude, t.wide_background * unit)
            wide_delta = smooth - wide_bg
            wide_strength = _strength(wide_delta, divisors)
            wider = wide_strength > strength
            strength = np.where(wider, wide_strength, strength)
            delta = np.where(wider[..., None], wide_delta, delta)
            bg = np.where(wider[..., None], wide_bg, bg)
        contrast = {"background": bg, "divisors": divisors}
        labels, count = kd.flood_labels(
            strength, high=1.0, low=t.grow, relative=t.relative_grow, merge=t.merge,
            allowed=allowed,
            seedable=~hair,
        )
        labels = kd.fill_label_holes(labels, max_hole_px=int(math.pi * (4 * unit) ** 2))
        if count == 0:
            return labels, [], [], contrast
        grad = _gradient(lab[..., 0])
        # Provisional ring widths from the region sizes.
        areas = np.bincount(labels.ravel(), minlength=count + 1).astype(np.float32)
        ring = np.maximum(2.0 * unit, 0.6 * np.sqrt(areas / math.pi)).astype(np.float32)
        # Ring L SDs on skin-coloured pixels and protected features (their edges make a ring
        # busy), not on a black border or a background of another colour beside the skin.
        on_skin = skin >= SKIN_RING_MIN_LIKELIHOOD
        if features is not None:
            on_skin |= features
        feats = kd.region_features(
            labels, count, delta, lab[..., 0], strength, allowed=allowed, skin=skin,
            hair=hair, gradient=grad, ring_px=ring, ring_measured=on_skin,
        )
        contrast["peaks"] = feats[:, _COL["peak"]].astype(np.float32)
        solidity = _solidity(labels, count, feats)
        # The local skin noise and the distance to the nearest protected feature (face units).
        if features is not None and features.any():
            clearance = cv2.distanceTransform((~features).astype(np.uint8), cv2.DIST_L2, 3) / unit
        else:
            clearance = np.full(labels.shape, 1e6, np.float32)
        noise = np.stack([sd_l, sd_a, sd_b, clearance.astype(np.float32)], axis=-1)
        region_noise = _region_noise(labels, count, noise)
        # The photo's own skin texture: the median ring L SD of all candidates (most are
        # ordinary skin: pores, fine lines). Rings are judged busy against it, not against
        # a fixed Lab figure only.
        texture = float(np.median(feats[1:, _COL["ring_l_std"]]))
        labels, count, feats, solidity, region_noise, second = self._second_look(
            labels, count, feats, solidity, region_noise, noise, smooth, weights, divisors, lab,
            skin, hair, allowed, grad, unit, texture, on_skin,
        )
        labels, spots, protected, sources = self._classify(
            labels, count, feats, solidity, region_noise, unit, texture, second
        )
        # Spots found on a patch were measured against their own small ring, not the
        # skin background: the full-resolution pass must not regrow them into the patch.
        contrast["sources"] = np.where(np.isin(sources, list(second)), -1, sources)
        return labels, spots, protected, contrast

    def _second_look(self, labels, count, feats, solidity, region_noise, noise, smooth, weights,
                     divisors, lab, skin, hair, allowed, grad, unit, texture, on_skin=None):
        """Look again inside large rejected regions for a spot sitting on them.

        A brown spot on a flushed cheek floods into the redness around it and the whole
        patch is rejected. Inside such patches the contrast is measured again against a
        near background (a few face units), where the patch itself is flat and only
        what stands out of it remains.
        """
        t = self._t
        big = np.zeros(count + 1, bool)
        for k in range(1, count + 1):
            if feats[k, _COL["area"]] < math.pi * (t.patch_min_r * unit) ** 2:
                continue
            f = _measures(feats[k], solidity[k], region_noise[k], texture)
            big[k] = self._kind_of(f, unit) is None
        if not big.any():
            return labels, count, feats, solidity, region_noise, set()
        patch = big[labels]
        near_bg = kd.normalized_blur(smooth, weights, t.patch_sigma * unit)
        near_delta = smooth - near_bg
        near_strength = _strength(near_delta, divisors)
        sub, n_sub = kd.flood_labels(
            near_strength, high=1.0, low=t.grow, relative=t.relative_grow, merge=t.merge,
            allowed=patch & allowed, seedable=~hair,
        )
        if n_sub == 0:
            return labels, count, feats, solidity, region_noise, set()
        areas = np.bincount(sub.ravel(), minlength=n_sub + 1).astype(np.float32)
        ring = np.maximum(2.0 * unit, 0.6 * np.sqrt(areas / math.pi)).astype(np.float32)
        sub_feats = kd.region_features(
            sub, n_sub, near_delta, lab[..., 0], near_strength, allowed=allowed, skin=skin,
            hair=hair, gradient=grad, ring_px=ring, ring_measured=on_skin,
        )
        sub_solidity = _solidity(sub, n_sub, sub_feats)
        sub_noise = _region_noise(sub, n_sub, noise)
        merged = np.where(sub > 0, sub + count, labels)
        return (
            merged,
            count + n_sub,
            np.concatenate([feats, sub_feats[1:]]),
            np.concatenate([solidity, sub_solidity[1:]]),
            np.concatenate([region_noise, sub_noise[1:]]),
            set(range(count + 1, count + n_sub + 1)),
        )

    def _classify(self, labels, count, feats, solidity, region_noise, unit, texture,
                  on_patch=frozenset()):
        t = self._t
        cfg = self.config
        decisions: list[tuple[int, str, float]] = []
        freckles: list[int] = []
        moles: list[int] = []
        for k in range(1, count + 1):
            f = _measures(feats[k], solidity[k], region_noise[k], texture)
            kind = self._kind_of(f, unit)
            if kind is None:
                continue
            if k in on_patch and kind in ("mole", "freckle"):
                continue  # a flat dark part of a patch is not a mole
            score = float(1.0 - math.exp(-max(f["peak"] - 0.5, 0.0)))
            if kind == "mole":
                moles.append(k)
            elif kind == "freckle":
                freckles.append(k)
            else:
                decisions.append((k, kind, score))
        protected: list[tuple[str, np.ndarray]] = []
        if cfg.protect_moles:
            protected.extend(("mole", labels == k) for k in moles)
        else:
            decisions.extend((k, "dark_spot", 0.5) for k in moles)
        # Faint small brown dots: on a freckled face they are freckles (kept, or removed as
        # faint dark spots when the user asks); a few of them alone are just skin tone.
        if len(freckles) >= t.freckle_min_count:
            if cfg.protect_freckles:
                protected.extend(("freckle", labels == k) for k in freckles)
            else:
                decisions.extend((k, "dark_spot", 0.3) for k in freckles)
        enabled = {
            "papule": cfg.papule, "pustule": cfg.pustule,
            "dark_spot": cfg.dark_spot, "blackhead": cfg.blackhead,
        }
        lut = np.zeros(count + 1, np.int32)
        spots: list[Spot] = []
        sources = [0]
        for k, kind, score in sorted(decisions):
            if not enabled[kind]:
                continue
            label = len(spots) + 1
            lut[k] = label
            sources.append(k)
            spots.append(Spot(label=label, kind=kind, score=round(score, 4)))
        sources_arr = np.asarray(sources, np.int64)  # candidate label of each spot
        return lut[labels], spots, protected, sources_arr

    def _kind_of(self, f: dict[str, float], unit: float) -> str | None:
        """The kind of one measured region ("mole"/"freckle" are protected), or None."""
        kind = self._flat_topped_mark(f, unit) or self._rule_kind(f, unit)
        if not self._stands_out_of_noise(kind, f):
            kind = None
        if kind is None and self._dim_papule(f, unit):
            return "papule"
        if kind is None:
            bump = self._red_bump(f, unit)
            if bump is not None:
                return bump
        if kind is None and self._dim_blackhead(f, unit):
            return "blackhead"
        if kind is None and self._dim_dark_spot(f, unit):
            return "dark_spot"
        return kind

    def _flat_topped_mark(self, f: dict[str, float], unit: float) -> str | None:
        """"mole" for a region darker than the skin that is what a mole is: compact, round and
        edged by a step (its edge gradient at least ``dark_rel_grey_max_edge`` of its L drop).

        Mole-sized (``mole_r``), it must be flat-topped (``mole_plateau``), whatever its colour:
        papules are domes, marks fade out; a mole a little redder than brown was taken for a
        papule. Smaller, down to ``SMALL_MOLE_MIN_R``, a top is too few pixels to measure: it
        must be mole-dark and brown, its a* + b* falling by at most ``MOLE_MIN_CHROMA_SHARE`` of
        its L drop. A blackhead's plug is near black: its a* + b* fall with its L."""
        t = self._t
        dark = -f["core_dl"]
        r_eq = math.sqrt(f["area"] / math.pi) / unit
        if "noise_l" not in f or not SMALL_MOLE_MIN_R <= r_eq <= t.mole_r[1]:
            return None
        if r_eq >= t.mole_r[0]:
            like_a_mole = f["plateau"] >= t.mole_plateau
        else:
            like_a_mole = dark >= t.mole_dark and f["core_da"] + f["core_db"] >= -MOLE_MIN_CHROMA_SHARE * dark
        compact_and_edged = (
            f.get("solidity", 0.0) >= MOLE_MIN_SOLIDITY
            and _elongation(f) <= t.dark_rel_grey_max_elongation
            and dark >= t.dark_spot_noise_k * max(f["noise_l"], 1e-3)
            and self._step_edged(f)
        )
        return "mole" if like_a_mole and compact_and_edged else None

    def _step_edged(self, f: dict[str, float]) -> bool:
        """Edged by a step, as a mole is: the edge gradient at least ``dark_rel_grey_max_edge`` of
        the region's L drop (a dark spot's or a papule's edge fades out)."""
        return f["edge_grad"] >= self._t.dark_rel_grey_max_edge * -f["core_dl"]

    def _faint_rule_may_look(self, f: dict[str, float], max_ring_busy: float | None = None) -> bool:
        """Where a faint-spot rule may take a spot: most of its ring searchable and clear of eyes,
        brows and lips; with ``max_ring_busy``, also on quiet, hairless skin of skin colour."""
        t = self._t
        if f["ring_allowed"] < t.dim_min_ring_allowed or f.get("feature_clearance", np.inf) < t.dim_feature_clearance:
            return False
        if max_ring_busy is None:
            return True
        return not (f["ring_skin"] < t.min_ring_skin or f["hair_frac"] > 0.5 or f["ring_busy"] > max_ring_busy)

    def _dim_dark_spot(self, f: dict[str, float], unit: float) -> bool:
        """A brown spot whose darkness stands out of the local L noise (``dark_rel``)."""
        t = self._t
        g = self._gain
        if f["area"] < 3 or "noise_l" not in f or not self._plain_region(f, unit):
            return False
        if not self._faint_rule_may_look(f):
            return False
        r_eq = math.sqrt(f["area"] / math.pi) / unit
        dark, red, yellow = -f["core_dl"], f["core_da"], f["core_db"]
        return (
            t.dark_spot_dark / g <= dark < t.mole_dark
            and dark >= t.dark_rel / g * max(f["noise_l"], 1e-3)
            and (yellow >= t.dark_spot_yellow / g or self._round_and_not_grey(f))
            and red <= max(t.dark_spot_max_red, 0.4 * dark)
            and r_eq >= t.dark_spot_min_r
            and _elongation(f) <= t.dark_rel_max_elongation
            and f["plateau"] < t.dark_rel_max_plateau
            and f["peak"] >= t.dark_rel_min_peak / g
            and f["ring_l_std"] <= max(t.dark_spot_max_ring_sd, t.dark_rel_ring_k * f["noise_l"], 0.3 * dark)
        )

    def _round_and_not_grey(self, f: dict[str, float]) -> bool:
        """A dark mark no yellower than the skin: its a* + b* fall less than the faint-blackhead
        measure of grey, it is round and compact, and its edge is soft (a mole's is a step)."""
        t = self._t
        return (
            -(f["core_da"] + f["core_db"]) < t.dark_rel_grey_k * (f["noise_a"] + f["noise_b"])
            and f.get("solidity", 1.0) >= t.dark_rel_grey_min_solidity
            and _elongation(f) <= t.dark_rel_grey_max_elongation
            and not self._step_edged(f)
        )

    def _plain_region(self, f: dict[str, float], unit: float) -> bool:
        """The general acceptance of :meth:`_rule_kind`: skin ring, not a line, a hair, jagged
        or too big."""
        t = self._t
        return not (
            _elongation(f) > t.max_elongation
            or f["hair_frac"] > 0.5
            or f["ring_allowed"] < t.min_ring_allowed
            or f["ring_skin"] < t.min_ring_skin
            or f["ring_busy"] > t.max_ring_busy
            or self._jagged(f)
            or math.sqrt(f["area"] / math.pi) / unit > t.max_r
        )

    def _jagged(self, f: dict[str, float]) -> bool:
        """Too jagged for a spot: a piece of texture, unless it is a cluster of inflamed bumps,
        which may be as jagged as ``cluster_min_solidity``: far redder than the local a* noise
        (``cluster_red_k`` SDs), redder than it is dark (a fold's shadow is darker), on a quiet
        ring clear of the features (a lip's corner or a nostril's rim is red and jagged too)."""
        t = self._t
        solidity = f.get("solidity", 1.0)
        if f["area"] < 12 or solidity >= t.min_solidity:
            return False
        if solidity < t.cluster_min_solidity or "noise_a" not in f:
            return True
        red, dark = f["core_da"], -f["core_dl"]
        cluster = (
            red >= t.papule_red / self._gain
            and red >= t.cluster_red_k / self._gain * max(f["noise_a"], 1e-3)
            and red >= dark
            and f["ring_l_std"] <= t.papule_max_ring_sd
            and f["feature_clearance"] >= t.dim_feature_clearance
        )
        return not cluster

    def _clean_faint_mark(self, f: dict[str, float]) -> bool:
        """A mark too faint for the dark-spot peak limit that is still a spot: compact and round,
        alone on a quiet ring (its L drop several times the ring's L SD), with a soft edge (a
        faint mole's is a step, :meth:`_step_edged`)."""
        t = self._t
        dark = -f["core_dl"]
        return (
            f.get("solidity", 0.0) >= FAINT_MARK_MIN_SOLIDITY
            and _elongation(f) <= t.dark_rel_max_elongation
            and f["ring_busy"] <= FAINT_MARK_MAX_RING_BUSY
            and dark >= FAINT_MARK_RING_K * f["ring_l_std"]
            and not self._step_edged(f)
        )

    def _dim_blackhead(self, f: dict[str, float], unit: float) -> bool:
        """A small grey-black plug that stands out of the local L noise (too faint in Lab units
        for the rule on absolute darkness: dark skin, soft light, small faces)."""
        t = self._t
        g = self._gain
        if f["area"] < 3 or "noise_l" not in f:
            return False
        if (
            not self._faint_rule_may_look(f, max_ring_busy=t.dim_blackhead_max_ring_busy)
            or f["ring_l_std"] > t.blackhead_max_ring_sd
        ):
            return False
        core_r = math.sqrt(f["plateau"] * f["area"] / math.pi) / unit
        r_eq = math.sqrt(f["area"] / math.pi) / unit
        if core_r > t.blackhead_max_r or r_eq > 2.0 * t.blackhead_max_r:
            return False
        dark = -f["core_dl"]
        chroma_drop = -(f["core_da"] + f["core_db"])
        return (
            dark >= t.dim_blackhead_dark / g
            and dark >= t.dim_blackhead_dark_k / g * max(f["noise_l"], 1e-3)
            and chroma_drop >= t.dim_blackhead_grey_k * (f["noise_a"] + f["noise_b"])
        )

    def _red_bump(self, f: dict[str, float], unit: float) -> str | None:
        """An inflamed bump darker than it is red in Lab units (soft or side light on a raised
        papule), taken when it is redder than dark in units of this skin's own variation: its
        a* rise in local a* SDs at least its L drop in local L SDs. A fold's shadow or a brown
        mark darkens the skin far more than its noise without reddening it as much. Only where
        nothing else took the region (moles stay moles), on quiet skin clear of the features
        (beside the lips or an eye's corner the a* noise says nothing about a reddish edge),
        neither mole-dark nor flat-topped like a mole."""
        t = self._t
        g = self._gain
        if not t.red_in_noise or f["area"] < 3 or "noise_a" not in f:
            return None
        if not self._plain_region(f, unit) or not self._faint_rule_may_look(f, max_ring_busy=t.dim_papule_max_ring_busy):
            return None
        red, dark, yellow = f["core_da"], -f["core_dl"], f["core_db"]
        red_sds = red / max(f["noise_a"], 1e-3)
        dark_sds = dark / max(f["noise_l"], 1e-3)
        r_eq = math.sqrt(f["area"] / math.pi) / unit
        ring_limit = max(t.papule_max_ring_sd, red) if r_eq >= t.large_papule_r else t.papule_max_ring_sd
        if not (
            red >= t.papule_red / g
            and red_sds >= t.papule_noise_k / g
            and red_sds >= dark_sds
            and t.papule_min_dark <= dark < t.mole_dark / g
            and f["plateau"] < t.mole_plateau  # a flat top with a sharp edge is a mole's
            and yellow <= max(5.0, red)
            and f["ring_l_std"] <= ring_limit
        ):
            return None
        # Never "pustule": in a region darker than the skin its brightest pixel is at its faint
        # edge, not a pale head, so the head test of :meth:`_rule_kind` does not apply.
        return "papule"

    def _stands_out_of_noise(self, kind: str | None, f: dict[str, float]) -> bool:
        """Whatever the Lab rules say, an inflamed spot's a* rise and a dark spot's L drop must
        stand out of the local skin's own noise (coloured light, blotchy or grainy skin)."""
        t = self._t
        g = self._gain
        if "noise_a" not in f:
            return True
        if kind in ("papule", "pustule"):
            return f["core_da"] >= t.papule_noise_k / g * max(f["noise_a"], 1e-3)
        if kind == "dark_spot":
            return -f["core_dl"] >= t.dark_spot_noise_k / g * max(f["noise_l"], 1e-3)
        return True

    def _dim_papule(self, f: dict[str, float], unit: float) -> bool:
        """A round, quiet-ringed bump whose redness stands out of the local a* noise."""
        t = self._t
        g = self._gain
        if f["area"] < 3 or "noise_a" not in f:
            return False
        if (
            not self._faint_rule_may_look(f, max_ring_busy=t.dim_papule_max_ring_busy)
            or f.get("solidity", 1.0) < t.dim_papule_min_solidity
            or f["peak"] < t.dim_papule_min_peak / g
        ):
            return False
        r_eq = math.sqrt(f["area"] / math.pi) / unit
        if not t.dim_papule_min_r <= r_eq <= t.max_r or _elongation(f) > t.dim_papule_max_elongation:
            return False
        red, dark, yellow = f["core_da"], -f["core_dl"], f["core_db"]
        return (
            red >= t.dim_papule_red / g
            and red >= t.dim_papule_noise_k / g * max(f["noise_a"], 1e-3)
            and red >= t.dim_papule_red_share * dark
            and dark >= t.dim_papule_dark_k * f["noise_l"]
            and yellow <= max(4.0, red)
            and f["ring_l_std"] <= max(t.dim_papule_ring_k * f["noise_l"], red)
            and f["ring_mean_da"] <= t.dim_papule_ring_red_k * max(f["noise_a"], 1e-3)
        )

    def _rule_kind(self, f: dict[str, float], unit: float) -> str | None:
        t = self._t
        g = self._gain
        area = f["area"]
        if area < 3:
            return None
        r_eq = math.sqrt(area / math.pi) / unit
        if r_eq > t.large_mark_max_r:
            return None
        tr = 0.5 * (f["sxx"] + f["syy"])
        det = math.sqrt(max(0.25 * (f["sxx"] - f["syy"]) ** 2 + f["sxy"] ** 2, 0.0))
        major, minor = tr + det, max(tr - det, 0.25)
        dark = -f["core_dl"]
        red = f["core_da"]
        yellow = f["core_db"]
        # A ring is busy relative to this photo's own skin texture (noisy, low-resolution or
        # dark skin has rings far busier than a studio portrait's).
        ring_sd = f["ring_l_std"] / max(1.0, t.ring_texture_k * f.get("texture", 0.0) / t.papule_max_ring_sd)
        # A blackhead's size is its black core's: the region may have caught some of the
        # dark texture around it.
        core_r = math.sqrt(f["plateau"] * area / math.pi) / unit
        tiny_and_black = core_r <= t.blackhead_max_r and dark >= t.blackhead_dark_any / g
        elongated = math.sqrt(major / minor) > t.max_elongation
        if elongated and 4.0 * math.sqrt(major) > 5.0 * unit and not tiny_and_black:
            return None
        # A blackhead may sit right at a lip or nostril edge; larger spots there are
        # usually the feature's own shadow.
        min_ring_allowed = 0.4 if tiny_and_black else t.min_ring_allowed
        if (
            f["hair_frac"] > 0.5
            or f["ring_allowed"] < min_ring_allowed
            or f["ring_skin"] < t.min_ring_skin
            or f["ring_busy"] > t.max_ring_busy
            or self._jagged(f)
        ):
            return None
        if r_eq > t.max_r or (r_eq > t.mole_r[1] and dark >= t.large_mark_dark / g):
            # Too big for a blemish. A compact, quiet, brown-grey mark this big is a
            # mole or birthmark: keep it (and keep it from being a texture donor).
            large_mark = (
                dark >= t.large_mark_dark / g
                and red <= max(t.dark_spot_max_red, 0.4 * dark)
                and f.get("solidity", 1.0) >= 0.6
                and f["ring_busy"] <= 0.1
            )
            return "mole" if large_mark else None
        # Inflamed papules are red and no paler than the skin (a pale pink scar is not one).
        if red >= t.papule_red / g and red >= t.shaded_papule_red_share * dark and dark >= t.papule_min_dark:
            # A large inflamed papule shades its own ring: the ring may be as busy as the
            # papule is red.
            ring_limit = max(t.papule_max_ring_sd, red) if r_eq >= t.large_papule_r else t.papule_max_ring_sd
            if red < t.papule_red_share * dark and red < t.strong_red / g:
                # Darker than it is red: a bump in side light, or a furrow's shadow. A
                # papule's ring is quiet skin and its edge soft (inflamed); a furrow has
                # more folds around it and a sharp edge.
                if f["edge_grad"] > t.shaded_papule_max_edge:
                    return None
                ring_limit = t.shaded_papule_max_ring_sd
            # Red at least as strong as yellow: an orange-red bump is still inflamed (and a
            # pustule's head is yellow); a mark whose b* rise exceeds its a* rise is brown.
            if ring_sd > ring_limit or yellow > max(5.0, red):
                return None
            bright_centre = f["max_dl"] - f["core_dl"] >= t.pustule_head and f["max_dl"] >= -3.0
            return "pustule" if bright_centre else "papule"
        if (
            core_r <= t.blackhead_max_r
            and r_eq <= 2.0 * t.blackhead_max_r
            and ring_sd <= t.blackhead_max_ring_sd
        ) and (
            dark >= t.blackhead_dark_any / g
            or (dark >= t.blackhead_dark / g
                and red + yellow <= max(t.blackhead_max_chroma,
                                        BLACKHEAD_CHROMA_NOISE_K * (f.get("noise_a", 0.0) + f.get("noise_b", 0.0))))
        ):
            return "blackhead"
        if (
            dark >= t.mole_dark
            and t.mole_r[0] <= r_eq <= t.mole_r[1]
            and f["plateau"] >= t.mole_plateau
        ):
            return "mole"
        brown = dark / t.dark + yellow / t.yellow
        if (
            dark >= t.dark_spot_dark / g
            and yellow >= t.dark_spot_yellow / g
            and brown >= t.dark_spot_brown / g
            and red <= max(t.dark_spot_max_red, 0.4 * dark)
            and ring_sd <= max(t.dark_spot_max_ring_sd, 0.3 * dark)
        ):
            if dark < t.freckle_dark and r_eq <= t.freckle_max_r:
                return "freckle"
            if r_eq >= t.dark_spot_min_r and (f["peak"] >= t.dark_spot_min_peak or self._clean_faint_mark(f)):
                return "dark_spot"
        return None


# Skin enclosed by spots grown by ENCLOSED_GAP face units is taken into them when it is at most
# ENCLOSED_HOLE_SHARE times their area and no larger than a spot may be (``max_r``); a spot's
# own small holes are filled while regions grow.
ENCLOSED_GAP = 2.0
ENCLOSED_HOLE_SHARE = 1.0


# --- geometry helpers -----------------------------------------------------------------


# A region this solid (area / hull) may be a mole by its shape (:meth:`_flat_topped_mark`).
MOLE_MIN_SOLIDITY = 0.85
# Below ``mole_r`` such a region is a mole from this size (face units; a blackhead's plug is
# smaller) when it is mole-dark and its a* + b* fall by at most this share of its L drop.
SMALL_MOLE_MIN_R = 2.0
MOLE_MIN_CHROMA_SHARE = 0.25
# A brown mark under the dark-spot peak limit is still a dark spot when it is this compact, its
# ring this little busy and its L drop this many ring L SDs: faint skin-tone patches are none
# of these (irregular, part of a larger structure, in shading as strong as they are).
FAINT_MARK_MIN_SOLIDITY = 0.85
FAINT_MARK_MAX_RING_BUSY = 0.15
FAINT_MARK_RING_K = 3.0
# A blackhead's a* + b* may rise by this many local a* + b* SDs (or ``blackhead_max_chroma``):
# a JPEG stores colour at half resolution, so a small plug takes on the chroma of the skin
# around it (dev blackheads at quality 70: a* + b* +3 to +6 where the plug was grey).
BLACKHEAD_CHROMA_NOISE_K = 2.0


# A photo with no face searched is looked at again at this many times its guessed face scale
# (an octave; on dev real acne 1.5 found one lesion fewer, 3 none more but more false regions)...
COARSE_LOOK = 2.0
# ...for these kinds only: coarse dark spots and blackheads of close-ups are pores, hair and
# moles (on dev real acne they added false regions and no lesion).
COARSE_LOOK_KINDS = ("papule", "pustule")
# A coarse spot is added where the fine look's spots cover at most this share of it (its free
# part): a fine spot on a large papule is often a piece of it, its pore or head, not the papule.
COARSE_MAX_TAKEN = 0.25


def _with_coarse_spots(fine: Detection, coarse: Detection, fine_strands: np.ndarray | None = None) -> Detection:
    """``fine`` with the free part of each inflamed spot of ``coarse`` that its spots cover at most
    ``COARSE_MAX_TAKEN`` of, cut off what the fine look protects (moles, freckles, hair strands;
    a spot mostly on them is dropped, as :func:`.protection.drop_protected` does).

    ``fine_strands``: the hair-strand pixels the fine look protects and nothing else does. Those
    across an added spot (inside it, or in a channel through it narrower than the enclosed-skin
    gap) go with it, as one look replaces a strand over its spot: cut out, a crease the strand
    map took for a hair stayed in the photo as a line drawn through the repair."""
    labels = fine.labels  # rewritten in place: the coarse spots only fill empty pixels
    protected_mask = fine.protected_mask  # released strands are cleared in place
    spots = list(fine.spots)
    count = max([int(coarse.labels.max(initial=0))] + [s.label for s in coarse.spots])
    boxes = label_boxes(coarse.labels, count)
    gap = max(1, round(ENCLOSED_GAP * coarse.scale))
    for spot in coarse.spots:
        if spot.kind not in COARSE_LOOK_KINDS:
            continue
        y0, x0, y1, x1 = (int(v) for v in boxes[spot.label])
        if y0 >= y1:
            continue
        own = coarse.labels[y0:y1, x0:x1] == spot.label
        window = labels[y0:y1, x0:x1]
        taken = window[own] > 0
        if taken.mean() > COARSE_MAX_TAKEN:
            continue
        protected = protected_mask[y0:y1, x0:x1]
        released = None
        if fine_strands is not None:
            pad = gap + 1  # the spot's own edge at its box's edge is not eroded by the closing
            released = fine_strands[y0:y1, x0:x1] & _closing(np.pad(own, pad), gap)[pad:-pad, pad:-pad]
            protected = protected & ~released
        free = own & (window == 0) & ~protected
        if np.count_nonzero(free) < 0.3 * np.count_nonzero(own):
            continue
        label = len(spots) + 1
        window[free] = label
        if released is not None and released.any():
            protected_mask[y0:y1, x0:x1][released] = False
        spots.append(dataclasses.replace(spot, label=label))
    if len(spots) == len(fine.spots):
        return fine
    return dataclasses.replace(fine, labels=labels, spots=spots, label_boxes=None, labels_are_components=False)


# Ring pixels at least this skin-like (or protected features) are the ring's skin, on which its
# L SD is measured (the skin map's own floor, as for the search area).
SKIN_RING_MIN_LIKELIHOOD = 0.08
# Skin likelihood floor inside a landmark face outline.
LANDMARK_FACE_SKIN = 0.35
# ... when the colour model covers less than this share of the face outline.
FACE_SKIN_COVERAGE = 0.75
# Inflamed skin is skin: redness above the skin's own mean counts this much against it.
INFLAMED_RED_WEIGHT = 0.25


def _inflamed_as_skin(lab: np.ndarray, mean) -> np.ndarray:
    """Lab with redness above the skin model's mean shrunk: a cluster of red papules (or a
    flushed, inflamed patch) would otherwise fall out of the skin map, and spots are only
    searched in skin."""
    out = lab.copy()
    excess = np.maximum(lab[..., 1] - np.float32(mean[1]), 0.0)
    out[..., 1] -= (1.0 - INFLAMED_RED_WEIGHT) * excess
    return out


# Isolated pixels this far (RGB, 0..1) from their 3x3 median are impulse noise ("salt and
# pepper" from sensors, scanners and augmentation), when at least this share of pixels is.
SPECKLE_JUMP = 0.25
SPECKLE_MIN_SHARE = 0.002
# ...and in a photo that has it, pixels this far from their median are replaced too (on dev real
# acne 0.15 left more pepper dots as blackheads and dark spots, and lost a pustule).
SPECKLE_JUMP_NOISY = 0.1


def _despeckle(rgb: np.ndarray) -> np.ndarray:
    """Impulse noise replaced by the 3x3 median (only the outlier pixels, only when the
    photo has such noise): single white and black pixels would otherwise inflate the skin
    texture every decision is measured against, and seed spots of their own."""
    if min(rgb.shape[:2]) < 3:
        return rgb
    median = cv2.medianBlur(np.ascontiguousarray(rgb, dtype=np.float32), 3)
    jump = np.abs(rgb - median).max(axis=2)
    if (jump > SPECKLE_JUMP).mean() < SPECKLE_MIN_SHARE:
        return rgb
    # Once the photo is known to carry impulse noise, its softer impulses (JPEG has smeared
    # them: a dark-brown dot, not a black pixel) are noise too: no pore-sized dot in such a
    # photo can be told from them.
    outlier = jump > SPECKLE_JUMP_NOISY
    return np.where(outlier[..., None], median, rgb).astype(np.float32)


def _strength(delta: np.ndarray, divisors: np.ndarray) -> np.ndarray:
    """Spot strength from Lab contrast: the largest of redness, darkness and brownness,
    each in units of its threshold (``divisors``: dark, red, yellow)."""
    dark = -delta[..., 0] / divisors[..., 0]
    red = delta[..., 1] / divisors[..., 1]
    yellow = delta[..., 2] / divisors[..., 2]
    # Brown = darker and yellower together; each alone may be too faint.
    brown = np.where((dark > 0) & (yellow > 0), 0.5 * (dark + yellow), 0.0)
    return np.maximum(np.maximum(red, dark), brown).astype(np.float32)


def _elongation(f: dict[str, float]) -> float:
    """Major over minor axis of a region's second moments."""
    tr = 0.5 * (f["sxx"] + f["syy"])
    det = math.sqrt(max(0.25 * (f["sxx"] - f["syy"]) ** 2 + f["sxy"] ** 2, 0.0))
    return math.sqrt((tr + det) / max(tr - det, 0.25))


def _measures(row: np.ndarray, solidity: float, noise: np.ndarray, texture: float) -> dict[str, float]:
    """One region's measurements by name, with its shape and the skin noise under it."""
    f = {name: float(row[i]) for name, i in _COL.items()}
    f["solidity"] = float(solidity)
    f["texture"] = float(texture)
    f["noise_l"], f["noise_a"], f["noise_b"], f["feature_clearance"] = (float(v) for v in noise)
    return f


def _region_noise(labels: np.ndarray, count: int, noise: np.ndarray) -> np.ndarray:
    """Per region: the mean local skin noise (L, a*, b* SDs around the spot) and the least
    distance to a protected feature (face units): (count + 1, 4)."""
    flat = labels.ravel()
    inside = np.flatnonzero(flat)  # spots cover a small share of the grid: only their pixels
    owner = flat[inside]
    values = noise.reshape(-1, noise.shape[-1])[inside]
    area = np.maximum(np.bincount(owner, minlength=count + 1), 1).astype(np.float64)
    out = np.empty((count + 1, 4), np.float64)
    for c in range(3):
        out[:, c] = np.bincount(owner, weights=values[:, c], minlength=count + 1) / area
    nearest = np.full(count + 1, np.inf)
    np.minimum.at(nearest, owner, values[:, 3].astype(np.float64))
    out[:, 3] = nearest
    return out


def _solidity(labels: np.ndarray, count: int, feats: np.ndarray) -> np.ndarray:
    """Area over convex-hull area per region (1 for a convex blob, low for a jagged piece)."""
    out = np.ones(count + 1, np.float64)
    x0s, y0s = feats[:, _COL["x0"]].astype(int), feats[:, _COL["y0"]].astype(int)
    x1s, y1s = feats[:, _COL["x1"]].astype(int), feats[:, _COL["y1"]].astype(int)
    for k in range(1, count + 1):
        if feats[k, _COL["area"]] < 6:
            continue
        crop = (labels[y0s[k] : y1s[k] + 1, x0s[k] : x1s[k] + 1] == k).astype(np.uint8)
        contours, _ = cv2.findContours(crop, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if not contours:
            continue
        hull = cv2.convexHull(np.vstack(contours))
        # Pixel areas: contour areas run through pixel centres, so add half a perimeter.
        hull_area = cv2.contourArea(hull) + 0.5 * cv2.arcLength(hull, True) + 1.0
        out[k] = min(1.0, feats[k, _COL["area"]] / hull_area)
    return out


FALLBACK_MIN_SKIN_FRACTION = 0.2  # share of pixels with skin colour
FALLBACK_MAX_STRAND_FRACTION = 0.06  # share of pixels on strands (fur is all strands)


def _looks_like_skin(skin: np.ndarray, strands: np.ndarray) -> bool:
    return bool(
        (skin >= 0.3).mean() >= FALLBACK_MIN_SKIN_FRACTION
        and strands.mean() <= FALLBACK_MAX_STRAND_FRACTION
    )


# Skin beside a landmark face outline: the oval stops mid-forehead, and a turned head's nose
# sticks out of it, yet lesions sit there too. Skin-coloured pixels at least this
# skin-like, joined to the outline by such pixels, within this many face units of it, are searched.
ADJACENT_SKIN_MIN = 0.3
ADJACENT_SKIN_REACH = 40.0
ADJACENT_SKIN_EDGE = 2.0  # face units kept clear of the skin's edge (hairline, background)
# Landmarks (MediaPipe's face mesh): the face's up axis, the brows' upper edges, the nose
# (bridge, tip, alae and sides); the nose's zone reaches this many face units past them.
FOREHEAD_TOP, CHIN = 10, 152
BROW_TOPS = (105, 334, 66, 296)
TEMPLES = (127, 356)
NOSE_POINTS = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 327, 64, 294, 48, 278, 115, 344, 129, 358,
               209, 429, 49, 279, 102, 331, 217, 437, 122, 351, 193, 417)
NOSE_ZONE_MARGIN = 12.0


def _extension_zone(faces, shape, roi, to_small, unit) -> np.ndarray:
    """Where a landmark face's outline may grow into skin beside it: above its brows and
    between its temples (the forehead up to the hairline, along the face's own up axis), and
    around its nose (a turned head's nose sticks out of the outline, and the far cheek behind
    it).

    Not the cheeks' outer sides (ears, hair falling over them) nor below the jaw (the neck's
    creases and shadows, collars, a hand under the chin): the outline, grown 6 % from its
    centre, already reaches about 10 face units past the jaw line.
    """
    sh, sw = shape
    zone = np.zeros(shape, np.uint8)
    for face in faces:
        if face.landmarks is None:
            continue
        pts = (face.landmarks.points - (roi[0], roi[1])) * np.float32(to_small)
        # Only the face's own window: the searched outline (grown 6 % past the landmarks) grows
        # at most ADJACENT_SKIN_REACH further (a group photo's working grid holds several
        # faces; whole-grid maps per face cost 0.1 s on faceapi_s5).
        low, high = pts.min(axis=0), pts.max(axis=0)
        pad = (ADJACENT_SKIN_REACH + 1.0) * unit + 0.06 * float(np.max(high - low))
        x0, y0 = (max(0, int(v - pad)) for v in low)
        x1, y1 = (int(v + pad) + 1 for v in high)
        x1, y1 = min(sw, x1), min(sh, y1)
        if x0 >= x1 or y0 >= y1:
            continue
        pts = pts - np.float32((x0, y0))
        ys, xs = np.mgrid[0 : y1 - y0, 0 : x1 - x0].astype(np.float32)
        up = pts[FOREHEAD_TOP] - pts[CHIN]
        up /= max(1e-6, float(np.hypot(*up)))
        brows = pts[list(BROW_TOPS)].mean(axis=0)
        above = (xs - brows[0]) * up[0] + (ys - brows[1]) * up[1] > 0
        # ...between the temples: beside the forehead lie hair and background.
        across = xs * -up[1] + ys * up[0]
        sides = sorted(float(pts[i, 0] * -up[1] + pts[i, 1] * up[0]) for i in TEMPLES)
        window = zone[y0:y1, x0:x1]
        window |= (above & (across >= sides[0]) & (across <= sides[1])).astype(np.uint8)
        nose = np.zeros(window.shape, np.uint8)
        cv2.fillConvexPoly(nose, np.round(cv2.convexHull(pts[list(NOSE_POINTS)].astype(np.float32))).astype(np.int32), 1)
        radius = max(1, round(NOSE_ZONE_MARGIN * unit))
        window |= cv2.dilate(nose, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2))
    return zone.astype(bool)


def _with_adjacent_skin(in_face: np.ndarray, skin: np.ndarray, blocked: np.ndarray, unit: float, *,
                        max_hole_r: float) -> np.ndarray:
    """The face outline grown into the skin-coloured pixels joined to it (forehead up to the
    hairline, a profile's nose), at most ``ADJACENT_SKIN_REACH`` face units out.

    The growth steps one pixel at a time through skin (not through ``blocked``: hair strands,
    protected features, pixels outside :func:`_extension_zone`), so a skin-coloured background
    is reached only where skin touches it. That skin is first eroded by ``ADJACENT_SKIN_EDGE``:
    thin skin-coloured bridges (a hair edge, a lit wisp) are no path, and the grown area stops
    short of the hairline, whose fringe shadow would otherwise get a whole ring of searchable
    skin (astronaut, tests/test_detector.py: a dark spot under the fringe on 3 seeds of 3, 1
    before).
    """
    through = _skin_area(skin >= ADJACENT_SKIN_MIN, unit, max_hole_r=max_hole_r) & ~blocked
    radius = max(1, round(ADJACENT_SKIN_EDGE * unit))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
    through = cv2.erode(through.astype(np.uint8), disk)
    grown = in_face.astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    for _ in range(max(1, round(ADJACENT_SKIN_REACH * unit))):
        step = cv2.dilate(grown, kernel) & (through | grown)
        if np.array_equal(step, grown):
            break
        grown = step
    return grown.astype(bool)


def _skin_area(skin: np.ndarray, unit: float, *, max_hole_r: float) -> np.ndarray:
    """Skin-coloured pixels plus the holes in them a spot could make (a spot is not
    skin-coloured, but it lies in skin)."""
    radius = max(1, round(2 * unit))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
    closed = cv2.morphologyEx(skin.astype(np.uint8), cv2.MORPH_CLOSE, kernel)
    n, holes, stats, _ = cv2.connectedComponentsWithStats(1 - closed, connectivity=4)
    h, w = skin.shape
    x, y, bw, bh, area = (stats[:, i] for i in range(5))
    enclosed = (x > 0) & (y > 0) & (x + bw < w) & (y + bh < h)
    small = enclosed & (area <= math.pi * (max_hole_r * unit) ** 2)
    small[0] = False
    return closed.astype(bool) | small[holes]


def _closing(mask: np.ndarray, radius_px: int) -> np.ndarray:
    """``mask`` grown and shrunk back by a disc: its gaps narrower than the disc filled."""
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius_px + 1,) * 2)
    return cv2.morphologyEx(mask.view(np.uint8), cv2.MORPH_CLOSE, disc, borderValue=0).astype(bool)


def _gradient(lightness: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(lightness, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lightness, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt(gx * gx + gy * gy) / 8.0


