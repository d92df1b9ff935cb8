"""BiSeNet V1 face parser (PyTorch, training side only).

Context path: a ResNet-18 trunk built from torchvision's ``BasicBlock`` with ``weights=None``
(no pretrained weights can be had here); at ``width=1`` its parameter names match torchvision's
``resnet18`` so users who have ImageNet weights can load them into ``context.backbone``.
``width`` < 1 narrows every layer: on a 2-core CPU the full-width model trains too slowly.
Spatial path: three stride-2 convolutions keeping detail at 1/8 resolution. Attention
refinement modules on the 1/16 and 1/32 features, a feature fusion module, and two auxiliary
heads used only while training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock


def _c(ch: int, width: float) -> int:
    return max(8, int(round(ch * width / 8)) * 8)


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, s: int = 1):
        super().__init__(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ResNet18Trunk(nn.Module):
    """ResNet-18 without its classifier, returning the 1/8, 1/16 and 1/32 feature maps."""

    def __init__(self, width: float = 1.0):
        super().__init__()
        c = [_c(64, width), _c(128, width), _c(256, width), _c(512, width)]
        self.channels = c
        self.conv1 = nn.Conv2d(3, c[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(c[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._layer(c[0], c[0], 1)
        self.layer2 = self._layer(c[0], c[1], 2)
        self.layer3 = self._layer(c[1], c[2], 2)
        self.layer4 = self._layer(c[2], c[3], 2)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @staticmethod
    def _layer(cin: int, cout: int, stride: int) -> nn.Sequential:
        down = None
        if stride != 1 or cin != cout:
            down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        return nn.Sequential(BasicBlock(cin, cout, stride, down), BasicBlock(cout, cout))

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        f8 = self.layer2(x)
        f16 = self.layer3(f8)
        f32 = self.layer4(f16)
        return f8, f16, f32


class AttentionRefinement(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = ConvBNReLU(cin, cout)
        self.att = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cout, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.Sigmoid())

    def forward(self, x):
        x = self.conv(x)
        return x * self.att(x)


class ContextPath(nn.Module):
    def __init__(self, width: float):
        super().__init__()
        self.backbone = ResNet18Trunk(width)
        _, c16, c32 = self.backbone.channels[1:]
        mid = _c(128, width)
        self.arm16 = AttentionRefinement(c16, mid)
        self.arm32 = AttentionRefinement(c32, mid)
        self.head16 = ConvBNReLU(mid, mid)
        self.head32 = ConvBNReLU(mid, mid)
        self.global_ctx = nn.Sequential(nn.AdaptiveAvgPool2d(1), ConvBNReLU(c32, mid, k=1))
        self.out_channels = mid

    def forward(self, x):
        f8, f16, f32 = self.backbone(x)
        g = self.global_ctx(f32)
        a32 = self.arm32(f32) + g
        up32 = self.head32(F.interpolate(a32, size=f16.shape[2:], mode="nearest"))
        a16 = self.arm16(f16) + up32
        up16 = self.head16(F.interpolate(a16, size=f8.shape[2:], mode="nearest"))
        return up16, up32  # 1/8 and 1/16 context features


class SpatialPath(nn.Module):
    def __init__(self, width: float):
        super().__init__()
        c = _c(64, width)
        self.net = nn.Sequential(ConvBNReLU(3, c, 7, 2), ConvBNReLU(c, c, 3, 2), ConvBNReLU(c, c, 3, 2),
                                 ConvBNReLU(c, _c(128, width), 1))
        self.out_channels = _c(128, width)

    def forward(self, x):
        return self.net(x)


class FeatureFusion(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = ConvBNReLU(cin, cout, k=1)
        self.att = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cout, cout // 4, 1), nn.ReLU(inplace=True),
                                 nn.Conv2d(cout // 4, cout, 1), nn.Sigmoid())

    def forward(self, sp, cp):
        f = self.conv(torch.cat([sp, cp], dim=1))
        return f + f * self.att(f)


class Head(nn.Module):
    def __init__(self, cin: int, mid: int, classes: int):
        super().__init__()
        self.conv = ConvBNReLU(cin, mid)
        self.out = nn.Conv2d(mid, classes, 1)

    def forward(self, x):
        return self.out(self.conv(x))


class BiSeNet(nn.Module):
    """BiSeNet V1. ``forward`` returns logits at input resolution (plus two aux logits while training)."""

    def __init__(self, classes: int = 4, width: float = 0.5):
        super().__init__()
        self.width = width
        self.classes = classes
        self.cp = ContextPath(width)
        self.sp = SpatialPath(width)
        fused = _c(256, width)
        self.ffm = FeatureFusion(self.sp.out_channels + self.cp.out_channels, fused)
        self.head = Head(fused, fused, classes)
        self.aux8 = Head(self.cp.out_channels, _c(64, width), classes)
        self.aux16 = Head(self.cp.out_channels, _c(64, width), classes)

    def forward(self, x):
        size = x.shape[2:]
        cp8, cp16 = self.cp(x)
        sp = self.sp(x)
        if sp.shape[2:] != cp8.shape[2:]:
            sp = F.interpolate(sp, size=cp8.shape[2:], mode="bilinear", align_corners=False)
        out = F.interpolate(self.head(self.ffm(sp, cp8)), size=size, mode="bilinear", align_corners=False)
        if not self.training:
            return out
        a8 = F.interpolate(self.aux8(cp8), size=size, mode="bilinear", align_corners=False)
        a16 = F.interpolate(self.aux16(cp16), size=size, mode="bilinear", align_corners=False)
        return out, a8, a16
