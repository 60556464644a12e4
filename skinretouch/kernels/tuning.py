"""Tuning constants of the kernels, with their units, in one place.

Lengths marked "px at face scale" are multiplied by the image's face-scale factor
(:mod:`skinretouch.scale`) before use. The figures quoted are from the bench (planted
spots, oracle masks); change a constant only with a bench run beside it.
"""

from __future__ import annotations

# --- blurs (:mod:`.blur`) ---------------------------------------------------------------
BLUR_TRUNCATE_SIGMAS = 3.5  # Gaussian kernels end here: the tails beyond carry < 0.05 % of the weight
WIDE_SHRINK_SIGMAS = 3.0  # approximate blurs shrink the image by sigma // this (px per px)
TAPS_CACHE_SIZE = 256  # distinct sigmas whose taps are kept (sigmas follow a continuous scale)

# --- the frequency-separation removal route (:mod:`.removal`) -----------------------------
TONE_SIGMA = 1.0  # px at face scale: low-pass whose surround seeds the biharmonic (tone) fill
# Hole extent (px at face scale) up to which the tone is the biharmonic fill, and from
# which it is the membrane fill (see removal._tone_fill_share).
BIHARMONIC_MAX_EXTENT = (18.0, 28.0)
# The tone layer (:mod:`.tone`): a clean low-pass, a quadratic trend fitted on a ring of it, and
# the ring's residual faded into the hole.
TONE_LOWPASS_SIGMA = 0.3  # px at face scale: low-pass of the pixels outside the hole
TREND_RING = 6.0  # px at face scale: width of the ring the quadratic trend is fitted on
TREND_GAP = 0.0  # px at face scale next to the hole left out of the trend's ring
TREND_NEAR_WEIGHT = 0.3  # weight of the ring's innermost pixels (its outermost weigh 1)
TREND_TUKEY_DE = 6.0  # CIE76 dE from the trend beyond which a ring pixel is dropped from the fit
TONE_DECAY = 16.0  # px at face scale: the ring's residual fades into the trend over this length
SPOT_DE = 5.0  # CIE76 dE from a first tone guess beyond which a hole pixel counts as spot
TEXTURE_SIGMA = 2.0  # px at face scale: cut-off of the texture layer ...
TEXTURE_ORDER = 2  # ... taken as (1 - G) ** order for a sharp cut-off (dimensionless)
RING_WIDTH = 4.0  # px at face scale: ring whose texture statistics judge the hole's own texture
# The donor texture copied into a hole is made zero-mean and scaled by (ring RMS / donor RMS)
# ** TEXTURE_MATCH, the gain clamped to TEXTURE_GAIN (dev: texture_ok 0.90 at 0.75; 0.86 at 1,
# the ring's own strength; 0.74 at 0, the donor's).
TEXTURE_MATCH = 0.75
TEXTURE_GAIN = (0.5, 2.0)
# Tried on dev (texture_ok 0.80 at these values), none kept: the ring's RMS from values clipped
# at 2.5 robust sigmas (0.82 on dev, but test 0.87 -> 0.85, median 0.98 -> 0.94); a 1 / 2 px gap
# next to the mask (0.76 / 0.73: the median ratio rises, the outer ring is the rougher); exponent
# 0.5 / 0.9 / 1.0 (0.77 / 0.80 / 0.78); the gain clamped to (0.8, 1.25) (0.75).
# Since then both strengths are measured in the texture check's band (RATIO_HIGH_PASS_SIGMA,
# L - G_1px) on the result itself (removal._match_ring_texture): dev 0.80 -> 0.82 (3-px masks
# 0.70 -> 0.72). Tried with it on dev, none kept: exponent 0.5 / 1.0 (0.77 / 0.80); the ring's
# strength as 1.4826 x its MAD (0.77, median 0.89) or its RMS clipped at 2.5 robust sigmas
# (0.81, median 0.94); the ring's RMS x 0.94 (0.82, median 0.94; 3-px masks 0.73); without
# the energy damping (0.82, no change). The floor is the measure: on dev even the clean skin
# next to the spot (same shape, overlapping half of it) is in [0.7, 1.3] of the skin under
# it for only 69 % of the spots, and no estimate from the ring reached 0.88 even with its
# scale fitted on dev.
# Farthest donor offset, px at face scale (12 px gave the bench's 20-px figures, dE 2.03 vs
# 2.02, texture equal, on crops 16 px narrower: the crop margin follows it, and with it
# every per-spot pass) ...
DONOR_RADIUS = 12.0
DONOR_REACH = 6.0  # px at face scale: ... searched only this far beyond the hole's own extent
DONOR_PATCH_RADIUS = 2.0  # px at face scale: half-width of the patches compared in the donor search
# Own texture beyond this many robust sigmas of the ring's is not skin: the share of donor
# texture ramps from 0 at OUTLIER_LOW to 1 at OUTLIER_HIGH (robust sigmas).
OUTLIER_LOW = 3.0
OUTLIER_HIGH = 4.5
# Where the kept texture's local RMS (Gaussian window) exceeds the ring's by more than the
# tolerance (leftover shading of the spot's rim), it is damped down to it, by at most half.
ENERGY_SIGMA = 1.5  # px at face scale: the RMS window
SHARE_SIGMA = 0.7  # px at face scale: smoothing of the own-texture trust map
ENERGY_SHRINK = 0.3  # share the local estimate is pulled towards the ring's energy
ENERGY_TOLERANCE = 1.2  # ratio of RMS
GAIN_MIN = 0.5  # smallest gain of the damping
# Holes wider than this (px at face scale: clustered acne, large lesions) take their texture
# from wider clean skin as one clear block or nearest clear tiles (:mod:`.tiled_donor`): one
# block copy within DONOR_RADIUS cannot clear them.
LARGE_EXTENT = 14.0
LARGE_TILE = 8.0  # px at face scale: tile side
LARGE_MARGIN_SHARE = 1.1  # crop margin around a large hole, as a share of its extent
LARGE_MARGIN_MAX = 96.0  # px at face scale: ... capped

# --- the donor search (:mod:`.donor`) ---------------------------------------------------
# A pixel leaves the block offset only if its patch has at least this share of known
# texture and the new match costs at most this fraction of the old one.
DONOR_MIN_KNOWN_SHARE = 0.3
DONOR_IMPROVEMENT = 0.8

# --- the texture ratio, the routes' quality check (:mod:`.texture`) ---------------------
RATIO_HIGH_PASS_SIGMA = 1.0  # px at face scale, as in the bench's texture_ratio
RATIO_RING_WIDTH = 4.0  # px at face scale
