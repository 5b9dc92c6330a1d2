"""SGModel / Predictor behaviour on hand-made toy scenes (no simulator needed)."""

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import box_iou
from toy_data import VOCAB, tiny_config, toy_sample

from sim2sg_core.eval.evaluate import evaluate
from sim2sg_core.model import Predictor, SGModel
from sim2sg_core.model.detector import decode_detections, dense_targets, max_filter3x3
from sim2sg_core.model.preprocess import Collator, graph_to_target, hflip_sample, images_to_tensor
from sim2sg_core.scene_graph import derive_relationships


def _batch(n=2, seed=0):
    cfg = tiny_config()
    items = [toy_sample(seed + i) for i in range(n)]
    coll = Collator((cfg.model.input_width, cfg.model.input_height), cfg.model.mean, cfg.model.std)
    return cfg, coll(items)


def test_forward_returns_features_heads_and_named_losses():
    torch.manual_seed(0)
    cfg, batch = _batch(2)
    model = SGModel.from_config(cfg, VOCAB).train()
    out = model(batch["images"], batch["targets"])
    assert out["features"].shape[:2] == (2, cfg.model.feature_channels)
    assert out["features"].shape[-2:] == (cfg.model.input_height // 4, cfg.model.input_width // 4)
    assert out["heatmap"].shape[1] == len(VOCAB.classes)
    assert set(out["losses"]) == {"heatmap", "size", "offset", "relation"}
    assert out["relation_logits"].shape[1] == len(VOCAB.predicates)
    total = sum(out["losses"].values())
    total.backward()
    assert model.encoder.stem[0].weight.grad is not None and model.relations.classifier[-1].weight.grad.abs().sum() > 0


def test_a_batch_without_objects_still_gives_every_parameter_a_gradient():
    """Data-parallel ranks must use the same parameters each step (else DistributedDataParallel waits
    forever for the missing gradients): a batch with no object and no pair reaches every branch."""
    torch.manual_seed(0)
    cfg, batch = _batch(2)
    model = SGModel.from_config(cfg, VOCAB).train()
    empty = {
        "boxes": torch.zeros(0, 4),
        "labels": torch.zeros(0, dtype=torch.long),
        "relations": torch.zeros(0, 3, dtype=torch.long),
    }
    out = model(batch["images"], [empty, empty])
    sum(out["losses"].values()).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing
    assert out["losses"]["size"] == 0 and out["losses"]["relation"] == 0


def test_unlabelled_images_add_no_supervised_loss():
    """ADAPT mixes labelled and unlabelled (None) images: the None image must not change the losses."""
    torch.manual_seed(0)
    cfg, batch = _batch(2)
    model = SGModel.from_config(cfg, VOCAB).eval()  # eval: BatchNorm does not couple the images
    with torch.no_grad():
        mixed = model(batch["images"], [batch["targets"][0], None])["losses"]
        alone = model(batch["images"][:1], [batch["targets"][0]])["losses"]
        assert model(batch["images"], [None, None])["losses"] == {}
    for k in alone:
        assert torch.allclose(mixed[k], alone[k], atol=1e-5), k


def test_dense_targets_decode_back_to_the_boxes():
    boxes = torch.tensor([[10.0, 20.0, 50.0, 60.0], [100.0, 8.0, 130.0, 40.0]])
    labels = torch.tensor([0, 2])
    d = dense_targets(boxes, labels, num_classes=3, out_h=16, out_w=40, stride=4)
    assert d["heatmap"].max() == 1.0 and int((d["heatmap"] == 1).sum()) == 2
    heat = torch.logit(d["heatmap"].clamp(1e-4, 1 - 1e-4))[None]
    size = torch.zeros(1, 2, 16 * 40)
    off = torch.zeros(1, 2, 16 * 40)
    size[0][:, d["index"]] = d["size"].t()
    off[0][:, d["index"]] = d["offset"].t()
    dets = decode_detections(heat, size.view(1, 2, 16, 40), off.view(1, 2, 16, 40), stride=4, score_threshold=0.5)
    got = dets[0]
    order = got["labels"].argsort()
    assert torch.equal(got["labels"][order], labels)
    assert torch.allclose(got["boxes"][order], boxes, atol=1e-3)


def test_max_filter_equals_max_pool_including_borders():
    g = torch.Generator().manual_seed(0)
    for shape in [(1, 4, 36, 120), (2, 3, 5, 7), (1, 1, 1, 1), (1, 2, 1, 9), (3, 1, 8, 1)]:
        x = torch.randn(shape, generator=g)
        x[x > 1.5] = 1.5  # ties, where peak picking compares with ==
        assert torch.equal(max_filter3x3(x), F.max_pool2d(x, 3, stride=1, padding=1)), shape


def _slow_decode(heat, size, off, stride, thr, max_objects, nms_iou, image_size):
    """Reference: every 3x3 local maximum above the threshold, one at a time, then per-class greedy NMS."""
    _, c, h, w = heat.shape
    p = heat[0].sigmoid()
    cands = []
    for k in range(c):
        for y in range(h):
            for x in range(w):
                v = p[k, y, x]
                window = p[k, max(0, y - 1) : y + 2, max(0, x - 1) : x + 2]
                if v >= thr and v == window.max():
                    bw, bh = (size[0, :, y, x].clamp(max=10).exp() * stride).tolist()
                    cx, cy = ((x + off[0, 0, y, x]) * stride).item(), ((y + off[0, 1, y, x]) * stride).item()
                    box = [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]
                    box = [min(max(v_, 0.0), image_size[i % 2]) for i, v_ in enumerate(box)]
                    cands.append((v.item(), k, box))
    cands.sort(key=lambda t: -t[0])
    cands = cands[: 2 * max_objects]
    kept = []
    for s_, k, b in cands:
        if all(kk != k or box_iou(torch.tensor([b]), torch.tensor([bb]))[0, 0] <= nms_iou for _, kk, bb in kept):
            kept.append((s_, k, b))
    return kept[:max_objects]


def test_decode_matches_a_slow_reference():
    g = torch.Generator().manual_seed(1)
    heat = torch.randn(1, 3, 12, 30, generator=g) * 2 - 2
    size = torch.randn(1, 2, 12, 30, generator=g)
    off = torch.rand(1, 2, 12, 30, generator=g)
    for thr, max_objects in [(0.3, 50), (0.5, 4)]:
        got = decode_detections(heat, size, off, 4, thr, max_objects, 0.6, (120, 48))[0]
        ref = _slow_decode(heat, size, off, 4, thr, max_objects, 0.6, (120, 48))
        assert len(ref) == len(got["scores"]) and len(ref) > 3
        for (s_, k, b), gs, gk, gb in zip(ref, got["scores"], got["labels"], got["boxes"]):
            assert abs(s_ - gs.item()) < 1e-6 and k == gk.item()
            assert np.allclose(b, gb.tolist(), atol=1e-4)


def test_hflip_swaps_left_and_right_consistently_with_the_rule():
    rgb, graph = toy_sample(3)
    frgb, fgraph = hflip_sample(rgb, graph, VOCAB.predicates)
    assert np.array_equal(frgb[:, ::-1], rgb)
    again = derive_relationships(fgraph.objects, VOCAB)  # labels recomputed from mirrored positions
    assert [(r.subject, r.object, r.predicate) for r in again] == [
        (r.subject, r.object, r.predicate) for r in fgraph.relationships
    ]
    assert any(r.predicate in ("left", "right") for r in graph.relationships)


@pytest.mark.slow
def test_overfits_a_tiny_set(trained_toy):
    model, cfg, ds, history = trained_toy
    assert history[-1]["total"] < 0.1 * history[0]["total"]
    pred = Predictor(
        model, VOCAB, (cfg.model.input_width, cfg.model.input_height), cfg.model.mean, cfg.model.std, device="cpu"
    )
    res = evaluate(pred, ds, progress=False)
    assert res["map50"] >= 0.9, res
    assert res["recall@50"] >= 0.8, res
    assert res["predcls_accuracy"] >= 0.9, res


@pytest.mark.slow
def test_predictor_maps_boxes_to_source_pixels_and_obeys_thresholds(trained_toy):
    model, cfg, ds, _ = trained_toy
    size = (cfg.model.input_width, cfg.model.input_height)
    pred = Predictor(model, VOCAB, size, cfg.model.mean, cfg.model.std, device="cpu", model_id="toy@1")
    rgb = ds[0][0]
    big = np.repeat(np.repeat(rgb, 2, axis=0), 2, axis=1)  # same scene at twice the resolution
    g_small, g_big = pred.predict([rgb, big])
    assert g_small.model_id == "toy@1"
    assert (g_big.image_width, g_big.image_height) == (2 * rgb.shape[1], 2 * rgb.shape[0])
    assert len(g_small.objects) == len(g_big.objects) > 0
    for a, b in zip(g_small.objects, g_big.objects):
        assert a.class_id == b.class_id
        assert np.allclose(np.array(b.box), 2 * np.array(a.box), atol=2.0)
    assert all(r.score >= 0 for r in g_small.relationships) and g_small.validate()
    # batched == one by one
    one = pred.predict([ds[1][0]])[0]
    two = pred.predict([ds[0][0], ds[1][0]])[1]
    assert np.allclose([o.box for o in one.objects], [o.box for o in two.objects], atol=1e-3)
    # thresholds are read at call time
    pred.max_objects = 1
    assert len(pred.predict([rgb])[0].objects) == 1
    pred.max_objects, pred.relation_threshold = 50, 1.01
    assert pred.predict([rgb])[0].relationships == []
    pred.score_threshold = 1.01
    assert pred.predict([rgb])[0].objects == []


@pytest.mark.slow
def test_predictor_rejects_bad_images(trained_toy):
    model, cfg, _, _ = trained_toy
    pred = Predictor(model, VOCAB, (160, 64), cfg.model.mean, cfg.model.std, device="cpu")
    with pytest.raises(ValueError, match="image 0 must be an RGB uint8"):
        pred.predict([np.zeros((10, 10), np.uint8)])


@pytest.mark.slow
def test_predictor_can_be_swapped_while_a_worker_thread_predicts(trained_toy):
    """What the perception node does: a worker thread predicts while another thread swaps the Predictor
    (reference assignment). Every result must come whole from one of the two models, never a mix, and
    the swaps must really interleave with the worker's calls."""
    import copy

    model, cfg, ds, _ = trained_toy
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.detector.parameters():
            p.add_(0.05 * torch.randn_like(p))

    def make(m, name):
        return Predictor(
            m, VOCAB, (160, 64), cfg.model.mean, cfg.model.std, device="cpu", model_id=name, score_threshold=0.1
        )

    preds = {"A": make(model, "A"), "B": make(other, "B")}
    rgb = ds[0][0]
    reference = {k: [o.box for o in p.predict([rgb])[0].objects] for k, p in preds.items()}
    assert reference["A"] != reference["B"]
    holder = {"p": preds["A"]}
    seen, errors = [], []
    finished = threading.Event()

    def worker():
        try:
            while len(seen) < 400 and not (len(seen) >= 40 and {"A", "B"} <= {k for k, _ in seen}):
                g = holder["p"].predict([rgb])[0]
                seen.append((g.model_id, [o.box for o in g.objects]))
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)
        finally:
            finished.set()

    t = threading.Thread(target=worker)
    t.start()
    k = 0
    while not finished.wait(0.003):
        k += 1
        holder["p"] = preds["AB"[k % 2]]
    t.join(timeout=120)
    assert not errors
    assert {name for name, _ in seen} == {"A", "B"}
    assert all(boxes == reference[name] for name, boxes in seen)


