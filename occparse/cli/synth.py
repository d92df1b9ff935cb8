"""``occparse synth``: synthetic occluded faces with exact ground truth (thin over occparse.synth)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from .common import (
    fail,
)


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``occparse synth`` (help, description, options) on the subcommands ``sub``."""
    p = sub.add_parser(
        "synth",
        help="make synthetic occluded faces with exact ground truth",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Paste masks, glasses, caps, hands, hair, scarves and objects onto real faces from the data "
        "folder, placed by MediaPipe landmarks, and write 224x224 aligned crops, the challenge CSV "
        "(filename,FaceOcclusion,gender + is_gray,occluder,source,base) and label maps "
        "(0 background, 1 visible face, 2 hair, 3 occluder, 255 unknown).",
        epilog="""presets:
  bench   the fixed benchmark split: 2,000 samples on the 500 LFW val faces (first variant of each
          face un-occluded) and 1,000 on the committed UTKFace benchmark list; benchmark-only hands
          and hair donors. Never used by training commands.
  train   --count samples on training faces (LFW train + UTKFace minus the benchmark list).
  holdout --count samples on the training faces that the regressors never train on (5 of 100
          name-hash buckets): what `occparse fit-stacker` is fitted on.
  lfw-val only DIR/truth.csv for the 500 real LFW val photos as they are (GT from their skin labels
          inside R); predict on them with --images-root DATA/faces/lfw_parts/images.
  lfw-train the same for the 1,500 real LFW train photos: real-photo rows for `occparse fit-stacker`
          (the parser trained on these photos and the regressors on synthetic variants of them; judge any
          stacker on lfw-val, never on these). With --agreeing-labels (lfw-val, lfw-train): only the
          photos whose labels agree with the definition (not in occparse/synth/lfw_label_audit.csv);
          every LFW truth row has an lfw_labels column (agree/contradict) for `occparse evaluate --by`.
  celebahq-hair  a parser pool of real hair: the train part of faces/celebahq_hair (hair mask -> hair;
          the rest of R -> visible face on photos without hat, glasses or facial hair, else unknown;
          all else unknown), --count samples (default: 4 per photo; each photo the same number of
          times); the val part is the CelebA benchmark's and never written.
  celebahq-attributes  a parser pool from the train part of faces/celebahq, which has attributes but no
          pixel labels: a teacher parser's labels (--teacher) where it is confident, corrected by the
          attributes inside the facial-hair zone (a goatee/moustache/sideburns photo: the zone's
          beard-like pixels -> facial hair, its sure skin -> face; a clean photo: facial hair there ->
          face); photos with
          Bangs or a hat are left out. One sample per photo; --max-per-kind caps beard, light_hair
          (bald, receding or grey, clean) and plain photos, and --max-per-kind sunglasses=N adds up to
          N Eyeglasses photos whose lenses are dark (both eyes without a bright white: the lens pixels
          -> occluder; clear glasses skipped), and --max-per-kind hat=N up to N Wearing_Hat photos
          whose face mesh the hat pulls in at the forehead (the band the face-shape prior restores
          there -> occluder, except where the teacher is sure it is face; hats above the face
          skipped); --hand-rate pastes real hands (occluder) over a share of them.

examples:
  occparse synth --preset bench --out /tmp/bench
  occparse synth --preset bench --preview sheet.png          # 48 samples, R outlined, occluders red
  occparse synth --preset train --count 5000 --seed 1 --out /tmp/train --workers 2""",
    )
    add_arguments(p)
    p.set_defaults(func=run)
    return p


