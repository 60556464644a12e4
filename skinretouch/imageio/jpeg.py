"""JPEG: 8-bit RGB (YCbCr) baseline/progressive files.

Pixels are decoded with simplejpeg's libjpeg-turbo in strict mode (corrupt data is an
error, not a warning) and encoded with OpenCV's (both faster than Pillow's path, which
adds a copy each way); the header segments are parsed and written here so
that every metadata segment is carried byte for byte.

Carried to the output
    EXIF (APP1 ``Exif``; ``ImageFile.exif`` without the 6-byte ``Exif\\0\\0`` header),
    XMP (APP1, ``ImageFile.xmp``), ICC profile (APP2, reassembled from its chunks,
    ``ImageFile.icc_profile``), the JFIF header with its density/dpi (thumbnail
    dropped), and every other APPn and COM segment in original order
    (``extra["segments"]``: extended XMP, IPTC/Photoshop APP13, comments, maker
    segments...).
Not carried
    The MPF index and the images it points to (phone depth maps, gain maps of
    "Ultra HDR" photos), JFXX thumbnails, the Adobe APP14 colour-transform marker
    (it describes the old encoding), and the original's quantisation tables and
    progressive mode (``OutputConfig`` decides quality and subsampling). The EXIF
    thumbnail inside the EXIF block is kept as is, so it still shows the original.
Refused
    Greyscale, CMYK/YCCK, 12-bit, lossless and hierarchical JPEG (UnsupportedFormat);
    files cut off before the end-of-image marker, and files whose image data libjpeg
    finds corrupt even with a valid end marker (CorruptImage).
"""

from __future__ import annotations

import cv2
import numpy as np
import simplejpeg

from ..config import OutputConfig
from ..errors import CorruptImage, UnsupportedFormat
from ..logs import get_logger
from .registry import (
    ImageFile,
    check_pixel_limit,
    exif_orientation,
    register_extensions,
    register_format,
    rgb_to_bgr,
)

__all__ = ["FORMAT_ID", "accept", "read", "write"]

log = get_logger(__name__)

FORMAT_ID = "JPEG"

_SOI = b"\xff\xd8"
_EOI = b"\xff\xd9"
_SOS = 0xDA
_APP0, _APP1, _APP2, _APP14, _APP15 = 0xE0, 0xE1, 0xE2, 0xEE, 0xEF
_COM = 0xFE
_STANDALONE = {0x01, 0xD8, *range(0xD0, 0xD8)}  # TEM, SOI, RST0-7: no length field
_SOF_DECODABLE = {
    0xC0: "baseline",
    0xC1: "extended",
    0xC2: "progressive",
    0xC9: "arithmetic",
    0xCA: "arithmetic",
}
_SOF_REFUSED = {
    0xC3: "lossless",
    0xC5: "hierarchical",
    0xC6: "hierarchical",
    0xC7: "hierarchical",
    0xCB: "lossless",
    0xCD: "hierarchical",
    0xCE: "hierarchical",
    0xCF: "hierarchical",
}

_EXIF_HEADER = b"Exif\x00\x00"
_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_ICC_HEADER = b"ICC_PROFILE\x00"
_JFIF_HEADER = b"JFIF\x00"
_JFIF_LENGTH = 14  # identifier, version, units, x/y density, 0x0 thumbnail
_MAX_PAYLOAD = 65533  # a segment's 16-bit length counts itself
_MAX_ICC_CHUNK = _MAX_PAYLOAD - len(_ICC_HEADER) - 2

_SUBSAMPLING = {
    "4:4:4": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
    "4:2:2": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
    "4:2:0": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
}

Segment = tuple[int, bytes]


def accept(prefix: bytes) -> bool:
    """SOI followed by another marker."""
    return prefix[:3] == b"\xff\xd8\xff"


def read(data: bytes, max_pixels: int) -> ImageFile:
    """Decode a JPEG file's bytes; see the module docstring for what is kept."""
    segments, sos_offset = _header_segments(data)
    width, height = _check_frame(segments)
    check_pixel_limit(width, height, max_pixels)
    if data.rfind(_EOI, sos_offset) == -1:
        raise CorruptImage("JPEG is truncated (no end-of-image marker); was it cut off while copying?")

    pixels = _decode(_pixel_stream(data, segments, sos_offset))
    if pixels.shape != (height, width, 3):
        raise CorruptImage(f"JPEG decoded to {pixels.shape}, expected {height}x{width} RGB")

    exif, xmp, icc, jfif, carried = _split_metadata(segments)
    return ImageFile(
        pixels=pixels,
        format=FORMAT_ID,
        bit_depth=8,
        icc_profile=icc,
        exif=exif,
        xmp=xmp,
        alpha=None,
        orientation=exif_orientation(exif),
        extra={"jfif": jfif, "segments": tuple(carried)},
    )


