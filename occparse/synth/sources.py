"""Where synthetic samples come from: base faces, their cached meshes, and the occluder cut-outs.

Everything is read from the research-licensed data folder (``../shared/data`` beside the
checkout, or ``--data``/``OCCPARSE_DATA``); nothing from it is ever copied into the repository.
Splits are fixed so that no training command can see a benchmark face or a benchmark hand:

* LFW ``val`` (500) and the 1,000 UTKFace files in ``bench_utkface.txt`` are benchmark faces.
* Hands whose name hashes into the last 20% of buckets are benchmark hands; hair donors for the
  benchmark come from LFW ``val``, for training from LFW ``train``.
* ``holdout`` is the part of the training faces (5 of 100 name-hash buckets) that the regressors
  never train on: their validation split, and the faces the stacker is fitted on.
* CelebA-HQ (``faces/celebahq``, ``faces/celebahq_hair``): a photo is ``val`` when its file name
  hashes into the last :data:`CELEBAHQ_VAL_PERCENT` buckets of its folder (20 of 100 for the
  attribute photos, 40 for the 600 with hair masks, so that about 240 of them measure), else
  ``train`` (:func:`celebahq_split`).
"""

from __future__ import annotations

import configparser
import functools
import hashlib
import os
from dataclasses import dataclass, fields
from functools import cached_property
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import DataError
from ..runtime.faces import FaceMesher
from ..runtime.mesh import Face


class DataNotFoundError(DataError, FileNotFoundError):
    """The shared data folder is not where it was looked for."""


def find_data_root(explicit: str | Path | None = None) -> Path:
    """The data folder: ``explicit``, else $OCCPARSE_DATA, else ``../shared/data`` from the cwd or the checkout."""
    candidates = []
    if explicit:
        candidates.append(Path(explicit))
    elif os.environ.get("OCCPARSE_DATA"):
        candidates.append(Path(os.environ["OCCPARSE_DATA"]))
    else:
        candidates += [Path.cwd() / "../shared/data", Path(__file__).resolve().parents[3] / "shared/data"]
    for c in candidates:
        if (c / "faces").is_dir() and (c / "occluders").is_dir():
            return c.resolve()
    tried = ", ".join(str(c) for c in candidates)
    raise DataNotFoundError(f"occparse data folder not found (tried {tried}); pass --data DIR or set OCCPARSE_DATA")


