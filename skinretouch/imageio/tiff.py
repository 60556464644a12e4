"""TIFF: single-image 8- and 16-bit RGB, with or without one alpha channel.

Pixels are decoded and encoded with tifffile (imagecodecs supplies LZW and JPEG).
Tags are carried as raw bytes in the file's own byte order, which is kept.

Carried to the output
    ICC profile (tag 34675, ``ImageFile.icc_profile``), XMP (700, ``ImageFile.xmp``),
    resolution (282/283/296, ``extra["resolution"]``/``extra["resolution_unit"]``),
    alpha with its ExtraSamples kind (with associated alpha the RGB values are the
    stored, premultiplied ones), byte order, and
    every other descriptive tag of the first IFD unchanged (``extra["tiff_tags"]`` as
    ``(code, type, count, raw bytes)``): Orientation (274), ImageDescription, Make,
    Model, Software, DateTime, Artist, Copyright, HostComputer, WhitePoint,
    PrimaryChromaticities, IPTC (33723), Photoshop resources (34377), private tags...
    The EXIF and GPS sub-IFDs (34665/34853, with EXIF's Interoperability IFD) are
    copied entry by entry (``extra["exif_ifd"]``/``extra["gps_ifd"]``) in classic
    (non-Big) TIFF output. ``ImageFile.exif`` is always None for TIFF.
Not carried
    Layout tags (strips/tiles, compression, predictor, planar configuration: the
    output is contiguous RGB(A) strips compressed per ``OutputConfig``), Photoshop
    layer data (37724, which would bring the unretouched layers back), reduced-
    resolution thumbnail pages, EXIF/GPS sub-IFDs of BigTIFF files, and MakerNote
    internals that point outside the MakerNote (the MakerNote bytes are copied, so a
    maker's absolute offsets may no longer resolve).
Refused
    Greyscale, palette, CMYK, Lab, float, 1/4/12/32-bit, multi-page TIFF, camera raw
    (DNG, CR2, files with SubIFDs) (UnsupportedFormat); unreadable/truncated files
    (CorruptImage).
"""

from __future__ import annotations

import io
import struct

import cv2
import numpy as np

from ..config import OutputConfig
from ..errors import CorruptImage, UnsupportedFormat
from ..lazy import lazy_module
from ..logs import get_logger
from .registry import ImageFile, check_pixel_limit, register_extensions, register_format

tifffile = lazy_module("tifffile")  # imported by the first TIFF read or write, not by every run

__all__ = ["FORMAT_ID", "accept", "read", "write"]

log = get_logger(__name__)

FORMAT_ID = "TIFF"

_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_EXIF_IFD, _GPS_IFD, _INTEROP_IFD = 34665, 34853, 40965
_ICC, _XMP, _ORIENTATION = 34675, 700, 274
_X_RESOLUTION, _Y_RESOLUTION, _RESOLUTION_UNIT = 282, 283, 296
# Tags that describe the stored layout (tifffile writes its own), point at other
# IFDs, or would be wrong after retouching.
_NOT_CARRIED = {
    254, 255, 256, 257, 258, 259, 262, 263, 264, 265, 266, 273, 277, 278, 279, 280, 281, 284,
    288, 289, 290, 291, 292, 293, 301, 317, 320, 321, 322, 323, 324, 325, 330, 338, 339, 340, 341,
    347, 400, 512, 513, 514, 515, 517, 518, 519, 520, 521, 529, 530, 531, 532,
    _X_RESOLUTION, _Y_RESOLUTION, _RESOLUTION_UNIT, _ICC, _XMP, _EXIF_IFD, _GPS_IFD, _INTEROP_IFD,
    37724,  # Photoshop ImageSourceData: layers that would show the unretouched photo
    32997, 32998,  # SGI image depth / tile depth
}  # fmt: skip
_IFD_TYPES = {13, 18}
# bytes per value of each TIFF field type
_TYPE_SIZES = {
    1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8,
}  # fmt: skip
_PHOTOMETRIC_NAMES = {
    0: "greyscale", 1: "greyscale", 3: "palette (indexed-colour)", 4: "transparency-mask",
    5: "CMYK", 6: "YCbCr", 8: "CIELab", 9: "ICCLab", 10: "ITULab", 32803: "camera raw (CFA)",
    34892: "linear raw", 32844: "LogL", 32845: "LogLuv",
}  # fmt: skip
_COMPRESSION = {"none": None, "zlib": "zlib", "lzw": "lzw"}
# tifffile refuses IFD-pointer tags in extratags; a placeholder one code above each
# keeps the IFD's sort order and is renamed and pointed at the copied IFD afterwards.
_PLACEHOLDER_OFFSET = 1

RawTag = tuple[int, int, int, bytes]  # (code, TIFF type, count, value bytes in file order)


