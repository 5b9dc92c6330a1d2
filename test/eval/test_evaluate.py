"""evaluate() end to end on the simulator and on a KITTI folder written from the same samples."""

import json

import pytest
import torch
from toy_data import tiny_config

from sim2sg_core.eval.evaluate import evaluate, format_table
from sim2sg_core.model import Predictor, SGModel
from sim2sg_core.train.checkpoint import save_checkpoint
from sim2sg_core.train.trainer import open_dataset


def test_sim_domain_and_kitti_folder_give_the_same_metrics(tmp_path):
    kitti = pytest.importorskip("sim2sg_core.data.kitti")
    from sim2sg_core.sim import Simulator

    sim_ds, vocab = open_dataset("drive:target", 3, 5)
    sim = Simulator(env="drive", domain="target", seed=5)
    kitti.write_kitti(tmp_path / "kitti", [sim.sample(i) for i in range(3)])
    kitti_ds, kvocab = open_dataset(str(tmp_path / "kitti"), 0, 0, vocab=vocab)
    assert kvocab == vocab and len(kitti_ds) == 3
    torch.manual_seed(0)
    cfg = tiny_config()
    cfg.model.input_width, cfg.model.input_height = 320, 96
    model = SGModel.from_config(cfg, vocab)
    pred = Predictor(model, vocab, (320, 96), cfg.model.mean, cfg.model.std, device="cpu", model_id="rand")
    a = evaluate(pred, sim_ds, progress=False)
    b = evaluate(pred, kitti_ds, progress=False)
    assert a["num_images"] == b["num_images"] == 3 and set(a["per_class"]) == set(vocab.classes)
    assert [c["num_gt"] for c in a["per_class"].values()] == [c["num_gt"] for c in b["per_class"].values()]
    assert a["num_relationships"] == b["num_relationships"] > 0
    for k in ("map50", "recall@20", "recall@50", "predcls_accuracy"):
        assert a[k] == pytest.approx(b[k], abs=0.02, nan_ok=True), k
    assert pred.score_threshold == 0.3  # restored after evaluation
    # Scene-Graph-Benchmark modes under their names, each with R / ngR / mR / ngmR at 20 and 50
    assert set(a["scene_graph"]) == {"PredCls", "SGCls", "SGDet"}
    for mode in ("PredCls", "SGCls", "SGDet"):
        for key in ("R@20", "R@50", "ngR@20", "ngR@50", "mR@20", "mR@50", "ngmR@20", "ngmR@50"):
            v = a["scene_graph"][mode][key]
            assert 0.0 <= v <= 1.0, (mode, key)
            assert v == pytest.approx(b["scene_graph"][mode][key], abs=0.02), (mode, key)
        # without the graph constraint more triplets compete: recall can only grow
        assert a["scene_graph"][mode]["ngR@50"] >= a["scene_graph"][mode]["R@50"] - 1e-12
    assert a["recall@50"] == a["scene_graph"]["SGDet"]["R@50"]  # the older keys stay
    assert a["predcls_accuracy"] == a["scene_graph"]["PredCls"]["accuracy"]
    # the simulator's label-filter regions travel through the KITTI folder as DontCare
    assert a["num_ignore_regions"] == b["num_ignore_regions"]
    # simulator labels carry truncation / occlusion: AP per KITTI difficulty
    assert set(a["difficulties"]) == {"easy", "moderate", "hard"}
    gt_easy = sum(a["difficulties"]["easy"]["num_gt"].values())
    gt_hard = sum(a["difficulties"]["hard"]["num_gt"].values())
    assert gt_easy <= gt_hard <= sum(c["num_gt"] for c in a["per_class"].values())
    table = format_table(a)
    assert "mAP@0.5" in table and "car" in table and "moderate" in table
    for mode in ("PredCls", "SGCls", "SGDet"):
        assert f"\n{mode} " in table
    json.dumps(a)  # JSON-able

    hard = evaluate(pred, sim_ds, progress=False, difficulty="hard")
    assert hard["difficulty"] == "hard" and "KITTI difficulty 'hard'" in format_table(hard)
    assert [c["num_gt"] for c in hard["per_class"].values()] == list(a["difficulties"]["hard"]["num_gt"].values())
    assert hard["map50"] == pytest.approx(a["difficulties"]["hard"]["map50"], nan_ok=True)
    with pytest.raises(ValueError, match="difficulty must be None or one of"):
        evaluate(pred, sim_ds, progress=False, difficulty="medium")

    # the CLI on the same checkpoint and folder writes the JSON it prints
    from sim2sg_core.__main__ import main

    ck = save_checkpoint(tmp_path / "m.pt", model, cfg, vocab, (320, 96), cfg.model.mean, cfg.model.std)
    assert (
        main(
            [
                "eval",
                "--ckpt",
                str(ck),
                "--data",
                str(tmp_path / "kitti"),
                "--out",
                str(tmp_path / "e.json"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "e.json").read_text())["num_images"] == 3
    assert main(["eval", "--ckpt", str(ck), "--data", "no_such_thing", "--device", "cpu"]) == 2


def test_all_predicates_predictions_hold_the_arg_max_ones_and_given_box_modes_keep_the_labels():
    from sim2sg_core.eval.evaluate import given_box_predictions
    from sim2sg_core.model.preprocess import hflip_sample
    from sim2sg_core.scene_graph import IgnoreRegion

    ds, vocab = open_dataset("clevr:source", 2, 7)  # every class may be a subject
    torch.manual_seed(1)
    cfg = tiny_config()
    pred = Predictor(
        SGModel.from_config(cfg, vocab),
        vocab,
        (160, 64),
        cfg.model.mean,
        cfg.model.std,
        device="cpu",
        score_threshold=0.0,
    )
    images = [ds[i][0] for i in range(2)]
    graphs = [ds[i][1] for i in range(2)]
    for one, every in zip(pred.predict(images), pred.predict(images, all_predicates=True)):
        assert [o.box for o in one.objects] == [o.box for o in every.objects]
        assert len(every.relationships) == len(vocab.predicates) * len(one.relationships) > 0
        best = {}
        for r in every.relationships:
            if (r.subject, r.object) not in best or r.score > best[(r.subject, r.object)].score:
                best[(r.subject, r.object)] = r
        for r in one.relationships:
            b = best[(r.subject, r.object)]
            assert b.predicate_id == r.predicate_id and b.score == pytest.approx(r.score, rel=1e-5)
    given = given_box_predictions(pred, images, graphs)
    for mode in ("PredCls", "SGCls"):
        for p, g in zip(given[mode], graphs):
            assert [o.box for o in p.objects] == [o.box for o in g.objects]  # the labels' boxes, in order
            n = len(g.objects)
            subj = sum(vocab.is_subject(o.class_name) for o in p.objects)
            assert len(p.relationships) == len(vocab.predicates) * subj * (n - 1)
    assert [[o.class_id for o in p.objects] for p in given["PredCls"]] == [
        [o.class_id for o in g.objects] for g in graphs
    ]
    assert given["class_total"] == sum(len(g.objects) for g in graphs)
    assert len(given["accuracy_true"]) == sum(len(g.relationships) for g in graphs)
    # ignore regions mirror with the image (training augmentation keeps labels consistent)
    g = graphs[0]
    g.ignore_regions = [IgnoreRegion((10.0, 5.0, 30.0, 20.0))]
    _, flipped = hflip_sample(images[0], g, vocab.predicates)
    w = images[0].shape[1]
    assert flipped.ignore_regions[0].box == (w - 30.0, 5.0, w - 10.0, 20.0)