def write(image: ImageFile, pixels: np.ndarray, options: OutputConfig, *, consume: bool = False) -> bytes:
    """Encode RGB uint8 ``pixels`` with ``image``'s metadata (``consume``: the caller drops
    ``pixels``, whose channels are then reordered in place instead of in a copy)."""
    params = [
        cv2.IMWRITE_JPEG_QUALITY,
        int(options.jpeg_quality),
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
        _SUBSAMPLING[options.jpeg_subsampling],
    ]
    bgr = rgb_to_bgr(pixels, in_place=consume)
    ok, encoded = cv2.imencode(".jpg", bgr, params)
    if not ok:
        raise RuntimeError("OpenCV failed to encode the JPEG")
    encoded_bytes = memoryview(encoded.reshape(-1))  # no copy; joined once below
    # Keep the encoder's tables, frame and scan; replace its APPn segments with ours.
    body_offset = _end_of_leading_app_segments(encoded_bytes)

    parts: list[bytes | memoryview] = [_SOI]
    jfif = image.extra.get("jfif")
    if jfif:
        parts.append(_segment(_APP0, jfif))
    if image.exif:
        exif = bytes(image.exif)
        parts.append(_segment(_APP1, exif if exif.startswith(_EXIF_HEADER) else _EXIF_HEADER + exif))
    if image.xmp:
        parts.append(_segment(_APP1, _XMP_HEADER + bytes(image.xmp)))
    if image.icc_profile:
        parts.extend(_icc_segments(bytes(image.icc_profile)))
    parts.extend(_segment(marker, payload) for marker, payload in image.extra.get("segments", ()))
    parts.append(encoded_bytes[body_offset:])
    return b"".join(parts)


def _pixel_stream(data: bytes, segments: list[Segment], sos_offset: int) -> bytes:
    """The file without its metadata segments: what libjpeg needs to decode the pixels.

    Metadata is parsed (and carried) here, so a damaged ICC chunk or an odd JFIF
    version must not count as corrupt image data in the strict decoder. The Adobe APP14
    segment stays: it says whether the channels are RGB or YCbCr.
    """
    kept = [
        _segment(marker, payload)
        for marker, payload in segments
        if not (_APP0 <= marker <= _APP15 or marker == _COM) or (marker == _APP14 and payload.startswith(b"Adobe"))
    ]
    return b"".join([_SOI, *kept, data[sos_offset:]])


def _decode(data: bytes) -> np.ndarray:
    # libjpeg only warns about corrupt entropy data ("premature end of data segment",
    # "extraneous bytes before marker") and fills the rest grey; OpenCV and Pillow pass
    # such a photo on as good. simplejpeg's strict mode turns the warning into an error.
    try:
        return simplejpeg.decode_jpeg(
            data, colorspace="RGB", fastdct=False, fastupsample=False, strict=True
        )
    except ValueError as exc:
        raise CorruptImage(f"JPEG image data is corrupt ({exc}); the file was damaged") from None


def _header_segments(data: bytes) -> tuple[list[Segment], int]:
    """The (marker, payload) segments before the first scan, and the scan's offset."""
    if data[:2] != _SOI:
        raise CorruptImage("not a JPEG (no start-of-image marker)")
    segments: list[Segment] = []
    pos, size = 2, len(data)
    while True:
        if pos + 2 > size:
            raise CorruptImage("JPEG is truncated inside its header")
        if data[pos] != 0xFF:
            raise CorruptImage(f"JPEG header is damaged (no marker at byte {pos})")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker == 0xD9:
            raise CorruptImage("JPEG has no image data (end marker before any scan)")
        if pos + 4 > size:
            raise CorruptImage("JPEG is truncated inside its header")
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2 or pos + 2 + length > size:
            raise CorruptImage("JPEG is truncated inside its header")
        if marker == _SOS:
            return segments, pos
        segments.append((marker, data[pos + 4 : pos + 2 + length]))
        pos += 2 + length


def _end_of_leading_app_segments(data: bytes | memoryview) -> int:
    """Offset of the first segment after SOI that is not APPn/COM (encoder output)."""
    pos = 2
    while data[pos] == 0xFF and (_APP0 <= data[pos + 1] <= _APP15 or data[pos + 1] == _COM):
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return pos


