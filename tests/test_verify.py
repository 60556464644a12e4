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


def test_without_a_model_file_nothing_is_filtered_and_the_doctor_says_so(tmp_path):
    from skinretouch.config import Config
    from skinretouch.doctor import collect_checks

    missing = tmp_path / "none.json"
    # A configured path that does not exist is refused by the config; the shipped file missing
    # (a checkout before `make train-verifier`) only turns the stage off.
    assert load_verifier(DetectVerifyConfig(enabled=False)) is None
    detector = build_detector(DetectConfig(verify=DetectVerifyConfig(enabled=False)))
    assert isinstance(detector, ClassicalDetector)
    import skinretouch.detection.verify as verify_module

    saved = verify_module.DEFAULT_VERIFIER_MODEL
    try:
        verify_module.DEFAULT_VERIFIER_MODEL = missing
        assert load_verifier(DetectVerifyConfig()) is None
        assert isinstance(build_detector(DetectConfig()), ClassicalDetector)
        row = next(c for c in collect_checks(Config()) if c.name == "verifier")
        assert not row.available and "not filtered" in row.detail and "make train-verifier" in row.detail
    finally:
        verify_module.DEFAULT_VERIFIER_MODEL = saved


@pytest.mark.skipif(not DEFAULT_VERIFIER_MODEL.is_file(), reason="no shipped verifier model")
def test_the_shipped_model_loads_and_runs_without_the_benchmark_extras():
    # skimage and matplotlib (the bench extras) made unimportable: the service must not need them.
    code = (
        "import sys\n"
        "for name in ('skimage', 'matplotlib', 'skinretouch.benchmark'):\n"
        "    sys.modules[name] = None\n"
        "import numpy as np\n"
        "from skinretouch.config import DetectConfig\n"
        "from skinretouch.detection.factory import build_detector\n"
        "detector = build_detector(DetectConfig())\n"
        "assert type(detector).__name__ == 'VerifiedDetector', type(detector)\n"
        "image = np.full((96, 96, 3), 0.7, np.float32)\n"
        "image[40:46, 40:46] = (0.8, 0.3, 0.3)\n"
        "print(len(detector.detect(image).spots))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.skipif(not DEFAULT_VERIFIER_MODEL.is_file(), reason="no shipped verifier model")
def test_the_shipped_model_matches_the_features_and_the_config_shift_moves_its_threshold():
    verifier = load_verifier(DetectVerifyConfig())
    assert verifier is not None and verifier.feature_names == FEATURE_NAMES
    assert 0.0 < verifier.threshold < 1.0
    stricter = load_verifier(DetectVerifyConfig(threshold_shift=0.1))
    assert stricter.threshold == pytest.approx(min(1.0, verifier.threshold + 0.1))
    assert isinstance(build_detector(DetectConfig()), VerifiedDetector)


# --- measured on dev-style cases --------------------------------------------------------------

photoset = pytest.importorskip("skinretouch.benchmark.photoset")
bench = pytest.importorskip("skinretouch.benchmark.detection")
real_acne = pytest.importorskip("skinretouch.benchmark.real_acne")
styles = pytest.importorskip("skinretouch.benchmark.styles")
train_verifier = pytest.importorskip("skinretouch.benchmark.train_verifier")

# Dev photos, tones mixed (light, medium, dark), that fetch without network in CI's bench cache.
DEV_PHOTOS = ("grace_hopper", "clm_kim", "nba_davis", "family_father", "family_boy")
ACNE_DEV_PHOTOS = 8  # the first dev-half real-acne photos


def _photos_or_skip(names):
    photos = photoset.load_set_photos(names)
    if not photos:
        pytest.skip("no dev bench photo obtainable")
    return photos


@pytest.fixture(scope="module")
def planted_scores():
    if not DEFAULT_VERIFIER_MODEL.is_file():
        pytest.skip("no shipped verifier model")
    photos = _photos_or_skip(DEV_PHOTOS)
    split = photoset.load_split()
    style = styles.planting_style(split.style("dev"))
    base = ClassicalDetector(DetectConfig())
    verified = VerifiedDetector(base, load_verifier(DetectVerifyConfig()))
    runs = {"candidates": [], "verified": []}
    for photo in photos:
        cases = [style.plant_spots(photo.photo, seed=0)]
        cases.append(style.plant_spots(photo.photo, seed=bench.MOLES_ALONE_SEED, n_spots=0, n_moles=bench.MOLES_ALONE))
        for index, (blemished, spots) in enumerate(cases):
            image = np.clip(np.rint(blemished * 255.0), 0, 255).astype(np.float32) / 255.0
            for name, detector in (("candidates", base), ("verified", verified)):
                mask = detector.detect(image).mask
                runs[name].append({"tone": photo.tone, "moles_alone": index == 1,
                                   **bench.score_planted(mask, spots, scale=photo.photo.scale)})  # fmt: skip
    return {name: bench.summarise_planted(r) for name, r in runs.items()}


def test_the_verifier_removes_false_regions_and_moles_and_keeps_planted_blemishes(planted_scores):
    before, after = planted_scores["candidates"], planted_scores["verified"]
    print(before["false_regions"], after["false_regions"], before["moles_hit"], after["moles_hit"],
          before["recall"], after["recall"], before["n_spots"])
    assert after["false_regions"] <= 0.5 * before["false_regions"]
    assert after["moles_hit"] <= before["moles_hit"]
    assert after["recall"] >= before["recall"] - 0.03


@pytest.fixture(scope="module")
def acne_scores():
    if not DEFAULT_VERIFIER_MODEL.is_file():
        pytest.skip("no shipped verifier model")
    folder = real_acne.default_real_acne_dir()
    if not folder.is_dir():
        pytest.skip(f"{folder} absent")
    from PIL import Image

    labels = real_acne.load_labels()
    split = photoset.load_split()
    names = sorted(n for n in labels if split.real_acne_part(n) == "dev")[:ACNE_DEV_PHOTOS]
    base = ClassicalDetector(DetectConfig())
    verified = VerifiedDetector(base, load_verifier(DetectVerifyConfig()))
    totals = {"candidates": {}, "verified": {}}
    for name in names:
        with Image.open(folder / name) as image:
            rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        for key, detector in (("candidates", base), ("verified", verified)):
            score = real_acne.score_mask(detector.detect(rgb).mask, labels[name]["lesions"])
            for field in ("inflamed_found", "n_inflamed", "false_regions", "found"):
                totals[key][field] = totals[key].get(field, 0) + score[field]
    return totals


def test_the_verifier_keeps_real_inflamed_lesions(acne_scores):
    before, after = acne_scores["candidates"], acne_scores["verified"]
    print(before, after)
    assert after["inflamed_found"] >= before["inflamed_found"] - 1
    assert after["false_regions"] <= before["false_regions"]


def test_training_is_deterministic_and_reads_the_candidates_it_labels():
    photos = _photos_or_skip(("grace_hopper", "clm_kim"))
    names = tuple(p.name for p in photos)
    first = train_verifier.build_table(photos=names, real_acne=False, say=lambda *_: None)
    x, y, group, source = first.arrays()
    assert x.shape[1] == len(FEATURE_NAMES) and y.any() and (~y).any()
    assert {"clean", "planted"} <= set(source) <= {"clean", "planted", "mole"}
    a = fit_boosted_trees(x, y, n_trees=20)
    b = fit_boosted_trees(x, y, n_trees=20)
    assert np.array_equal(a.leaf, b.leaf) and np.array_equal(a.threshold, b.threshold)
    second = train_verifier.build_table(photos=names[:1], real_acne=False, say=lambda *_: None)
    x2, *_ = second.arrays()
    assert np.array_equal(x2, x[group == names[0]])
