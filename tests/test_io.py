"""read_image on every kind of file a user may hand over, good and bad (all made in tmp_path)."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from occparse.runtime.io import (
    CorruptImageError,
    EmptyFileError,
    ImageInputError,
    ImageTooLargeError,
    ImageTooSmallError,
    MissingFileError,
    NotAnImageError,
    UnreadableFileError,
    _orient,
    is_gray_rgb,
    read_image,
    to_gray3,
)


def _colourful(h: int = 64, w: int = 80) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w]
    return np.dstack([xs * 255 // (w - 1), ys * 255 // (h - 1), 255 - xs * 255 // (w - 1)]).astype(np.uint8)


def _gray(h: int = 64, w: int = 80) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w]
    return ((xs * 3 + ys * 2) % 256).astype(np.uint8)


def test_16bit_png_scaled_to_8bit(tmp_path):
    arr = np.zeros((40, 50), np.uint16)
    arr[:, :10] = 0
    arr[:, 10:20] = 257 * 100  # -> 100
    arr[:, 20:30] = 65535  # -> 255
    arr[:, 30:40] = 1000  # 1000/257 = 3.89 -> 4
    arr[:, 40:] = 257 * 200 + 128  # 200.498 -> 200
    path = tmp_path / "deep.png"
    Image.fromarray(arr).save(path)
    assert Image.open(path).mode == "I;16"
    im = read_image(path)
    assert im.rgb.dtype == np.uint8 and im.rgb.shape == (40, 50, 3)
    assert im.source_mode == "I;16" and im.is_gray
    assert im.rgb[0, [0, 10, 20, 30, 40], 0].tolist() == [0, 100, 255, 4, 200]
    assert (im.rgb[..., 0] == im.rgb[..., 1]).all() and (im.rgb[..., 1] == im.rgb[..., 2]).all()


@pytest.mark.parametrize("ext", ["tif", "ppm", "png"])
@pytest.mark.parametrize("shift", [2, 4])  # 10- and 12-bit data in 16-bit samples, as cameras and scanners write
def test_16bit_colour_files_scaled_by_their_significant_bits(tmp_path, ext, shift):
    """Pillow keeps only the high byte of 16-bit colour samples (12-bit data read max 15): every format must be
    scaled like 16-bit gray files are."""
    rgb = _colourful(96, 120)
    path = tmp_path / f"c.{ext}"
    assert cv2.imwrite(str(path), rgb[..., ::-1].astype(np.uint16) << shift)
    im = read_image(path)
    assert im.source_mode == "RGB;16" and not im.is_gray
    assert np.abs(im.rgb.astype(np.float64) - rgb).mean() < 1.0
    assert im.rgb.max() >= 250


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def test_16bit_colour_file_keeps_its_exif_orientation(tmp_path):
    rgb = _colourful(64, 96)
    path = tmp_path / "rot.png"
    cv2.imwrite(str(path), rgb[..., ::-1].astype(np.uint16) << 4)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: the viewer rotates 90 degrees clockwise
    raw = exif.tobytes()
    raw = raw[6:] if raw.startswith(b"Exif\x00\x00") else raw
    data = path.read_bytes()
    end_ihdr = 8 + 8 + 13 + 4
    path.write_bytes(data[:end_ihdr] + _png_chunk(b"eXIf", raw) + data[end_ihdr:])
    im = read_image(path)
    assert im.rgb.shape == (96, 64, 3)
    assert np.abs(im.rgb.astype(np.float64) - np.rot90(rgb, -1)).mean() < 1.0


def _tiff16(rgb16: np.ndarray, orientation: int) -> bytes:
    """A minimal uncompressed, little-endian, 16-bit RGB TIFF with an Orientation tag (OpenCV writes none)."""
    h, w = rgb16.shape[:2]
    pixels = rgb16.astype("<u2").tobytes()
    entries = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, 3, None), (259, 3, 1, 1), (262, 3, 1, 2),
               (273, 4, 1, None), (274, 3, 1, orientation), (277, 3, 1, 3), (278, 3, 1, h),
               (279, 4, 1, len(pixels)), (284, 3, 1, 1)]
    ifd_at = 8
    extra_at = ifd_at + 2 + 12 * len(entries) + 4  # BitsPerSample's three values, then the pixels
    pixels_at = extra_at + 6
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 258:
            ifd += struct.pack("<HHII", tag, kind, count, extra_at)
        elif tag == 273:
            ifd += struct.pack("<HHII", tag, kind, count, pixels_at)
        elif kind == 3:
            ifd += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            ifd += struct.pack("<HHII", tag, kind, count, value)
    return b"II*\x00" + struct.pack("<I", ifd_at) + ifd + struct.pack("<I", 0) + struct.pack("<HHH", 16, 16, 16) + pixels


@pytest.mark.parametrize("orientation", [1, 3, 5, 6, 7, 8])
def test_16bit_colour_tiff_turned_by_its_orientation_tag(tmp_path, orientation):
    """A non-square 12-bit colour TIFF whose tag turns it a quarter: OpenCV does not decode it as it is, and
    the fallback read Pillow's high byte (max 15, a black picture)."""
    rgb = _colourful(64, 96)
    path = tmp_path / "o.tif"
    path.write_bytes(_tiff16(rgb.astype(np.uint16) << 4, orientation))
    want = np.asarray(ImageOps.exif_transpose(Image.fromarray(rgb).copy()), np.float64) if orientation == 1 else None
    im = read_image(path)
    assert im.source_mode == "RGB;16"
    assert im.rgb.max() >= 250
    assert np.abs(im.rgb.astype(np.float64) - _orient(rgb, orientation)).mean() < 1.0
    if want is not None:
        assert np.abs(im.rgb - want).mean() < 1.0


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow(tmp_path, orientation):
    arr = np.random.default_rng(orientation).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(tmp_path / "o.png", exif=exif.tobytes())
    want = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png")).convert("RGB"))
    assert np.array_equal(_orient(arr, orientation), want)


