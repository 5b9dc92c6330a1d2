"""Inference rewrites (model/inference.py): BatchNorm folded and channels-last give the same outputs."""

from __future__ import annotations

import copy

import pytest
import torch
from toy_data import VOCAB, tiny_config, toy_sample

from sim2sg_core.model import Predictor, SGModel
from sim2sg_core.model.inference import fix_same_padding, fold_batchnorm, optimize_for_inference
from sim2sg_core.train.checkpoint import save_checkpoint


def _model_with_running_stats(cfg) -> SGModel:
    """A model whose BatchNorm statistics are not the identity, so folding has something to get wrong."""
    torch.manual_seed(0)
    model = SGModel.from_config(cfg, VOCAB).train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(2, 3, cfg.model.input_height, cfg.model.input_width) * 3 - 1)
    return model.eval()


def _assert_same_outputs(a: torch.nn.Module, b: torch.nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        ra, rb = a(x), b(x.contiguous(memory_format=torch.channels_last))
    for key, value in ra.items():
        if torch.is_tensor(value):
            torch.testing.assert_close(rb[key], value, rtol=1e-4, atol=1e-5, msg=key)


def test_folding_removes_every_batchnorm_and_keeps_the_outputs():
    cfg = tiny_config()
    model = _model_with_running_stats(cfg)
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    fast = optimize_for_inference(copy.deepcopy(model))
    assert n_bn > 0 and not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert not any(p.requires_grad for p in fast.parameters())
    _assert_same_outputs(model, fast, torch.rand(2, 3, 64, 160))


def test_folding_the_pretrained_encoder():
    pytest.importorskip("efficientnet_lite_pytorch", reason="pip install efficientnet-lite-pytorch (make setup)")
    import dataclasses

    cfg = tiny_config()
    cfg = dataclasses.replace(
        cfg,
        model=dataclasses.replace(cfg.model, encoder="efficientnet_lite0", encoder_pretrained=False, encoder_freeze=4),
    )
    model = _model_with_running_stats(cfg)
    fast = copy.deepcopy(model)
    assert fold_batchnorm(fast) == sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    _assert_same_outputs(model, fast.to(memory_format=torch.channels_last), torch.rand(1, 3, 64, 160))


@pytest.mark.parametrize("size", [(64, 160), (67, 161)])  # even and odd sides: asymmetric and symmetric pads
def test_fixed_same_padding_gives_the_same_outputs_at_its_size(size):
    pytest.importorskip("efficientnet_lite_pytorch", reason="pip install efficientnet-lite-pytorch (make setup)")
    import dataclasses

    cfg = tiny_config()
    cfg = dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, encoder="efficientnet_lite0", encoder_pretrained=False)
    )
    model = _model_with_running_stats(cfg)
    fixed = copy.deepcopy(model)
    x = torch.rand(2, 3, *size)
    n_dynamic = sum(type(m).__name__ == "Conv2dDynamicSamePadding" for m in model.modules())
    assert n_dynamic > 0  # the strided convs
    assert fix_same_padding(fixed, x[:1], forward=fixed.encode) == n_dynamic
    assert not any(type(m).__name__ == "Conv2dDynamicSamePadding" for m in fixed.modules())
    with torch.no_grad():
        ra, rb = model(x), fixed(x)
    for key, value in ra.items():
        if torch.is_tensor(value):
            torch.testing.assert_close(rb[key], value, rtol=0, atol=0, msg=key)


def test_folding_refuses_a_training_model():
    model = SGModel.from_config(tiny_config(), VOCAB).train()
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(model)


def test_a_checkpoint_predictor_is_optimised_and_predicts_like_the_plain_one(tmp_path):
    cfg = tiny_config()
    model = _model_with_running_stats(cfg)
    path = save_checkpoint(tmp_path / "m.pt", model, cfg, VOCAB, (160, 64), cfg.model.mean, cfg.model.std)
    plain = Predictor.from_checkpoint(path, device="cpu", score_threshold=0.0, max_objects=8, optimize=False)
    fast = Predictor.from_checkpoint(path, device="cpu", score_threshold=0.0, max_objects=8)
    assert fast.optimized and not plain.optimized
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.model.modules())
    for ga, gb in zip(
        plain.predict([toy_sample(i)[0] for i in range(3)]), fast.predict([toy_sample(i)[0] for i in range(3)])
    ):
        assert len(ga.objects) == len(gb.objects) == 8
        sa = sorted(o.score for o in ga.objects)
        sb = sorted(o.score for o in gb.objects)
        assert max(abs(a - b) for a, b in zip(sa, sb)) < 1e-4