def cache_dir() -> Path:
    d = Path(os.environ.get("OCCPARSE_CACHE", Path.home() / ".cache" / "occparse"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def stable_bucket(name: str, buckets: int = 100) -> int:
    """A split bucket that depends on the name only (not on Python's hash seed)."""
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % buckets


def bench_utkface_names() -> list[str]:
    """The 1,000 UTKFace files reserved for the benchmark (committed list)."""
    text = resources.files("occparse.synth").joinpath("bench_utkface.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


#: Kinds of contradiction in the LFW label audit (occparse/synth/lfw_label_audit.csv): what the LFW Part
#: Labels call a region, against occparse's definition of occlusion.
LFW_AUDIT_KINDS = ("beard_as_skin", "sunglasses_as_skin", "hand_as_skin", "object_as_skin", "headwear_as_skin",
                   "hair_as_skin", "lips_as_hair", "skin_as_hair", "other")
#: Where on the face a contradicting region lies (the audit's ``where`` column).
LFW_AUDIT_WHERE = ("lower_face", "mouth", "eyes", "forehead", "cheeks", "whole_face", "other")


@dataclass(frozen=True)
class LabelContradiction:
    """One region of an LFW label map that contradicts the definition of occlusion, judged by eye on
    contact sheets (photo beside its labels): e.g. a moustache labelled skin (``beard_as_skin``,
    ``mouth``). ``severity`` is "clear" or "minor" (a few percent of the face, or a doubtful call)."""

    filename: str
    split: str
    gender: str
    kind: str
    where: str
    severity: str
    note: str


def _packaged_csv(name: str) -> list[dict[str, str]]:
    """The rows of a CSV list shipped in ``occparse/synth`` (the LFW label audit, the LFW val headwear list)."""
    import csv
    import io

    return list(csv.DictReader(io.StringIO(resources.files("occparse.synth").joinpath(name).read_text(encoding="utf-8"))))


def _audit_by_photo(name: str, row_type: type) -> dict:
    """A committed audit list (``name`` in ``occparse/synth``) as photo file name -> its rows (``row_type``)."""
    out: dict = {}
    for r in _packaged_csv(name):
        out.setdefault(r["filename"], []).append(row_type(**{f.name: r[f.name] for f in fields(row_type)}))
    return out


def lfw_label_audit() -> dict[str, list[LabelContradiction]]:
    """The committed audit of the 2,000 LFW Part Labels maps: photo file name -> its contradictions
    (photos whose labels agree with the definition are absent)."""
    return _audit_by_photo("lfw_label_audit.csv", LabelContradiction)


def lfw_labels_agree(filename: str) -> bool:
    """True when the audit found nothing in the LFW label map of ``filename`` that contradicts the
    definition of occlusion (the photo is absent from ``lfw_label_audit.csv``)."""
    return filename not in _audit_cached()


def lfw_label_audit_of(filename: str) -> list[LabelContradiction]:
    """The audited contradictions of one LFW photo (empty when its labels agree); read once, cached."""
    return _audit_cached().get(filename, [])


@functools.lru_cache(maxsize=1)
def _audit_cached() -> dict[str, list[LabelContradiction]]:
    return lfw_label_audit()


@functools.lru_cache(maxsize=1)
def lfw_val_headwear() -> dict[str, str]:
    """The committed list of LFW ``val`` photos whose central face wears headwear, judged by eye
    (``lfw_val_headwear.csv``: kind and whether it covers part of the face region): photo file name ->
    ``"covers_face"`` or ``"above_face"``. A val photo absent from it wears none; train photos were
    not judged."""
    return {r["filename"]: "covers_face" if r["covers_face"] == "yes" else "above_face"
            for r in _packaged_csv("lfw_val_headwear.csv")}


def contradiction_region(face: Face, shape: tuple[int, int], where: str) -> np.ndarray:
    """The pixels of an image of ``shape`` (H, W) that an audited contradiction at ``where`` may cover,
    from the face mesh alone: a boolean H x W mask, generous on purpose (training ignores it).

    * ``mouth``, ``lower_face``: below the line through the subnasale, inside R grown by 10% or R moved
      down by 20% of the face height (:func:`occparse.labels.facial_hair_zone`: where a beard can be);
    * ``eyes``: each eye's contour hull grown 2.2x about its centre (a lens reaches past the lids);
    * ``forehead``: above the line through the bottom of the eyebrows, inside R grown by 10% about its
      centre (a headband or a fringe labelled skin);
    * ``cheeks``: R grown by 10%, below the eyebrow line;
    * ``whole_face``, ``other``: R grown by 10%.

    Raises ValueError for a ``where`` outside :data:`LFW_AUDIT_WHERE`."""
    from ..labels import facial_hair_zone
    from ..runtime.mesh import LEFT_BROW, LEFT_EYE, RIGHT_BROW, RIGHT_EYE
    from ..runtime.regions import _fill, _hull

    if where not in LFW_AUDIT_WHERE:
        raise ValueError(f"where must be one of {', '.join(LFW_AUDIT_WHERE)}, not {where!r}")
    if where in ("mouth", "lower_face"):
        return facial_hair_zone(face, shape)
    lm = face.landmarks.astype(np.float64)
    if where == "eyes":
        return _fill(shape, _hull(lm[list(LEFT_EYE)], 2.2)) | _fill(shape, _hull(lm[list(RIGHT_EYE)], 2.2))
    oval = face.oval.astype(np.float64)
    centre = oval.mean(0)
    grown = _fill(shape, (oval - centre) * 1.1 + centre)
    if where in ("whole_face", "other"):
        return grown
    _, down = face.axes()
    brow_line = max(float(lm[i] @ down) for i in LEFT_BROW + RIGHT_BROW)
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    along = xs * float(down[0]) + ys * float(down[1])
    return grown & ((along < brow_line) if where == "forehead" else (along >= brow_line))


def ignore_contradictions(labels: np.ndarray, face: Face, contradictions: list[LabelContradiction]) -> np.ndarray:
    """``labels`` (uint8 H x W) with every audited contradicting region set to 255 (ignored by the
    training loss): no rule relabels them safely (a moustache labelled skin may cover any share of its
    region), so they are not relabelled. Returns a new array; the input is not changed."""
    from ..labels import IGNORE

    out = labels.copy()
    for c in contradictions:
        out[contradiction_region(face, labels.shape, c.where)] = IGNORE
    return out


#: Name-hash buckets (of 100) of training faces held out from the regressors' training: their
#: validation split, and the faces the stacker is fitted on (``holdout`` split).
HOLDOUT_BUCKETS = 5


#: Kinds in the audit of the 600 CelebA-HQ hair-mask photos (occparse/synth/celebahq_hair_audit.csv): what,
#: besides head hair, shows over or at the face, judged by eye on the photos alone (never beside a prediction).
CELEBAHQ_AUDIT_KINDS = ("headband", "hat", "hand", "microphone", "object", "glasses", "sunglasses", "mask",
                        "scarf_collar", "facial_hair", "watermark", "face_paint", "cut")
#: ... of them, the ones that hide the face by the definition of occlusion, which the hair mask does not draw:
#: where one is ``clear``, the share of R under the hair mask is not the photo's occlusion. (Face paint is
#: visible face; a face cut by the frame is handled by both R's.)
CELEBAHQ_AUDIT_OCCLUDING = tuple(k for k in CELEBAHQ_AUDIT_KINDS if k not in ("face_paint", "cut"))


@dataclass(frozen=True)
class AuditFlag(LabelContradiction):
    """One thing seen at the face of a CelebA-HQ hair-mask photo besides head hair (the fields of an LFW audit
    row): ``kind`` one of :data:`CELEBAHQ_AUDIT_KINDS`, ``where`` forehead, eyes, nose, mouth, chin, cheek or
    jaw (joined by +), ``severity`` "clear" (obvious, hides a visible part) or "slight" (small or doubtful)."""


@functools.lru_cache(maxsize=1)
def celebahq_hair_audit() -> dict[str, list[AuditFlag]]:
    """The committed audit of the 600 CelebA-HQ hair-mask photos: photo file name -> what was seen at its face
    besides head hair (photos where nothing was are absent)."""
    return _audit_by_photo("celebahq_hair_audit.csv", AuditFlag)


def hair_mask_occluders(filename: str) -> list[str]:
    """The kinds of :data:`CELEBAHQ_AUDIT_OCCLUDING` the audit found, clearly, over the face of a hair-mask
    photo (sorted, without repeats): empty when the hair mask is all that hides its face as far as the eye
    tells (an unaudited name is empty too)."""
    return sorted({f.kind for f in celebahq_hair_audit().get(filename, [])
                   if f.kind in CELEBAHQ_AUDIT_OCCLUDING and f.severity == "clear"})


#: Share (percent of the 100 name-hash buckets) of each CelebA-HQ folder that is ``val``; the last
#: buckets, so the ``holdout`` buckets (< HOLDOUT_BUCKETS) of a training command stay in ``train``.
CELEBAHQ_VAL_PERCENT = {"celebahq": 20, "celebahq_hair": 40}


def celebahq_split(filename: str, folder: str = "celebahq") -> str:
    """``"val"`` or ``"train"`` for a CelebA-HQ photo, from its file name alone (e.g. ``"27639.jpg"``).

    ``folder`` is ``"celebahq"`` (attribute labels only, 20% val) or ``"celebahq_hair"`` (hair masks,
    40% val). The two folders hold different photo ids, so no photo can fall on both sides; CelebA
    identities can still repeat across photos (the data holds no identity labels), so a val face
    may resemble a train face of the same person. Raises ValueError for another folder."""
    if folder not in CELEBAHQ_VAL_PERCENT:
        raise ValueError(f"folder must be one of {sorted(CELEBAHQ_VAL_PERCENT)}, not {folder!r}")
    return "val" if stable_bucket(filename) >= 100 - CELEBAHQ_VAL_PERCENT[folder] else "train"


@dataclass(frozen=True)
class CelebAPhoto:
    """One CelebA-HQ photo: its image, its hair mask (``None`` outside ``celebahq_hair``), gender
    ("F"/"M") and CelebA's 40 attributes as booleans (True where the CSV says +1)."""

    folder: str
    image_path: Path
    hair_path: Path | None
    gender: str
    attributes: dict[str, bool]

    @property
    def name(self) -> str:
        return self.image_path.name


def celebahq_photos(data_root: Path, folder: str = "celebahq", split: str = "val") -> list[CelebAPhoto]:
    """The photos of one CelebA-HQ folder and split (``"train"``, ``"val"`` or ``"all"``), in file-name
    order, from its ``attributes.csv``. Raises :class:`DataNotFoundError` when the folder or its
    attributes are missing, ValueError for an unknown folder or split."""
    if split not in ("train", "val", "all"):
        raise ValueError(f"split must be train, val or all, not {split!r}")
    if folder not in CELEBAHQ_VAL_PERCENT:
        raise ValueError(f"folder must be one of {sorted(CELEBAHQ_VAL_PERCENT)}, not {folder!r}")
    d = data_root / "faces" / folder
    rows = _csv_rows(d / "attributes.csv")
    out = []
    for r in sorted(rows, key=lambda r: r["filename"]):
        name = r["filename"]
        if split != "all" and celebahq_split(name, folder) != split:
            continue
        attrs = {k: v.strip() == "1" for k, v in r.items() if k not in ("filename", "gender") and v is not None}
        hair = d / "hair" / (Path(name).stem + ".png") if folder == "celebahq_hair" else None
        out.append(CelebAPhoto(folder, d / "images" / name, hair, r["gender"], attrs))
    return out


def _in_split(name: str, split: str) -> bool:
    return split != "holdout" or stable_bucket(name) < HOLDOUT_BUCKETS


def _csv_rows(path: Path) -> list[dict[str, str]]:
    from ..runtime.io import read_csv_rows

    return read_csv_rows(path, DataNotFoundError)


@dataclass(frozen=True)
class BaseFace:
    """A real face image that synthetic occluders are pasted onto."""

    source: str  # "lfw" or "utkface"
    image_path: Path
    label_path: Path | None  # LFW part labels (0 bg, 1 skin, 2 hair); None for UTKFace
    gender: str  # "F" or "M"
    face: Face  # mesh of the labelled face

    @property
    def name(self) -> str:
        return self.image_path.name


def _pick_central(faces: list[Face]) -> Face | None:
    """LFW photos can hold several people: the labelled face is the one nearest the image centre."""
    if not faces:
        return None
    h, w = faces[0].image_size
    c = np.array([w / 2, h / 2])
    return min(faces, key=lambda f: float(np.linalg.norm(f.oval.mean(0) - c)))


def _mesh_cached(paths: list[Path], key: str, show_progress: bool = True) -> dict[str, Face]:
    """Mesh every image once and keep the landmarks and depth in the cache folder (shared by every
    command). A cache without depth (written before the face region was restored, which needs it) is
    meshed again."""
    from ..runtime.io import read_image

    folder = hashlib.sha1(str(paths[0].parent.resolve()).encode()).hexdigest()[:8] if paths else "none"
    cache = cache_dir() / f"mesh_{key}_{folder}.npz"
    found: dict[str, Face] = {}
    current = cache.exists() and "depth" in np.load(cache, allow_pickle=False).files
    if current:
        z = np.load(cache, allow_pickle=False)
        for n, lm, dp, hh, ww in zip(z["names"], z["landmarks"], z["depth"], z["h"], z["w"], strict=True):
            if not np.isnan(lm[0, 0]):
                found[str(n)] = Face(lm.astype(np.float32), (int(hh), int(ww)), dp.astype(np.float32))
        known = set(z["names"].tolist())
        todo = [p for p in paths if p.name not in known]
    else:
        known, todo = set(), list(paths)
    if not todo:
        return found
    names, lms, deps, hs, ws = [], [], [], [], []
    if current:
        z = np.load(cache, allow_pickle=False)
        names, lms, deps = list(z["names"]), list(z["landmarks"]), list(z["depth"])
        hs, ws = list(z["h"]), list(z["w"])
    with FaceMesher(max_faces=4) as mesher:
        for p in tqdm(todo, desc=f"meshing {key} faces (cached for next time)", disable=not show_progress, unit="img"):
            img = read_image(p).rgb
            face = _pick_central(mesher.mesh_only(img))
            names.append(p.name)
            hs.append(img.shape[0])
            ws.append(img.shape[1])
            if face is None or face.depth is None:
                lms.append(np.full((478, 2), np.nan, np.float32))
                deps.append(np.full(478, np.nan, np.float32))
            else:
                lms.append(face.landmarks)
                deps.append(face.depth)
                found[p.name] = Face(face.landmarks, face.image_size, face.depth)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, names=np.array(names), landmarks=np.stack(lms), depth=np.stack(deps), h=np.array(hs),
                        w=np.array(ws))
    os.replace(tmp, cache)
    return found


class FaceSource:
    """The base faces of one split: ``bench`` or ``train``, from LFW and/or UTKFace."""

    def __init__(self, data_root: Path, split: str, sources: tuple[str, ...] = ("lfw", "utkface"),
                 limit: int | None = None, show_progress: bool = True):
        if split not in ("bench", "train", "holdout"):
            raise ValueError("split must be 'bench', 'train' or 'holdout'")
        self.root = data_root
        self.split = split
        self.faces: list[BaseFace] = []
        bench_utk = set(bench_utkface_names())
        if "lfw" in sources:
            d = data_root / "faces/lfw_parts"
            rows = _csv_rows(d / "index.csv")
            want = "val" if split == "bench" else "train"
            rows = [r for r in rows if r["split"] == want and _in_split(r["filename"], split)][:limit]
            paths = [d / "images" / r["filename"] for r in rows]
            meshes = _mesh_cached(paths, f"lfw_{want}", show_progress)
            for r, p in zip(rows, paths, strict=True):
                if p.name in meshes:
                    self.faces.append(BaseFace("lfw", p, d / "labels" / (p.stem + ".png"), r["gender"], meshes[p.name]))
        if "utkface" in sources:
            d = data_root / "faces/utkface"
            rows = _csv_rows(d / "labels.csv")
            rows = [r for r in rows if (r["filename"] in bench_utk) == (split == "bench") and _in_split(r["filename"], split)]
            # a name-hash order, so that --limit takes a random-looking subset (names start with the age)
            rows.sort(key=lambda r: (stable_bucket(r["filename"], 1 << 30), r["filename"]))
            rows = rows[:limit]
            paths = [d / "images" / r["filename"] for r in rows]
            meshes = _mesh_cached(paths, f"utkface_{split}", show_progress)
            for r, p in zip(rows, paths, strict=True):
                if p.name in meshes:
                    self.faces.append(BaseFace("utkface", p, None, r["gender"], meshes[p.name]))

    def of(self, source: str) -> list[BaseFace]:
        return [f for f in self.faces if f.source == source]


@dataclass(frozen=True)
class MaskTemplate:
    """A face-mask cut-out and its six anchors (a..f, see the data README)."""

    name: str
    rgba: np.ndarray
    anchors: np.ndarray  # (6, 2) float32, template pixels, order a b c d e f
    view: str  # "front", "left" or "right"


def read_rgba(path: Path) -> np.ndarray:
    """An RGBA cut-out as uint8 H x W x 4 (RGB order)."""
    im = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if im is None:
        raise DataNotFoundError(f"cannot read {path}")
    if im.ndim == 2:
        im = cv2.cvtColor(im, cv2.COLOR_GRAY2BGRA)
    if im.shape[2] == 3:
        im = cv2.cvtColor(im, cv2.COLOR_BGR2BGRA)
    if im.dtype != np.uint8:
        im = (im / 257).astype(np.uint8)
    return cv2.cvtColor(im, cv2.COLOR_BGRA2RGBA)


def read_label_map(path: Path) -> np.ndarray:
    """A label map (LFW Part Labels, synth output) as uint8 H x W: the one reader of label files.
    Raises DataNotFoundError when unreadable."""
    lab = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if lab is None:
        raise DataNotFoundError(f"cannot read label map {path}")
    return lab


def read_rgb(path: Path) -> np.ndarray:
    """A data file (synth output, dataset photo) as uint8 RGB H x W x 3: the one reader for training,
    evaluation and calibration data. Photos users bring go through :func:`occparse.runtime.io.read_image`
    (EXIF orientation, 16-bit scaling, typed errors). Raises DataNotFoundError when unreadable."""
    im = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if im is None:
        raise DataNotFoundError(f"cannot read {path}")
    return cv2.cvtColor(im, cv2.COLOR_BGR2RGB)


def hand_cutout(rgb: np.ndarray) -> np.ndarray:
    """RGBA of a hand photographed on white: alpha from the background's whiteness, cleaned up."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    bg = (hsv[..., 2] > 200) & (hsv[..., 1] < 40)
    fg = (~bg).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    n, lab, stats, _ = cv2.connectedComponentsWithStats(fg)
    if n > 1:
        keep = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        fg = (lab == keep).astype(np.uint8)
    # fill holes (rings, nails that read as white)
    ff = fg.copy()
    pad = np.zeros((fg.shape[0] + 2, fg.shape[1] + 2), np.uint8)
    cv2.floodFill(ff, pad, (0, 0), 1)
    fg = fg | (1 - ff)
    alpha = cv2.GaussianBlur(fg.astype(np.float32), (0, 0), 0.8)
    return np.dstack([rgb, np.clip(alpha * 255, 0, 255).astype(np.uint8)])


class OccluderLibrary:
    """Occluder cut-outs for one split, loaded lazily and kept in memory."""

    def __init__(self, data_root: Path, split: str):
        self.root = data_root / "occluders"
        self.split = split

    @cached_property
    def mask_templates(self) -> list[MaskTemplate]:
        cfg = configparser.ConfigParser()
        cfg.read(self.root / "masks/masks.cfg")
        out = []
        for name in cfg.sections():
            s = cfg[name]
            if "template" not in s or not (self.root / s["template"]).is_file():  # listed but not shipped
                continue
            anchors = np.array([[float(v) for v in s[f"mask_{k}"].split(",")] for k in "abcdef"], np.float32)
            view = "left" if name.endswith("_left") else "right" if name.endswith("_right") else "front"
            out.append(MaskTemplate(name, read_rgba(self.root / s["template"]), anchors, view))
        return out

    @cached_property
    def accessories(self) -> dict[str, np.ndarray]:
        return {p.stem: read_rgba(p) for p in sorted((self.root / "accessories").glob("*.png"))}

    @cached_property
    def textures(self) -> list[np.ndarray]:
        paths = sorted(p for p in (self.root / "masks/textures").rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        return [cv2.resize(read_rgb(p), (256, 256), interpolation=cv2.INTER_AREA) for p in paths]

    @cached_property
    def hand_paths(self) -> list[Path]:
        rows = _csv_rows(self.root / "hands/hands.csv")
        bench = [r for r in rows if stable_bucket(r["filename"]) >= 80]
        train = [r for r in rows if stable_bucket(r["filename"]) < 80]
        chosen = bench if self.split == "bench" else train  # holdout uses training hands
        return [self.root / "hands/images" / r["filename"] for r in sorted(chosen, key=lambda r: r["filename"])]

    _hand_cache: dict[str, np.ndarray] | None = None

    def hand(self, index: int) -> np.ndarray:
        if self._hand_cache is None:
            self._hand_cache = {}
        p = self.hand_paths[index % len(self.hand_paths)]
        if p.name not in self._hand_cache:
            self._hand_cache[p.name] = hand_cutout(read_rgb(p))
        return self._hand_cache[p.name]
