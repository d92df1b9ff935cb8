"""Parser runtime: preprocessing shared with training, ONNX export parity, users' 19-class models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from occparse.runtime.parsing import CELEBAMASK_19_TO_4, FaceParser, ParserSpec, iou_per_class, preprocess

torch = pytest.importorskip("torch", reason="needs the [train] extra (torch) to build test models")


def test_preprocess_resizes_and_normalises():
    spec = ParserSpec(input_size=64)
    crop = np.full((224, 224, 3), 255, np.uint8)
    crop[..., 1] = 0
    x = preprocess([crop], spec)
    assert x.shape == (1, 3, 64, 64) and x.dtype == np.float32
    # (1 - 0.5) / 0.5 = 1 for a 255 channel, (0 - 0.5) / 0.5 = -1 for a 0 channel
    assert np.allclose(x[0, 0], 1.0) and np.allclose(x[0, 1], -1.0)


def test_training_dataset_uses_runtime_preprocessing(tmp_path):
    """The training pipeline must feed the network exactly what the runtime will."""
    import cv2

    from occparse.train.parser_data import PoolDataset

    img = np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8)
    lab = np.zeros((224, 224), np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), img[..., ::-1])
    cv2.imwrite(str(tmp_path / "a_l.png"), lab)
    spec = ParserSpec(input_size=96)
    ds = PoolDataset([(tmp_path / "a.png", tmp_path / "a_l.png")], spec, train=False)
    x, y = ds[0]
    assert np.allclose(x.numpy(), preprocess([img], spec)[0], atol=1e-6)
    assert tuple(y.shape) == (96, 96)


def test_bisenet_onnx_matches_torch(tmp_path):
    from occparse.train.bisenet import BiSeNet
    from occparse.train.export import export_onnx, max_abs_diff

    torch.manual_seed(0)
    model = BiSeNet(4, width=0.25)
    # give BatchNorm non-trivial statistics so the check is not on an identity-like net
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, 64, 64))
    path = export_onnx(model, tmp_path / "p.onnx", 64)
    batch = np.random.default_rng(1).normal(0, 1, (5, 3, 64, 64)).astype(np.float32)  # a batch size not exported with
    diff = max_abs_diff(model, path, batch)
    assert diff < 1e-4, diff
    # and the runtime wrapper gives labels for crops of any size, at the crop's size
    fp = FaceParser(path, ParserSpec(input_size=64), providers=["CPUExecutionProvider"])
    crops = [np.random.default_rng(2).integers(0, 255, (224, 224, 3), dtype=np.uint8) for _ in range(3)]
    res = fp.parse(crops)
    assert len(res) == 3 and res[0].labels.shape == (224, 224)
    assert np.allclose(res[0].probs.sum(0), 1.0, atol=1e-4)
    # a spec naming another side than the file's fixed one: the file's side is used (it was an ONNX Runtime error)
    other = FaceParser(path, ParserSpec(input_size=128), providers=["CPUExecutionProvider"])
    assert other.spec.input_size == 64
    assert np.array_equal(other.parse(crops)[0].labels, res[0].labels)


class _Tiny19(torch.nn.Module):
    """Same signature as the face-parsing.PyTorch export: N x 3 x 512 x 512 -> N x 19 x 512 x 512."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 19, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


def test_celebamask19_model_maps_onto_occparse_classes(tmp_path):
    from occparse.train.export import export_onnx

    torch.manual_seed(0)
    model = _Tiny19()
    # bias the model so that class 17 (hair) wins on bright pixels and class 6 (eyeglasses) on dark ones
    with torch.no_grad():
        model.conv.weight.zero_()
        model.conv.bias.zero_()
        model.conv.weight[17, :, 1, 1] = 1.0
        model.conv.weight[6, :, 1, 1] = -1.0
    path = export_onnx(model, tmp_path / "celeba19.onnx", 512)
    fp = FaceParser(path, ParserSpec.celebamask19(), providers=["CPUExecutionProvider"], batch_size=2)
    bright = np.full((224, 224, 3), 250, np.uint8)
    dark = np.full((224, 224, 3), 5, np.uint8)
    res = fp.parse([bright, dark])
    assert res[0].probs.shape == (5, 224, 224)  # occparse classes; no facial hair in CelebAMask-HQ
    assert float(res[0].probs[4].max()) == 0.0
    assert (res[0].labels == 2).mean() > 0.99  # hair
    assert (res[1].labels == 3).mean() > 0.99  # eyeglasses -> occluder
    # probabilities of all 19 classes are summed into the four, none lost
    assert np.allclose(res[0].probs.sum(0), 1.0, atol=1e-4)


def test_class_count_mismatch_is_a_clear_error(tmp_path):
    from occparse.train.export import export_onnx

    path = export_onnx(_Tiny19(), tmp_path / "c19.onnx", 64)
    with pytest.raises(ValueError, match="19 classes"):
        FaceParser(path, ParserSpec(input_size=64), providers=["CPUExecutionProvider"])


def test_spec_from_json(tmp_path):
    p = tmp_path / "spec.json"
    p.write_text(json.dumps({"input_size": 256, "mean": [0, 0, 0], "std": [1, 1, 1], "class_map": [0, 1, 1, 2, 3]}))
    spec = ParserSpec.from_json(p)
    assert spec.input_size == 256 and spec.class_map == (0, 1, 1, 2, 3)
    p.write_text(json.dumps({"input_size": 256, "mean": [0, 0, 0], "std": [1, 1, 1], "class_map": [0, 7]}))
    with pytest.raises(ValueError):
        ParserSpec.from_json(p)
    assert len(CELEBAMASK_19_TO_4) == 19


