"""Aspect-preserving preprocessing (letterbox), bottom crop, and their use by targets, Predictor and
checkpoints; stretch (the default) stays exactly what it was."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch
from toy_data import VOCAB, ToyDataset, tiny_config, toy_sample

from sim2sg_core.model.predictor import Predictor
from sim2sg_core.model.preprocess import Collator, ResizeSpec, graph_to_target, images_to_tensor, scale_boxes
from sim2sg_core.scene_graph import SceneGraph, SceneObject, derive_relationships

INPUT = (480, 144)
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SOURCES = [(1600, 900), (900, 1600), (1242, 375), (480, 144), (100, 100), (161, 37), (3000, 200)]


def _random_boxes(rng, size, n=20):
    w, h = size
    x0, y0 = rng.uniform(0, w * 0.9, n), rng.uniform(0, h * 0.9, n)
    return np.stack([x0, y0, x0 + rng.uniform(1, w * 0.1, n), y0 + rng.uniform(1, h * 0.1, n)], axis=1)


@pytest.mark.parametrize("mode", ["letterbox", "stretch"])
@pytest.mark.parametrize("crop", [0.0, 0.12])
@pytest.mark.parametrize("source", SOURCES)
def test_box_mapping_is_exact_and_invertible(source, mode, crop):
    spec = ResizeSpec(INPUT, mode, crop)
    g = spec.geometry(source)
    rng = np.random.default_rng(sum(source))
    boxes = _random_boxes(rng, source)
    back = spec.to_source(spec.to_input(boxes, source), source)
    assert np.abs(back - boxes).max() < 1e-4
    tb = torch.tensor(boxes, dtype=torch.float64)
    assert torch.allclose(spec.to_source(spec.to_input(tb, source), source), tb, atol=1e-4)
    assert np.allclose(spec.to_input(tb, source).numpy(), spec.to_input(boxes, source))
    # the whole kept source maps onto the content rectangle
    full = spec.to_input(np.array([[0, 0, source[0], g.kept_height]], float), source)[0]
    assert np.allclose(full, g.content, atol=1e-9)
    x0, y0, x1, y1 = g.content
    assert 0 <= x0 < x1 <= INPUT[0] and 0 <= y0 < y1 <= INPUT[1]
    if mode == "letterbox":  # uniform scale (up to rounding to whole pixels), centred, fits
        assert abs(g.sx - g.sy) <= max(1.0 / source[0], 1.0 / g.kept_height) * 1.01
        assert (x1 - x0 == INPUT[0]) or (y1 - y0 == INPUT[1])
        assert abs(x0 - (INPUT[0] - x1)) <= 1 and abs(y0 - (INPUT[1] - y1)) <= 1
    else:
        assert g.content == (0, 0) + INPUT


@pytest.mark.parametrize("source", [(1600, 900), (900, 1600), (300, 40)])
def test_letterbox_image_content_padding_is_zero_and_boxes_follow_the_pixels(source):
    w, h = source
    img = np.full((h, w, 3), 40, np.uint8)
    box = np.array([0.3 * w, 0.4 * h, 0.6 * w, 0.7 * h])
    x0, y0, x1, y1 = box.round().astype(int)
    img[y0:y1, x0:x1] = 250
    t = images_to_tensor([img, np.full((50, 50, 3), 200, np.uint8)], INPUT, MEAN, STD, resize_mode="letterbox")
    assert t.shape == (2, 3, INPUT[1], INPUT[0])
    spec = ResizeSpec(INPUT, "letterbox")
    g = spec.geometry(source)
    cx0, cy0, cx1, cy1 = g.content
    pad = torch.ones(INPUT[1], INPUT[0], dtype=torch.bool)
    pad[cy0:cy1, cx0:cx1] = False
    assert pad.any() and (t[0][:, pad] == 0).all()  # padding normalises to exactly 0
    assert (t[0][:, ~pad] != 0).all()  # the content is the image (never the mean here)
    # the bright rectangle lands where to_input says (within a pixel of area averaging)
    bright = (t[0, 0] > 1.5).nonzero()
    ys, xs = bright[:, 0], bright[:, 1]
    mapped = spec.to_input(box[None], source)[0]
    got = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)
    assert np.abs(got - mapped).max() <= 1.5, (got, mapped)


def test_stretch_is_unchanged_from_before():
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 255, (900, 1600, 3), dtype=np.uint8), rng.integers(0, 255, (144, 480, 3), dtype=np.uint8)]
    old = np.stack([cv2.resize(imgs[0], INPUT, interpolation=cv2.INTER_AREA), imgs[1]])
    ref = (
        torch.from_numpy(old).permute(0, 3, 1, 2).float().div_(255.0) - torch.tensor(MEAN).view(1, 3, 1, 1)
    ) / torch.tensor(STD).view(1, 3, 1, 1)
    assert torch.equal(images_to_tensor(imgs, INPUT, MEAN, STD), ref)
    assert torch.equal(images_to_tensor(imgs, INPUT, MEAN, STD, resize_mode="stretch"), ref)
    rgb, graph = toy_sample(3)
    t = graph_to_target(graph, INPUT)
    assert torch.equal(
        t["boxes"],
        torch.from_numpy(
            scale_boxes(np.array([o.box for o in graph.objects], np.float32), (160, 64), INPUT).astype(np.float32)
        ),
    )


def _graph(boxes, size):
    objs = [
        SceneObject("car", 0, tuple(b), 1.0, position=(float(i) - 1.0, 1.5, 5.0 + 3 * i)) for i, b in enumerate(boxes)
    ]
    return SceneGraph(
        objects=objs, relationships=derive_relationships(objs, VOCAB), image_width=size[0], image_height=size[1]
    )


def test_crop_bottom_targets_images_and_predictions():
    size = (1600, 900)
    spec = ResizeSpec(INPUT, "letterbox", 0.1)
    g = spec.geometry(size)
    assert g.kept_height == 810
    boxes = [(100, 100, 300, 300), (500, 700, 700, 850), (900, 820, 1000, 890)]  # fine / straddles / in the band
    graph = _graph(boxes, size)
    assert len(graph.relationships) >= 2
    t = graph_to_target(graph, INPUT, size, "letterbox", 0.1)
    assert len(t["boxes"]) == 2 and t["labels"].tolist() == [0, 0]
    assert torch.allclose(
        t["boxes"][1].double(), torch.from_numpy(spec.to_input(np.array([[500, 700, 700, 810.0]]), size)[0]), atol=1e-4
    )
    assert (t["relations"][:, :2] < 2).all()  # relationships of the dropped object are gone
    assert len(t["relations"]) == sum(1 for r in graph.relationships if r.subject != 2 and r.object != 2)
    # the bonnet rows never reach the input: a bright bottom band leaves the tensor untouched
    img = np.full((900, 1600, 3), 90, np.uint8)
    bonnet = img.copy()
    bonnet[815:] = 255
    a = images_to_tensor([img], INPUT, MEAN, STD, "letterbox", 0.1)
    b = images_to_tensor([bonnet], INPUT, MEAN, STD, "letterbox", 0.1)
    assert torch.equal(a, b)
    # stretch + crop: the kept rows fill the whole input
    gs = ResizeSpec(INPUT, "stretch", 0.1).geometry(size)
    assert gs.content == (0, 0) + INPUT and gs.sy == pytest.approx(INPUT[1] / 810)
    # predictions are clipped out of the dropped band
    pred = spec.to_source(
        np.array([[g.content[0] - 5, g.content[3] - 5, g.content[0] + 20, g.content[3] + 9]], float), size, clip=True
    )[0]
    assert pred[0] == 0 and pred[3] == 810 and pred[1] < 810


def test_collator_letterbox():
    size = (1600, 900)
    rgb = np.full((900, 1600, 3), 120, np.uint8)
    graph = _graph([(100, 100, 300, 300), (800, 400, 1000, 600)], size)
    coll = Collator(INPUT, MEAN, STD, resize_mode="letterbox", crop_bottom=0.0)
    batch = coll([(rgb, graph), (rgb, None)])
    spec = ResizeSpec(INPUT, "letterbox")
    assert torch.allclose(
        batch["targets"][0]["boxes"].double(),
        torch.from_numpy(spec.to_input(np.array([o.box for o in graph.objects]), size)),
        atol=1e-4,
    )
    x0, _, x1, _ = spec.geometry(size).content
    assert (batch["images"][:, :, :, :x0] == 0).all() and (batch["images"][:, :, :, x1:] == 0).all()
    with pytest.raises(ValueError, match="resize_mode must be one of"):
        Collator(INPUT, MEAN, STD, resize_mode="squash")
    with pytest.raises(ValueError, match="crop_bottom"):
        ResizeSpec(INPUT, "letterbox", 0.95)


@pytest.fixture(scope="module")
def letterbox_toy(tmp_path_factory):
    """A tiny letterbox model trained on 16:9 toy scenes (160x90) at a 160x64 input (~10 s)."""
    from sim2sg_core.model import SGModel
    from sim2sg_core.train.trainer import Trainer

    torch.manual_seed(0)
    ds = ToyDataset(8, width=160, height=90)
    cfg = tiny_config(steps=150)
    cfg.model.resize_mode = "letterbox"
    model = SGModel.from_config(cfg, VOCAB)
    assert model.resize_mode == "letterbox"
    out = tmp_path_factory.mktemp("letterbox")
    tr = Trainer(model, cfg, VOCAB, out, device="cpu", progress=False)
    tr.fit(tr.make_loader(ds))
    return tr.save(out / "model.pt", with_optimizer=False), ds


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.slow
def test_predictor_letterbox_returns_boxes_in_1600x900_pixels(letterbox_toy):
    path, ds = letterbox_toy
    pred = Predictor.from_checkpoint(path, device="cpu", score_threshold=0.3)
    assert (pred.resize_mode, pred.crop_bottom) == ("letterbox", 0.0)
    hits = total = 0
    for i in range(4):
        rgb, gt = ds[i]
        big = cv2.resize(rgb, (1600, 900), interpolation=cv2.INTER_NEAREST)  # the same scene, 10x
        g_small, g_big = pred.predict([rgb, big])
        assert (g_big.image_width, g_big.image_height) == (1600, 900)
        for o in g_big.objects:
            x0, y0, x1, y1 = o.box
            assert 0 <= x0 < x1 <= 1600 and 0 <= y0 < y1 <= 900
        for o in gt.objects:
            total += 1
            target = [10 * v for v in o.box]
            hits += any(p.class_id == o.class_id and _iou(p.box, target) > 0.6 for p in g_big.objects)
        # the same detections at both resolutions, boxes 10x apart
        for a in g_small.objects:
            assert any(b.class_id == a.class_id and _iou(b.box, [10 * v for v in a.box]) > 0.8 for b in g_big.objects)
    assert hits >= 0.8 * total, (hits, total)


def test_checkpoints_store_the_preprocessing_and_old_ones_read_as_stretch(letterbox_toy, tmp_path):
    from sim2sg_core.train.checkpoint import load_checkpoint

    path, _ = letterbox_toy
    ck = load_checkpoint(path)
    assert (ck["resize_mode"], ck["crop_bottom"]) == ("letterbox", 0.0)
    assert ck["config"].model.resize_mode == "letterbox"
    raw = torch.load(path, weights_only=True)
    for k in ("resize_mode", "crop_bottom"):
        del raw[k]
        del raw["config"]["model"][k]
    old = tmp_path / "old.pt"
    torch.save(raw, old)
    ck_old = load_checkpoint(old)
    assert (ck_old["resize_mode"], ck_old["crop_bottom"]) == ("stretch", 0.0)
    p_old = Predictor.from_checkpoint(old, device="cpu")
    assert p_old.resize_mode == "stretch" and p_old.model.resize_mode == "stretch"
    assert Predictor.from_checkpoint(old, device="cpu", resize_mode="letterbox").resize_mode == "letterbox"


def test_model_config_rejects_bad_preprocessing():
    from sim2sg_core.train.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError, match=r"model\.resize_mode: expected one of 'stretch', 'letterbox', got 'fit'"):
        config_from_dict({"model": {"resize_mode": "fit"}})
    with pytest.raises(ConfigError, match="crop_bottom must be"):
        config_from_dict({"model": {"crop_bottom": 1.5}})
    cfg = config_from_dict({"model": {"resize_mode": "letterbox", "crop_bottom": 0.1}})
    assert dataclasses.asdict(cfg)["model"]["crop_bottom"] == 0.1
