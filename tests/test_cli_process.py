"""`skinretouch process` as users and scripts rely on it (CONTRACT.md)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms

from skinretouch.cli import main

XMP = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="skinretouch test"/>'
    b"</rdf:RDF></x:xmpmeta><?xpacket end=\"w\"?>"
)


PAINTED_SPOTS = ((56, 90, 4), (62, 141, 3), (26, 117, 2.5))  # (y, x, radius) on cheeks and forehead


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    """A 256x256 crop of a real face with three red spots painted on its skin."""
    from skimage.data import astronaut

    face = astronaut()[60:316, 110:366].astype(np.float32)
    yy, xx = np.mgrid[:256, :256]
    for cy, cx, r in PAINTED_SPOTS:
        weight = np.clip(r + 0.5 - np.hypot(yy - cy, xx - cx), 0, 1)[..., None]
        face = face * (1 - 0.45 * weight) + np.array([200, 60, 60], np.float32) * 0.45 * weight
    return np.clip(np.rint(face), 0, 255).astype(np.uint8)


def _icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _exif(orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"
    return exif.tobytes()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_jpeg(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels).save(path, "JPEG", quality=95, icc_profile=_icc(), exif=_exif(), xmp=XMP)
    return path


def _outputs(path: Path, out_dir: Path | None = None):
    folder = out_dir or path.parent
    return (
        folder / f"{path.stem}.retouched{path.suffix}",
        folder / f"{path.name}.mask.png",
        folder / f"{path.name}.retouch.json",
    )


def test_jpeg_keeps_exif_icc_xmp_and_report_follows_schema(tmp_path, portrait, capsys):
    source = _write_jpeg(tmp_path / "IMG_1.JPG", portrait)
    before = _sha(source)
    assert main(["process", str(source)]) == 0
    image_path, mask_path, report_path = _outputs(source)
    printed = capsys.readouterr().out
    for produced in (image_path, mask_path, report_path):
        assert str(produced) in printed
    assert _sha(source) == before, "the original was modified"

    with Image.open(source) as original, Image.open(image_path) as retouched:
        assert retouched.format == "JPEG" and retouched.size == original.size
        assert retouched.info.get("icc_profile") == original.info["icc_profile"]
        assert retouched.getexif()[0x0112] == 6, "orientation tag must be kept as in the original"
        assert retouched.info.get("exif") == original.info["exif"]
        assert XMP in (retouched.info.get("xmp") or b"")

    with Image.open(mask_path) as mask:
        assert mask.mode == "L" and mask.size == (256, 256)
        mask_values = np.asarray(mask)
    assert set(np.unique(mask_values)) <= {0, 255}
    for cy, cx, _radius in PAINTED_SPOTS:
        assert mask_values[cy, cx] == 255, f"painted spot at {(cy, cx)} not removed"

    report = json.loads(report_path.read_text())
    assert report["schema"] == 1 and report["status"] == "ok" and report["error"] is None
    assert report["tool"]["name"] == "skinretouch"
    assert report["input"] == {
        "path": str(source.absolute()),
        "sha256": before,
        "width": 256,
        "height": 256,
        "bit_depth": 8,
        "format": "JPEG",
    }
    assert report["outputs"] == {"image": str(image_path.absolute()), "mask": str(mask_path.absolute())}
    assert set(report["settings"]) >= {"config_sha256", "detector", "mask_dilation_px"}
    assert set(report["timings_ms"]) >= {"decode", "detect", "inpaint", "encode", "total"}
    assert report["regions"], "the painted spots were not found"
    covered = np.zeros((256, 256), bool)
    for region in report["regions"]:
        assert set(region) >= {
            "id", "bbox", "area_px", "area_fraction", "kind", "score", "route", "engine",
            "hard_case", "hard_reasons", "texture_ratio",
        }
        x, y, w, h = region["bbox"]
        covered[y : y + h, x : x + w] = True
    assert np.all(covered[mask_values > 0]), "mask pixels outside every region's bbox"
    assert isinstance(report["protected"], list)


def test_sixteen_bit_tiff_stays_sixteen_bit_with_icc(tmp_path, portrait):
    source = tmp_path / "scan.tif"
    pixels16 = portrait.astype(np.uint16) * 257 + 3
    icc = _icc()  # the profile header holds its creation time: make it once
    tifffile.imwrite(source, pixels16, photometric="rgb", extratags=[(34675, 7, None, icc, True)])
    assert main(["process", str(source), "--out-dir", str(tmp_path / "out")]) == 0
    image_path, mask_path, report_path = _outputs(source, tmp_path / "out")
    with tifffile.TiffFile(image_path) as tif:
        page = tif.pages[0]
        result = page.asarray()
        assert result.dtype == np.uint16 and result.shape == pixels16.shape
        assert page.tags[34675].value == icc
    mask = np.asarray(Image.open(mask_path)) > 0
    assert mask.any()
    assert np.array_equal(result[~mask], pixels16[~mask]), "pixels outside the mask changed"
    assert json.loads(report_path.read_text())["input"]["bit_depth"] == 16


def test_png_with_a_user_mask_replaces_exactly_the_mask(tmp_path, portrait):
    source = tmp_path / "face.png"
    Image.fromarray(portrait).save(source)
    user_mask = np.zeros((256, 256), np.uint8)
    user_mask[140:161, 85:106] = 255
    user_mask[60:64, 30:34] = 1  # any non-zero value counts
    mask_file = tmp_path / "spots.png"
    Image.fromarray(user_mask).save(mask_file)

    assert main(["process", str(source), "--mask", str(mask_file)]) == 0
    image_path, mask_path, report_path = _outputs(source)
    result = np.asarray(Image.open(image_path))
    written_mask = np.asarray(Image.open(mask_path))
    assert np.array_equal(written_mask > 0, user_mask > 0)
    assert np.array_equal(result[user_mask == 0], portrait[user_mask == 0])
    assert not np.array_equal(result[user_mask > 0], portrait[user_mask > 0])
    report = json.loads(report_path.read_text())
    assert {r["kind"] for r in report["regions"]} == {"user_mask"}
    assert report["settings"]["mask_dilation_px"] == 0


def test_bad_inputs_fail_alone_with_a_reason_and_leave_no_outputs(tmp_path, portrait, capsys):
    good = _write_jpeg(tmp_path / "good.jpg", portrait)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo\n")
    good_png = tmp_path / "good2.png"
    Image.fromarray(portrait).save(good_png)

    code = main(["process", str(truncated), str(empty), str(good), str(text), str(good_png)])
    assert code == 1
    err = capsys.readouterr().err
    for bad in (truncated, empty, text):
        line = next((l for l in err.splitlines() if l.startswith(f"{bad}: ")), None)
        assert line is not None and len(line) > len(f"{bad}: ") + 5, err
        image_path, mask_path, report_path = _outputs(bad)
        assert not image_path.exists() and not mask_path.exists()
        report = json.loads(report_path.read_text())
        assert report["status"] == "failed" and report["error"]
    for ok in (good, good_png):
        assert all(p.exists() for p in _outputs(ok))
        assert json.loads(_outputs(ok)[2].read_text())["status"] == "ok"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []


def test_mask_of_the_wrong_size_fails_that_input(tmp_path, portrait, capsys):
    source = tmp_path / "face.png"
    Image.fromarray(portrait).save(source)
    mask_file = tmp_path / "small.png"
    Image.fromarray(np.full((100, 120), 255, np.uint8)).save(mask_file)
    assert main(["process", str(source), "--mask", str(mask_file)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{source}: ") and "120x100" in err and "256x256" in err
    assert not _outputs(source)[0].exists() and not _outputs(source)[1].exists()


def test_usage_and_config_errors_exit_2_and_process_nothing(tmp_path, portrait, capsys):
    first = tmp_path / "a.png"
    second = tmp_path / "b.png"
    for path in (first, second):
        Image.fromarray(portrait).save(path)
    mask_file = tmp_path / "m.png"
    Image.fromarray(np.zeros((256, 256), np.uint8)).save(mask_file)
    assert main(["process", str(first), str(second), "--mask", str(mask_file)]) == 2
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[mask]\ndilation_px = 'wide'\n")
    assert main(["process", str(first), "--config", str(bad_config)]) == 2
    assert "mask.dilation_px" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        main(["process"])
    assert caught.value.code == 2
    assert not any(p.name.endswith(".retouch.json") for p in tmp_path.iterdir())


def test_rerun_is_skipped_and_forced_rerun_writes_identical_outputs(tmp_path, portrait, capsys):
    source = _write_jpeg(tmp_path / "IMG_2.jpg", portrait)
    assert main(["process", str(source)]) == 0
    image_path, mask_path, report_path = _outputs(source)
    first = [p.read_bytes() for p in (image_path, mask_path)]
    first_report = json.loads(report_path.read_text())
    stamp = report_path.stat().st_mtime_ns

    assert main(["process", str(source)]) == 0
    assert "up to date" in capsys.readouterr().out
    assert report_path.stat().st_mtime_ns == stamp

    assert main(["process", str(source), "--force"]) == 0
    assert [p.read_bytes() for p in (image_path, mask_path)] == first
    second_report = json.loads(report_path.read_text())
    first_report.pop("timings_ms"), second_report.pop("timings_ms")
    assert second_report == first_report


def test_console_script_runs_a_folder(tmp_path, portrait):
    folder = tmp_path / "shoot"
    folder.mkdir()
    Image.fromarray(portrait).save(folder / "one.png")
    _write_jpeg(folder / "two.jpg", portrait)
    (folder / "readme.txt").write_text("not an image, and not named like one")
    env = dict(os.environ, NUMBA_CACHE_DIR=os.environ.get("NUMBA_CACHE_DIR", str(tmp_path / "numba")))
    completed = subprocess.run(
        [sys.executable, "-m", "skinretouch", "process", str(folder)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(
        [
            "one.png", "one.retouched.png", "one.png.mask.png", "one.png.retouch.json",
            "two.jpg", "two.retouched.jpg", "two.jpg.mask.png", "two.jpg.retouch.json",
            "readme.txt",
        ]
    )


def test_reference_mode_finds_a_new_defect_kind_from_one_example(tmp_path, capsys):
    """`--reference/--reference-mask`: one scar on the astronaut teaches it scars on the macro."""
    from skinretouch.benchmark.photos import DEFAULT_CACHE_DIR, load_bench_photos
    from skinretouch.benchmark.reference import plant_scars, reference_pair

    if not (DEFAULT_CACHE_DIR / "dermapred_example_image.jpg").exists():
        pytest.skip("dermapred macro not cached (make test fetches it)")
    astronaut, macro = load_bench_photos(names=["astronaut", "dermapred"])
    example, example_mask = reference_pair(astronaut, seed=1000)
    reference = tmp_path / "scar_example.png"
    reference_mask = tmp_path / "scar_example_mask.png"
    Image.fromarray(np.rint(example * 255).astype(np.uint8)).save(reference)
    Image.fromarray(example_mask.astype(np.uint8) * 255).save(reference_mask)
    target, scars = plant_scars(macro, seed=0)
    source = tmp_path / "macro.png"
    Image.fromarray(np.rint(target * 255).astype(np.uint8)).save(source)

    args = ["process", str(source), "--reference", str(reference)]
    assert main(args) == 2  # a photo without its mask is a usage error
    assert "--reference-mask" in capsys.readouterr().err
    assert main([*args, "--reference-mask", str(reference_mask)]) == 0
    report = json.loads((tmp_path / "macro.png.retouch.json").read_text())
    assert report["settings"]["detector"] == "reference"
    mask = np.asarray(Image.open(tmp_path / "macro.png.mask.png")) > 0
    found = sum(mask[scar.core].mean() >= 0.5 for scar in scars)
    assert found / len(scars) >= 0.7, f"{found} of {len(scars)} scars found"

    wrong_size = tmp_path / "small_mask.png"
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(wrong_size)
    assert main(["process", str(source), "--reference", str(reference), "--reference-mask", str(wrong_size)]) == 2
    assert "reference" in capsys.readouterr().err


def test_a_first_run_says_it_is_compiling_the_kernels_and_a_later_one_does_not(tmp_path, portrait, capsys, monkeypatch):
    """On a cache without the kernels (a fresh install), the first photo waits about 1.5 min for
    numba: ``process`` says so before it starts, and names ``skinretouch compile``."""
    import skinretouch.cli_process as cli_process
    from skinretouch.precompile import FIRST_RUN_NOTICE

    source = _write_jpeg(tmp_path / "IMG_5.jpg", portrait)
    monkeypatch.setattr(cli_process, "kernels_compiled", lambda: False)
    assert main(["process", str(source)]) == 0
    assert FIRST_RUN_NOTICE in capsys.readouterr().err
    assert "skinretouch compile" in FIRST_RUN_NOTICE

    monkeypatch.setattr(cli_process, "kernels_compiled", lambda: True)
    assert main(["process", str(source), "--force"]) == 0
    assert "compiling" not in capsys.readouterr().err