def test_deterministic_on_cpu():
    cfg, batch = _batch(2)
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        m = SGModel.from_config(cfg, VOCAB).train()
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
        for _ in range(2):
            loss = sum(m(batch["images"], batch["targets"])["losses"].values())
            opt.zero_grad()
            loss.backward()
            opt.step()
        m.eval()
        outs.append(m.predict(batch["images"], score_threshold=0.0, max_objects=10))
    for a, b in zip(*outs):
        assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["rel_probs"], b["rel_probs"])


def test_graph_to_target_scales_boxes_to_the_input():
    rgb, graph = toy_sample(1)
    t = graph_to_target(graph, (80, 32))
    assert torch.allclose(t["boxes"], torch.tensor([o.box for o in graph.objects]) / 2, atol=1e-4)
    assert t["relations"].shape == (len(graph.relationships), 3)
    x = images_to_tensor([rgb], (80, 32), (0.5,) * 3, (0.25,) * 3)
    assert x.shape == (1, 3, 32, 80)


@pytest.mark.slow
def test_drawing_helpers(trained_toy):
    from sim2sg_core.viz import draw_graph_diagram, draw_scene_graph

    rgb, graph = toy_sample(5)
    out = draw_scene_graph(rgb, graph)
    assert out.shape == rgb.shape and out.dtype == np.uint8 and not np.array_equal(out, rgb)
    assert np.array_equal(rgb, toy_sample(5)[0])  # input untouched
    x1, y1 = (int(round(v)) for v in graph.objects[0].box[:2])
    assert not np.array_equal(out[y1, x1 + 1], rgb[y1, x1 + 1])  # box outline drawn
    diagram = draw_graph_diagram(graph, size=(320, 240))
    assert diagram.shape == (240, 320, 3) and diagram.dtype == np.uint8 and diagram.std() > 5


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
def test_torchvision_encoders_give_a_stride_4_z_and_train_in_the_model(name):
    from sim2sg_core.model.encoder import build_encoder

    enc = build_encoder(name, feature_channels=24)
    z = enc(torch.randn(2, 3, 64, 160))
    assert z.shape == (2, 24, 16, 40) and enc.out_channels == 24
    with pytest.raises(ValueError, match="no pretrained weights to freeze"):
        build_encoder(name, freeze=2)
    cfg, batch = _batch(2)
    cfg.model.encoder = name
    model = SGModel.from_config(cfg, VOCAB).train()
    sum(model(batch["images"], batch["targets"])["losses"].values()).backward()
    assert all(p.grad is not None for p in model.encoder.parameters() if p.requires_grad)
