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
    assert a["recall@50"] == a["scene_graph"]["SGDet"]["R@50"]          # the older keys stay
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
    assert main(["eval", "--ckpt", str(ck), "--data", str(tmp_path / "kitti"), "--out", str(tmp_path / "e.json"),
                 "--device", "cpu"]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["num_images"] == 3
    assert main(["eval", "--ckpt", str(ck), "--data", "no_such_thing", "--device", "cpu"]) == 2
