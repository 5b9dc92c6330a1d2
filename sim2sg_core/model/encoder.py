"""Encoder φ: image → feature map Z at output stride 4 (the features domain adaptation aligns).

The default is a small from-scratch CNN (strided conv stages + a light top-down FPN) because a
ResNet-18 is ~3x too slow for the 50 ms CPU budget; torchvision backbones are available
(always built with ``weights=None``; an optional local weights file is loaded explicitly).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(cin: int, cout: int, stride: int = 1, kernel: int = 3, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def separable(cin: int, cout: int) -> nn.Sequential:
    """Depthwise 3x3 + pointwise 1x1: most of a 3x3 conv's context for ~1/8 of its cost."""
    return nn.Sequential(conv_bn_relu(cin, cin, groups=cin), conv_bn_relu(cin, cout, kernel=1))


class SmallEncoder(nn.Module):
    """Strided stages at strides 2, 4, 8, 16, 32, fused top-down into one stride-4 map Z."""

    output_stride = 4

    def __init__(self, channels: Sequence[int] = (16, 32, 64, 96, 128), feature_channels: int = 64):
        super().__init__()
        if len(channels) != 5:
            raise ValueError(f"SmallEncoder needs 5 stage widths (strides 2..32), got {list(channels)}")
        c = list(channels)
        self.stem = conv_bn_relu(3, c[0], stride=2)
        self.stages = nn.ModuleList([
            nn.Sequential(conv_bn_relu(c[i - 1], c[i], stride=2), conv_bn_relu(c[i], c[i]))
            for i in range(1, 5)])
        self.laterals = nn.ModuleList([conv_bn_relu(ci, feature_channels, kernel=1) for ci in c[1:]])
        self.smooth = separable(feature_channels, feature_channels)
        self.out_channels = feature_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        y = self.laterals[-1](feats[-1])
        for lat, f in zip(reversed(self.laterals[:-1]), reversed(feats[:-1])):
            y = lat(f) + F.interpolate(y, size=f.shape[-2:], mode="nearest")
        return self.smooth(y)


class TorchvisionEncoder(nn.Module):
    """A torchvision backbone (weights=None) trimmed to stride 16, upsampled to stride 4."""

    output_stride = 4

    def __init__(self, name: str = "resnet18", feature_channels: int = 64, weights_path: str = ""):
        super().__init__()
        import torchvision
        if name not in ("resnet18", "mobilenet_v3_small"):
            raise ValueError(f"unknown encoder {name!r}; choose 'small', 'resnet18' or 'mobilenet_v3_small'")
        net = getattr(torchvision.models, name)(weights=None)
        if weights_path:  # e.g. an ImageNet state dict copied to this machine by hand
            net.load_state_dict(_read_weights(weights_path), strict=False)
        if name == "resnet18":
            self.body = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3)
            cin = 256
        else:
            self.body = net.features[:9]  # stride 16
            cin = 48
        self.reduce = conv_bn_relu(cin, feature_channels, kernel=1)
        self.smooth = separable(feature_channels, feature_channels)
        self.out_channels = feature_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = (x.shape[-2] // 4, x.shape[-1] // 4)
        y = self.reduce(self.body(x))
        return self.smooth(F.interpolate(y, size=size, mode="bilinear", align_corners=False))


def _read_weights(weights_path: str) -> dict:
    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(f"encoder weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise ValueError(f"encoder weights file {path} is not a readable torch state dict: {e}") from None
    if not isinstance(state, dict):
        raise ValueError(f"encoder weights file {path} does not hold a state dict")
    return state


def build_encoder(name: str = "small", channels: Sequence[int] = (16, 32, 64, 96, 128),
                  feature_channels: int = 64, weights_path: str = "") -> nn.Module:
    """Build φ by name; ``weights_path`` (a local state-dict file) is loaded if given."""
    if name != "small":
        return TorchvisionEncoder(name=name, feature_channels=feature_channels, weights_path=weights_path)
    enc = SmallEncoder(channels=channels, feature_channels=feature_channels)
    if weights_path:
        enc.load_state_dict(_read_weights(weights_path))
    return enc
