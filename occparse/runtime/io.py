"""Read any image file into 8-bit RGB, with typed errors for bad input.

Every entry point of occparse reads images through :func:`read_image`, so that a
16-bit PNG, an RGBA screenshot, a palette GIF-like PNG, a rotated phone JPEG and a
grayscale scan all reach the models as the same thing: an ``H x W x 3`` ``uint8``
array in RGB order, upright. Bad input raises a subclass of :class:`ImageInputError`
whose ``status`` is the short code written in batch output.
"""

from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DataError, InputError

#: Below this side length no face can be measured meaningfully.
MIN_SIDE = 32
#: Mean absolute channel difference (in 8-bit levels) under which a colour file is
#: really a grayscale picture stored as three channels. JPEG chroma noise on such
#: files stays well below 1 level; real colour photos are far above.
GRAY_TOLERANCE = 1.5

Image.MAX_IMAGE_PIXELS = 200_000_000  # well above any photo, still refuses decompression bombs


class ImageInputError(InputError):
    """Base class of every input problem; ``status`` is the code used in batch output."""

    status = "input_error"

    def __init__(self, path: str | Path, detail: str, size: tuple[int, int] = (0, 0)):
        self.path = str(path)
        self.detail = detail
        self.size = size  # (height, width) of the image when it was read (too small), else (0, 0): results report it
        super().__init__(f"{self.path}: {detail}")


class UnreadableFileError(ImageInputError):
    status = "unreadable"


class EmptyFileError(ImageInputError):
    status = "empty_file"


class NotAnImageError(ImageInputError):
    status = "not_an_image"


class CorruptImageError(ImageInputError):
    """A picture file (its format recognised) whose data cannot be decoded to the end: most often cut short
    (an interrupted copy or download) or damaged, else a variant the decoder cannot read. Told apart from
    :class:`NotAnImageError` so that a user can find those files and fetch them again."""

    status = "corrupt"


class ImageTooSmallError(ImageInputError):
    status = "too_small"


class ImageTooLargeError(ImageInputError):
    status = "too_large"


class MissingFileError(ImageInputError):
    status = "missing"


@dataclass(frozen=True)
class LoadedImage:
    """An upright 8-bit RGB image and what was learned while reading it."""

    rgb: np.ndarray  # H x W x 3, uint8, RGB
    path: str
    source_mode: str  # PIL mode of the file: "RGB", "RGBA", "I;16", "L", "P", ...
    is_gray: bool  # grayscale content, whether stored as one channel or three equal ones
    frames: int = 1  # frames or pages in the file (animated GIF/WebP/PNG, multi-page TIFF); only the first is read

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


