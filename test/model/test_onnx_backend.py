"""ONNX export + the onnxruntime backend: the same scene graphs as the torch model it came from."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

pytest.importorskip("onnx", reason="pip install onnx (make setup)")
pytest.importorskip("onnxruntime", reason="pip install onnxruntime (make setup)")

from toy_data import VOCAB, ToyDataset, tiny_config  # noqa: E402

from sim2sg_core.model import Predictor, SGModel  # noqa: E402
from sim2sg_core.model.onnx_backend import OnnxModelError, export_onnx, relations_path  # noqa: E402
from sim2sg_core.sim import Simulator  # noqa: E402
from sim2sg_core.train.trainer import Trainer  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A toy model trained to detect (so scores are not ties), its checkpoint and its ONNX export."""
    torch.manual_seed(0)
    cfg = tiny_config(steps=120)
    cfg.model.resize_mode = "letterbox"
    model = SGModel.from_config(cfg, VOCAB)
    out = tmp_path_factory.mktemp("onnx")
    tr = Trainer(model, cfg, VOCAB, out, device="cpu", progress=False)
    tr.fit(tr.make_loader(ToyDataset(8, width=160, height=90)))
    ckpt = tr.save(out / "model.pt", with_optimizer=False)
    paths = export_onnx(ckpt, out / "model.onnx")
    return ckpt, paths


def _triplets(g):
    return {(r.subject, r.object, r.predicate) for r in g.relationships}


@pytest.mark.slow
def test_both_backends_give_the_same_scene_graphs(exported):
    ckpt, (onnx_path, rel_path) = exported
    assert onnx_path.is_file() and rel_path == relations_path(onnx_path) and rel_path.is_file()
    # a low threshold: the toy-trained model sees simulator frames, and every weak detection is compared too
    torch_pred = Predictor.from_checkpoint(ckpt, device="cpu", score_threshold=0.05)
    onnx_pred = Predictor.from_checkpoint(onnx_path, device="cpu", score_threshold=0.05)
    assert (torch_pred.backend, onnx_pred.backend) == ("torch", "onnxruntime")
    assert onnx_pred.model_id == torch_pred.model_id and onnx_pred.vocab == VOCAB
    assert (onnx_pred.input_size, onnx_pred.resize_mode) == (torch_pred.input_size, "letterbox")
    sim = Simulator(env="drive", domain="target", seed=11, image_size=(192, 108))  # 50 simulator frames
    frames = [sim.sample(i).image for i in range(50)]
    n_obj = n_rel = 0
    for ga, gb in zip(torch_pred.predict(frames), onnx_pred.predict(frames)):  # batches of 8, dynamic batch
        assert [o.class_id for o in ga.objects] == [o.class_id for o in gb.objects]
        if ga.objects:
            diff = np.abs(np.array([o.box for o in ga.objects]) - np.array([o.box for o in gb.objects]))
            assert diff.max() <= 1.0, diff.max()
        assert _triplets(ga) == _triplets(gb)
        n_obj, n_rel = n_obj + len(ga.objects), n_rel + len(ga.relationships)
    assert n_obj > 50 and n_rel > 20, (n_obj, n_rel)


def test_backend_argument_exports_a_checkpoint_in_memory(exported, tmp_path):
    ckpt, (onnx_path, _) = exported
    frames = [ToyDataset(8, width=160, height=90, seed=5)[i][0] for i in range(8)]
    torch_pred = Predictor.from_checkpoint(ckpt, device="cpu", backend="torch", score_threshold=0.2)
    leftovers = set(Path(tempfile.gettempdir()).glob("sim2sg-onnx-*"))
    ort_pred = Predictor.from_checkpoint(ckpt, device="cpu", backend="onnxruntime", threads=1, score_threshold=0.2)
    assert (torch_pred.backend, ort_pred.backend) == ("torch", "onnxruntime")
    assert ort_pred.model_id == torch_pred.model_id
    assert set(Path(tempfile.gettempdir()).glob("sim2sg-onnx-*")) == leftovers, "the export left files behind"
    for ga, gb in zip(torch_pred.predict(frames), ort_pred.predict(frames)):
        assert [o.class_id for o in ga.objects] == [o.class_id for o in gb.objects]
        assert _triplets(ga) == _triplets(gb)
    with pytest.raises(ValueError, match="only the onnxruntime backend"):
        Predictor.from_checkpoint(onnx_path, device="cpu", backend="torch")
    with pytest.raises(ValueError, match="not one of auto, torch, onnxruntime"):
        Predictor.from_checkpoint(ckpt, device="cpu", backend="tensorrt")


