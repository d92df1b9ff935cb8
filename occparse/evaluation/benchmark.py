"""Per-stage latency and end-to-end throughput, with the machine's facts (``occparse benchmark``).

The mesh is the floor of the pipeline (MediaPipe runs on the CPU, one image at a time), so the
report gives end-to-end throughput as a fraction of mesh-only throughput measured in the same run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..runtime.strictjson import dumps as strict_dumps


class BenchmarkInputError(ValueError):
    """The benchmark images cannot be used (none readable, or no face in any of them)."""


@dataclass
class StageTiming:
    stage: str
    ms_per_item: float  # median latency per image (or per crop for network stages)
    items_per_s: float


@dataclass
class BenchReport:
    machine: dict
    n_images: int
    stages: list[StageTiming] = field(default_factory=list)
    e2e_batch1_img_s: float = 0.0
    e2e_batch1_latency_ms: float = 0.0
    e2e_batch64_img_s: float = 0.0
    mesh_only_img_s: float = 0.0
    precision: str = "fp32"  # of the parser and regressors
    workers: int = 0  # pool size for the batch-pipeline rows (0: not measured)
    pool_mesh_only_img_s: float = 0.0  # decode + mesh in the worker pool, nothing else
    pool_e2e_img_s: float = 0.0  # the `predict` pipeline: pool for decode + mesh, networks batched in this process
    #: each timed pass of that row (--repeat); pool_e2e_img_s is their median (the lower middle one for an even count)
    pool_e2e_runs: list[float] = field(default_factory=list)
    flip_tta: bool = False  # parser test-time augmentation (--flip-tta) on
    n_skipped: int = 0  # files that could not be read as images (left out of every row)
    #: wall seconds of a fresh `occparse estimate IMAGE` process, start to exit (median of the runs); 0: not measured
    first_result_s: float = 0.0
    first_result_runs: list[float] = field(default_factory=list)

    @property
    def fraction_of_mesh(self) -> float:
        return self.e2e_batch64_img_s / self.mesh_only_img_s if self.mesh_only_img_s else float("nan")

    @property
    def pool_fraction_of_mesh(self) -> float:
        return self.pool_e2e_img_s / self.pool_mesh_only_img_s if self.pool_mesh_only_img_s else float("nan")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fraction_of_mesh_only"] = self.fraction_of_mesh
        d["pool_fraction_of_mesh_only"] = self.pool_fraction_of_mesh
        return d

    def format(self) -> str:
        m = self.machine
        lines = [
            f"occparse benchmark, {m['date']}",
            f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, {m['platform']}",
            f"onnxruntime {m['onnxruntime']} providers {m['providers']}; python {m['python']}"
            + (f"; GPU {m['gpu']}" if m.get("gpu") else ""),
            f"{self.n_images} images, {self.precision} networks" + (", parser flip TTA" if self.flip_tta else "")
            + (f"; {self.n_skipped} unreadable file(s) skipped" if self.n_skipped else ""),
            "",
            f"{'stage':<28}{'ms/item':>10}{'items/s':>10}",
        ]
        for s in self.stages:
            lines.append(f"{s.stage:<28}{s.ms_per_item:>10.2f}{s.items_per_s:>10.1f}")
        lines += [
            "",
            f"mesh only (decode + mesh):        {self.mesh_only_img_s:8.1f} images/s",
            f"end-to-end, batch 1:              {self.e2e_batch1_img_s:8.1f} images/s, "
            f"median latency {self.e2e_batch1_latency_ms:.1f} ms",
            f"end-to-end, batch 64:             {self.e2e_batch64_img_s:8.1f} images/s "
            f"({self.fraction_of_mesh:.2f} x mesh-only)",
        ]
        if self.first_result_s:
            lines.append(f"time to first result, one image: {self.first_result_s:8.2f} s (a fresh `occparse estimate` "
                         f"process, median of {len(self.first_result_runs)}: "
                         + ", ".join(f"{v:.2f}" for v in self.first_result_runs) + ")")
        if self.workers:
            lines += [
                "",
                f"batch pipeline, {self.workers} worker processes for decode + mesh, networks batched (as in predict):",
                f"mesh only:                        {self.pool_mesh_only_img_s:8.1f} images/s",
                f"end-to-end:                       {self.pool_e2e_img_s:8.1f} images/s "
                f"({self.pool_fraction_of_mesh:.2f} x mesh-only)"
                + (f"; median of {len(self.pool_e2e_runs)} passes: " + ", ".join(f"{v:.1f}" for v in self.pool_e2e_runs)
                   if len(self.pool_e2e_runs) > 1 else ""),
            ]
        return "\n".join(lines)


def machine_facts() -> dict:
    import onnxruntime as ort

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    with contextlib.suppress(ValueError, OSError, AttributeError):
        mem = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu, "cores": os.cpu_count(),
        "memory_gb": mem, "platform": platform.platform(), "python": platform.python_version(),
        "onnxruntime": ort.__version__, "providers": ort.get_available_providers(),
    }


def _timeit(fn, items, repeat_warm: int = 2) -> tuple[float, float]:
    """(median ms per call, calls per second) over items, after a warm-up."""
    for it in items[:repeat_warm]:
        fn(it)
    times = []
    t0 = time.perf_counter()
    for it in items:
        t = time.perf_counter()
        fn(it)
        times.append(time.perf_counter() - t)
    total = time.perf_counter() - t0
    return statistics.median(times) * 1000, len(items) / total


def _time_batched(name: str, fn, items: list, batch: int) -> StageTiming:
    """One pass over items in chunks of ``batch`` (after one warm-up chunk): ms per item, items per second."""
    chunks = [items[i : i + batch] for i in range(0, len(items), batch)]
    fn(chunks[0])
    t = time.perf_counter()
    for ch in chunks:
        fn(ch)
    dt = time.perf_counter() - t
    return StageTiming(name, dt / len(items) * 1000, len(items) / dt)


def run_benchmark(images: list[Path], batch: int = 64, providers: list[str] | None = None,
                  precision: str = "auto", workers: int = 0, flip_tta: bool = False,
                  weights: str | None = None, repeat: int = 1) -> BenchReport:
    from ..runtime.align import align
    from ..runtime.io import ImageInputError, read_image
    from ..runtime.pipeline import Estimator, EstimatorOptions, face_features

    # unreadable files (empty, not an image, too small) are left out and counted
    readable, loaded = [], []
    for p in images:
        try:
            loaded.append(read_image(p))
            readable.append(p)
        except ImageInputError:
            pass
    n_skipped = len(images) - len(readable)
    if not readable:
        raise BenchmarkInputError(f"none of the {len(images)} benchmark files could be read as an image")
    images = readable
    est = Estimator(EstimatorOptions(max_faces=1, detector_scores=False, providers=tuple(providers) if providers else None,
                                     precision=precision, parser_flip=flip_tta, weights=weights))
    rep = BenchReport(machine_facts(), len(images), precision=est.precision, flip_tta=flip_tta, n_skipped=n_skipped)
    if "CUDAExecutionProvider" in est.parser.session.get_providers():
        from ..runtime.session import gpu_name

        rep.machine["gpu"] = gpu_name() or "unknown"

    ms, ps = _timeit(read_image, images)
    rep.stages.append(StageTiming("decode", ms, ps))
    ms, ps = _timeit(lambda im: est.mesher.detect(im.rgb), loaded)
    rep.stages.append(StageTiming("mesh", ms, ps))
    faces = [est.mesher.detect(im.rgb) for im in loaded]
    pairs = [(im, f[0]) for im, f in zip(loaded, faces, strict=True) if f]
    if not pairs:
        raise BenchmarkInputError(f"no face found in any of the {len(images)} benchmark images; the network stages "
                                  "need faces (use photos or `occparse synth` crops)")
    ms, ps = _timeit(lambda p: align(p[0].rgb, p[1]), pairs)
    rep.stages.append(StageTiming("align", ms, ps))
    crops = [align(im.rgb, f).image for im, f in pairs]
    ms, ps = _timeit(lambda c: est.parser.parse([c]), crops)
    rep.stages.append(StageTiming("parser, batch 1", ms, ps))
    # batch 32 is the parser's own batch size (FaceParser.batch_size); --batch is what the pipeline groups
    for b in sorted({32, batch}):
        rep.stages.append(_time_batched(f"parser, batch {b}", est.parser.parse, crops, b))
    if est.regressors is not None:
        ms, ps = _timeit(lambda c: est.regressors.predict([c]), crops)
        rep.stages.append(StageTiming("regressors, batch 1", ms, ps))
        rep.stages.append(_time_batched(f"regressors, batch {batch}", est.regressors.predict, crops, batch))
    an = est.analyze_loaded(loaded[0])
    if est.stacker is not None and an.faces:
        fa = an.faces[0]
        v = face_features(fa.geometry, fa.result.regressor or 0.0, fa.result.is_gray, False).vector(est.stacker.features)
        ms, ps = _timeit(lambda _: est.stacker.predict(v), list(range(50)))
        rep.stages.append(StageTiming("stacker", ms, ps))

    # mesh-only floor: decode + mesh, one image at a time
    t = time.perf_counter()
    for p in images:
        est.mesher.detect(read_image(p).rgb)
    rep.mesh_only_img_s = len(images) / (time.perf_counter() - t)
    # end-to-end, one image at a time
    lat = []
    t = time.perf_counter()
    for p in images:
        t1 = time.perf_counter()
        est.estimate(p)
        lat.append(time.perf_counter() - t1)
    rep.e2e_batch1_img_s = len(images) / (time.perf_counter() - t)
    rep.e2e_batch1_latency_ms = statistics.median(lat) * 1000
    # end-to-end, networks batched
    t = time.perf_counter()
    for i in range(0, len(images), batch):
        est.finish([est.prepare(read_image(p)) for p in images[i : i + batch]])
    rep.e2e_batch64_img_s = len(images) / (time.perf_counter() - t)
    if workers > 1:
        from ..runtime.batch import analyses, prepared, worker_pool

        # one warm pool for both rows, so neither pays the workers' start-up; all work is timed,
        # from the first image submitted to the last result read
        rep.workers = workers
        # as `predict --workers N` sets it up: idle ONNX Runtime threads sleep instead of spinning
        est = Estimator(replace(est.options, spin=False))
        with worker_pool(est.options, workers) as pool:
            for _ in prepared(est, images[: workers * 4], workers, pool=pool):
                pass
            t = time.perf_counter()
            for _ in prepared(est, images, workers, pool=pool):
                pass
            rep.pool_mesh_only_img_s = len(images) / (time.perf_counter() - t)
            # one untimed pass first: the networks' first batches run slower (memory, thread start-up)
            for _ in analyses(est, images[:batch], workers, batch, pool=pool):
                pass
            # on a shared machine one pass can read 10-15% either side; the median of several is steadier
            for _ in range(max(1, repeat)):
                t = time.perf_counter()
                for _ in analyses(est, images, workers, batch, pool=pool):
                    pass
                rep.pool_e2e_runs.append(len(images) / (time.perf_counter() - t))
            rep.pool_e2e_img_s = statistics.median_low(rep.pool_e2e_runs)  # a measured pass
    return rep


def time_to_first_result(image: Path, runs: int = 3, device: str = "cpu", weights: str | None = None) -> list[float]:
    """Wall seconds of ``occparse estimate IMAGE`` in a fresh Python process, ``runs`` times: imports, model
    loading, the mesh graph and one image, as a user waits for them (the file cache is warm after the first)."""
    import subprocess

    cmd = [sys.executable, "-m", "occparse.cli", "estimate", str(image), "--json", "--device", device]
    if weights:
        cmd += ["--weights", weights]
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        out.append(time.perf_counter() - t)
    return out


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def default_images(n: int) -> list[Path]:
    """Benchmark inputs: 224x224 synthetic crops if a split is lying around, else the example photo."""
    for d in (Path("bench/images"), Path("/tmp/bench/images")):
        files = sorted(d.glob("*.jpg"))[:n]
        if files:
            return files
    ex = Path(__file__).resolve().parents[2] / "examples" / "astronaut.png"
    return [ex] * n


def add_arguments(ap) -> None:
    """``occparse benchmark``'s options, on an ``argparse`` (sub-)parser."""
    from ..models.zoo import PRECISIONS

    ap.add_argument("--images", help="folder of images (default: bench/images, else the example photo)")
    ap.add_argument("-n", type=int, default=200, help="number of images (default 200)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu",
                    help="where the networks run (default cpu); cuda is an error when ONNX Runtime has no CUDA provider")
    ap.add_argument("--precision", choices=PRECISIONS, default="auto",
                    help="parser and regressors: int8, fp32, or auto (int8 on CPU when shipped; default)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="worker processes for the batch-pipeline rows (default: one per core; 0 or 1 skips them)")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="run the batch pipeline's end-to-end row N times and report the median pass (default 1; "
                         "needs --workers 2 or more); use 3 or more on a shared machine, where one pass can read "
                         "10-15%% either side")
    ap.add_argument("--flip-tta", action="store_true", help="parser test-time augmentation on (as predict --flip-tta)")
    ap.add_argument("--json", help="also write the report as JSON here")
    ap.add_argument("--startup-runs", type=int, default=3,
                    help="fresh `occparse estimate` processes timed for the time to the first result (0 skips)")
    ap.add_argument("--weights", metavar="DIR", help="weights folder (default $OCCPARSE_WEIGHTS, else the installed one)")