def is_gray_rgb(rgb: np.ndarray, tolerance: float = GRAY_TOLERANCE) -> bool:
    """True when the three channels are (nearly) equal: a gray picture stored as colour.

    The challenge data held 14% of those, and they get their own regressor.
    """
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        return True
    small = rgb[:: max(1, rgb.shape[0] // 128), :: max(1, rgb.shape[1] // 128), :3].astype(np.int16)
    diff = np.abs(small[..., 0] - small[..., 1]).mean() + np.abs(small[..., 1] - small[..., 2]).mean()
    return float(diff) / 2.0 < tolerance


def significant_bits(values: np.ndarray, declared: int | None = None) -> int:
    """Bits actually used by integer samples stored wider than 8 bits (12-bit camera data in a 16-bit PNG).

    ``declared``: the PNG sBIT value when the file has one. Otherwise the bit length of the largest
    value (max 4080 -> 12 bits), never below 8: such data was most likely 8-bit to begin with.
    """
    if declared and 8 <= declared <= 16:
        return declared
    top = int(values.max()) if values.size else 0
    return max(8, top.bit_length())


def _scale_wide(arr: np.ndarray, declared_bits: int | None = None) -> np.ndarray:
    """uint16 (or wider int) samples -> uint8, full scale = 2**significant_bits - 1."""
    bits = significant_bits(arr, declared_bits)
    scaled = arr.astype(np.float64) * (255.0 / (2**bits - 1))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _png_header(path: Path) -> tuple[int, int, int | None] | None:
    """(bit depth, colour type, sBIT bits or None) of a PNG file, from the chunks before the image data."""
    import struct

    try:
        with open(path, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                return None
            depth = ctype = None
            sbit = None
            for _ in range(64):  # the header chunks come first; stop at the image data
                head = f.read(8)
                if len(head) < 8:
                    break
                n, kind = struct.unpack(">I4s", head)
                if kind == b"IDAT":
                    break
                if kind not in (b"IHDR", b"sBIT"):
                    f.seek(n + 4, 1)  # skip the data and its CRC
                    continue
                data = f.read(n)
                f.seek(4, 1)
                if kind == b"IHDR" and len(data) >= 10:
                    depth, ctype = data[8], data[9]
                elif kind == b"sBIT" and data:
                    sbit = max(data[:3]) if ctype in (2, 6) else data[0]
    except OSError:
        return None
    return None if depth is None else (depth, ctype, sbit)


def _binary_to_gray(g: np.ndarray) -> np.ndarray:
    """A dithered black-and-white picture -> smooth gray (uint8), so that faces can be found in it.

    The face detector and the parser see local pixel noise, not the shading a viewer sees from a
    distance; a Gaussian blur of the 0/255 pattern gives that shading back. The width grows with
    the picture so the dither's pattern is averaged out at any size."""
    import cv2

    sigma = max(1.0, min(g.shape[:2]) / 256.0)
    return cv2.GaussianBlur(g.astype(np.uint8), (0, 0), sigmaX=sigma)


def _to_rgb8(im: Image.Image, png_sbit: int | None = None) -> np.ndarray:
    """Convert any PIL mode to 8-bit RGB; 16-bit and float data are rescaled, alpha is put on white."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im)
        if mode.startswith("I;16") or (mode == "I" and arr.min() >= 0 and arr.max() < 65536):
            g = _scale_wide(arr, png_sbit)
        else:  # 32-bit int or float: stretch what is there
            arr = arr.astype(np.float64)
            lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
            arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
            g = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    if mode == "1":  # dithered black and white
        g = _binary_to_gray(np.asarray(im.convert("L")))
        return np.repeat(g[..., None], 3, axis=2)
    if mode == "P":
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    if im.mode != "RGB":
        im = im.convert("RGB")
    arr = np.asarray(im)
    if arr.dtype != np.uint8:  # 16-bit-per-channel RGB that PIL kept wide
        arr = _scale_wide(arr, png_sbit)
    return np.ascontiguousarray(arr)


def _wide_samples(im: Image.Image) -> tuple[bool, int | None]:
    """Whether an opened (not yet loaded) colour file stores more than 8 bits per sample, and its declared bits.

    Pillow has no 16-bit colour mode: a 16-bit RGB(A) PNG, TIFF or PPM is cut to the high byte, so
    10- or 12-bit data in it turns nearly black. Its tile list says how the samples are stored
    (raw mode ``RGB;16B``/``RGB;16N``, or a PPM ``maxval`` above 255); TIFF also has BitsPerSample.
    The declared bits are a PPM's ``maxval`` when below 65535 (4095 -> 12), else None."""
    if im.mode not in ("RGB", "RGBA", "LA"):
        return False, None
    tag = getattr(im, "tag_v2", None)
    bits = tag.get(258) if tag is not None else None  # TIFF BitsPerSample
    if isinstance(bits, tuple | list) and bits and max(bits) > 8:
        return True, None
    for tile in im.tile:
        args = tile[3] if isinstance(tile[3], tuple) else (tile[3],)
        if args and isinstance(args[0], str) and ";16" in args[0]:
            return True, None
        if tile[0] == "ppm" and len(args) > 1 and isinstance(args[1], int) and args[1] > 255:
            return True, args[1].bit_length() if args[1] < 65535 else None
    return False, None


def _read_wide_colour(path: Path, bits: int | None) -> np.ndarray | None:
    """A colour file with more than 8 bits per sample (16-bit PNG, TIFF, PPM) -> 8-bit RGB, scaled by its
    significant bits like 16-bit gray files (:func:`significant_bits`); alpha is put on white. Read with
    OpenCV (Pillow keeps only the high byte); None when OpenCV does not give 16-bit samples for it."""
    import cv2

    data = _tiff_upright_tag(path.read_bytes())
    # the first page or frame, as Pillow reads it
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if arr is None or arr.dtype != np.uint16:
        return None
    if arr.ndim == 2:
        arr = arr[..., None]
    channels = arr.shape[2]
    colour = arr[..., :3] if channels >= 3 else arr[..., :1]
    rgb = _scale_wide(colour, bits)
    rgb = rgb[..., ::-1] if channels >= 3 else np.repeat(rgb, 3, axis=2)
    rgb = rgb.astype(np.float64)
    if channels in (2, 4):  # alpha on white, as for 8-bit files; its full scale from its own bits (12-bit opaque = 4095)
        alpha = arr[..., -1:]
        a = alpha.astype(np.float64) / float(2 ** significant_bits(alpha) - 1)
        rgb = rgb * a + 255.0 * (1.0 - a)
    return np.ascontiguousarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))


def _tiff_upright_tag(data: bytes) -> bytes:
    """``data`` with a TIFF's first-page Orientation tag (274) set to 1; other files unchanged.

    OpenCV fails to decode a non-square TIFF whose tag says 5-8 (a quarter turn): the caller reads
    the samples as stored and turns them itself (:func:`_orient`)."""
    import struct

    if data[:4] not in (b"II*\x00", b"MM\x00*") or len(data) < 8:
        return data
    end = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(end + "I", data, 4)
    if ifd + 2 > len(data):
        return data
    (n,) = struct.unpack_from(end + "H", data, ifd)
    for i in range(n):
        at = ifd + 2 + 12 * i
        if at + 12 > len(data):
            break
        tag, kind = struct.unpack_from(end + "HH", data, at)
        if tag == 274 and kind == 3:  # SHORT, stored in the first two bytes of the value field
            out = bytearray(data)
            struct.pack_into(end + "H", out, at + 8, 1)
            return bytes(out)
    return data


def _orient(rgb: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF/TIFF orientation (1-8) to an H x W x C array, as :func:`PIL.ImageOps.exif_transpose` does."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(int(orientation) if isinstance(orientation, int) else 1)
    return rgb if op is None else np.ascontiguousarray(op(rgb))


def _looks_binary(rgb: np.ndarray) -> bool:
    """Only pure black and white pixels (a 1-bit picture saved as 8-bit), with both present."""
    g = rgb[..., 0]
    if not ((rgb[..., 1] == g).all() and (rgb[..., 2] == g).all()):
        return False
    black = g == 0
    white = g == 255
    return bool((black | white).all() and black.any() and white.any())


def broken_link_detail(p: Path) -> str:
    """The one-line reason for a symbolic link whose target does not exist."""
    import os

    try:
        return f"broken symbolic link: its target {os.readlink(p)} does not exist"
    except OSError:
        return "broken symbolic link: its target does not exist"


#: File extensions folder mode reads as images (lower case). Other files in a folder are skipped and
#: counted; a file named on the command line is read whatever its extension.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp",
                              ".gif", ".ppm", ".pgm", ".pbm", ".pnm", ".jp2", ".j2k", ".tga"})


