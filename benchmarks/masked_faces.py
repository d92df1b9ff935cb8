"""Face finding on real photos of masked people: how often is the subject found, and is the mask seen?

    python benchmarks/masked_faces.py [--images ../shared/data/real/masked] [--all-faces] [--out rows.csv]
                                      [--small-face-upscale lanczos|linear|cubic|nearest]
                                      [--not-masked-file benchmarks/masked_faces_not_masked.txt]

Counting (one row per image, the default ``estimate`` path, shipped models):

* **found**: the image's result has status ``ok`` (a subject face was found: by the mesh, or
  fitted to the full-range detector's key points when the mesh failed).
* **found, >= 40 px**: the same among images whose subject face is at least 40 px wide. A missed
  face has no box, so the denominator is the found images with a subject face-oval box >= 40 px
  wide plus every missed image (a missed image counts as a miss whatever its face size: the
  rate is a lower bound). Images judged by eye to hold no face >= 40 px can be listed with
  ``--exclude`` (file names, comma-separated) or ``--exclude-file`` (one name a line, first word;
  ``#`` starts a comment): benchmarks/masked_faces_small.txt holds the 20 judged so, each with
  its reason. An excluded image leaves that denominator (and the numerator) whether found or not.
* **mouth >= 0.8**: share of found subject faces whose ``mouth`` region reads >= 0.8 occluded
  (every face in these photos wears a mask). With ``--all-faces``, every face found is counted.
  Also broken down by face-oval width: < 20, 20-40 and >= 40 px.
* **mouth >= 0.8, masked faces only**: the same, leaving out found "faces" judged by eye not to be
  masked faces (a wheel, a coat, a face printed on a T-shirt, an unmasked bystander read instead of a
  smaller masked subject). A face without a mask reads its mouth as visible, rightly, so it says
  nothing about how masks are read. ``--not-masked-file`` lists them, one a line: name, then a point
  (x y, original pixels) inside the thing that was found; a row is left out only while its subject
  box contains that point, so a later version that finds another face there is counted again.
  benchmarks/masked_faces_not_masked.txt holds 11 judged so, each with its reason. Both rates print.

The data are research-licensed: read them from ../shared/data, never copy them. Prints a summary;
``--out`` also writes the per-image rows.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default=str(Path(__file__).resolve().parents[1] / "../shared/data/real/masked"))
    ap.add_argument("--all-faces", action="store_true", help="exhaustive search; the mouth rate counts every face")
    ap.add_argument("--exclude", default="", help="file names judged by eye to have no face >= 40 px")
    ap.add_argument("--exclude-file", help="text file of such names: one a line (first word), '#' comments")
    ap.add_argument("--out", help="per-image CSV")
    ap.add_argument("--not-masked-file", help="found things judged by eye not to be masked faces: "
                    "'NAME X Y' a line, '#' comments (see above)")
    ap.add_argument("--small-face-upscale", default="lanczos", help="EstimatorOptions.small_face_upscale")
    a = ap.parse_args(argv)

    from occparse.runtime.pipeline import Estimator, EstimatorOptions

    root = Path(a.images)
    paths = sorted(p for p in root.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")) if root.is_dir() else []
    if not paths:
        print(f"no images in {root}", file=sys.stderr)
        return 1
    excluded = {s.strip() for s in a.exclude.split(",") if s.strip()}
    not_masked: dict[str, tuple[float, float]] = {}
    try:
        excluded |= {words[0] for _, words in _listed(a.exclude_file)}
        bad = []
        for i, words in _listed(a.not_masked_file):
            try:
                point = (float(words[1]), float(words[2]))
            except (IndexError, ValueError):
                bad.append(f"{a.not_masked_file}:{i}: want 'NAME X Y  # why', got {' '.join(words)!r}")
                continue
            if words[0] in not_masked:
                bad.append(f"{a.not_masked_file}:{i}: {words[0]} is listed twice")
            not_masked[words[0]] = point
        if bad:
            raise ValueError("; ".join(bad))
    except (OSError, ValueError) as e:
        print(f"cannot read a list file: {e}", file=sys.stderr)
        return 1
    if not_masked and a.all_faces:
        print("warning: --not-masked-file applies to the subject of each image; with --all-faces only the plain "
              "mouth rate is printed", file=sys.stderr)
    names = {p.name for p in paths}
    for listed, what in ((excluded, "--exclude"), (set(not_masked), "--not-masked-file")):
        if unknown := sorted(listed - names):
            print(f"warning: {what} names {len(unknown)} file(s) not in {root}: {' '.join(unknown[:5])}", file=sys.stderr)
    est = Estimator(EstimatorOptions(exhaustive=a.all_faces, small_face_upscale=a.small_face_upscale))
    rows, t0 = [], time.perf_counter()
    for p in paths:
        res = est.estimate(p)
        faces = res.faces if a.all_faces else res.faces[:1]
        rows.append({
            "file": p.name, "status": str(res.status), "n_faces": len(res.faces),
            "width": round(faces[0].box[2] - faces[0].box[0], 1) if faces else "",
            "widths": [round(f.box[2] - f.box[0], 1) for f in faces],
            "mouth": [round(f.region("mouth"), 3) for f in faces],
            "occlusion": round(faces[0].occlusion, 3) if faces else "",
            "source": faces[0].source if faces else "", "rotation": faces[0].rotation if faces else "",
            "box": " ".join(f"{v:.0f}" for v in faces[0].box) if faces else "",
        })
    dt = time.perf_counter() - t0

    found = [r for r in rows if r["status"] == "ok"]
    missed = [r for r in rows if r["status"] != "ok"]
    big = [r for r in found if r["width"] >= 40 and r["file"] not in excluded]
    denom = len(big) + len([r for r in missed if r["file"] not in excluded])
    mouths = [m for r in found for m in r["mouth"] if m == m]
    print(f"images: {len(rows)} in {root} ({dt / len(rows):.2f} s/image; small faces enlarged with {a.small_face_upscale})")
    print(f"subject found: {len(found)}/{len(rows)} = {len(found) / len(rows):.1%}")
    print(f"subject found, face >= 40 px wide (missed images counted as >= 40 px, {len(excluded)} excluded by eye): "
          f"{len(big)}/{denom} = {len(big) / max(1, denom):.1%}")
    if excluded:
        print("excluded by eye:", " ".join(sorted(excluded)))
    print(f"mouth region >= 0.8 occluded: {sum(m >= 0.8 for m in mouths)}/{len(mouths)} = "
          f"{sum(m >= 0.8 for m in mouths) / max(1, len(mouths)):.1%} of found {'faces' if a.all_faces else 'subjects'}")
    pairs = [(w, m) for r in found for w, m in zip(r["widths"], r["mouth"], strict=True) if m == m]
    bins = [(name, [m for w, m in pairs if lo <= w < hi])
            for name, lo, hi in (("< 20 px", 0, 20), ("20-40 px", 20, 40), (">= 40 px", 40, float("inf")))]
    print("mouth >= 0.8 by face width:", "; ".join(
        f"{name}: {sum(m >= 0.8 for m in ms)}/{len(ms)} = {sum(m >= 0.8 for m in ms) / max(1, len(ms)):.1%}"
        for name, ms in bins))
    print("found by:", dict(Counter(r["source"] for r in found)), " rotation:", dict(Counter(r["rotation"] for r in found)))
    print("missed:", " ".join(r["file"] for r in missed) or "none")
    if not_masked and not a.all_faces:
        def is_not_masked(r: dict) -> bool:
            if r["file"] not in not_masked or not r["box"]:
                return False
            x0, y0, x1, y1 = map(float, r["box"].split())
            x, y = not_masked[r["file"]]
            return x0 <= x <= x1 and y0 <= y <= y1

        left = [r for r in found if is_not_masked(r)]
        kept = [r["mouth"][0] for r in found if r not in left and r["mouth"] and r["mouth"][0] == r["mouth"][0]]
        print(f"mouth region >= 0.8 occluded, masked faces only ({len(left)} found things judged not masked faces "
              f"left out: {' '.join(r['file'] for r in left) or 'none'}): {sum(m >= 0.8 for m in kept)}/{len(kept)} = "
              f"{sum(m >= 0.8 for m in kept) / max(1, len(kept)):.1%}")
    low = [r["file"] for r in found if r["mouth"] and r["mouth"][0] < 0.8]
    print("subject mouth < 0.8:", " ".join(low) or "none")
    if a.out:
        with open(a.out, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
    return 0


def _listed(path: str | None) -> list[tuple[int, list[str]]]:
    """(line number, words) of each line of a list file that holds more than a '#' comment; [] without a file."""
    if not path:
        return []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [(i, ln.split("#", 1)[0].split()) for i, ln in enumerate(lines, 1) if ln.split("#", 1)[0].strip()]


if __name__ == "__main__":
    sys.exit(main())