def test_cli_export_and_predict_with_the_onnx_file(exported, tmp_path, capsys):
    import cv2

    from sim2sg_core.__main__ import main

    ckpt, _ = exported
    out = tmp_path / "deploy" / "m.onnx"
    assert main(["export", "--ckpt", str(ckpt), "--format", "onnx", "--out", str(out)]) == 0
    assert out.is_file() and relations_path(out).is_file()
    img = tmp_path / "f.png"
    cv2.imwrite(str(img), ToyDataset(1, width=160, height=90, seed=5)[0][0][:, :, ::-1])
    for model, folder in ((out, "p_onnx"), (ckpt, "p_torch")):
        assert (
            main(
                [
                    "predict",
                    "--ckpt",
                    str(model),
                    str(img),
                    "--out",
                    str(tmp_path / folder),
                    "--device",
                    "cpu",
                    "--score-threshold",
                    "0.1",
                ]
            )
            == 0
        )
    a, b = (json.loads((tmp_path / f / "f.json").read_text()) for f in ("p_onnx", "p_torch"))
    assert a["image_width"] == 160 and a["objects"] and len(a["objects"]) == len(b["objects"])
    assert np.abs(np.array([o["box"] for o in a["objects"]]) - np.array([o["box"] for o in b["objects"]])).max() <= 1
    capsys.readouterr()
    assert main(["export", "--ckpt", str(tmp_path / "none.pt"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "none.pt" in capsys.readouterr().err


def test_bad_onnx_files_get_one_clear_sentence(exported, tmp_path):
    _, (onnx_path, rel_path) = exported
    with pytest.raises(OnnxModelError, match="does not exist"):
        Predictor.from_checkpoint(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(OnnxModelError, match="cannot be loaded"):
        Predictor.from_checkpoint(junk)
    truncated = tmp_path / "cut.onnx"
    truncated.write_bytes(onnx_path.read_bytes()[:2000])
    with pytest.raises(OnnxModelError, match="cut.onnx"):
        Predictor.from_checkpoint(truncated)
    # the relation graph of another export (or none) is refused
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(onnx_path.read_bytes())
    with pytest.raises(OnnxModelError, match="relation graph .* is missing"):
        Predictor.from_checkpoint(lone)
    relations_path(lone).write_bytes(rel_path.read_bytes() + b"\0")
    with pytest.raises(OnnxModelError, match="does not belong"):
        Predictor.from_checkpoint(lone)
    other = VOCAB.__class__(classes=("a", "b"), subject_classes=())
    with pytest.raises(OnnxModelError, match="exported for classes"):
        Predictor.from_checkpoint(onnx_path, expect_vocab=other)


def test_pretrained_encoder_exports_with_constant_padding_and_same_outputs(tmp_path):
    """EfficientNet's strided TF-'SAME' convs pad per call in torch; the export fixes the pads for its
    input size, so no Pad in the graph is fed by shape arithmetic, and the outputs stay the model's."""
    pytest.importorskip("efficientnet_lite_pytorch", reason="pip install efficientnet-lite-pytorch (make setup)")
    import dataclasses

    import onnx
    import onnxruntime as ort

    from sim2sg_core.train.checkpoint import save_checkpoint

    cfg = tiny_config()
    cfg = dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, encoder="efficientnet_lite0", encoder_pretrained=False)
    )
    torch.manual_seed(0)
    model = SGModel.from_config(cfg, VOCAB).eval()
    ckpt = save_checkpoint(tmp_path / "m.pt", model, cfg, VOCAB, (160, 64), cfg.model.mean, cfg.model.std)
    main, _ = export_onnx(ckpt, tmp_path / "m.onnx")
    graph = onnx.load(str(main)).graph
    producer = {o: n for n in graph.node for o in n.output}
    initializers = {i.name for i in graph.initializer}

    def static(name: str) -> bool:  # computable without the input: constants and ops on constants only
        if name in initializers:
            return True
        node = producer.get(name)
        return node is not None and node.op_type != "Shape" and all(static(i) for i in node.input if i)

    pads = [n for n in graph.node if n.op_type == "Pad"]
    assert pads and all(static(n.input[1]) for n in pads), [n.input[1] for n in pads]
    x = torch.rand(2, 3, 64, 160)
    with torch.no_grad():
        ref = model.heads(model.encode(x))
    sess = ort.InferenceSession(str(main), providers=["CPUExecutionProvider"])
    heatmap, size, offset, _ = sess.run(None, {"images": x.numpy()})
    for name, got in (("heatmap", heatmap), ("size", size), ("offset", offset)):
        np.testing.assert_allclose(got, ref[name].numpy(), rtol=1e-3, atol=1e-4, err_msg=name)


def test_int8_export_is_quantized_calibrated_and_close_to_float(exported, tmp_path, capsys):
    import onnx

    from sim2sg_core.__main__ import main
    from sim2sg_core.model.onnx_backend import read_onnx_metadata

    ckpt, (fp32_path, _) = exported
    out = tmp_path / "int8" / "m.onnx"
    # calibrated on simulator frames of the toy model's domain, through the CLI
    args = ["export", "--ckpt", str(ckpt), "--out", str(out), "--quantize", "int8"]
    assert main([*args, "--calibration", "sim:target", "--calibration-images", "6"]) == 0
    assert "int8, calibrated on sim:drive/target" in capsys.readouterr().out
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.onnx", "m.relations.onnx"]  # no temporaries left
    meta = read_onnx_metadata(out)
    assert meta["quantization"]["mode"] == "int8" and meta["quantization"]["calibration_images"] == 6
    graph = onnx.load(str(out)).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert any(i.data_type == onnx.TensorProto.INT8 for i in graph.initializer)  # int8 weights
    assert "quantization" not in read_onnx_metadata(fp32_path)

    # calibrated on frames like those it will see (the toy data it was trained on), through the API
    toy = ToyDataset(30, width=160, height=90, seed=5)
    calibrated = tmp_path / "toy_int8.onnx"
    export_onnx(ckpt, calibrated, quantize="int8", calibration=(toy[i][0] for i in range(10)), calibration_images=10)
    frames = [toy[i][0] for i in range(10, 30)]  # other frames than the calibration's
    fp32 = Predictor.from_checkpoint(fp32_path, device="cpu", score_threshold=0.2)
    int8 = Predictor.from_checkpoint(calibrated, device="cpu", score_threshold=0.2)
    hit = total = 0
    for ga, gb in zip(fp32.predict(frames), int8.predict(frames)):
        for o in ga.objects:
            total += 1
            same = [p.box for p in gb.objects if p.class_id == o.class_id]
            if same:
                hit += int(box_iou(torch.tensor([o.box]), torch.tensor(same)).max() >= 0.5)
    assert total >= 20 and hit / total >= 0.8, (hit, total)


def test_int8_export_refusals(exported, tmp_path):
    ckpt, _ = exported
    with pytest.raises(OnnxModelError, match="int4"):
        export_onnx(ckpt, tmp_path / "a.onnx", quantize="int4", calibration=[])
    with pytest.raises(OnnxModelError, match="calibration frames"):
        export_onnx(ckpt, tmp_path / "b.onnx", quantize="int8")
    with pytest.raises(OnnxModelError, match="gave no frames"):
        export_onnx(ckpt, tmp_path / "c.onnx", quantize="int8", calibration=iter([]))
    assert not any(tmp_path.glob("c.onnx*")), list(tmp_path.iterdir())  # nothing half-written
