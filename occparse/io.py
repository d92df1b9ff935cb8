"""Read any image file into 8-bit RGB, with typed errors for bad input.

Every entry point of occparse reads images through :func:`read_image`, so that a
16-bit PNG, an RGBA screenshot, a palette GIF-like PNG, a rotated phone JPEG and a
grayscale scan all reach the models as the same thing: an ``H x W x 3`` ``uint8``
array in RGB order, upright. Bad input raises a subclass of :class:`ImageInputError`
whose ``status`` is the short code written in batch output.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Below this side length no face can be measured meaningfully.
MIN_SIDE = 32
#: Mean absolute channel difference (in 8-bit levels) under which a colour file is
#: really a grayscale picture stored as three channels. JPEG chroma noise on such
#: files stays well below 1 level; real colour photos are far above.
GRAY_TOLERANCE = 1.5

Image.MAX_IMAGE_PIXELS = 200_000_000  # well above any photo, still refuses decompression bombs


class ImageInputError(Exception):
    """Base class of every input problem; ``status`` is the code used in batch output."""

    status = "input_error"

    def __init__(self, path: str | Path, detail: str):
        self.path = str(path)
        self.detail = detail
        super().__init__(f"{self.path}: {detail}")


class UnreadableFileError(ImageInputError):
    status = "unreadable"


class EmptyFileError(ImageInputError):
    status = "empty_file"


class NotAnImageError(ImageInputError):
    status = "not_an_image"


class ImageTooSmallError(ImageInputError):
    status = "too_small"


@dataclass(frozen=True)
class LoadedImage:
    """An upright 8-bit RGB image and what was learned while reading it."""

    rgb: np.ndarray  # H x W x 3, uint8, RGB
    path: str
    source_mode: str  # PIL mode of the file: "RGB", "RGBA", "I;16", "L", "P", ...
    is_gray: bool  # grayscale content, whether stored as one channel or three equal ones

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


def _to_rgb8(im: Image.Image) -> np.ndarray:
    """Convert any PIL mode to 8-bit RGB; 16-bit and float data are rescaled, alpha is put on white."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im).astype(np.float64)
        if mode.startswith("I;16"):
            arr = arr / 257.0
        else:  # 32-bit int or float: stretch what is there
            lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
            arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        g = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
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
        arr = np.clip(arr.astype(np.float64) / 257.0, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def read_image(path: str | Path, min_side: int = MIN_SIDE) -> LoadedImage:
    """Read ``path`` into an upright 8-bit RGB :class:`LoadedImage` or raise an :class:`ImageInputError`."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise UnreadableFileError(p, "no such file") from None
    except OSError as e:
        raise UnreadableFileError(p, f"cannot access file ({e.strerror or e})") from None
    if p.is_dir():
        raise UnreadableFileError(p, "is a directory, not an image file")
    if size == 0:
        raise EmptyFileError(p, "file is empty (0 bytes)")
    try:
        with Image.open(p) as im:
            im.load()
            source_mode = im.mode
            im = ImageOps.exif_transpose(im) or im
            rgb = _to_rgb8(im)
    except PermissionError:
        raise UnreadableFileError(p, "permission denied") from None
    except UnidentifiedImageError:
        raise NotAnImageError(p, "not an image file that occparse can decode (JPEG, PNG, WebP, BMP, TIFF)") from None
    except Image.DecompressionBombError as e:
        raise NotAnImageError(p, f"image is too large to decode safely ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise NotAnImageError(p, f"image data is corrupt or truncated ({e})") from None
    h, w = rgb.shape[:2]
    if min(h, w) < min_side:
        raise ImageTooSmallError(p, f"image is {w}x{h} pixels; at least {min_side}x{min_side} is needed")
    gray = source_mode in ("L", "LA", "I;16", "I;16B", "I;16L", "I;16N", "I", "F", "1") or is_gray_rgb(rgb)
    return LoadedImage(rgb=rgb, path=str(p), source_mode=source_mode, is_gray=gray)


def to_gray3(rgb: np.ndarray) -> np.ndarray:
    """Grayscale stored as three equal channels, the way the challenge's gray images were."""
    g = (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).round().clip(0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)
