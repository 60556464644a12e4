"""The configuration tree: documented defaults, and errors that name the key."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from skinretouch.config import Config, config_sha256, load_config, parse_config
from skinretouch.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _leaf_keys(node, prefix=""):
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if dataclasses.is_dataclass(value):
            yield from _leaf_keys(value, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}"


def test_documented_config_equals_the_defaults():
    assert load_config(ROOT / "config.toml") == Config()


def test_every_key_is_documented_with_a_comment():
    lines = (ROOT / "config.toml").read_text().splitlines()
    section = ""
    documented = set()
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped.strip("[]") + "."
        elif "=" in stripped and not stripped.startswith("#"):
            key = stripped.split("=", 1)[0].strip()
            assert lines[number - 1].strip().startswith("#"), f"{section}{key} has no comment above it"
            documented.add(section + key)
    assert documented == set(_leaf_keys(Config()))


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("colour = 1", "colour"),
        ("[mask]\ndilate = 3", "mask.dilate"),
        ("[mask]\ndilation_px = -1", "mask.dilation_px"),
        ("[mask]\ndilation_px = 2.5", "mask.dilation_px"),
        ("[output]\njpeg_quality = 101", "output.jpeg_quality"),
        ("[output]\njpeg_subsampling = '4:1:1'", "output.jpeg_subsampling"),
        ("[detect]\npapule = 'yes'", "detect.papule"),
        ("[detect]\nsensitivity = 1.5", "detect.sensitivity"),
        ("[daemon]\nfolders = 'photos'", "daemon.folders"),
        ("[daemon]\nfolders = [1]", "daemon.folders[0]"),
        ("mask = 3", "mask"),
        ("[route]\ntexture_ratio_min = 1.4", "route.texture_ratio_min"),
        ("[cluster]\nbackend = 'rq'", "cluster.backend"),
        ("[cluster]\ntime_limit_s = 900\nvisibility_timeout_s = 600", "cluster.visibility_timeout_s"),
        ("[cluster]\npath_map = ['/srv/photos']", "cluster.path_map[0]"),
        ("[cluster]\npath_map = ['srv=/mnt']", "cluster.path_map[0]"),
        ("[cluster]\nbroker = 'amqp://localhost'", "cluster.broker"),
        ("[cluster]\nlost_check_s = 0", "cluster.lost_check_s"),
    ],
)
def test_bad_key_or_value_is_an_error_naming_the_key(toml, key):
    with pytest.raises(ConfigError) as caught:
        parse_config(tomllib.loads(toml))
    assert caught.value.key == key
    assert str(caught.value).startswith(key)


def test_values_are_typed_and_partial_files_keep_other_defaults():
    config = parse_config(tomllib.loads("[daemon]\nfolders = ['/a', '/b']\nsettle_s = 3\n"))
    assert config.daemon.folders == ("/a", "/b")
    assert config.daemon.settle_s == 3.0 and isinstance(config.daemon.settle_s, float)
    assert config.mask == Config().mask


def test_unreadable_or_invalid_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[mask\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


def test_fingerprint_changes_with_any_setting():
    base = Config()
    assert config_sha256(base) == config_sha256(Config())
    assert config_sha256(base) != config_sha256(base.replace("mask", dilation_px=4))


def test_replace_validates():
    with pytest.raises(ConfigError, match="mask.dilation_px"):
        Config().replace("mask", dilation_px=-3)


@pytest.mark.parametrize(
    ("toml", "key", "other"),
    [
        ("[detect]\nmode = 'neural'", "detect.mode", None),
        ("[detect]\nanomaly_detector = true\n[detect.onnx]\nmodel = 'm.onnx'", "detect.onnx.model", "detect.anomaly_detector"),
        ("[detect]\nmode = 'anomaly'\n[detect.onnx]\nmodel = 'm.onnx'", "detect.mode", "detect.onnx.model"),
        ("[detect]\nmode = 'onnx'\nanomaly_filter = true\n[detect.onnx]\nmodel = 'm.onnx'", "detect.anomaly_filter", "detect.mode"),
        ("[detect]\nmode = 'onnx'", "detect.onnx.model", "detect.mode"),
        ("[detect]\nreferences = ['a.png']", "detect.reference_masks", "detect.references"),
    ],
)
def test_conflicting_detector_options_are_an_error_naming_both_keys(toml, key, other):
    with pytest.raises(ConfigError) as caught:
        parse_config(tomllib.loads(toml))
    assert caught.value.key == key
    if other:
        assert other in str(caught.value)


def test_detect_mode_is_the_one_switch_and_older_keys_still_select_their_mode(tmp_path):
    from skinretouch.config import detect_mode

    assert detect_mode(Config().detect) == "classical"
    assert detect_mode(parse_config(tomllib.loads("[detect]\nmode = 'anomaly'")).detect) == "anomaly"
    assert detect_mode(parse_config(tomllib.loads("[detect]\nanomaly_detector = true")).detect) == "anomaly"
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")  # only its existence is checked when the config is read
    onnx = parse_config({"detect": {"mode": "onnx", "onnx": {"model": str(model)}}}).detect
    assert detect_mode(onnx) == "onnx"
