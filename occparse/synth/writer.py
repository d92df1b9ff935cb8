"""Writing synthetic datasets to disk (in parallel, resumable) and drawing contact sheets."""

from __future__ import annotations

import csv
import multiprocessing as mp
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..labels import FACIAL_HAIR, OCCLUDER, PALETTE
from .engine import Sample, SynthConfig, Synthesizer, Task, bench_tasks, run_task
from .sources import lfw_labels_agree, lfw_val_headwear, read_label_map

#: facial_hair: share of R that is facial hair (LFW val truth only; empty where unknown);
#: lfw_labels: on an LFW base face, "agree" or "contradict" (the photo is in the committed label audit,
#: occparse/synth/lfw_label_audit.csv: its truth counts e.g. a beard labelled skin as visible), so
#: ``occparse evaluate --by lfw_labels`` reports all photos and those whose labels agree; empty elsewhere;
#: headwear: on the real LFW val photos, none / covers_face / above_face (the committed list
#: occparse/synth/lfw_val_headwear.csv, judged by eye), for ``occparse evaluate --by headwear``; empty elsewhere
TRUTH_COLUMNS = ("filename", "FaceOcclusion", "gender", "is_gray", "occluder", "source", "base", "facial_hair",
                 "lfw_labels", "headwear")


def lfw_labels_value(source: str, base_name: str) -> str:
    """The ``lfw_labels`` truth value of a row on base face ``base_name`` of ``source``."""
    if source != "lfw":
        return ""
    return "agree" if lfw_labels_agree(base_name) else "contradict"


@dataclass(frozen=True)
class WriteJob:
    data_root: str | None
    split: str
    seed: int
    config: SynthConfig
    sources: tuple[str, ...]
    limit: int | None
    out: str


_WORKER: tuple[Synthesizer, WriteJob] | None = None


def _init_worker(job: WriteJob) -> None:
    global _WORKER
    cv2.setNumThreads(1)
    _WORKER = (Synthesizer(job.data_root, job.split, job.config, job.sources, job.limit, show_progress=False), job)


def sample_row(name: str, s: Sample) -> dict[str, str]:
    return {
        "filename": name, "FaceOcclusion": f"{s.occlusion:.6f}", "gender": s.gender, "is_gray": str(int(s.is_gray)),
        "occluder": "+".join(s.kinds) or "none", "source": s.source, "base": s.base_name,
        "lfw_labels": lfw_labels_value(s.source, s.base_name),
    }


