"""Image I/O: pixels, bit depth and metadata survive a read/encode round trip; bad
inputs fail with the right exception and a readable reason.

Fixtures are written with independent tools where possible (Pillow for JPEG and 8-bit
TIFF with EXIF sub-IFDs, tifffile for TIFF, a minimal PNG encoder below for 16-bit PNG,
since Pillow cannot write 16-bit RGB), and outputs are checked with those tools too.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, ImageFile as PilImageFile, JpegImagePlugin, TiffImagePlugin
from skimage.data import astronaut

from skinretouch.config import OutputConfig
from skinretouch.errors import CorruptImage, UnsupportedFormat
from skinretouch.imageio import (
    decode_image,
    encode_image,
    exif_orientation,
    from_float,
    from_float_consuming,
    read_image,
    supported_extensions,
    to_float,
    write_image,
)

XMP = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="4"/>'
    b'</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)
OPTIONS = OutputConfig()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real photo, cropped to a non-square grid so any rotation changes its shape."""
    return np.ascontiguousarray(astronaut()[:, :384])


@pytest.fixture(scope="module")
def icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _exif_app1(orientation: int = 6) -> bytes:
    """An EXIF block as Pillow writes it into JPEG (with the ``Exif\\0\\0`` header)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"
    exif[0x0110] = "Model X"
    exif.get_ifd(0x8769)[0x829A] = 0.004  # ExposureTime
    return exif.tobytes()


def _psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(peak**2 / mse))


def _jpeg(pixels: np.ndarray, **save_args) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", **save_args)
    return buffer.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", len(payload), kind) + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png(pixels: np.ndarray, alpha: np.ndarray | None = None, chunks: tuple = ()) -> bytes:
    """A minimal PNG encoder (filter 0, one IDAT), independent of libpng/OpenCV."""
    planes = pixels if alpha is None else np.dstack([pixels, alpha])
    height, width, channels = planes.shape
    depth = 8 * planes.dtype.itemsize
    rows = planes.astype(planes.dtype.newbyteorder(">")).reshape(height, -1).view(np.uint8)
    raw = np.hstack([np.zeros((height, 1), np.uint8), rows]).tobytes()
    colour_type = 2 if channels == 3 else 6
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + b"".join(_png_chunk(kind, payload) for kind, payload in chunks)
        + _png_chunk(b"IDAT", zlib.compress(raw, 1))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk_types(data: bytes) -> list[bytes]:
    kinds, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        kinds.append(kind)
        pos += 12 + length
    return kinds


def _tiff(pixels: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels, **kwargs)
    return buffer.getvalue()


# --- JPEG ---------------------------------------------------------------------------


def test_jpeg_round_trip_keeps_exif_icc_xmp_byte_for_byte_and_the_stored_grid(tmp_path, photo, icc):
    source = tmp_path / "IMG_0001.JPG"
    exif_app1 = _exif_app1(orientation=6)
    source.write_bytes(_jpeg(photo, quality=95, icc_profile=icc, exif=exif_app1, xmp=XMP, dpi=(300, 300)))

    image = read_image(source)
    assert image.format == "JPEG" and image.bit_depth == 8
    assert image.pixels.shape == photo.shape, "orientation 6 must not rotate the stored grid"
    assert image.pixels.dtype == np.uint8
    assert image.orientation == 6
    assert image.exif == exif_app1[6:] and image.exif[:4] in (b"II*\x00", b"MM\x00*")
    assert image.icc_profile == icc
    assert image.xmp == XMP
    assert image.alpha is None
    assert _psnr(image.pixels, photo) > 35  # the decode is the photo, not something else

    encoded = encode_image(image, image.pixels, options=OPTIONS)
    again = decode_image(encoded)
    assert (again.exif, again.icc_profile, again.xmp) == (image.exif, icc, XMP)
    assert again.pixels.shape == photo.shape and again.orientation == 6

    with Image.open(io.BytesIO(encoded)) as written, Image.open(source) as original:
        assert written.size == original.size == (384, 512)
        assert written.info["exif"] == original.info["exif"]
        assert written.info["icc_profile"] == icc
        assert written.info["xmp"] == XMP
        assert written.info["dpi"] == (300, 300)
        assert written.getexif()[0x0112] == 6
        assert written.getexif().get_ifd(0x8769)[0x829A] == pytest.approx(0.004)


def test_jpeg_carries_other_segments_and_drops_stale_ones(photo):
    plain = _jpeg(photo[:64, :64], quality=90, comment=b"shot for the catalogue")
    iptc = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0b\x1c\x02\x05\x00\x06Portrt\x00"
    extended_xmp = b"http://ns.adobe.com/xmp/extension/\x00" + b"0" * 32 + b"\x00\x00\x00\x05\x00\x00\x00\x00<x/>"
    mpf = b"MPF\x00II*\x00\x08\x00\x00\x00"

    def segment(marker: int, payload: bytes) -> bytes:
        return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload

    source = plain[:2] + segment(0xED, iptc) + segment(0xE1, extended_xmp) + segment(0xE2, mpf) + plain[2:]
    image = decode_image(source)
    encoded = encode_image(image, image.pixels, options=OPTIONS)
    assert segment(0xED, iptc) in encoded
    assert segment(0xE1, extended_xmp) in encoded
    assert b"shot for the catalogue" in encoded
    assert mpf not in encoded, "the multi-picture index would point at images that are gone"
    assert decode_image(encoded).extra["segments"] == image.extra["segments"]


@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:2", "4:2:0"])
def test_jpeg_encoder_follows_options(photo, subsampling):
    image = decode_image(_jpeg(photo, quality=95, subsampling=0))
    high = encode_image(image, image.pixels, options=OutputConfig(jpeg_quality=95, jpeg_subsampling=subsampling))
    low = encode_image(image, image.pixels, options=OutputConfig(jpeg_quality=60, jpeg_subsampling=subsampling))
    with Image.open(io.BytesIO(high)) as written:
        assert JpegImagePlugin.get_sampling(written) == {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}[subsampling]
    assert len(low) < len(high)
    assert _psnr(decode_image(low).pixels, image.pixels) < _psnr(decode_image(high).pixels, image.pixels)


@pytest.mark.parametrize(
    ("source_quality", "source_subsampling", "bound_db"),
    [
        # measured on this photo with libjpeg-turbo 3.1: 59.7, 48.6 and 46.1 dB; the
        # bounds leave 3-4 dB for other builds and stay above visible loss (~40 dB)
        (95, 0, 55.0),
        (95, 2, 45.0),
        (92, 1, 43.0),
    ],
    ids=["q95-444-source", "q95-420-source", "q92-422-source"],
)
def test_jpeg_reencode_at_quality_95_444_has_no_visible_loss(photo, source_quality, source_subsampling, bound_db):
    """decode -> encode (q95, 4:4:4, the defaults) -> decode of a real photo."""
    first = decode_image(_jpeg(photo, quality=source_quality, subsampling=source_subsampling))
    encoded = encode_image(first, first.pixels, options=OutputConfig(jpeg_quality=95, jpeg_subsampling="4:4:4"))
    second = decode_image(encoded)
    assert second.pixels.shape == first.pixels.shape
    assert _psnr(second.pixels, first.pixels) >= bound_db


# --- PNG ----------------------------------------------------------------------------


@pytest.mark.parametrize("with_alpha", [False, True], ids=["rgb", "rgba"])
@pytest.mark.parametrize("bit_depth", [8, 16])
def test_png_round_trip_is_pixel_identical_with_metadata(photo, icc, bit_depth, with_alpha):
    rng = np.random.default_rng(bit_depth)
    if bit_depth == 16:
        # odd 16-bit values: a reader that drops to 8 bits cannot reproduce them
        pixels = (photo.astype(np.uint16) * 257 + rng.integers(0, 200, photo.shape)).astype(np.uint16)
    else:
        pixels = photo.copy()
    dtype = pixels.dtype
    alpha = rng.integers(0, np.iinfo(dtype).max, photo.shape[:2], endpoint=True).astype(dtype) if with_alpha else None
    exif = _exif_app1(orientation=8)[6:]
    chunks = (
        (b"iCCP", b"sRGB built-in\x00\x00" + zlib.compress(icc)),
        (b"pHYs", struct.pack(">IIB", 11811, 11811, 1)),  # 300 dpi
        (b"tEXt", b"Author\x00A. Photographer"),
        (b"eXIf", exif),
        (b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + XMP),
        (b"prVt", b"private, safe to copy"),
        (b"prVT", b"private, unsafe to copy"),
    )
    image = decode_image(_png(pixels, alpha, chunks))
    assert image.format == "PNG" and image.bit_depth == bit_depth
    assert image.pixels.dtype == dtype and np.array_equal(image.pixels, pixels)
    assert (image.alpha is None) == (not with_alpha)
    if with_alpha:
        assert image.alpha.dtype == dtype and np.array_equal(image.alpha, alpha)
    assert (image.icc_profile, image.exif, image.xmp, image.orientation) == (icc, exif, XMP, 8)

    encoded = encode_image(image, image.pixels, options=OPTIONS)
    again = decode_image(encoded)
    assert np.array_equal(again.pixels, pixels) and again.pixels.dtype == dtype
    if with_alpha:
        assert np.array_equal(again.alpha, alpha)
    assert (again.icc_profile, again.exif, again.xmp) == (icc, exif, XMP)
    assert again.extra["icc_name"] == b"sRGB built-in"
    kinds = _png_chunk_types(encoded)
    assert b"prVt" in kinds and b"prVT" not in kinds, "unknown chunks follow PNG's safe-to-copy rule"
    assert kinds.index(b"iCCP") < kinds.index(b"IDAT") and kinds.index(b"eXIf") < kinds.index(b"IDAT")
    ihdr = encoded[16:29]
    assert ihdr[8] == bit_depth and ihdr[9] == (6 if with_alpha else 2)
    if bit_depth == 8:  # Pillow reads 8-bit PNG faithfully: an independent check
        with Image.open(io.BytesIO(encoded)) as written:
            assert written.mode == ("RGBA" if with_alpha else "RGB")
            assert written.info["icc_profile"] == icc
            assert written.info["exif"].removeprefix(b"Exif\x00\x00") == exif
            assert written.getexif()[0x0112] == 8
            assert written.info["xmp"] == XMP and written.info["Author"] == "A. Photographer"
            assert written.info["dpi"] == pytest.approx((300, 300), abs=0.01)
            assert np.array_equal(np.asarray(written)[..., :3], pixels)


def test_png_rgb_with_transparent_key_colour_stays_rgb(photo):
    trns = (b"tRNS", struct.pack(">HHH", 0, 0, 0))
    image = decode_image(_png(photo, chunks=(trns,)))
    assert image.pixels.shape == photo.shape and image.alpha is None
    assert np.array_equal(image.pixels, photo)
    encoded = encode_image(image, image.pixels, options=OPTIONS)
    assert b"tRNS" in _png_chunk_types(encoded)


# --- TIFF ---------------------------------------------------------------------------


def _has_imagecodecs() -> bool:
    try:
        import imagecodecs  # noqa: F401
    except ImportError:
        return False
    return True


NEEDS_IMAGECODECS = pytest.mark.skipif(not _has_imagecodecs(), reason="LZW needs the imagecodecs package")


@pytest.mark.parametrize("compression", ["none", "zlib", pytest.param("lzw", marks=NEEDS_IMAGECODECS)])
@pytest.mark.parametrize("with_alpha", [False, True], ids=["rgb", "rgba"])
@pytest.mark.parametrize("bit_depth", [8, 16])
def test_tiff_round_trip_keeps_depth_pixels_and_tags(photo, icc, bit_depth, with_alpha, compression):
    pixels = photo.astype(np.uint16) * 257 + 3 if bit_depth == 16 else photo.copy()
    data = np.dstack([pixels, pixels[..., 1]]) if with_alpha else pixels
    source = _tiff(
        data,
        photometric="rgb",
        extrasamples=("unassalpha",) if with_alpha else None,
        compression="zlib",
        iccprofile=icc,
        resolution=(300, 300),
        resolutionunit="inch",
        software="Scanner 2.1",
        metadata=None,
        extratags=[
            (274, 3, 1, 6, True),  # Orientation
            (700, 1, len(XMP), XMP, True),
            (33432, 2, 0, "(c) A. Photographer", True),
        ],
    )
    image = decode_image(source)
    assert image.format == "TIFF" and image.bit_depth == bit_depth
    assert image.pixels.dtype == pixels.dtype and np.array_equal(image.pixels, pixels)
    assert image.orientation == 6 and image.exif is None
    assert (image.icc_profile, image.xmp) == (icc, XMP)
    if with_alpha:
        assert np.array_equal(image.alpha, pixels[..., 1])

    encoded = encode_image(image, image.pixels, options=OutputConfig(tiff_compression=compression))
    with tifffile.TiffFile(io.BytesIO(encoded)) as tif:
        page = tif.pages[0]
        stored = page.asarray()
        tags = page.tags
        assert stored.dtype == pixels.dtype and np.array_equal(stored[..., :3], pixels)
        if with_alpha:
            assert np.array_equal(stored[..., 3], pixels[..., 1]) and page.extrasamples == (2,)
        assert tags[34675].value == icc
        assert bytes(tags[700].value) == XMP
        assert tags[274].value == 6
        assert tags[282].value == (300, 1) and tags[283].value == (300, 1) and tags[296].value == 2
        assert tags[305].value == "Scanner 2.1" and tags[33432].value == "(c) A. Photographer"
        assert int(page.compression) == {"none": 1, "zlib": 8, "lzw": 5}[compression]
    again = decode_image(encoded)
    assert again.extra == image.extra


def test_tiff_keeps_exif_and_gps_sub_ifds(photo):
    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[0x0112] = 6
    info[0x010F] = "TestCam"
    info[0x8769] = {
        0x829A: 0.004,
        0x8827: 400,
        0x9003: "2024:01:02 03:04:05",
        0x927C: b"MAKERNOTE" * 5,
        0xA005: {1: "R98", 2: b"0100"},  # Interoperability IFD, nested in the EXIF IFD
    }
    info[0x8825] = {1: "N", 2: (52.0, 22.0, 10.5)}
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "TIFF", tiffinfo=info)

    image = decode_image(buffer.getvalue())
    assert image.orientation == 6
    encoded = encode_image(image, image.pixels, options=OutputConfig(tiff_compression="zlib"))
    with Image.open(io.BytesIO(encoded)) as written, Image.open(buffer) as original:
        for ifd in (0x8825, 0xA005):
            assert written.getexif().get_ifd(ifd) == original.getexif().get_ifd(ifd) != {}
        exif_written = dict(written.getexif().get_ifd(0x8769))
        exif_original = dict(original.getexif().get_ifd(0x8769))
        exif_written.pop(0xA005), exif_original.pop(0xA005)  # offsets differ, content checked above
        assert exif_written == exif_original and len(exif_written) == 4
        assert written.getexif()[0x010F] == "TestCam"
    with tifffile.TiffFile(io.BytesIO(encoded)) as tif:
        assert np.array_equal(tif.pages[0].asarray(), photo), "stored grid, not rotated"


def test_tiff_planar_and_big_endian_inputs_read_as_rgb(photo):
    planar = decode_image(_tiff(np.ascontiguousarray(photo.transpose(2, 0, 1)), photometric="rgb", planarconfig="separate"))
    assert np.array_equal(planar.pixels, photo)
    deep = photo.astype(np.uint16) * 257
    big_endian = decode_image(_tiff(deep, photometric="rgb", byteorder=">"))
    assert np.array_equal(big_endian.pixels, deep) and big_endian.pixels.dtype.isnative
    encoded = encode_image(big_endian, big_endian.pixels, options=OPTIONS)
    assert encoded[:2] == b"MM" and np.array_equal(tifffile.imread(io.BytesIO(encoded)), deep)


# --- bad inputs ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_inputs(photo: np.ndarray) -> dict[str, tuple[bytes, type, str]]:
    """name -> (file content, expected exception, fragment of its message)."""
    jpeg = _jpeg(photo, quality=90)
    progressive = _jpeg(photo, quality=90, progressive=True)
    png = _png(photo)
    tiff = _tiff(photo, photometric="rgb")
    multi = io.BytesIO()
    with tifffile.TiffWriter(multi) as writer:
        writer.write(photo, photometric="rgb")
        writer.write(photo, photometric="rgb")
    pil = Image.fromarray(photo)

    def saved(image: Image.Image, fmt: str) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, fmt)
        return buffer.getvalue()

    png_bomb = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0))
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + _png_chunk(b"IEND", b"")
    )
    sof = jpeg.index(b"\xff\xc0")
    jpeg_bomb = jpeg[: sof + 5] + struct.pack(">HH", 30000, 30000) + jpeg[sof + 9 :]
    return {
        "empty": (b"", CorruptImage, "empty"),
        "text named jpg": (b"this is not a photo\n", UnsupportedFormat, "text file"),
        "truncated jpeg": (jpeg[: len(jpeg) // 2], CorruptImage, "truncated"),
        "truncated progressive jpeg": (progressive[: len(progressive) * 3 // 4], CorruptImage, "truncated"),
        "jpeg header only": (jpeg[:200], CorruptImage, "truncated"),
        "truncated png": (png[: len(png) // 2], CorruptImage, "truncated"),
        "truncated tiff": (tiff[: len(tiff) // 2], CorruptImage, "truncated"),
        "greyscale jpeg": (saved(pil.convert("L"), "JPEG"), UnsupportedFormat, "greyscale JPEG"),
        "cmyk jpeg": (saved(pil.convert("CMYK"), "JPEG"), UnsupportedFormat, "CMYK JPEG is not supported; export RGB"),
        "palette png": (saved(pil.convert("P"), "PNG"), UnsupportedFormat, "palette"),
        "greyscale png": (saved(pil.convert("L"), "PNG"), UnsupportedFormat, "greyscale PNG"),
        "greyscale tiff": (_tiff(photo[..., 0], photometric="minisblack"), UnsupportedFormat, "greyscale TIFF"),
        "cmyk tiff": (_tiff(np.dstack([photo, photo[..., 0]]), photometric="separated"), UnsupportedFormat, "CMYK TIFF"),
        "float tiff": (_tiff(photo.astype(np.float32), photometric="rgb"), UnsupportedFormat, "floating-point"),
        "multi-page tiff": (multi.getvalue(), UnsupportedFormat, "multi-page"),
        "gif": (saved(pil, "GIF"), UnsupportedFormat, "GIF is not supported"),
        "webp": (saved(pil, "WEBP"), UnsupportedFormat, "WebP is not supported"),
        "png bomb": (png_bomb, UnsupportedFormat, "limit"),
        "jpeg bomb": (jpeg_bomb, UnsupportedFormat, "limit"),
    }


BAD_INPUT_NAMES = [
    "empty", "text named jpg", "truncated jpeg", "truncated progressive jpeg", "jpeg header only",
    "truncated png", "truncated tiff", "greyscale jpeg", "cmyk jpeg", "palette png", "greyscale png",
    "greyscale tiff", "cmyk tiff", "float tiff", "multi-page tiff", "gif", "webp", "png bomb", "jpeg bomb",
]  # fmt: skip


@pytest.mark.parametrize("name", BAD_INPUT_NAMES)
def test_bad_input_gives_the_right_error_with_a_readable_reason(tmp_path, bad_inputs, name):
    data, error, fragment = bad_inputs[name]
    path = tmp_path / "input.jpg"  # the name must not matter
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. Pillow's DecompressionBombWarning is no answer
        with pytest.raises(error) as caught:
            read_image(path)
    message = str(caught.value)
    assert fragment in message
    assert 10 < len(message) < 200 and "\n" not in message


def test_truncated_jpeg_is_refused_even_when_pillow_would_load_it(monkeypatch, photo):
    monkeypatch.setattr(PilImageFile, "LOAD_TRUNCATED_IMAGES", True)
    jpeg = _jpeg(photo, quality=90)
    with pytest.raises(CorruptImage, match="truncated"):
        decode_image(jpeg[: len(jpeg) * 9 // 10])


def test_pixel_limit_is_configurable(photo):
    jpeg = _jpeg(photo, quality=90)
    with pytest.raises(UnsupportedFormat, match="limit"):
        decode_image(jpeg, max_pixels=photo.shape[0] * photo.shape[1] - 1)
    assert decode_image(jpeg, max_pixels=photo.shape[0] * photo.shape[1]).pixels.shape == photo.shape


def test_format_is_sniffed_from_content_not_name(tmp_path, photo):
    path = tmp_path / "really_a_png.jpg"
    path.write_bytes(_png(photo))
    image = read_image(path)
    assert image.format == "PNG" and np.array_equal(image.pixels, photo)


def test_caller_may_pass_the_bytes_it_already_read(tmp_path, photo):
    data = _png(photo)
    image = read_image(tmp_path / "never_opened.png", data=data)
    assert np.array_equal(image.pixels, photo)


def test_missing_file_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "absent.jpg")


# --- encode/write API ---------------------------------------------------------------


def test_encode_rejects_pixels_that_do_not_match_the_original(photo):
    image = decode_image(_png(photo))
    with pytest.raises(ValueError, match="like the original"):
        encode_image(image, photo[:-1], options=OPTIONS)
    with pytest.raises(ValueError, match="like the original"):
        encode_image(image, photo.astype(np.uint16), options=OPTIONS)


def test_write_image_is_atomic_and_equals_encode(tmp_path, photo):
    image = decode_image(_png(photo))
    changed = photo.copy()
    changed[10:20, 10:20] = 0
    target = tmp_path / "out.retouched.png"
    write_image(target, image, changed, options=OPTIONS)
    assert target.read_bytes() == encode_image(image, changed, options=OPTIONS)
    assert np.array_equal(read_image(target).pixels, changed)
    with pytest.raises(ValueError):
        write_image(tmp_path / "bad.png", image, changed[:5], options=OPTIONS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.retouched.png"]


def test_supported_extensions():
    assert supported_extensions() == frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff"})


# --- float conversion ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_float_conversion_round_trips_every_value(dtype):
    values = np.arange(np.iinfo(dtype).max + 1, dtype=dtype)
    pixels = np.resize(values, (len(values) // 3 + 1, 3))[:, None, :].repeat(2, axis=1)
    as_float = to_float(pixels)
    assert as_float.dtype == np.float32 and as_float.shape == pixels.shape
    assert as_float.min() == 0.0 and as_float.max() == 1.0
    back = from_float(as_float, 8 * np.dtype(dtype).itemsize)
    assert back.dtype == dtype and np.array_equal(back, pixels)


@pytest.mark.parametrize("bit_depth", [8, 16])
@pytest.mark.parametrize("shape", [(1, 1, 3), (5, 3, 3), (130, 77, 3), (333, 101, 3)])
def test_from_float_consuming_gives_from_float_values(shape, bit_depth):
    rng = np.random.default_rng(shape[0])
    values = (rng.random(shape, np.float32) * 1.2 - 0.1).astype(np.float32)
    values.flat[::97] = np.nan
    expected = from_float(values, bit_depth)
    owned = values.copy()
    converted = from_float_consuming(owned, bit_depth)  # the only reference: converted in place
    del owned
    assert converted.dtype == expected.dtype and converted.shape == expected.shape
    assert np.array_equal(converted, expected)
    shared = values.copy()
    view = shared[:1]  # another reference: plain from_float, ``shared`` left as it was
    assert np.array_equal(from_float_consuming(shared, bit_depth), expected)
    assert np.array_equal(shared, values, equal_nan=True) and view.base is shared


@pytest.mark.parametrize("suffix", ["jpeg", "png"])
def test_encode_consuming_gives_the_same_bytes(suffix):
    pixels = astronaut()[:96, :128].copy()
    data = _jpeg(pixels) if suffix == "jpeg" else _png(pixels)
    image = decode_image(data)
    expected = encode_image(image, pixels, options=OutputConfig())
    assert encode_image(image, pixels.copy(), options=OutputConfig(), consume=True) == expected


def test_from_float_rounds_and_clips():
    values = np.array([[[-0.5, 0.0, 0.4 / 255], [0.6 / 255, 1.0, 1.7], [np.nan, 0.5, 254.6 / 255]]], np.float32)
    assert from_float(values, 8).tolist() == [[[0, 0, 0], [1, 255, 255], [0, 128, 255]]]
    assert from_float(values, 16)[0, 1].tolist() == [154, 65535, 65535]  # 0.6 / 255 * 65535 = 154.2
    assert from_float(values.astype(np.float64), 8).dtype == np.uint8
    with pytest.raises(ValueError):
        from_float(values, 12)
    with pytest.raises(TypeError):
        to_float(values)


# --- orientation --------------------------------------------------------------------


@pytest.mark.parametrize("byte_order", ["<", ">"])
def test_exif_orientation_reads_ifd0_in_either_byte_order(byte_order):
    magic = b"II*\x00" if byte_order == "<" else b"MM\x00*"
    entries = [(0x010F, 2, 4, b"Cam\x00"), (0x0112, 3, 1, struct.pack(byte_order + "H", 3) + b"\x00\x00")]
    block = magic + struct.pack(byte_order + "I", 8) + struct.pack(byte_order + "H", len(entries))
    for tag, kind, count, value in entries:
        block += struct.pack(byte_order + "HHI", tag, kind, count) + value
    assert exif_orientation(block + b"\x00" * 4) == 3
    assert exif_orientation(None) == 1
    assert exif_orientation(block[:12]) == 1  # cut short: no exception, no orientation
    assert exif_orientation(b"garbage that is not exif") == 1


def test_jpeg_writer_does_not_double_the_exif_header(photo):
    image = decode_image(_jpeg(photo[:32, :32], exif=_exif_app1(3)))
    image.exif = b"Exif\x00\x00" + image.exif
    again = decode_image(encode_image(image, image.pixels, options=OPTIONS))
    assert again.exif == image.exif[6:] and again.orientation == 3


def test_png_unreadable_or_oversized_icc_is_carried_untouched(photo, monkeypatch):
    from skinretouch.imageio import png as png_module

    monkeypatch.setattr(png_module, "_MAX_INFLATED_METADATA", 4096)
    oversized = (b"iCCP", b"big\x00\x00" + zlib.compress(b"\x00" * 10_000))
    image = decode_image(_png(photo[:16, :16], chunks=(oversized,)))
    assert image.icc_profile is None, "a profile inflating past the guard is not expanded"
    encoded = encode_image(image, image.pixels, options=OPTIONS)
    assert _png_chunk(*oversized) in encoded, "nor dropped: colours must not silently change"

    damaged = (b"iCCP", b"cut\x00\x00" + zlib.compress(b"profile" * 100)[:-6])
    image = decode_image(_png(photo[:16, :16], chunks=(damaged,)))
    assert image.icc_profile is None
    assert _png_chunk(*damaged) in encode_image(image, image.pixels, options=OPTIONS)


def test_jpeg_multi_segment_icc_is_reassembled_and_split_again(photo):
    big_profile = np.random.default_rng(1).integers(0, 256, 150_000, dtype=np.uint8).tobytes()
    image = decode_image(_jpeg(photo[:32, :32], icc_profile=big_profile))
    assert image.icc_profile == big_profile
    encoded = encode_image(image, image.pixels, options=OPTIONS)
    assert encoded.count(b"ICC_PROFILE\x00") == 3
    with Image.open(io.BytesIO(encoded)) as written:
        assert written.info["icc_profile"] == big_profile


def test_jpeg_incomplete_icc_is_carried_untouched(photo):
    plain = _jpeg(photo[:32, :32])
    lone_chunk = b"ICC_PROFILE\x00\x02\x02" + b"second half only"
    segment = b"\xff\xe2" + (len(lone_chunk) + 2).to_bytes(2, "big") + lone_chunk
    image = decode_image(plain[:2] + segment + plain[2:])
    assert image.icc_profile is None
    assert segment in encode_image(image, image.pixels, options=OPTIONS)


def test_tiff_without_lzw_codec_reads_with_a_reason_and_writes_zlib(photo, monkeypatch):
    from skinretouch.imageio import tiff as tiff_module

    source = decode_image(_tiff(photo, photometric="rgb"))
    monkeypatch.setattr(tiff_module, "_codec_available", lambda compression, *, encode: compression in (1, 8))
    encoded = encode_image(source, source.pixels, options=OutputConfig(tiff_compression="lzw"))
    with tifffile.TiffFile(io.BytesIO(encoded)) as tif:
        assert int(tif.pages[0].compression) == 8, "lossless zlib instead of failing the photo"
        assert np.array_equal(tif.pages[0].asarray(), photo)
    lzw_source = io.BytesIO()
    Image.fromarray(photo).save(lzw_source, "TIFF", compression="tiff_lzw")
    with pytest.raises(UnsupportedFormat, match="LZW-compressed TIFF needs the 'imagecodecs' package"):
        decode_image(lzw_source.getvalue())