def test_iou_counts():
    pred = np.array([[0, 1], [1, 3], [4, 2]])
    truth = np.array([[0, 1], [2, 255], [4, 4]])
    inter, union = iou_per_class(pred, truth)
    assert inter.tolist() == [1, 1, 0, 0, 1]
    assert union.tolist() == [1, 2, 2, 0, 2]  # the ignored pixel counts nowhere


def test_flip_tta_averages_the_mirrored_parse(tmp_path):
    """flip=True must equal the mean of the crop's parse and the mirrored crop's parse, mirrored back."""
    from occparse.train.export import export_onnx

    torch.manual_seed(1)
    model = torch.nn.Conv2d(3, 4, 5, padding=2)  # random, so left and right disagree
    path = export_onnx(model, tmp_path / "tiny4.onnx", 64)
    spec = ParserSpec(input_size=64, class_map=(0, 1, 2, 3))  # a four-class model (no facial hair)
    plain = FaceParser(path, spec, providers=["CPUExecutionProvider"], batch_size=2)
    flip = FaceParser(path, spec, providers=["CPUExecutionProvider"], batch_size=2, flip=True)
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)]  # 3: a partial last batch
    got = flip.parse(crops)
    a = plain.parse(crops)
    b = plain.parse([np.ascontiguousarray(c[:, ::-1]) for c in crops])
    for g, x, y in zip(got, a, b, strict=True):
        want = 0.5 * (x.probs + y.probs[:, :, ::-1])
        assert np.allclose(g.probs, want, atol=1e-5)
        assert np.array_equal(g.labels, want.argmax(0))
    assert not np.allclose(got[0].probs, a[0].probs, atol=1e-3)  # the mirror really changed something


def test_facial_hair_weight_moves_only_the_facial_hair_decision(tmp_path):
    """The weighted argmax: a pixel whose facial-hair probability, times the weight, beats every other class
    becomes facial hair; nothing else changes, and the weight 1 is the plain argmax."""
    from occparse.labels import FACE, FACIAL_HAIR, HAIR
    from occparse.runtime.parsing import argmax_classes, weighted_labels

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(5), size=(16, 16)).transpose(2, 0, 1).astype(np.float32)
    p[:, 0, 0] = (0.05, 0.50, 0.05, 0.05, 0.35)  # face 0.50 vs facial hair 0.35: x1.5 = 0.525 wins
    p[:, 0, 1] = (0.05, 0.60, 0.05, 0.05, 0.25)  # x1.5 = 0.375: stays face
    p[:, 0, 2] = (0.05, 0.10, 0.50, 0.05, 0.30)  # hair 0.50 vs 0.45: stays hair
    plain = argmax_classes(p)
    assert np.array_equal(weighted_labels(p, 1.0), plain)
    got = weighted_labels(p, 1.5)
    assert (got[0, 0], got[0, 1], got[0, 2]) == (FACIAL_HAIR, FACE, HAIR)
    changed = got != plain
    assert (got[changed] == FACIAL_HAIR).all()
    assert (weighted_labels(p, 100.0) == FACIAL_HAIR).mean() > (got == FACIAL_HAIR).mean()

    spec = {"input_size": 128, "mean": [0.5] * 3, "std": [0.5] * 3, "class_map": [0, 1, 2, 3, 4]}
    (tmp_path / "a.json").write_text(json.dumps(spec | {"facial_hair_weight": 1.5}))
    assert ParserSpec.from_json(tmp_path / "a.json").facial_hair_weight == 1.5
    (tmp_path / "b.json").write_text(json.dumps(spec))
    assert ParserSpec.from_json(tmp_path / "b.json").facial_hair_weight == 1.0
    for bad in (0, -1, float("nan"), float("inf"), True, "2"):
        with pytest.raises(ValueError, match="facial_hair_weight"):
            ParserSpec(facial_hair_weight=bad)
    assert ParserSpec(facial_hair_weight=np.float32(1.5)).facial_hair_weight == 1.5
    (tmp_path / "c.json").write_text(json.dumps(spec | {"facial_hair_weight": None}))
    with pytest.raises(ValueError, match="c.json"):
        ParserSpec.from_json(tmp_path / "c.json")


def test_the_parser_takes_its_labels_with_the_spec_weight(tmp_path):
    """FaceParser.parse applies the spec's facial_hair_weight to the labels, not to the probabilities."""
    from occparse.labels import FACIAL_HAIR
    from occparse.train.export import export_onnx

    torch.manual_seed(2)
    path = export_onnx(torch.nn.Conv2d(3, 5, 5, padding=2), tmp_path / "tiny5.onnx", 64)
    crops = [np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)]
    plain = FaceParser(path, ParserSpec(input_size=64), providers=["CPUExecutionProvider"]).parse(crops)[0]
    heavy = FaceParser(path, ParserSpec(input_size=64, facial_hair_weight=100.0),
                       providers=["CPUExecutionProvider"]).parse(crops)[0]
    assert np.array_equal(plain.probs, heavy.probs)
    assert (heavy.labels == FACIAL_HAIR).mean() > (plain.labels == FACIAL_HAIR).mean()
    assert (heavy.labels == FACIAL_HAIR).mean() > 0.9