def main(argv: list[str] | None = None) -> int:
    """``python benchmarks/bench_pipeline.py``: the same as ``occparse benchmark``."""
    import argparse

    ap = argparse.ArgumentParser(prog="occparse benchmark", description=__doc__)
    add_arguments(ap)
    return run(ap.parse_args(argv))


def run(a) -> int:
    """Run ``occparse benchmark`` with parsed arguments (see :func:`add_arguments`)."""

    def fail(msg: str, code: int) -> int:
        print(f"occparse benchmark: error: {msg}", file=sys.stderr)
        return code

    if a.n < 1:
        return fail("-n must be at least 1", 2)
    if a.repeat < 1:
        return fail("--repeat must be at least 1", 2)
    if a.repeat > 1 and a.workers <= 1:
        return fail(f"--repeat N re-runs the batch-pipeline row, which --workers {a.workers} skips (the default on a "
                    "one-core machine); use --workers 2 or more", 2)
    if a.json:  # before the run, not after minutes of it
        out = Path(a.json)
        if out.is_dir():
            return fail(f"--json {out} is a folder; give a file name such as {out / 'bench.json'}", 2)
        if not out.parent.is_dir():
            return fail(f"--json {out}: no such folder {out.parent}", 2)
        from ..cli.common import unwritable_folder

        if err := unwritable_folder(out.parent):
            return fail(f"--json {out}: {err}", 2)
    if a.images:
        folder = Path(a.images)
        if not folder.is_dir():
            return fail(f"--images {folder}: no such folder", 2)
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)[: a.n]
        if not files:
            return fail(f"--images {folder}: no image files ({', '.join(IMAGE_SUFFIXES)})", 2)
    else:
        files = default_images(a.n)
    from ..runtime.session import DeviceError, gpu_name, select_providers

    try:
        providers = select_providers(a.device)
    except DeviceError as e:
        return fail(str(e), 2)
    if providers[0] == "CUDAExecutionProvider":
        print(f"GPU: {gpu_name() or 'unknown (nvidia-smi not found)'}")
    try:
        rep = run_benchmark(files, a.batch, providers, a.precision, a.workers, a.flip_tta, weights=a.weights,
                            repeat=a.repeat)
        if a.startup_runs > 0:
            runs = time_to_first_result(files[0], a.startup_runs, "cuda" if providers[0].startswith("CUDA") else "cpu",
                                        a.weights)
            rep.first_result_runs = runs
            rep.first_result_s = statistics.median(runs)
    except BenchmarkInputError as e:
        return fail(str(e), 1)
    if rep.n_skipped:
        print(f"skipped {rep.n_skipped} unreadable file(s) of {len(files)}", file=sys.stderr)
    print(rep.format())
    if a.json:
        tmp = Path(a.json).with_name(Path(a.json).name + ".tmp")
        try:  # whole or not at all
            tmp.write_text(strict_dumps(rep.to_dict(), indent=2))
            os.replace(tmp, a.json)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            return fail(f"--json {a.json}: cannot write it ({e.strerror or e}); the report is printed above", 1)
    return 0
