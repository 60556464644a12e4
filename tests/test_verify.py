"""The detection verifier (``skinretouch/detection/verify.py``): the precision stage after the
classical candidates, its tree model, its training, and how it degrades without a model.

Measured figures come from the shipped model on dev photos planted in the dev style with the
bench's seed (the model is trained on other seeds of the same photos) and on dev real-acne photos;
the bounds sit at the measured values with a small margin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/numba_cache")

from skinretouch.config import DetectConfig, DetectVerifyConfig  # noqa: E402
from skinretouch.detection.classical import ClassicalDetector  # noqa: E402
from skinretouch.detection.factory import build_detector  # noqa: E402
from detector_chain import inside_collage  # noqa: E402  (the default chain's collage wrapper)
from skinretouch.detection.verify import (  # noqa: E402
    DEFAULT_VERIFIER_MODEL,
    FEATURE_NAMES,
    VerifiedDetector,
    Verifier,
    candidate_features,
    load_verifier,
)
from skinretouch.kernels.boost import fit_boosted_trees  # noqa: E402

# --- the tree model ---------------------------------------------------------------------------


def _toy(n=600, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] ** 2 > 0.6) ^ (rng.random(n) < 0.05)  # 5 % label noise
    return x, y


def test_boosted_trees_learn_a_nonlinear_rule_and_fit_deterministically():
    x, y = _toy()
    first = fit_boosted_trees(x, y, n_trees=60)
    second = fit_boosted_trees(x, y, n_trees=60)
    assert np.array_equal(first.feature, second.feature)
    assert np.array_equal(first.threshold, second.threshold)
    assert np.array_equal(first.leaf, second.leaf)
    x_new, y_new = _toy(seed=1)
    accuracy = float(((first.probability(x_new) >= 0.5) == y_new).mean())
    # Measured 0.90 (the noise alone caps it at 0.95); a linear rule on x0 alone scores 0.80.
    assert accuracy >= 0.87, accuracy


def test_a_verifier_survives_its_json_file():
    x, y = _toy(n=200)
    x = np.pad(x, ((0, 0), (0, len(FEATURE_NAMES) - x.shape[1])))
    verifier = Verifier(model=fit_boosted_trees(x, y, n_trees=10), threshold=0.3)
    again = Verifier.from_json(json.loads(json.dumps(verifier.to_json())))
    assert again.threshold == 0.3
    assert np.allclose(again.probability(x), verifier.probability(x), atol=1e-5)
    with pytest.raises(ValueError, match="other features"):
        Verifier.from_json({**verifier.to_json(), "features": ["a", "b"]})


# --- degrading safely -------------------------------------------------------------------------


def test_without_a_model_file_nothing_is_filtered_and_the_doctor_says_so(tmp_path, monkeypatch):
    import skinretouch.detection.verify as verify_module
    from skinretouch import doctor
    from skinretouch.config import Config

    assert load_verifier(DetectVerifyConfig(enabled=False)) is None
    assert isinstance(inside_collage(build_detector(DetectConfig(verify=DetectVerifyConfig(enabled=False)))),
                      ClassicalDetector)
    # The shipped file missing (a checkout before `make train-verifier`) turns the stage off; a
    # configured path that does not exist is refused by the config instead.
    monkeypatch.setattr(verify_module, "DEFAULT_VERIFIER_MODEL", tmp_path / "none.json")
    assert load_verifier(DetectVerifyConfig()) is None
    assert isinstance(inside_collage(build_detector(DetectConfig())), ClassicalDetector)
    row = doctor._detector_verifier(Config())
    assert not row.available and "not filtered" in row.detail and "make train-verifier" in row.detail


@pytest.mark.skipif(not DEFAULT_VERIFIER_MODEL.is_file(), reason="no shipped verifier model")
def test_the_shipped_model_loads_and_runs_without_the_benchmark_extras():
    # skimage and matplotlib (the bench extras) made unimportable: the service must not need them.
    code = (
        "import sys\n"
        "for name in ('skimage', 'matplotlib', 'skinretouch.benchmark'):\n"
        "    sys.modules[name] = None\n"
        "import numpy as np\n"
        "from skinretouch.config import DetectVerifyConfig\n"
        "from skinretouch.detection.types import Detection, Spot\n"
        "from skinretouch.detection.verify import load_verifier\n"
        "image = np.full((96, 96, 3), 0.7, np.float32)\n"
        "labels = np.zeros((96, 96), np.int32)\n"
        "labels[40:46, 40:46] = 1\n"
        "image[labels > 0] = (0.8, 0.3, 0.3)\n"
        "found = Detection(labels=labels, spots=[Spot(label=1, kind='papule', score=0.9)],\n"
        "                  protected_mask=np.zeros((96, 96), bool))\n"
        "print(len(load_verifier(DetectVerifyConfig()).filter(image, found).spots))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() in ("0", "1")


@pytest.mark.skipif(not DEFAULT_VERIFIER_MODEL.is_file(), reason="no shipped verifier model")
def test_the_shipped_model_matches_the_features_and_the_config_shift_moves_its_threshold():
    verifier = load_verifier(DetectVerifyConfig())
    assert verifier is not None and verifier.feature_names == FEATURE_NAMES
    assert 0.0 < verifier.threshold < 1.0
    stricter = load_verifier(DetectVerifyConfig(threshold_shift=0.1))
    assert stricter.threshold == pytest.approx(min(1.0, verifier.threshold + 0.1))
    assert isinstance(inside_collage(build_detector(DetectConfig())), VerifiedDetector)


# --- measured on dev-style cases --------------------------------------------------------------

photoset = pytest.importorskip("skinretouch.benchmark.photoset")
bench = pytest.importorskip("skinretouch.benchmark.detection")
real_acne = pytest.importorskip("skinretouch.benchmark.real_acne")
styles = pytest.importorskip("skinretouch.benchmark.styles")
train_verifier = pytest.importorskip("skinretouch.benchmark.train_verifier")

# Dev photos, tones mixed (light, medium, dark); clm_audrey's bench mole (seed 1000) was taken
# out by the candidates alone.
DEV_PHOTOS = ("grace_hopper", "clm_audrey", "clm_kim", "nba_davis", "family_father")
ACNE_DEV_PHOTOS = 8  # the first dev-half real-acne photos
PIPELINE_DILATION_PX = 3  # MaskConfig.dilation_px: the applied mask is the detection grown by it


def _photos_or_skip(names):
    photos = photoset.load_set_photos(names)
    if not photos:
        pytest.skip("no dev bench photo obtainable")
    return photos


def _before_after(verified: VerifiedDetector, image: np.ndarray):
    """The applied masks (grown as the pipeline grows them) of the candidates and of the verified spots."""
    import cv2

    candidates, analysis = verified.candidates(image)
    before = candidates.mask
    after = verified.verifier.filter(image, candidates, roi=analysis.roi).mask
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * PIPELINE_DILATION_PX + 1,) * 2)
    grown = [cv2.dilate(m.astype(np.uint8), disk).astype(bool) for m in (before, after)]
    return [m & ~candidates.protected_mask for m in grown]


def _verified_detector() -> VerifiedDetector:
    if not DEFAULT_VERIFIER_MODEL.is_file():
        pytest.skip("no shipped verifier model")
    return VerifiedDetector(ClassicalDetector(DetectConfig()), load_verifier(DetectVerifyConfig()))


@pytest.fixture(scope="module")
def planted_scores():
    verified = _verified_detector()
    photos = _photos_or_skip(DEV_PHOTOS)
    style = styles.planting_style(photoset.load_split().style("dev"))
    runs = {"candidates": [], "verified": []}
    for photo in photos:
        cases = [style.plant_spots(photo.photo, seed=0)]
        cases.append(style.plant_spots(photo.photo, seed=bench.MOLES_ALONE_SEED, n_spots=0, n_moles=bench.MOLES_ALONE))
        for index, (blemished, spots) in enumerate(cases):
            image = np.clip(np.rint(blemished * 255.0), 0, 255).astype(np.float32) / 255.0
            for name, mask in zip(("candidates", "verified"), _before_after(verified, image)):
                runs[name].append({"tone": photo.tone, "moles_alone": index == 1,
                                   **bench.score_planted(mask, spots, scale=photo.photo.scale)})  # fmt: skip
    return {name: bench.summarise_planted(r) for name, r in runs.items()}


def test_the_verifier_removes_false_regions_and_moles_and_keeps_planted_blemishes(planted_scores):
    before, after = planted_scores["candidates"], planted_scores["verified"]
    # Measured with the shipped model (5 dev photos, the bench's seeds), retrained for the candidate
    # stage with the faint-spot rules: false regions 14 -> 11, moles hit 0, recall unchanged.
    # (With the earlier candidate stage: 12 -> 8, moles 1 -> 0.)
    assert after["false_regions"] <= 0.8 * before["false_regions"]
    assert after["moles_hit"] == 0 and after["moles"] == before["moles"] > 0
    assert after["recall"] >= before["recall"] - 0.02


@pytest.fixture(scope="module")
def acne_scores():
    verified = _verified_detector()
    folder = real_acne.default_real_acne_dir()
    if not folder.is_dir():
        pytest.skip(f"{folder} absent")
    from PIL import Image

    labels = real_acne.load_labels()
    split = photoset.load_split()
    names = sorted(n for n in labels if split.real_acne_part(n) == "dev")[:ACNE_DEV_PHOTOS]
    totals = {"candidates": {}, "verified": {}}
    for name in names:
        with Image.open(folder / name) as image:
            rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        for key, mask in zip(("candidates", "verified"), _before_after(verified, rgb)):
            score = real_acne.score_mask(mask, labels[name]["lesions"])
            for field in ("inflamed_found", "n_inflamed", "false_regions", "found"):
                totals[key][field] = totals[key].get(field, 0) + score[field]
    return totals


def test_the_verifier_keeps_real_inflamed_lesions_and_drops_other_regions(acne_scores):
    before, after = acne_scores["candidates"], acne_scores["verified"]
    # Measured (8 dev real-acne photos): inflamed lesions found 62 -> 62 of 68, false regions
    # 129 -> 116 (0.90). Before the candidate stage replaced the softer impulses of salt-and-pepper
    # photos (classical._despeckle): 171 -> 136 (0.80); the pepper dots it now removes were among
    # what the verifier dropped (earlier still: 45 -> 45, 112 -> 83).
    assert after["inflamed_found"] >= before["inflamed_found"]
    assert after["false_regions"] <= 0.93 * before["false_regions"]


def test_training_is_deterministic():
    photos = _photos_or_skip(("grace_hopper",))
    names = (photos[0].name,)
    narrow = dict(photos=names, real_acne=False, planted_variants=train_verifier.PLANTED_VARIANTS[:1],
                  mole_variants=train_verifier.MOLE_VARIANTS[:1], say=lambda *_: None)  # fmt: skip
    x, y, group, source = train_verifier.build_table(**narrow).arrays()
    x2, y2, *_ = train_verifier.build_table(**narrow).arrays()
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert x.shape[1] == len(FEATURE_NAMES) and y.any() and (~y).any()
    assert {"clean", "planted"} <= set(source) <= {"clean", "planted", "mole"}
    a = fit_boosted_trees(x, y, n_trees=20)
    b = fit_boosted_trees(x2, y2, n_trees=20)
    assert np.array_equal(a.leaf, b.leaf) and np.array_equal(a.threshold, b.threshold)
