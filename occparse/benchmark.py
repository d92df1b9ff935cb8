"""Per-stage latency and end-to-end throughput, with the machine's facts (``occparse benchmark``).

The mesh is the floor of the pipeline (MediaPipe runs on the CPU, one image at a time), so the
report gives end-to-end throughput as a fraction of mesh-only throughput measured in the same run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np


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
    flip_tta: bool = False  # parser test-time augmentation (--flip-tta) on

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
            f"onnxruntime {m['onnxruntime']} providers {m['providers']}; python {m['python']}",
            f"{self.n_images} images, {self.precision} networks" + (", parser flip TTA" if self.flip_tta else ""),
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
        if self.workers:
            lines += [
                "",
                f"batch pipeline, {self.workers} worker processes for decode + mesh, networks batched (as in predict):",
                f"mesh only:                        {self.pool_mesh_only_img_s:8.1f} images/s",
                f"end-to-end:                       {self.pool_e2e_img_s:8.1f} images/s "
                f"({self.pool_fraction_of_mesh:.2f} x mesh-only)",
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
                  precision: str = "auto", workers: int = 0, flip_tta: bool = False) -> BenchReport:
    from .geometry import align
    from .io import read_image
    from .pipeline import Estimator, EstimatorOptions, face_features

    est = Estimator(EstimatorOptions(max_faces=1, detector_scores=False, providers=tuple(providers) if providers else None,
                                     precision=precision, parser_flip=flip_tta))
    rep = BenchReport(machine_facts(), len(images), precision=est.precision, flip_tta=flip_tta)
    loaded = [read_image(p) for p in images]

    ms, ps = _timeit(read_image, images)
    rep.stages.append(StageTiming("decode", ms, ps))
    ms, ps = _timeit(lambda im: est.mesher.detect(im.rgb), loaded)
    rep.stages.append(StageTiming("mesh", ms, ps))
    faces = [est.mesher.detect(im.rgb) for im in loaded]
    pairs = [(im, f[0]) for im, f in zip(loaded, faces, strict=True) if f]
    ms, ps = _timeit(lambda p: align(p[0].rgb, p[1]), pairs)
    rep.stages.append(StageTiming("align", ms, ps))
    crops = [align(im.rgb, f).image for im, f in pairs]
    if not crops:
        raise RuntimeError("no face found in the benchmark images")
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
        v = face_features(fa.geometry, fa.result.regressor or 0.0, fa.result.is_gray, False).vector()
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
        from .batch import analyses, prepared, worker_pool

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
            t = time.perf_counter()
            for _ in analyses(est, images, workers, batch, pool=pool):
                pass
            rep.pool_e2e_img_s = len(images) / (time.perf_counter() - t)
    return rep


def default_images(n: int) -> list[Path]:
    """Benchmark inputs: 224x224 synthetic crops if a split is lying around, else the example photo."""
    for d in (Path("bench/images"), Path("/tmp/bench/images")):
        files = sorted(d.glob("*.jpg"))[:n]
        if files:
            return files
    ex = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"
    return [ex] * n


def main(argv: list[str] | None = None) -> int:
    import argparse

    from .weights import PRECISIONS

    ap = argparse.ArgumentParser(prog="occparse benchmark", description=__doc__)
    ap.add_argument("--images", help="folder of images (default: bench/images, else the example photo)")
    ap.add_argument("-n", type=int, default=200, help="number of images (default 200)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--precision", choices=PRECISIONS, default="auto",
                    help="parser and regressors: int8, fp32, or auto (int8 on CPU when shipped; default)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="worker processes for the batch-pipeline rows (default: one per core; 0 or 1 skips them)")
    ap.add_argument("--flip-tta", action="store_true", help="parser test-time augmentation on (as predict --flip-tta)")
    ap.add_argument("--json", help="also write the report as JSON here")
    a = ap.parse_args(argv)
    files = sorted(p for p in Path(a.images).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[: a.n] \
        if a.images else default_images(a.n)
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if a.device == "cuda" else ["CPUExecutionProvider"]
    rep = run_benchmark(files, a.batch, providers, a.precision, a.workers, a.flip_tta)
    print(rep.format())
    if a.json:
        Path(a.json).write_text(json.dumps(rep.to_dict(), indent=2, default=lambda o: np.asarray(o).tolist()))
    return 0