def _check_frame(segments: list[Segment]) -> tuple[int, int]:
    """(width, height) of a JPEG we can decode; refuses every other kind."""
    for marker, payload in segments:
        if marker in _SOF_REFUSED:
            kind = _SOF_REFUSED[marker]
            raise UnsupportedFormat(f"{kind} JPEG is not supported; export a baseline RGB JPEG")
        if marker not in _SOF_DECODABLE:
            continue
        if len(payload) < 6:
            raise CorruptImage("JPEG frame header is damaged")
        precision = payload[0]
        height = int.from_bytes(payload[1:3], "big")
        width = int.from_bytes(payload[3:5], "big")
        components = payload[5]
        if precision != 8:
            raise UnsupportedFormat(f"{precision}-bit JPEG is not supported; export an 8-bit RGB JPEG")
        if components == 1:
            raise UnsupportedFormat("greyscale JPEG is not supported; export RGB")
        if components == 4:
            raise UnsupportedFormat("CMYK JPEG is not supported; export RGB")
        if components != 3:
            raise UnsupportedFormat(f"JPEG with {components} colour components is not supported; export RGB")
        if height == 0:
            raise UnsupportedFormat("JPEG without a height in its frame header (DNL) is not supported")
        return width, height
    raise CorruptImage("JPEG has no frame header")


def _split_metadata(
    segments: list[Segment],
) -> tuple[bytes | None, bytes | None, bytes | None, bytes | None, list[Segment]]:
    """(exif, xmp, icc, jfif, carried) from the header segments."""
    exif = xmp = jfif = None
    icc_chunks: list[Segment] = []
    carried: list[Segment] = []
    for marker, payload in segments:
        if not (_APP0 <= marker <= _APP15 or marker == _COM):
            continue  # tables and frame: the encoder writes its own
        if marker == _APP0:
            if jfif is None and payload.startswith(_JFIF_HEADER) and len(payload) >= _JFIF_LENGTH - 2:
                jfif = payload[: _JFIF_LENGTH - 2] + b"\x00\x00"
            continue  # JFXX thumbnails and duplicate JFIF headers are dropped
        if marker == _APP1 and exif is None and payload.startswith(_EXIF_HEADER):
            exif = payload[len(_EXIF_HEADER) :]
        elif marker == _APP1 and xmp is None and payload.startswith(_XMP_HEADER):
            xmp = payload[len(_XMP_HEADER) :]
        elif marker == _APP2 and payload.startswith(_ICC_HEADER):
            icc_chunks.append((marker, payload))
        elif marker == _APP2 and payload.startswith(b"MPF\x00"):
            continue  # its offsets point at images the output does not have
        elif marker == _APP14 and payload.startswith(b"Adobe"):
            continue  # describes the original's colour transform, not ours
        else:
            carried.append((marker, payload))
    icc = _assemble_icc(icc_chunks)
    if icc_chunks and icc is None:
        log.warning("jpeg_icc_malformed", chunks=len(icc_chunks))
        carried.extend(icc_chunks)  # pass the damaged profile through untouched
    return exif, xmp, icc, jfif, carried


def _assemble_icc(chunks: list[Segment]) -> bytes | None:
    if not chunks:
        return None
    header = len(_ICC_HEADER)
    numbered = sorted((payload[header], payload[header + 1], payload) for _m, payload in chunks)
    count = numbered[0][1]
    numbers_ok = [seq for seq, _c, _p in numbered] == list(range(1, count + 1))
    if not numbers_ok or any(c != count for _s, c, _p in numbered):
        return None
    return b"".join(payload[header + 2 :] for _s, _c, payload in numbered)


def _icc_segments(icc: bytes) -> list[bytes]:
    pieces = [icc[i : i + _MAX_ICC_CHUNK] for i in range(0, len(icc), _MAX_ICC_CHUNK)]
    if len(pieces) > 255:
        raise ValueError("ICC profile too large for JPEG (more than 255 segments)")
    return [
        _segment(_APP2, _ICC_HEADER + bytes([number, len(pieces)]) + piece)
        for number, piece in enumerate(pieces, start=1)
    ]


def _segment(marker: int, payload: bytes) -> bytes:
    if len(payload) > _MAX_PAYLOAD:
        raise ValueError(f"JPEG segment 0x{marker:02X} payload too long ({len(payload)} bytes)")
    return b"\xff" + bytes([marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


register_format(FORMAT_ID, read, write, accept)
register_extensions(FORMAT_ID, (".jpg", ".jpeg"))