#: presets whose samples are fixed: no --count, no --kind-weight
FIXED_PRESETS = ("bench", "lfw-val", "lfw-train")
PRESETS = ("bench", "train", "holdout", "lfw-val", "lfw-train", "celebahq-hair", "celebahq-attributes")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``occparse synth``'s options."""
    p.add_argument("--preset", choices=list(PRESETS), default="train",
                   help="which faces and occluders (default train)")
    p.add_argument("--out", type=Path, help="output folder (images/, labels/, truth.csv)")
    p.add_argument("--count", type=int, help="number of samples for --preset train (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same samples (default 0)")
    p.add_argument("--preview", metavar="SHEET.png", help="also draw a contact sheet of 48 samples")
    p.add_argument("--per-kind", action="store_true",
                   help="with --preview: one sheet per occluder kind and look-alike (SHEET_KIND.png), "
                        "and SHEET_facial_hair_rule.png showing how LFW hair becomes facial hair")
    p.add_argument("--engine", choices=["first", "real"],
                   help="occlusion distribution: 'first' (the benchmark's, default for --preset bench) or "
                        "'real' (adds beards, hands over mouth/eyes, hair of every colour, and look-alikes "
                        "such as face paint and shadows that stay face; default for train/holdout)")
    p.add_argument("--kind-weight", action="append", default=[], metavar="KIND=W",
                   help="train/holdout only: oversample (or drop, W=0) one occluder kind by setting its relative "
                        "weight in the engine's draw; each engine's default weights sum to 1, so with the real "
                        "engine --kind-weight sunglasses=0.5 makes about a third of the occluders sunglasses "
                        "(repeatable, one per kind; kinds: hand, object, hair, glasses, sunglasses, cap, mask, "
                        "scarf, beard, goggles, hat, held_object; beard needs --engine real; naming goggles, hat "
                        "or held_object adds them to the first engine)")
    p.add_argument("--agreeing-labels", action="store_true",
                   help="lfw-val/lfw-train: write only photos whose LFW labels agree with the definition "
                        "(the committed label audit)")
    p.add_argument("--data", help="data folder (default $OCCPARSE_DATA or ../shared/data)")
    p.add_argument("--workers", type=int, default=0, help="processes (default: all cores)")
    p.add_argument("--sources", default="lfw,utkface", help="base faces: lfw, utkface or both (default both)")
    p.add_argument("--limit", type=int, help="use at most this many faces per source (quick tries)")
    p.add_argument("--none-rate", type=float, default=0.35, help="share of samples without pasted occluder (default 0.35)")
    p.add_argument("--gray-rate", type=float, default=0.15, help="share converted to grayscale (default 0.15)")
    p.add_argument("--size", type=int, default=224, help="crop side in pixels (default 224)")
    p.add_argument("--teacher", type=Path, metavar="PARSER.onnx",
                   help="celebahq-attributes only: the parser whose labels the attributes correct "
                        "(default: the shipped weights/parser.onnx)")
    p.add_argument("--max-per-kind", action="append", default=[], metavar="KIND=N",
                   help="celebahq-attributes only: at most N photos of a kind (beard, light_hair, plain; sunglasses, "
                        "hat: none unless asked for); repeatable")
    p.add_argument("--hand-rate", type=float, default=0.0,
                   help="celebahq-attributes only: share of samples that also get a real hand pasted over the "
                        "mouth or an eye, labelled occluder (default 0)")
    p.add_argument("--hand-lower-face", type=float, default=0.0, metavar="SHARE",
                   help="celebahq-attributes only, with --hand-rate: share of the hands aimed at a feature (about "
                        "70%% of them) that go to the chin or a cheek instead of the mouth or an eye (a chin on a "
                        "hand, a hand along the jaw; default 0)")
    p.add_argument("--gender", choices=["F", "M"],
                   help="celebahq-attributes only: one gender's photos only (default both)")
    p.add_argument("--beard-threshold", type=float, default=0.3,
                   help="celebahq-attributes only: teacher facial hair + hair probability from which a pixel of "
                        "a beard photo's facial-hair zone is taught as facial hair (default 0.3)")