def is_regular_file(path: str | Path) -> bool:
    """Whether ``path`` is a regular file (links followed): False for a folder, a named pipe (opening one waits
    for a writer), a socket or device, and for a path that is not there or cannot be looked at."""
    import stat

    try:
        return stat.S_ISREG(Path(path).stat().st_mode)
    except (OSError, ValueError):
        return False


def has_image_extension(path: str | Path) -> bool:
    """Whether ``path``'s extension is one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def read_image(path: str | Path, min_side: int = MIN_SIDE) -> LoadedImage:
    """Read ``path`` into an upright 8-bit RGB :class:`LoadedImage` or raise an :class:`ImageInputError`."""
    import stat

    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        if p.is_symlink():
            raise MissingFileError(p, broken_link_detail(p)) from None
        raise MissingFileError(p, "no such file") from None
    except OSError as e:
        raise UnreadableFileError(p, f"cannot access file ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise UnreadableFileError(p, "is a directory, not an image file")
    if not stat.S_ISREG(st.st_mode):  # opening a named pipe would wait for a writer forever
        raise UnreadableFileError(p, "not a regular file (a named pipe, socket or device); occparse reads files only")
    size = st.st_size
    if size == 0:
        raise EmptyFileError(p, "file is empty (0 bytes)")
    png = _png_header(p)
    sbit = png[2] if png else None
    try:
        with warnings.catch_warnings():
            # between MAX_IMAGE_PIXELS and twice it Pillow only warns; the picture is read, its warning is noise
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(p)
        with im:
            wide, declared = _wide_samples(im)  # before load(), which drops the tile list that tells
            frames = int(getattr(im, "n_frames", 1) or 1) if getattr(im, "is_animated", False) else 1
            # a TIFF's own Orientation tag, before load(): Pillow's TIFF loader may apply and drop it
            tiff_orientation = getattr(im, "tag_v2", {}).get(0x0112) if wide else None
            im.load()
            source_mode = im.mode
            orientation = (tiff_orientation or im.getexif().get(0x0112, 1)) if wide else 1
            im = ImageOps.exif_transpose(im) or im
            rgb = None
            if wide:  # every 16-bit colour path (PNG, TIFF, PPM) goes through the same significant-bit scaling
                rgb = _read_wide_colour(p, sbit or declared)
                if rgb is not None:
                    rgb = _orient(rgb, orientation)
                    source_mode = f"{source_mode};16"
            if rgb is None:
                rgb = _to_rgb8(im, sbit)
            if source_mode != "1" and _looks_binary(rgb):  # a 1-bit picture stored as 8-bit
                rgb = np.repeat(_binary_to_gray(rgb[..., 0])[..., None], 3, axis=2)
    except PermissionError:
        raise UnreadableFileError(p, "permission denied") from None
    except UnidentifiedImageError:
        raise NotAnImageError(p, "not an image file that occparse can decode (JPEG, PNG, WebP, BMP, TIFF, GIF, PPM, JPEG 2000, TGA, ...)") from None
    except Image.DecompressionBombError as e:
        raise ImageTooLargeError(p, f"image is too large to decode safely ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise CorruptImageError(p, f"image data is corrupt or truncated ({e})") from None
    h, w = rgb.shape[:2]
    if min(h, w) < min_side:
        raise ImageTooSmallError(p, f"image is {w}x{h} pixels; at least {min_side}x{min_side} is needed", (h, w))
    gray = source_mode in ("L", "LA", "I;16", "I;16B", "I;16L", "I;16N", "I", "F", "1") or is_gray_rgb(rgb)
    return LoadedImage(rgb=rgb, path=str(p), source_mode=source_mode, is_gray=gray, frames=frames)


def to_gray3(rgb: np.ndarray) -> np.ndarray:
    """Grayscale stored as three equal channels, the way the challenge's gray images were."""
    g = (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).round().clip(0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def read_csv_rows(path: Path, error: type[Exception] = DataError) -> list[dict[str, str]]:
    """All rows of a CSV file (the one CSV reader of the truth, prediction and input files), as dicts of
    text; a byte-order mark is dropped. A missing or unreadable file, or a row with more non-empty
    fields than the header names (an unquoted comma in a file name shifts every column after it),
    raises ``error`` with one line naming the line of the file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = []
            for r in reader:
                if any(v.strip() for v in r.get(None) or ()):  # empty extras (a trailing comma) are harmless
                    raise error(f"{path}: line {reader.line_num} has {len(r) - 1 + len(r[None])} fields but the "
                                f"header names {len(reader.fieldnames or [])}; a file name with a comma needs quotes")
                rows.append(r)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise error(f"{path}: cannot read as CSV ({e})") from None
    return rows