def accept(prefix: bytes) -> bool:
    """Classic or BigTIFF header, either byte order."""
    return prefix[:4] in _MAGICS


def read(data: bytes, max_pixels: int) -> ImageFile:
    """Decode a TIFF file's bytes; see the module docstring for what is kept."""
    if data[:4] == b"II*\x00" and data[8:10] == b"CR":
        raise UnsupportedFormat("Canon CR2 raw files are not supported; export a TIFF or JPEG")
    try:
        tif = tifffile.TiffFile(io.BytesIO(data))
    except tifffile.TiffFileError as exc:
        raise CorruptImage(f"TIFF is damaged ({exc})") from None
    with tif:
        page = _single_page(tif)
        _check_page(page)
        width, height = int(page.imagewidth), int(page.imagelength)
        check_pixel_limit(width, height, max_pixels)
        decoded = _decode(page, height, width, len(data))
        byteorder = tif.byteorder
        bigtiff = tif.is_bigtiff
        tags = page.tags
        icc = _bytes_value(tags, _ICC)
        xmp = _bytes_value(tags, _XMP)
        orientation = int(tags[_ORIENTATION].value) if _ORIENTATION in tags else 1
        resolution = None
        if _X_RESOLUTION in tags and _Y_RESOLUTION in tags:
            resolution = (tuple(tags[_X_RESOLUTION].value), tuple(tags[_Y_RESOLUTION].value))
        resolution_unit = int(tags[_RESOLUTION_UNIT].value) if _RESOLUTION_UNIT in tags else None
        carried = tuple(_raw_tag(data, tag) for tag in tags.values() if _is_carried(tag))
        extrasamples = tuple(int(v) for v in page.extrasamples)
        exif_ifd = gps_ifd = None
        if not bigtiff:
            exif_ifd = _read_sub_ifd(data, byteorder, tags, _EXIF_IFD)
            gps_ifd = _read_sub_ifd(data, byteorder, tags, _GPS_IFD)

    if decoded.shape[2] == 4:
        pixels = cv2.cvtColor(decoded, cv2.COLOR_RGBA2RGB)
        alpha = cv2.extractChannel(decoded, 3)
    else:
        pixels, alpha = decoded, None
    return ImageFile(
        pixels=pixels,
        format=FORMAT_ID,
        bit_depth=8 * pixels.dtype.itemsize,
        icc_profile=icc,
        exif=None,
        xmp=xmp,
        alpha=alpha,
        orientation=orientation if 1 <= orientation <= 8 else 1,
        extra={
            "byteorder": byteorder,
            "bigtiff": bigtiff,
            "resolution": resolution,
            "resolution_unit": resolution_unit,
            "extrasamples": extrasamples if alpha is not None else (),
            "tiff_tags": carried,
            "exif_ifd": exif_ifd,
            "gps_ifd": gps_ifd,
        },
    )


def write(image: ImageFile, pixels: np.ndarray, options: OutputConfig, *, consume: bool = False) -> bytes:
    """Encode RGB ``pixels`` with ``image``'s alpha, tags and sub-IFDs (``consume`` is
    accepted for the common signature; the TIFF path needs no channel reorder)."""
    extra = image.extra
    if image.alpha is not None:
        data = cv2.cvtColor(pixels, cv2.COLOR_RGB2RGBA)
        data[..., 3] = image.alpha
    else:
        data = pixels
    byteorder = extra.get("byteorder", "<")
    bigtiff = bool(extra.get("bigtiff")) or data.nbytes > 2**32 - 2**25
    extratags = [(code, dtype, count, raw, True) for code, dtype, count, raw in extra.get("tiff_tags", ())]
    if image.xmp:
        extratags.append((_XMP, 1, len(image.xmp), bytes(image.xmp), True))
    sub_ifds = {}
    if not bigtiff:
        for code, key in ((_EXIF_IFD, "exif_ifd"), (_GPS_IFD, "gps_ifd")):
            if extra.get(key):
                sub_ifds[code] = extra[key]
                extratags.append((code + _PLACEHOLDER_OFFSET, 4, 1, 0, True))
    compression = _COMPRESSION[options.tiff_compression]
    if compression == "lzw" and not _codec_available(5, encode=True):
        # still lossless and readable everywhere; failing every TIFF would be worse
        log.warning("tiff_lzw_unavailable_using_zlib", reason="the 'imagecodecs' package is not installed")
        compression = "zlib"
    resolution = extra.get("resolution")
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        data,
        byteorder=byteorder,
        bigtiff=bigtiff,
        photometric="rgb",
        planarconfig="contig",
        extrasamples=(extra.get("extrasamples") or (2,)) if image.alpha is not None else None,
        compression=compression,
        predictor=compression is not None,
        iccprofile=bytes(image.icc_profile) if image.icc_profile else None,
        resolution=resolution,
        resolutionunit=extra.get("resolution_unit") if resolution else None,
        software=False,
        metadata=None,
        extratags=extratags,
    )
    if sub_ifds:
        _attach_sub_ifds(buffer, byteorder, sub_ifds)
    return buffer.getvalue()