def run(a: argparse.Namespace) -> int:
    from ..synth.engine import SynthConfig, Synthesizer
    from ..synth.sources import DataNotFoundError
    from ..synth.writer import WriteJob, preview, tasks_for, write_dataset

    if a.preset in FIXED_PRESETS and a.count is not None:
        return fail(f"--count does not apply to --preset {a.preset} (its size is fixed)")
    if a.preset in FIXED_PRESETS and a.kind_weight:
        return fail(f"--kind-weight does not apply to --preset {a.preset} (its samples are fixed)")
    if not a.out and not a.preview:
        return fail("nothing to do: give --out DIR and/or --preview SHEET.png")
    if a.agreeing_labels and a.preset not in ("lfw-val", "lfw-train"):
        return fail("--agreeing-labels applies to --preset lfw-val and lfw-train only")
    if a.preset != "celebahq-attributes" and (a.teacher or a.max_per_kind or a.gender or a.beard_threshold != 0.3
                                              or a.hand_rate or a.hand_lower_face):
        return fail("--teacher, --max-per-kind, --gender, --beard-threshold, --hand-rate and --hand-lower-face "
                    "apply to --preset celebahq-attributes only")
    if a.preset == "celebahq-hair":
        return _run_celebahq_hair(a)
    if a.preset == "celebahq-attributes":
        return _run_celebahq_attributes(a)
    split = {"train": "train", "holdout": "holdout"}.get(a.preset, "bench")
    if a.preset in ("lfw-val", "lfw-train"):
        if not a.out:
            return fail(f"--preset {a.preset} needs --out DIR")
        from ..synth.writer import write_lfw_photo_truth

        try:
            synth = Synthesizer(a.data, "bench" if a.preset == "lfw-val" else "train", SynthConfig(), ("lfw",))
        except DataNotFoundError as e:
            return fail(str(e))
        truth = write_lfw_photo_truth(synth, Path(a.out), agreeing_only=a.agreeing_labels)
        _print_distribution(truth)
        print(f"images: --images-root {synth.faces.root / 'faces/lfw_parts/images'}")
        return 0
    engine = a.engine or ("first" if a.preset == "bench" else "real")
    make_cfg = SynthConfig.first_engine if engine == "first" else SynthConfig.real
    cfg = make_cfg(none_rate=a.none_rate, gray_rate=a.gray_rate, size=a.size)
    if a.kind_weight:
        try:
            cfg = cfg.with_kind_weights(parse_kind_weights(a.kind_weight))
        except ValueError as e:
            return fail(f"--kind-weight: {e}")
    sources = tuple(a.sources.split(","))
    if bad := set(sources) - {"lfw", "utkface"}:
        return fail(f"unknown --sources {sorted(bad)}; use lfw, utkface or both")
    try:
        synth = Synthesizer(a.data, split, cfg, sources, limit=a.limit)
    except DataNotFoundError as e:
        return fail(str(e))
    tasks = tasks_for(synth, a.preset, a.count or 10000)
    if a.preview and a.per_kind:
        from ..synth.writer import preview_per_kind

        for path in preview_per_kind(synth, a.seed, Path(a.preview)):
            print(f"contact sheet: {path}")
    elif a.preview:
        preview(synth, tasks, a.seed, Path(a.preview))
        print(f"contact sheet of {min(48, len(tasks))} samples: {a.preview}")
    if a.out:
        job = WriteJob(str(synth.faces.root), split, a.seed, cfg, sources, a.limit, str(a.out))
        truth = write_dataset(job, tasks, workers=a.workers)
        _print_distribution(truth)
    return 0


def _gray_every(a: argparse.Namespace) -> int:
    """--gray-rate as the CelebA-HQ pools take it: every N-th sample gray (0: none)."""
    return round(1 / a.gray_rate) if a.gray_rate > 0 else 0


def _run_celebahq_hair(a: argparse.Namespace) -> int:
    from ..synth.celebahq_pool import write_celebahq_hair_pool
    from ..synth.sources import DataNotFoundError, celebahq_photos, find_data_root

    if not a.out:
        return fail("--preset celebahq-hair needs --out DIR")
    if a.kind_weight or a.preview or a.engine:
        return fail("--kind-weight, --preview and --engine do not apply to --preset celebahq-hair (no pastes)")
    if a.count is not None and a.count < 1:
        return fail(f"--count must be at least 1, not {a.count}")
    try:
        root = find_data_root(a.data)
        n = len(celebahq_photos(root, "celebahq_hair", "train")[: a.limit])
        variants = max(1, round(a.count / n)) if a.count and n else 4
        truth, counts = write_celebahq_hair_pool(root, Path(a.out), variants=variants, size=a.size, limit=a.limit,
                                                 gray_every=_gray_every(a))
    except (DataNotFoundError, ValueError) as e:
        return fail(str(e))
    print(f"{counts['samples']} samples ({variants} per photo) from {counts['photos'] - counts['no_mesh']} of "
          f"{counts['photos']} train hair-mask photos ({counts['no_mesh']} without a face found; "
          f"{counts['clean']} clean: R minus hair labelled face)")
    _print_distribution(truth)
    return 0


