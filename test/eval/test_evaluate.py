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
    table = format_table(a)
    assert "mAP@0.5" in table and "Recall@50" in table and "car" in table
    json.dumps(a)  # JSON-able

    # the CLI on the same checkpoint and folder writes the JSON it prints
    from sim2sg_core.__main__ import main
    ck = save_checkpoint(tmp_path / "m.pt", model, cfg, vocab, (320, 96), cfg.model.mean, cfg.model.std)
    assert main(["eval", "--ckpt", str(ck), "--data", str(tmp_path / "kitti"), "--out", str(tmp_path / "e.json"),
                 "--device", "cpu"]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["num_images"] == 3
    assert main(["eval", "--ckpt", str(ck), "--data", "no_such_thing", "--device", "cpu"]) == 2