def save_sample(out: Path, name: str, s: Sample) -> None:
    """Picture as JPEG (quality 95, like the challenge's files) and labels as PNG."""
    cv2.imwrite(str(out / "images" / name), s.image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imwrite(str(out / "labels" / (Path(name).stem + ".png")), s.labels)


def _work(item: tuple[int, Task]) -> dict[str, str]:
    assert _WORKER is not None
    synth, job = _WORKER
    i, task = item
    s = run_task(synth, task, job.seed)
    name = f"{i:06d}.jpg"
    save_sample(Path(job.out), name, s)
    return sample_row(name, s)


def write_dataset(job: WriteJob, tasks: list[Task], workers: int = 0) -> Path:
    """Make every task's sample and write ``truth.csv`` atomically once all are done.

    Samples already on disk from an interrupted run are made again (cheap, deterministic),
    so the truth file always matches the images.
    """
    out = Path(job.out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    workers = workers or max(1, os.cpu_count() or 1)
    items = list(enumerate(tasks))
    rows: list[dict[str, str]] = []
    bar = tqdm(total=len(items), desc=f"synth {job.split}", unit="img", smoothing=0.05)
    if workers == 1:
        _init_worker(job)
        for it in items:
            rows.append(_work(it))
            bar.update()
    else:
        ctx = mp.get_context("spawn")  # MediaPipe and OpenCV are not fork-safe
        with ctx.Pool(workers, initializer=_init_worker, initargs=(job,)) as pool:
            for row in pool.imap(_work, items, chunksize=8):
                rows.append(row)
                bar.update()
    bar.close()
    write_truth(out / "truth.csv", rows)
    return out / "truth.csv"


def read_truth_rows(folder: Path) -> list[dict[str, str]]:
    """The rows of a synth output folder's truth.csv (the one CSV reader, :func:`occparse.runtime.io.read_csv_rows`)."""
    from ..runtime.io import read_csv_rows

    return read_csv_rows(Path(folder) / "truth.csv", FileNotFoundError)


def write_truth(path: Path, rows: Iterable[dict[str, str]]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(TRUTH_COLUMNS), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def tasks_for(synth: Synthesizer, preset: str, count: int) -> list[Task]:
    if preset == "bench":
        return bench_tasks(synth)
    # train/holdout: random base faces, deterministic from the seed
    rng = np.random.default_rng(12345)
    n = len(synth.faces.faces)
    return [Task(int(rng.integers(n)), i) for i in range(count)]


def write_lfw_photo_truth(synth: Synthesizer, out: Path, agreeing_only: bool = False) -> Path:
    """Truth for the real LFW photos of ``synth``'s split themselves (no synthetic occluder): the 500 val
    photos for split ``bench``, the 1,500 train photos for ``train``. GT from their skin labels inside R,
    and the share of R that is facial hair (:func:`occparse.labels.split_facial_hair`), so that ``occparse
    evaluate`` can report faces with and without facial hair (the facial hair that the label map shows:
    an audited region is left out, see :func:`occparse.synth.engine.base_labels`), and ``lfw_labels``
    (agree / contradict, the committed label audit), and on val photos ``headwear`` (none / covers_face /
    above_face, the committed list judged by eye). ``agreeing_only`` leaves the contradicting photos
    out (for fitting on real truth). Filenames are relative to the data folder's
    ``faces/lfw_parts/images``. Returns ``out/truth.csv``."""
    from ..runtime.regions import face_region
    from .engine import base_labels, base_visible, occlusion_of, truth_face

    rows = []
    headwear = lfw_val_headwear() if getattr(synth.faces, "split", None) == "bench" else None
    for f in synth.faces.of("lfw"):
        if agreeing_only and not lfw_labels_agree(f.name):
            continue
        lab = read_label_map(f.label_path)  # read once: the crown test, V and the facial hair all use it
        region = face_region(truth_face(f, lab), lab.shape)  # R restored, under a cap too (the crown)
        gt = occlusion_of(region, base_visible(f, region, lab))
        beard = float((base_labels(f, region, lab)[region] == FACIAL_HAIR).mean()) if region.any() else 0.0
        rows.append({"filename": f.name, "FaceOcclusion": f"{gt:.6f}", "gender": f.gender, "is_gray": "0",
                     "occluder": "none", "source": "lfw", "base": f.name, "facial_hair": f"{beard:.6f}",
                     "lfw_labels": lfw_labels_value("lfw", f.name),
                     "headwear": "" if headwear is None else headwear.get(f.name, "none")})
    out.mkdir(parents=True, exist_ok=True)
    write_truth(out / "truth.csv", rows)
    return out / "truth.csv"


def contact_sheet(samples: list[Sample], columns: int = 8) -> np.ndarray:
    """A grid of samples with R outlined in green, occluders tinted red, facial hair brown."""
    size = samples[0].image.shape[0]
    rows = (len(samples) + columns - 1) // columns
    sheet = np.full((rows * size, columns * size, 3), 255, np.uint8)
    for i, s in enumerate(samples):
        im = s.image.astype(np.float32)
        for cls in (OCCLUDER, FACIAL_HAIR):
            m = s.labels == cls
            im[m] = im[m] * 0.55 + PALETTE[cls] * 0.45
        im = np.clip(im, 0, 255).astype(np.uint8)
        cv2.polylines(im, [np.round(s.face.oval * 16).astype(np.int32)], True, (0, 230, 0), 1, cv2.LINE_AA, 4)
        text = f"{s.occlusion:.2f} {'+'.join(s.kinds) or 'none'}{' gray' if s.is_gray else ''}"
        cv2.putText(im, text, (3, size - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(im, text, (3, size - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
        r, c = divmod(i, columns)
        sheet[r * size : (r + 1) * size, c * size : (c + 1) * size] = im
    return sheet


def preview(synth: Synthesizer, tasks: list[Task], seed: int, path: Path, n: int = 48) -> None:
    """Draw ``n`` samples, evenly spread over the task list, into one PNG."""
    idx = np.linspace(0, len(tasks) - 1, min(n, len(tasks))).round().astype(int)
    samples = [run_task(synth, tasks[i], seed) for i in tqdm(idx, desc="preview", unit="img")]
    sheet = contact_sheet(samples)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sheet[..., ::-1])


def facial_hair_rule_sheet(synth: Synthesizer, n: int = 24) -> np.ndarray:
    """LFW men with the most hair in the lower face: photo | zone (green) and facial hair (brown) | labels."""
    from ..labels import HAIR, colorize, facial_hair_zone, split_facial_hair
    from ..runtime.regions import face_region
    from .sources import read_rgb

    men = [f for f in synth.faces.of("lfw") if f.gender == "M"] or synth.faces.of("lfw")
    scored = []
    for f in men:
        lab = read_label_map(f.label_path)
        zone = facial_hair_zone(f.face, lab.shape)
        scored.append((float(((lab == HAIR) & zone).sum()), f, lab, zone))
    scored.sort(key=lambda t: -t[0])
    tiles = []
    for _, f, lab, zone in scored[:n]:
        rgb = read_rgb(f.image_path).astype(np.float32)
        split = split_facial_hair(lab, f.face, f.gender)
        over = rgb.copy()
        over[zone] = 0.7 * over[zone] + 0.3 * np.array([0, 255, 0])
        over[split == FACIAL_HAIR] = 0.4 * over[split == FACIAL_HAIR] + 0.6 * PALETTE[FACIAL_HAIR]
        edge = face_region(f.face, lab.shape).astype(np.uint8)
        cnt, _ = cv2.findContours(edge, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        over = np.clip(over, 0, 255).astype(np.uint8)
        cv2.drawContours(over, cnt, -1, (255, 255, 255), 1)
        tiles.append(np.hstack([rgb.astype(np.uint8), over, colorize(split)]))
    if not tiles:
        return np.zeros((8, 8, 3), np.uint8)
    h, w = tiles[0].shape[:2]
    tiles = [cv2.resize(t, (w, h)) for t in tiles]
    rows = [np.hstack(tiles[i : i + 2]) if len(tiles[i : i + 2]) == 2 else np.hstack([tiles[i], np.zeros_like(tiles[i])])
            for i in range(0, len(tiles), 2)]
    return np.vstack(rows)


def preview_per_kind(synth: Synthesizer, seed: int, path: Path, n: int = 16) -> list[Path]:
    """One contact sheet per occluder kind and look-alike (``PATH_KIND.png``) and the facial-hair rule sheet."""
    from .engine import KINDS, NEGATIVE_KINDS

    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    faces = synth.faces.faces
    for kind in KINDS + NEGATIVE_KINDS:
        samples = []
        for i in tqdm(range(n), desc=f"preview {kind}", unit="img"):
            rng = np.random.default_rng([seed, i, len(kind)])
            base = faces[int(rng.integers(len(faces)))]
            if kind == "beard":
                men = [f for f in faces if f.gender == "M"] or faces
                base = men[int(rng.integers(len(men)))]
            samples.append(synth.make(base, rng, kinds=(kind,)))
        p = path.with_name(f"{path.stem}_{kind}{path.suffix}")
        cv2.imwrite(str(p), contact_sheet(samples)[..., ::-1])
        out.append(p)
    p = path.with_name(f"{path.stem}_facial_hair_rule{path.suffix}")
    cv2.imwrite(str(p), facial_hair_rule_sheet(synth)[..., ::-1])
    out.append(p)
    return out
