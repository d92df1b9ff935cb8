"""The error budget: true label maps through the inference-time region must reproduce the truth."""

from __future__ import annotations

import csv

import cv2
import numpy as np

from occparse.evaluation.error_budget import measure, oracle_parse
from occparse.synth.engine import Synthesizer


def test_oracle_parse_warps_labels_and_fills_unknown_from_the_parser():
    lab = np.zeros((40, 40), np.uint8)
    lab[10:20, 10:20] = 1
    lab[0:5] = 255
    shift = np.array([[1, 0, 3], [0, 1, 0]], np.float32)  # 3 px to the right
    parser = np.full((40, 40), 2, np.uint8)
    p = oracle_parse(lab, shift, parser)
    assert p.labels[15, 13:23].tolist() == [1] * 10 and p.labels[15, 12] == 0
    assert (p.labels[0:5, 3:] == 2).all()  # unknown -> the parser's label
    assert (p.labels[:, :3] == 2).all()  # shifted in from outside the map: unknown too
    assert np.array_equal(p.probs.argmax(0), p.labels)


def test_true_labels_through_the_inference_region_give_the_truth(tmp_path, data_root):
    synth = Synthesizer(data_root, "bench", limit=3, show_progress=False)
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    rows = []
    rng = np.random.default_rng(5)
    for i, base in enumerate(synth.faces.faces[:4]):
        s = synth.make(base, rng, kinds=(("hand",), ("mask",), ("cap",), ())[i])
        name = f"{i:02d}.png"
        cv2.imwrite(str(tmp_path / "images" / name), s.image[..., ::-1])
        cv2.imwrite(str(tmp_path / "labels" / name), s.labels)
        rows.append({"filename": name, "FaceOcclusion": f"{s.occlusion:.6f}", "gender": s.gender})
    with open(tmp_path / "truth.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["filename", "FaceOcclusion", "gender"])
        w.writeheader()
        w.writerows(rows)
    b = measure(tmp_path, show_progress=False)
    assert b.n == 4 and b.skipped == 0
    # the same labels through a region from the mesh on the occluded crop: close to the truth, not exact
    assert np.abs(np.array(b.oracle) - np.array(b.gt)).max() < 0.05
    assert b.score("oracle")[0] < 0.003
    assert "true labels" in b.format()
