"""The one mask rule: a pixel is selected when its colour is non-zero and it is not transparent."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from skinretouch.engines.reference import load_references
from skinretouch.errors import MaskError
from skinretouch.imageio.masks import mask_from_values, read_mask


def _save(tmp_path, name, values, mode=None):
    path = tmp_path / name
    Image.fromarray(values, mode=mode).save(path)
    return path


def test_any_non_zero_grey_value_selects(tmp_path):
    grey = np.zeros((6, 8), np.uint8)
    grey[1, 1], grey[2, 2], grey[3, 3] = 1, 100, 255
    selected = read_mask(_save(tmp_path, "grey.png", grey))
    assert selected.dtype == bool and selected.shape == (6, 8)
    assert sorted(zip(*np.nonzero(selected))) == [(1, 1), (2, 2), (3, 3)]


def test_sixteen_bit_and_one_bit_masks(tmp_path):
    deep = np.zeros((5, 5), np.uint16)
    deep[2, 2] = 1  # 1/65535: still non-zero
    assert read_mask(_save(tmp_path, "deep.png", deep)).sum() == 1
    bits = Image.new("1", (5, 5))
    bits.putpixel((4, 0), 1)
    bits.save(tmp_path / "bits.png")
    assert list(zip(*np.nonzero(read_mask(tmp_path / "bits.png")))) == [(0, 4)]


def test_opaque_black_rgba_selects_nothing_and_alpha_gates_colour(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 3] = 255  # opaque black everywhere
    assert not read_mask(_save(tmp_path, "black.png", rgba)).any()
    rgba[0, 0] = (0, 0, 7, 255)  # any colour channel counts
    rgba[1, 1] = (255, 255, 255, 0)  # fully transparent white does not
    rgba[2, 2] = (255, 0, 0, 1)  # barely opaque red does
    selected = read_mask(_save(tmp_path, "painted.png", rgba))
    assert sorted(zip(*np.nonzero(selected))) == [(0, 0), (2, 2)]


def test_palette_with_transparency_follows_the_same_rule(tmp_path):
    indices = np.zeros((3, 3), np.uint8)
    indices[0, 0], indices[1, 1] = 1, 2
    image = Image.fromarray(indices, mode="P")
    image.putpalette([0, 0, 0, 255, 255, 255, 9, 9, 9] + [0] * (256 * 3 - 9))
    image.info["transparency"] = 2  # index 2 (non-black) is transparent
    image.save(tmp_path / "palette.png", transparency=2)
    assert sorted(zip(*np.nonzero(read_mask(tmp_path / "palette.png")))) == [(0, 0)]


def test_rule_on_arrays_matches_the_file_reader():
    colour = np.array([[[0, 0, 0], [0, 1, 0]], [[9, 9, 9], [0, 0, 0]]], np.uint8)
    alpha = np.array([[255, 255], [0, 255]], np.uint8)
    assert mask_from_values(colour).tolist() == [[False, True], [True, False]]
    assert mask_from_values(colour, alpha).tolist() == [[False, True], [False, False]]


def test_size_and_read_errors_name_the_file(tmp_path):
    path = _save(tmp_path, "m.png", np.full((4, 6), 255, np.uint8))
    with pytest.raises(MaskError, match=r"m\.png is 6x4 but the image is 5x4"):
        read_mask(path, shape=(4, 5))
    with pytest.raises(MaskError, match="no such file"):
        read_mask(tmp_path / "missing.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(MaskError, match="cannot read it as an image"):
        read_mask(tmp_path / "text.png")


def test_reference_masks_use_the_rule(tmp_path):
    """Values 1 and 100 mark the defect in a reference mask (they used to need > 127)."""
    Image.fromarray(np.full((40, 50, 3), 180, np.uint8)).save(tmp_path / "ref.png")
    mask = np.zeros((40, 50), np.uint8)
    mask[10:12, 20:30] = 1
    mask[12:14, 20:30] = 100
    Image.fromarray(mask).save(tmp_path / "mask.png")
    ((_, loaded),) = load_references([(tmp_path / "ref.png", tmp_path / "mask.png")])
    assert loaded.sum() == 40 and loaded[10:14, 20:30].all()