def _single_page(tif: tifffile.TiffFile) -> tifffile.TiffPage:
    pages = tif.pages
    first = pages.first
    if 50706 in first.tags:
        raise UnsupportedFormat("DNG raw files are not supported; export a TIFF or JPEG")
    if 330 in first.tags:
        raise UnsupportedFormat("TIFF with sub-images (SubIFDs, e.g. a camera raw file) is not supported")
    full_size = [p for p in pages if not (int(getattr(p, "subfiletype", 0)) & 1)]
    if len(full_size) != 1 or full_size[0] is not first:
        raise UnsupportedFormat(f"multi-page TIFF ({len(pages)} pages) is not supported; save a single image")
    if len(pages) > 1:
        log.info("tiff_thumbnail_pages_dropped", pages=len(pages) - 1)
    return first


def _check_page(page: tifffile.TiffPage) -> None:
    photometric = int(page.photometric)
    compression = int(page.compression)
    if photometric == 6 and compression in (6, 7):
        pass  # JPEG-compressed YCbCr: decoded to RGB, written back as RGB
    elif photometric != 2:
        name = _PHOTOMETRIC_NAMES.get(photometric, f"photometric {photometric}")
        raise UnsupportedFormat(f"{name} TIFF is not supported; export 8- or 16-bit RGB")
    sample_format = int(page.sampleformat)
    if sample_format != 1:
        kind = {2: "signed-integer", 3: "floating-point"}.get(sample_format, "non-integer")
        raise UnsupportedFormat(f"{kind} TIFF is not supported; export 8- or 16-bit RGB")
    bits = page.bitspersample
    if bits not in (8, 16):
        raise UnsupportedFormat(f"{bits}-bit TIFF is not supported; export 8- or 16-bit RGB")
    samples = int(page.samplesperpixel)
    if samples not in (3, 4) or len(page.extrasamples) != samples - 3:
        raise UnsupportedFormat(f"TIFF with {samples} samples per pixel is not supported; export RGB or RGBA")
    if not _codec_available(compression, encode=False):
        raise UnsupportedFormat(
            f"{_compression_name(compression)}-compressed TIFF needs the 'imagecodecs' package, "
            "which is not installed"
        )


def _codec_available(compression: int, *, encode: bool) -> bool:
    codecs = tifffile.TIFF.COMPRESSORS if encode else tifffile.TIFF.DECOMPRESSORS
    try:
        codecs[compression]
    except (KeyError, NotImplementedError):
        return False
    return True


def _compression_name(compression: int) -> str:
    try:
        return tifffile.COMPRESSION(compression).name
    except ValueError:
        return f"compression {compression}"


def _decode(page: tifffile.TiffPage, height: int, width: int, file_size: int) -> np.ndarray:
    ends = [offset + count for offset, count in zip(page.dataoffsets, page.databytecounts) if count]
    if not ends:
        raise CorruptImage("TIFF has no image data")
    if max(ends) > file_size:
        raise CorruptImage(
            f"TIFF is truncated (its image data needs {max(ends)} bytes, the file has {file_size})"
        )
    try:
        decoded = page.asarray()
    except KeyError as exc:  # tifffile's way of saying a codec is missing
        raise UnsupportedFormat(f"TIFF compression {exc} cannot be decoded here") from None
    except Exception as exc:  # codecs raise their own error types on damaged data
        raise CorruptImage(f"TIFF image data is damaged ({type(exc).__name__}: {exc})") from None
    if decoded.ndim == 3 and decoded.shape[0] in (3, 4) and decoded.shape[1:] == (height, width):
        decoded = np.moveaxis(decoded, 0, -1)  # planar (separate) storage
    if decoded.ndim != 3 or decoded.shape[:2] != (height, width) or decoded.shape[2] not in (3, 4):
        raise CorruptImage(f"TIFF decoded to {decoded.shape}, expected {height}x{width} RGB")
    if not decoded.dtype.isnative:
        decoded = decoded.astype(decoded.dtype.newbyteorder("="))
    return np.ascontiguousarray(decoded)


def _bytes_value(tags: tifffile.TiffTags, code: int) -> bytes | None:
    if code not in tags:
        return None
    value = tags[code].value
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


def _is_carried(tag: tifffile.TiffTag) -> bool:
    return tag.code not in _NOT_CARRIED and int(tag.dtype) not in _IFD_TYPES and int(tag.dtype) in _TYPE_SIZES


