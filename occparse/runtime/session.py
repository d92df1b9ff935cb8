"""The one ONNX Runtime session helper: which execution providers run the networks
(``--device cpu|cuda|auto``) and how a session is made.

One function decides the providers, so every command behaves the same. Asking for CUDA where ONNX
Runtime cannot use it is an error (one line, exit 2), never a silent fall back to the CPU.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelError, OccparseError

DEVICES = ("auto", "cpu", "cuda")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


class DeviceError(OccparseError, RuntimeError):
    """The requested device cannot be used here."""


def cuda_missing_message(available: list[str]) -> str:
    return ("--device cuda: ONNX Runtime has no CUDA provider here (available: " + ", ".join(available)
            + "); install occparse[gpu] (onnxruntime-gpu, not onnxruntime) on a machine with an NVIDIA GPU, "
            "or use --device cpu")


def select_providers(device: str = "auto", available: list[str] | None = None) -> list[str]:
    """Providers for ``device``: "cpu" -> CPU only; "cuda" -> CUDA then CPU (for the few operators
    CUDA lacks), or :class:`DeviceError` when ONNX Runtime has no CUDA provider; "auto" -> CUDA when
    available, else CPU. ``available`` defaults to ``onnxruntime.get_available_providers()``."""
    if device not in DEVICES:
        raise DeviceError(f"--device must be one of {', '.join(DEVICES)}, not {device!r}")
    if device == "cpu":
        return [CPU]
    if available is None:
        import onnxruntime as ort

        available = list(ort.get_available_providers())
    if CUDA in available:
        return [CUDA, CPU]
    if device == "cuda":
        raise DeviceError(cuda_missing_message(available))
    return [CPU]


def check_session(session, requested: list[str] | tuple[str, ...] | None) -> None:
    """Raise :class:`DeviceError` when CUDA was requested first but the session did not get it.

    ONNX Runtime falls back to the CPU when the CUDA provider fails to load (missing CUDA or cuDNN
    libraries) and only logs it; a user who asked for the GPU must hear about it."""
    if requested and requested[0] == CUDA and CUDA not in session.get_providers():
        raise DeviceError("--device cuda: ONNX Runtime could not start its CUDA provider (check the CUDA and cuDNN "
                          "libraries that onnxruntime-gpu needs; `python -c \"import onnxruntime as o; "
                          "o.preload_dlls()\"` shows what is missing), or use --device cpu")


def make_session(path: str | Path, providers: list[str] | None = None, threads: int = 0, spin: bool = True):
    """An ONNX Runtime session with sane thread settings (0 = let ONNX Runtime decide).

    ``providers`` defaults to :func:`select_providers` ("auto": CUDA when available, else CPU).
    ``spin=False`` stops idle ONNX Runtime threads from busy-waiting, which would take CPU from
    the mesh worker processes that share the cores in batch mode. Raises :class:`DeviceError` when
    CUDA was asked for and did not start, :class:`occparse.errors.ModelError` when ``path`` is not an
    ONNX model ONNX Runtime can load."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    if not spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        sess = ort.InferenceSession(str(path), sess_options=so, providers=providers or select_providers())
    except (ort.capi.onnxruntime_pybind11_state.InvalidProtobuf, ort.capi.onnxruntime_pybind11_state.Fail,
            ort.capi.onnxruntime_pybind11_state.InvalidGraph, ort.capi.onnxruntime_pybind11_state.NoSuchFile) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if isinstance(e, ort.capi.onnxruntime_pybind11_state.Fail) and "Load model" not in first:
            raise  # FAIL is ONNX Runtime's generic status (a provider or device failing): not the file's fault
        # a file that is not an ONNX model (a picture given as --parser): one line, not a 29-line traceback
        raise ModelError(f"{path}: not a usable ONNX model ({first[:200]})") from None
    check_session(sess, providers)  # CUDA asked for but not started: an error, never a silent CPU run
    return sess


def fixed_input_side(sess) -> int | None:
    """The fixed input side (pixels) of an ONNX Runtime session whose input is N x C x S x S, or None when
    the side is dynamic (a model exported at one side takes only that side)."""
    shape = sess.get_inputs()[0].shape
    return shape[-1] if len(shape) == 4 and isinstance(shape[-1], int) else None


def gpu_name() -> str | None:
    """The first GPU's name from ``nvidia-smi``, or None when there is none."""
    import shutil
    import subprocess

    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    return out[0].strip() if out else None
