"""Inference-only rewrites of a trained model: fold BatchNorm into the convolution before it, and
lay tensors out channels-last. On 2 CPU cores these take the EfficientNet-Lite0 model from about
87 ms to about 48 ms per 512x256 frame (``scripts/bench_model.py``); outputs agree to float error.

Only a model that nothing trains any more may be folded: the BatchNorm layers are gone afterwards.
:meth:`sim2sg_core.model.Predictor.from_checkpoint` does it on the model it owns; adaptation's
predictor shares the training model and does not.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from sim2sg_core.model.encoder import plain_conv_like

#: Conv -> BatchNorm pairs wired by ``forward`` (not by child order) in EfficientNet's MBConvBlock.
_NAMED_PAIRS = (
    ("_conv_stem", "_bn0"),
    ("_expand_conv", "_bn0"),
    ("_depthwise_conv", "_bn1"),
    ("_project_conv", "_bn2"),
    ("_conv_head", "_bn1"),
)


def _foldable(conv: object, bn: object) -> Optional[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """The pair, typed, when ``bn`` can be folded into ``conv``; else None."""
    if (
        isinstance(conv, nn.Conv2d)
        and isinstance(bn, nn.BatchNorm2d)
        and bn.track_running_stats
        and bn.running_mean is not None
        and conv.out_channels == bn.num_features
    ):
        return conv, bn
    return None


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every BatchNorm2d that directly follows a Conv2d into that conv, in place; returns how many.

    Pairs are taken only where the data flow is certain: consecutive entries of an ``nn.Sequential``,
    and the named conv/bn attributes of EfficientNet blocks. The model must be in eval mode.
    """
    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode (running statistics, not batch statistics)")
    folded = 0
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            keys = list(module._modules)
            for a, b in zip(keys, keys[1:]):
                pair = _foldable(module._modules[a], module._modules[b])
                if pair is not None:
                    module._modules[a] = fuse_conv_bn_eval(*pair)
                    module._modules[b] = nn.Identity()
                    folded += 1
        for conv_name, bn_name in _NAMED_PAIRS:
            pair = _foldable(getattr(module, conv_name, None), getattr(module, bn_name, None))
            if pair is not None:
                setattr(module, conv_name, fuse_conv_bn_eval(*pair))
                setattr(module, bn_name, nn.Identity())
                folded += 1
    return folded


def optimize_for_inference(model: nn.Module, channels_last: bool = True) -> nn.Module:
    """Eval mode, BatchNorm folded, no gradients, channels-last weights; returns the same model."""
    model.eval()
    fold_batchnorm(model)
    for p in model.parameters():
        p.requires_grad_(False)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def fix_same_padding(model: nn.Module, example: torch.Tensor, forward=None) -> int:
    """Give every TF-'SAME' conv that pads per call (EfficientNet's strided ``Conv2dDynamicSamePadding``)
    the fixed padding of ``example``'s input size, in place; returns how many were rewritten.

    The package computes the padding from the input's shape at every call; exported to ONNX that is a
    chain of Shape/Gather/Sub ops feeding a Pad, which ONNX Runtime can neither fold nor fuse into the
    conv (on the 512x256 Lite0 model those Pads and the layout reorders around them were about a quarter
    of the CPU time). With the size fixed, symmetric padding goes into the conv and an asymmetric
    remainder becomes a constant ``ZeroPad2d``. Only for a graph whose input size is fixed (an export):
    another input size would now be padded wrongly. ``forward`` (default ``model``) runs ``example``
    once to learn each conv's input size.
    """
    targets: dict[nn.Module, tuple[int, int]] = {}

    def record(module: nn.Module, inputs: tuple) -> None:
        targets[module] = (int(inputs[0].shape[-2]), int(inputs[0].shape[-1]))

    hooks = [
        m.register_forward_pre_hook(record)
        for m in model.modules()
        if isinstance(m, nn.Conv2d) and type(m).__name__ == "Conv2dDynamicSamePadding"
    ]
    try:
        with torch.no_grad():
            (forward or model)(example)
    finally:
        for h in hooks:
            h.remove()
    rewritten = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if child not in targets or not isinstance(child, nn.Conv2d):
                continue
            ih, iw = targets[child]
            (kh, kw), (sh, sw), (dh, dw) = child.kernel_size, child.stride, child.dilation
            pad_h = max((-(-ih // sh) - 1) * sh + (kh - 1) * dh + 1 - ih, 0)
            pad_w = max((-(-iw // sw) - 1) * sw + (kw - 1) * dw + 1 - iw, 0)
            top, left = pad_h // 2, pad_w // 2
            conv = plain_conv_like(child, (top, left))
            extra_h, extra_w = pad_h - 2 * top, pad_w - 2 * left  # 0 or 1: TF puts the odd pixel last
            fixed: nn.Module = conv
            if extra_h or extra_w:
                fixed = nn.Sequential(nn.ZeroPad2d((0, extra_w, 0, extra_h)), conv)
            setattr(parent, name, fixed)
            rewritten += 1
    return rewritten