def test_rgba_composited_on_white(tmp_path):
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[:, :10] = (255, 0, 0, 0)  # fully transparent red -> white
    rgba[:, 10:20] = (0, 0, 255, 255)  # opaque blue
    rgba[:, 20:] = (255, 0, 0, 128)  # half red over white: G = B = 255*(1-128/255) = 127
    path = tmp_path / "cut.png"
    Image.fromarray(rgba, "RGBA").save(path)
    im = read_image(path)
    assert im.source_mode == "RGBA" and im.rgb.shape == (40, 40, 3)
    assert im.rgb[5, 5].tolist() == [255, 255, 255]
    assert im.rgb[5, 15].tolist() == [0, 0, 255]
    r, g, b = im.rgb[5, 30].tolist()
    assert r == 255 and abs(g - 127) <= 1 and abs(b - 127) <= 1
    assert not im.is_gray


def test_palette_png(tmp_path):
    idx = np.zeros((40, 40), np.uint8)
    idx[:, 20:] = 1
    p = Image.fromarray(idx, "L").convert("P")
    p.putpalette([10, 200, 30, 250, 20, 40] + [0] * (256 * 3 - 6))
    path = tmp_path / "pal.png"
    p.save(path)
    assert Image.open(path).mode == "P"
    im = read_image(path)
    assert im.source_mode == "P"
    assert im.rgb[0, 0].tolist() == [10, 200, 30] and im.rgb[0, 39].tolist() == [250, 20, 40]
    assert not im.is_gray


def test_grayscale_l_is_gray(tmp_path):
    path = tmp_path / "g.png"
    Image.fromarray(_gray(), "L").save(path)
    im = read_image(path)
    assert im.is_gray and im.source_mode == "L" and im.rgb.shape == (64, 80, 3)
    assert np.array_equal(im.rgb[..., 0], _gray()) and np.array_equal(im.rgb[..., 2], _gray())


def test_gray_stored_as_rgb_jpeg_is_gray_and_colour_is_not(tmp_path):
    g3 = np.repeat(_gray()[..., None], 3, axis=2)
    gpath, cpath = tmp_path / "g3.jpg", tmp_path / "c.jpg"
    Image.fromarray(g3, "RGB").save(gpath, quality=90)
    Image.fromarray(_colourful(), "RGB").save(cpath, quality=90)
    g, c = read_image(gpath), read_image(cpath)
    assert g.source_mode == "RGB" and g.is_gray
    assert c.source_mode == "RGB" and not c.is_gray
    assert is_gray_rgb(to_gray3(_colourful())) and not is_gray_rgb(_colourful())


def test_exif_orientation_honoured(tmp_path):
    arr = np.full((40, 60, 3), 128, np.uint8)  # stored 60 wide, 40 high
    arr[:15, :15] = (255, 0, 0)  # red block in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "phone.jpg"
    Image.fromarray(arr).save(path, exif=exif, quality=95)
    im = read_image(path)
    assert im.rgb.shape == (60, 40, 3)  # transposed: upright it is 40 wide, 60 high
    # a clockwise turn takes the stored top-left corner to the top-right
    assert im.rgb[5, 34, 0] > 200 and im.rgb[5, 34, 1] < 60
    assert im.rgb[5, 5, 0] < 160 and im.rgb[54, 5, 0] < 160


