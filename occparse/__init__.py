"""occparse: how much of a face is occluded (0 fully visible .. 1 fully hidden), overall and per region.

The public API::

    import occparse

    est = occparse.Estimator(occparse.EstimatorOptions(max_faces=1))
    res = est.analyze("photo.jpg").result            # path, numpy array (RGB uint8) or PIL image
    if res.status == occparse.Status.OK:
        print(res.faces[0].occlusion)

Names are imported on first use (PEP 562), so ``import occparse`` stays cheap: it loads neither
MediaPipe nor ONNX Runtime, and nothing in the runtime ever imports torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

#: public name -> module that defines it
_EXPORTS = {
    "Estimator": "runtime.pipeline",
    "EstimatorOptions": "runtime.pipeline",
    "ImageAnalysis": "runtime.pipeline",
    "FaceDetail": "runtime.pipeline",
    "ImageResult": "runtime.results",
    "FaceResult": "runtime.results",
    "RegionOcclusion": "runtime.results",
    "OccluderShare": "runtime.results",
    "Status": "runtime.results",
    "read_image": "runtime.io",
    "LoadedImage": "runtime.io",
    "OccparseError": "errors",
    "InputError": "errors",
    "ModelError": "errors",
    "VersionError": "errors",
    "DataError": "errors",
}

__all__ = [  # the same names as _EXPORTS, spelled out for linters
    "Estimator", "EstimatorOptions", "ImageAnalysis", "FaceDetail", "ImageResult", "FaceResult", "RegionOcclusion",
    "OccluderShare", "Status", "read_image", "LoadedImage", "OccparseError", "InputError", "ModelError",
    "VersionError", "DataError", "__version__",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("occparse")
    except PackageNotFoundError:  # a bare checkout on PYTHONPATH, not installed
        return "0+unknown"


def __getattr__(name: str):
    if name == "__version__":  # read on first use: importlib.metadata costs start-up time a result never needs
        globals()[name] = _version()
        return globals()[name]
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'occparse' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names above load lazily
    from .errors import DataError, InputError, ModelError, OccparseError, VersionError
    from .runtime.io import LoadedImage, read_image
    from .runtime.pipeline import Estimator, EstimatorOptions, FaceDetail, ImageAnalysis
    from .runtime.results import FaceResult, ImageResult, OccluderShare, RegionOcclusion, Status