def parse_kind_weights(items: list[str]) -> dict[str, float]:
    """``["sunglasses=0.5", ...]`` -> {"sunglasses": 0.5}; ValueError names the bad item or a kind given twice."""
    out: dict[str, float] = {}
    for item in items:
        kind, sep, value = item.partition("=")
        kind = kind.strip()
        try:
            weight = float(value) if sep else None
        except ValueError:
            weight = None
        if weight is None or not kind:
            raise ValueError(f"{item!r} is not KIND=WEIGHT")
        if kind in out:
            raise ValueError(f"{kind} is given more than once")
        out[kind] = weight
    return out


def _print_distribution(truth: Path) -> None:
    import numpy as np

    from ..evaluation.metrics import read_truth

    rows = read_truth(truth)
    gt = np.array([float(r["FaceOcclusion"]) for r in rows])
    male = np.array([r["gender"] == "M" for r in rows])
    gray = np.array([r.get("is_gray") == "1" for r in rows])
    print(f"wrote {len(rows)} samples and {truth}")
    print(f"occlusion: mean {gt.mean():.3f}  median {np.median(gt):.3f}  <0.02 {np.mean(gt < 0.02):.0%}  "
          f"p95 {np.quantile(gt, 0.95):.3f}  max {gt.max():.3f}")
    print(f"by gender: F mean {gt[~male].mean() if (~male).any() else math.nan:.3f} (n={int((~male).sum())})  "
          f"M mean {gt[male].mean() if male.any() else math.nan:.3f} (n={int(male.sum())});  gray {gray.mean():.0%}")


def _run_celebahq_attributes(a: argparse.Namespace) -> int:
    from ..synth.celebahq_attr_pool import write_celebahq_attribute_pool
    from ..synth.sources import DataNotFoundError, find_data_root

    if not a.out:
        return fail("--preset celebahq-attributes needs --out DIR")
    if a.kind_weight or a.preview or a.engine or a.count is not None:
        return fail("--kind-weight, --preview, --engine and --count do not apply to --preset celebahq-attributes "
                    "(one sample per photo; cap a kind with --max-per-kind)")
    caps = {}
    for item in a.max_per_kind:
        kind, _, n = item.partition("=")
        if kind not in ("beard", "light_hair", "plain", "sunglasses", "hat") or not n.isdigit():
            return fail(f"--max-per-kind {item!r}: use KIND=N with KIND beard, light_hair, plain, sunglasses or hat "
                        "and N >= 0")
        caps[kind] = int(n)
    teacher = a.teacher
    if teacher is None:
        from ..models.zoo import weights_dir

        teacher = weights_dir() / "parser.onnx"
    if not Path(teacher).is_file():
        return fail(f"teacher parser not found: {teacher}")
    if not 0.0 < a.beard_threshold <= 1.0:
        return fail(f"--beard-threshold must be in (0, 1], not {a.beard_threshold}")
    if not 0.0 <= a.hand_rate <= 1.0:
        return fail(f"--hand-rate must be in 0..1, not {a.hand_rate}")
    if not 0.0 <= a.hand_lower_face <= 1.0:
        return fail(f"--hand-lower-face must be in 0..1, not {a.hand_lower_face}")
    if a.hand_lower_face and not a.hand_rate:
        return fail("--hand-lower-face places pasted hands: it needs --hand-rate above 0")
    try:
        root = find_data_root(a.data)
        truth, counts = write_celebahq_attribute_pool(root, Path(a.out), Path(teacher), caps, size=a.size,
                                                      gray_every=_gray_every(a),
                                                      beard_threshold=a.beard_threshold, gender=a.gender,
                                                      hand_rate=a.hand_rate, hand_lower_face=a.hand_lower_face,
                                                      seed=a.seed)
    except (DataNotFoundError, ValueError) as e:
        return fail(str(e))
    print(f"{counts['samples']} samples: {counts['beard']} beard, {counts['light_hair']} light-hair and "
          f"{counts['plain']} plain train photos ({counts['no_mesh']} without a face found); "
          f"{counts['hands']} with a pasted hand")
    if caps.get("sunglasses"):
        print(f"sunglasses: {counts['sunglasses']} photos with dark lenses labelled, {counts['clear_glasses']} "
              "Eyeglasses photos skipped (lenses not dark, or too little sure skin to tell)")
    if caps.get("hat"):
        print(f"hats: {counts['hat']} photos with the forehead pulled in labelled, {counts['hat_no_pull']} "
              "Wearing_Hat photos skipped (no pull at the forehead: the hat sits above the face region)")
    _print_distribution(truth)
    return 0
