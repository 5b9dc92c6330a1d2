"""Checkpoints: round trip, and every unusable file refused with a sentence naming it."""

import dataclasses

import pytest
import torch
from toy_data import VOCAB, tiny_config, toy_sample

from sim2sg_core.model import Predictor, SGModel
from sim2sg_core.model.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint, save_checkpoint
from sim2sg_core.scene_graph import Vocabulary


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    cfg = tiny_config()
    model = SGModel.from_config(cfg, VOCAB).eval()
    path = save_checkpoint(
        tmp_path / "m.pt", model, cfg, VOCAB, (160, 64), cfg.model.mean, cfg.model.std, extra={"note": "test"}, step=7
    )
    return path, model, cfg


def test_save_load_gives_identical_outputs(saved):
    path, model, cfg = saved
    ck = load_checkpoint(path, expect_vocab=VOCAB)
    assert ck["vocab"] == VOCAB and ck["config"] == cfg and ck["step"] == 7 and ck["extra"]["note"] == "test"
    assert tuple(ck["input_size"]) == (160, 64) and ck["model_id"].endswith(ck["content_hash"][:10])
    loaded = model_from_checkpoint(ck)
    images = [toy_sample(i)[0] for i in range(3)]
    a = Predictor(model, VOCAB, (160, 64), cfg.model.mean, cfg.model.std, device="cpu", score_threshold=0.0)
    b = Predictor.from_checkpoint(path, device="cpu", score_threshold=0.0, optimize=False)  # bit-exact
    for ga, gb in zip(a.predict(images), b.predict(images)):
        assert [o.box for o in ga.objects] == [o.box for o in gb.objects]
        assert [(r.subject, r.object, r.predicate, r.score) for r in ga.relationships] == [
            (r.subject, r.object, r.predicate, r.score) for r in gb.relationships
        ]
    assert b.model_id == ck["model_id"]
    x = torch.randn(1, 3, 64, 160)
    assert torch.equal(model(x)["heatmap"], loaded(x)["heatmap"])


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"checkpoint .*nope\.pt does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_truncated_file_names_the_file(saved, tmp_path):
    path, _, _ = saved
    data = path.read_bytes()
    for n in (0, 100, len(data) // 2, len(data) - 200):
        bad = tmp_path / f"trunc{n}.pt"
        bad.write_bytes(data[:n])
        with pytest.raises(CheckpointError, match=str(bad)):
            load_checkpoint(bad)


def test_foreign_files_are_refused(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match=f"{text}.*not a torch checkpoint"):
        load_checkpoint(text)
    other = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(3)}, other)  # a state dict from some other program
    with pytest.raises(CheckpointError, match=f"{other} is not a sim2sg checkpoint"):
        load_checkpoint(other)


def test_other_vocabulary_is_refused_with_the_difference(saved):
    path, _, _ = saved
    other = Vocabulary(classes=("car", "truck", "sign"), subject_classes=("car",))
    with pytest.raises(
        CheckpointError,
        match=r"another vocabulary: classes \['car', 'person', 'sign'\] vs "
        r"expected \['car', 'truck', 'sign'\]",
    ):
        load_checkpoint(path, expect_vocab=other)
    with pytest.raises(CheckpointError, match="another vocabulary"):
        Predictor.from_checkpoint(path, device="cpu", expect_vocab=other)


def test_wrong_version_and_altered_weights(saved, tmp_path):
    path, _, _ = saved
    ck = torch.load(path, weights_only=True)
    old = dict(ck, model_version="sgmodel-0")
    torch.save(old, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match=r"old\.pt holds model version 'sgmodel-0'"):
        load_checkpoint(tmp_path / "old.pt")
    sd = dict(ck["state_dict"])
    k = next(iter(sd))
    sd[k] = sd[k] + 1
    torch.save(dict(ck, state_dict=sd), tmp_path / "edited.pt")
    with pytest.raises(CheckpointError, match=r"edited\.pt weights do not match their content hash"):
        load_checkpoint(tmp_path / "edited.pt")


def test_save_is_atomic_and_keeps_the_old_file_on_failure(saved):
    path, model, cfg = saved
    before = path.read_bytes()

    class Boom:
        def state_dict(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_checkpoint(path, model, cfg, VOCAB, (160, 64), cfg.model.mean, cfg.model.std, optimizer=Boom())
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_config_round_trip_and_encoder_weights_not_needed_after_training(saved, tmp_path):
    path, model, cfg = saved
    enc = tmp_path / "enc.pt"
    torch.save(model.encoder.state_dict(), enc)
    cfg2 = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, encoder_weights=str(enc)))
    m2 = SGModel.from_config(cfg2, VOCAB)
    assert torch.equal(m2.encoder.stem[0].weight, model.encoder.stem[0].weight)  # local weights file loaded
    p2 = save_checkpoint(tmp_path / "m2.pt", m2, cfg2, VOCAB, (160, 64), cfg.model.mean, cfg.model.std)
    enc.unlink()
    model_from_checkpoint(load_checkpoint(p2))  # does not look for the encoder file any more