def _raw_tag(data: bytes, tag: tifffile.TiffTag) -> RawTag:
    size = _TYPE_SIZES[int(tag.dtype)] * int(tag.count)
    return (int(tag.code), int(tag.dtype), int(tag.count), data[tag.valueoffset : tag.valueoffset + size])


# Sub-IFDs (classic TIFF only): read entry by entry, written back after the image.

SubIfd = tuple[tuple[int, int, int, object], ...]  # (code, type, count, raw bytes | nested SubIfd)


def _read_sub_ifd(data: bytes, byteorder: str, tags: tifffile.TiffTags, code: int) -> SubIfd | None:
    if code not in tags:
        return None
    entry = tags[code].offset  # tifffile's valueoffset is the pointer itself here
    try:
        (pointer,) = struct.unpack_from(byteorder + "I", data, entry + 8)
        return _parse_ifd(data, byteorder, pointer, depth=0)
    except (struct.error, ValueError) as exc:
        log.warning("tiff_sub_ifd_unreadable", tag=code, error=str(exc))
        return None


def _parse_ifd(data: bytes, byteorder: str, offset: int, *, depth: int) -> SubIfd:
    if depth > 2 or offset <= 0 or offset + 2 > len(data):
        raise ValueError(f"bad IFD offset {offset}")
    (count,) = struct.unpack_from(byteorder + "H", data, offset)
    entries = []
    for index in range(count):
        code, dtype, n, field = struct.unpack_from(byteorder + "HHI4s", data, offset + 2 + 12 * index)
        if dtype not in _TYPE_SIZES:
            continue
        size = _TYPE_SIZES[dtype] * n
        if size <= 4:
            raw = field[:size]
        else:
            (value_offset,) = struct.unpack(byteorder + "I", field)
            if value_offset + size > len(data):
                raise ValueError(f"tag {code} points past the end of the file")
            raw = data[value_offset : value_offset + size]
        if code == _INTEROP_IFD and n == 1:
            (pointer,) = struct.unpack(byteorder + "I", raw)
            entries.append((code, 4, 1, _parse_ifd(data, byteorder, pointer, depth=depth + 1)))
        else:
            entries.append((code, dtype, n, raw))
    return tuple(entries)


def _attach_sub_ifds(buffer: io.BytesIO, byteorder: str, sub_ifds: dict[int, SubIfd]) -> None:
    """Append each sub-IFD to the encoded file and point IFD0's placeholder tag at it.

    Works in place on the encoder's buffer, so the image data is not copied again.
    """
    with buffer.getbuffer() as view:
        (ifd0,) = struct.unpack_from(byteorder + "I", view, 4)
        (count,) = struct.unpack_from(byteorder + "H", view, ifd0)
        entries = [
            (ifd0 + 2 + 12 * index, struct.unpack_from(byteorder + "H", view, ifd0 + 2 + 12 * index)[0])
            for index in range(count)
        ]
    base = buffer.seek(0, io.SEEK_END)
    tail = bytearray(base % 2)  # word alignment
    patches = []
    for entry, code in entries:
        target = code - _PLACEHOLDER_OFFSET
        if target in sub_ifds:
            patches.append((entry, target, _append_ifd(tail, base, byteorder, sub_ifds[target])))
    buffer.write(tail)
    with buffer.getbuffer() as view:
        for entry, target, position in patches:
            struct.pack_into(byteorder + "HHII", view, entry, target, 4, 1, position)


def _append_ifd(tail: bytearray, base: int, byteorder: str, entries: SubIfd) -> int:
    """Write an IFD (and its nested IFDs) at the end of ``tail``, which starts at file
    offset ``base``; return the IFD's file offset."""
    if len(tail) % 2:
        tail.append(0)
    start = len(tail)
    ordered = sorted(entries, key=lambda entry: entry[0])
    tail.extend(bytes(2 + 12 * len(ordered) + 4))
    struct.pack_into(byteorder + "H", tail, start, len(ordered))
    for index, (code, dtype, count, value) in enumerate(ordered):
        if isinstance(value, tuple):  # nested IFD (Interoperability)
            raw = struct.pack(byteorder + "I", _append_ifd(tail, base, byteorder, value))
        else:
            raw = value
        if len(raw) <= 4:
            field = raw.ljust(4, b"\x00")
        else:
            if len(tail) % 2:
                tail.append(0)
            field = struct.pack(byteorder + "I", base + len(tail))
            tail.extend(raw)
        struct.pack_into(byteorder + "HHI4s", tail, start + 2 + 12 * index, code, dtype, count, field)
    return base + start


register_format(FORMAT_ID, read, write, accept)
register_extensions(FORMAT_ID, (".tif", ".tiff"))
