"""The format registry and the :class:`ImageFile` every format reads into.

Each format module registers itself at its bottom with :func:`register_format` and
:func:`register_extensions`. :func:`find_format` sniffs a file's first bytes with each
format's ``accept`` function, so the file's name never decides how it is decoded.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import numpy as np

from ..config import OutputConfig
from ..errors import CorruptImage, UnsupportedFormat

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "PREFIX_BYTES",
    "Format",
    "ImageFile",
    "check_pixel_limit",
    "rgb_to_bgr",
    "exif_orientation",
    "find_format",
    "get_format",
    "register_extensions",
    "register_format",
    "registered_extensions",
]

# Decompression-bomb guard: more than any single-shot camera (150 MP medium format) yet
# far below what would exhaust memory (the float32 working copy of this is ~2.2 GB).
DEFAULT_MAX_PIXELS = 180_000_000
# How many leading bytes ``accept`` functions see.
PREFIX_BYTES = 32


@dataclass(kw_only=True)
class ImageFile:
    """A decoded photo plus everything needed to write it back the same way.

    Attributes
    ----------
    pixels : (H, W, 3) ndarray of uint8 or uint16
        RGB in the stored pixel grid: the EXIF/TIFF orientation is NOT applied.
    format : {"JPEG", "PNG", "TIFF"}
    bit_depth : {8, 16}
    icc_profile : bytes or None
        The embedded ICC profile, written back unchanged.
    exif : bytes or None
        The raw EXIF block in TIFF structure (starting ``II*\\0`` or ``MM\\0*``, the
        form PNG's eXIf chunk and ``PIL.Image.Exif.load`` use; a JPEG's ``Exif\\0\\0``
        APP1 header is not part of it). Written back unchanged, Orientation included.
        Always None for TIFF, whose EXIF-like tags live in ``extra["tiff_tags"]``.
    xmp : bytes or None
        The XMP packet, written back unchanged.
    alpha : (H, W) ndarray of the pixels' dtype, or None
        The alpha channel if the file had one, written back unchanged.
    orientation : int
        EXIF/TIFF Orientation 1-8 (1 when absent), for callers that need upright
        faces. Informational: the writer keeps the original tag, not this field.
    extra : dict
        Format-specific things carried to the output (see each format module).
    """

    pixels: np.ndarray
    format: str
    bit_depth: int
    icc_profile: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    alpha: np.ndarray | None = None
    orientation: int = 1
    extra: dict = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


Reader = Callable[[bytes, int], ImageFile]
Writer = Callable[[ImageFile, np.ndarray, OutputConfig], bytes]
Accept = Callable[[bytes], bool]


class Format(NamedTuple):
    """One registered format."""

    id: str
    reader: Reader  # (whole file's bytes, max_pixels) -> ImageFile
    writer: Writer  # (image, pixels, options) -> encoded file bytes
    accept: Accept  # (first PREFIX_BYTES bytes) -> whether this format claims the file


_FORMATS: dict[str, Format] = {}
_EXTENSIONS: dict[str, str] = {}


def register_format(id: str, reader: Reader, writer: Writer, accept: Accept) -> None:
    """Register (or replace) a format under its upper-case ``id``."""
    key = id.upper()
    _FORMATS[key] = Format(key, reader, writer, accept)


def register_extensions(id: str, extensions: tuple[str, ...]) -> None:
    """Declare the file extensions (with dot, any case) a format is usually saved as."""
    for extension in extensions:
        _EXTENSIONS[extension.lower()] = id.upper()


def registered_extensions() -> frozenset[str]:
    """Lower-case extensions, with the dot, of every registered format."""
    return frozenset(_EXTENSIONS)


def get_format(id: str) -> Format:
    """The registered format ``id``; KeyError if there is none."""
    return _FORMATS[id.upper()]


def find_format(prefix: bytes) -> Format:
    """The format whose ``accept`` claims these first bytes.

    Raises
    ------
    CorruptImage
        The file is empty.
    UnsupportedFormat
        No registered format claims it; the reason names the format when it is a
        common one (GIF, WebP, HEIC, ...).
    """
    if not prefix:
        raise CorruptImage("the file is empty (0 bytes)")
    for fmt in _FORMATS.values():
        if fmt.accept(prefix):
            return fmt
    raise UnsupportedFormat(_describe_unknown(prefix))


def check_pixel_limit(width: int, height: int, max_pixels: int) -> None:
    """Refuse an image too large to decode safely (decompression-bomb guard).

    Raises
    ------
    CorruptImage
        A zero width or height.
    UnsupportedFormat
        ``width * height`` is above ``max_pixels``.
    """
    if width <= 0 or height <= 0:
        raise CorruptImage(f"the header gives an empty image ({width}x{height})")
    if width * height > max_pixels:
        raise UnsupportedFormat(
            f"image is {width}x{height} = {width * height / 1e6:.0f} MP, above the "
            f"{max_pixels / 1e6:.0f} MP limit (decompression-bomb guard)"
        )


def exif_orientation(exif: bytes | None) -> int:
    """The Orientation tag (274) of IFD0 in a TIFF-structured EXIF block; 1 if absent.

    Never raises: malformed EXIF gives 1.
    """
    if not exif or len(exif) < 8:
        return 1
    order = {b"II": "<", b"MM": ">"}.get(bytes(exif[:2]))
    if order is None:
        return 1
    try:
        (ifd_offset,) = struct.unpack_from(order + "I", exif, 4)
        (count,) = struct.unpack_from(order + "H", exif, ifd_offset)
        for index in range(count):
            tag, type_, _n, value = struct.unpack_from(
                order + "HHI4s", exif, ifd_offset + 2 + 12 * index
            )
            if tag == 274 and type_ == 3:  # SHORT, stored left-justified in the value field
                (orientation,) = struct.unpack_from(order + "H", value)
                return orientation if 1 <= orientation <= 8 else 1
    except struct.error:
        return 1
    return 1


_OTHER_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (8, b"WEBP", "WebP"),
    (0, b"BM", "BMP"),
    (0, b"8BPS", "Photoshop PSD"),
    (0, b"%PDF", "PDF"),
    (0, b"\xff\x0a", "JPEG XL"),
    (4, b"JXL ", "JPEG XL"),
    (4, b"jP  ", "JPEG 2000"),
    (0, b"\xff\x4f\xff\x51", "JPEG 2000"),
    (0, b"IIRO", "Olympus ORF raw"),
    (0, b"IIU\x00", "Panasonic RW2 raw"),
    (0, b"FUJIFILMCCD-RAW", "Fujifilm RAF raw"),
    (0, b"\x00\x00\x01\x00", "ICO"),
    (0, b"\x1a\x45\xdf\xa3", "video (Matroska/WebM)"),
)
_FTYP_BRANDS = {
    b"heic": "HEIC",
    b"heix": "HEIC",
    b"hevc": "HEIC",
    b"mif1": "HEIF",
    b"msf1": "HEIF",
    b"avif": "AVIF",
    b"avis": "AVIF",
    b"crx ": "Canon CR3 raw",
}


def _describe_unknown(prefix: bytes) -> str:
    supported = "JPEG, PNG and TIFF (8/16-bit RGB)"
    name = None
    if prefix[4:8] == b"ftyp":
        name = _FTYP_BRANDS.get(prefix[8:12], "an ISO media file (MP4/MOV/HEIF)")
    for offset, magic, label in _OTHER_SIGNATURES:
        if name is None and prefix[offset : offset + len(magic)] == magic:
            name = label
    if name is not None:
        return f"{name} is not supported; only {supported} are read"
    if _looks_like_text(prefix):
        return f"this is a text file, not an image; only {supported} are read"
    return f"not a recognised image format (starts with {prefix[:8].hex(' ')}); only {supported} are read"


def _looks_like_text(prefix: bytes) -> bool:
    try:
        text = prefix.decode("utf-8")
    except UnicodeDecodeError:
        # the prefix may end inside a multi-byte character
        try:
            text = prefix[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(ch.isprintable() or ch in "\t\r\n" for ch in text)


# Rows reordered at a time by :func:`rgb_to_bgr` in place (its scratch is this many rows).
_BGR_BLOCK_ROWS = 64


def rgb_to_bgr(pixels: np.ndarray, *, in_place: bool = False) -> np.ndarray:
    """``pixels`` (H, W, 3) with the channels in OpenCV's order; with ``in_place`` (a caller
    that drops ``pixels``), written over them a block of rows at a time: OpenCV's own
    in-place conversion still makes a whole-image scratch copy."""
    if not (in_place and pixels.flags.writeable and pixels.flags.c_contiguous):
        return cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    for start in range(0, pixels.shape[0], _BGR_BLOCK_ROWS):
        block = pixels[start : start + _BGR_BLOCK_ROWS]
        cv2.cvtColor(block, cv2.COLOR_RGB2BGR, dst=block)
    return pixels