@pytest.mark.parametrize("fmt,ext", [("TIFF", "tif"), ("WEBP", "webp"), ("BMP", "bmp")])
def test_other_formats(tmp_path, fmt, ext):
    path = tmp_path / f"pic.{ext}"
    src = _colourful()
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    Image.fromarray(src).save(path, fmt, **kwargs)
    im = read_image(path)
    assert im.rgb.shape == src.shape and im.rgb.dtype == np.uint8
    assert np.abs(im.rgb.astype(int) - src).max() <= 2
    assert not im.is_gray and im.width == 80 and im.height == 64


def _make_bad(kind: str, d):
    """Write one kind of bad input into folder ``d`` and return its path."""
    if kind == "nonexistent":
        return d / "absent.jpg"
    if kind == "directory":
        (d / "folder.jpg").mkdir()
        return d / "folder.jpg"
    if kind == "zero-bytes":
        (d / "zero.jpg").write_bytes(b"")
        return d / "zero.jpg"
    if kind == "text-as-jpg":
        (d / "notes.jpg").write_text("this is not a picture\n")
        return d / "notes.jpg"
    if kind == "truncated-jpeg":
        full = d / "full.jpg"
        Image.fromarray(_colourful(128, 128)).save(full, quality=90)
        data = full.read_bytes()
        (d / "cut.jpg").write_bytes(data[: len(data) // 2])
        return d / "cut.jpg"
    if kind == "10x10":
        Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(d / "tiny.png")
        return d / "tiny.png"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind,error,status",
    [
        ("nonexistent", MissingFileError, "missing"),
        ("directory", UnreadableFileError, "unreadable"),
        ("zero-bytes", EmptyFileError, "empty_file"),
        ("text-as-jpg", NotAnImageError, "not_an_image"),
        ("truncated-jpeg", CorruptImageError, "corrupt"),
        ("10x10", ImageTooSmallError, "too_small"),
    ],
)
def test_bad_inputs_raise_typed_errors(tmp_path, kind, error, status):
    path = _make_bad(kind, tmp_path)
    with pytest.raises(error) as info:
        read_image(path)
    assert type(info.value) is error and isinstance(info.value, ImageInputError)
    assert info.value.status == status
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


def test_min_side_is_adjustable(tmp_path):
    path = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(path)
    assert read_image(path, min_side=8).rgb.shape == (10, 12, 3)


@pytest.mark.parametrize("ext", ["gif", "tif"])
def test_multi_frame_files_report_their_frames(tmp_path, ext):
    first, second = Image.fromarray(_colourful()), Image.fromarray(_gray()).convert("RGB")
    path = tmp_path / f"multi.{ext}"
    first.save(path, save_all=True, append_images=[second])
    im = read_image(path)
    assert im.frames == 2
    assert not im.is_gray  # the first frame was read, not the gray second one
    first.save(tmp_path / f"one.{ext}")
    assert read_image(tmp_path / f"one.{ext}").frames == 1


def test_broken_symlink_says_so(tmp_path):
    link = tmp_path / "link.png"
    link.symlink_to(tmp_path / "gone.png")
    with pytest.raises(MissingFileError, match="broken symbolic link") as info:
        read_image(link)
    assert info.value.status == "missing"  # as folder mode and predict call it


def test_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path):
    import os

    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(UnreadableFileError, match="not a regular file") as info:
        read_image(fifo)  # opening it would block until something writes to it
    assert info.value.status == "unreadable"


def test_decompression_bomb_is_too_large(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (300, 300)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # 90,000 pixels > twice the limit: refused as a bomb
    with pytest.raises(ImageTooLargeError, match="too large") as info:
        read_image(path)
    assert info.value.status == "too_large"


def test_too_small_result_reports_the_image_size(tmp_path):
    """width/height said 0x0 while the message said 10x12."""
    from occparse.runtime.pipeline import Estimator, EstimatorOptions

    Image.new("RGB", (10, 12)).save(tmp_path / "tiny.png")
    res = Estimator(EstimatorOptions(use_learned=False)).estimate(tmp_path / "tiny.png")
    assert str(res.status) == "too_small" and (res.width, res.height) == (10, 12)


def test_a_large_picture_below_the_bomb_limit_is_read_without_pillows_warning(tmp_path, monkeypatch):
    import warnings

    path = tmp_path / "large.png"
    Image.new("RGB", (300, 300)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)  # 90,000 pixels: over the limit, under twice it
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the read
        assert read_image(path).rgb.shape == (300, 300, 3)
