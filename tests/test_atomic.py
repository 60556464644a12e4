"""Atomic writes: the target is either complete or untouched, and no temporary is left."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from skinretouch import atomic
from skinretouch.atomic import atomic_write_bytes, atomic_writer


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_write_bytes_creates_complete_file_and_nothing_else(tmp_path):
    target = tmp_path / "photo.retouched.jpg"
    atomic_write_bytes(target, b"\xff\xd8payload\xff\xd9")
    assert target.read_bytes() == b"\xff\xd8payload\xff\xd9"
    assert _listing(tmp_path) == ["photo.retouched.jpg"]


def test_replaces_existing_target(tmp_path):
    target = tmp_path / "a.png"
    target.write_bytes(b"old")
    atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert _listing(tmp_path) == ["a.png"]


def test_temporary_is_hidden_in_same_folder_while_writing(tmp_path):
    target = tmp_path / "IMG_1.JPG"
    with atomic_writer(target) as file:
        file.write(b"partial")
        names = _listing(tmp_path)
        assert not target.exists(), "the target must not appear before the rename"
    assert len(names) == 1
    (temp_name,) = names
    assert temp_name.startswith(".IMG_1.JPG.") and temp_name.endswith(".tmp")
    assert _listing(tmp_path) == ["IMG_1.JPG"]


def test_exception_while_writing_leaves_nothing(tmp_path):
    target = tmp_path / "out.tif"
    with pytest.raises(RuntimeError, match="encoder blew up"):
        with atomic_writer(target) as file:
            file.write(b"half a photo")
            raise RuntimeError("encoder blew up")
    assert _listing(tmp_path) == []


def test_exception_keeps_previous_target_intact(tmp_path):
    target = tmp_path / "out.tif"
    target.write_bytes(b"previous complete file")
    with pytest.raises(KeyboardInterrupt):
        with atomic_writer(target) as file:
            file.write(b"half")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"previous complete file"
    assert _listing(tmp_path) == ["out.tif"]


def test_disk_full_on_sync_propagates_oserror_and_cleans_up(tmp_path, monkeypatch):
    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full_disk)
    target = tmp_path / "x.png"
    with pytest.raises(OSError) as info:
        atomic_write_bytes(target, b"data")
    assert info.value.errno == errno.ENOSPC
    assert _listing(tmp_path) == []


def test_failed_rename_cleans_up(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    monkeypatch.setattr(atomic.os, "replace", refuse)
    target = tmp_path / "x.png"
    with pytest.raises(PermissionError):
        atomic_write_bytes(target, b"data")
    assert _listing(tmp_path) == []


def test_missing_folder_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(tmp_path / "no" / "such" / "dir.jpg", b"data")


def test_new_file_permissions_follow_umask(tmp_path):
    old_umask = os.umask(0o022)
    try:
        target = tmp_path / "shared.jpg"
        atomic_write_bytes(target, b"data")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_long_file_name_still_fits(tmp_path):
    target = tmp_path / ("n" * 240 + ".jpg")
    atomic_write_bytes(target, b"data")
    assert target.read_bytes() == b"data"
    assert _listing(tmp_path) == [target.name]
