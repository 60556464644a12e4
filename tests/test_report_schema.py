"""Every report, ok, failed or written for a crashed worker, has one shape (REPORT_JSON_SCHEMA)."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest
from PIL import Image

from skinretouch.config import Config
from skinretouch.daemon.queue import Job
from skinretouch.daemon.worker import write_failed_report
from skinretouch.files.report import REPORT_JSON_SCHEMA
from skinretouch.files.stage import process_file, report_settings
from skinretouch.pipeline import Retoucher
from skinretouch.sidecars import output_paths


@pytest.fixture(scope="module")
def retoucher():
    with Retoucher(Config()) as loaded:
        yield loaded


def _photo(folder, name="face.png"):
    rng = np.random.default_rng(3)
    skin = np.clip(np.array([200, 150, 130]) + 6 * rng.standard_normal((96, 96, 3)), 0, 255).astype(np.uint8)
    path = folder / name
    Image.fromarray(skin).save(path)
    return path


def _report(photo):
    return json.loads(output_paths(photo).report.read_text())


def test_ok_failed_and_crashed_worker_reports_share_one_schema(tmp_path, retoucher):
    jsonschema.Draft202012Validator.check_schema(REPORT_JSON_SCHEMA)
    validator = jsonschema.Draft202012Validator(REPORT_JSON_SCHEMA)

    photo = _photo(tmp_path)
    mask = np.zeros((96, 96), np.uint8)
    mask[40:46, 40:46] = 255
    Image.fromarray(mask).save(tmp_path / "spot.png")
    assert process_file(retoucher, photo, mask_path=tmp_path / "spot.png").status == "ok"
    ok = _report(photo)

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 cut short")
    assert process_file(retoucher, broken).status == "failed"
    failed = _report(broken)

    crashed_photo = _photo(tmp_path, "crash.png")
    job = Job(path=crashed_photo.absolute(), root=tmp_path)
    written = write_failed_report(job, "the worker process died (killed by SIGSEGV)", report_settings(retoucher))
    assert written == output_paths(crashed_photo).report
    crashed = _report(crashed_photo)

    for name, report in (("ok", ok), ("failed", failed), ("crashed", crashed)):
        problems = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(report)]
        assert problems == [], f"{name} report: {problems}"
    assert set(ok) == set(failed) == set(crashed)
    assert ok["regions"] and ok["detection"]["method"]
    assert crashed["status"] == "failed" and "SIGSEGV" in crashed["error"]
    assert crashed["input"]["sha256"] == ok["input"]["sha256"] != ""  # same pixels, same file bytes
    assert crashed["settings"]["config_sha256"] == failed["settings"]["config_sha256"]


def test_the_schema_rejects_what_a_drifted_writer_produced(tmp_path, retoucher):
    """The old hand-made crash report (no ``detection``) and a bad route both fail validation."""
    photo = _photo(tmp_path)
    job = Job(path=photo.absolute(), root=tmp_path)
    write_failed_report(job, "died", report_settings(retoucher))
    report = _report(photo)
    validator = jsonschema.Draft202012Validator(REPORT_JSON_SCHEMA)
    assert validator.is_valid(report)
    without_detection = {key: value for key, value in report.items() if key != "detection"}
    assert not validator.is_valid(without_detection)
    region = {"id": 1, "bbox": [0, 0, 1, 1], "area_px": 1, "area_fraction": 0.0, "kind": "papule", "score": 1.0,
              "route": "freqsplit-numba", "engine": "x", "hard_case": False, "hard_reasons": [], "texture_ratio": None}
    ok_like = {**report, "status": "ok", "error": None, "outputs": {"image": "a", "mask": "b"},
               "detection": {"method": "classical", "scale": 1.0}, "regions": [region]}
    assert not validator.is_valid(ok_like)
    region["route"] = "freqsplit"
    assert validator.is_valid(ok_like)
