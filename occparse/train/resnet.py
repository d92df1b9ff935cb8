"""ResNet-18 occlusion regressor (training side): torchvision's resnet18, head Linear(512, 1) + sigmoid."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import ResNet18_Weights, resnet18


class OcclusionRegressor(nn.Module):
    """Predicts the occluded fraction in [0, 1] from a normalised crop.

    ``pretrained=True`` loads torchvision's ImageNet weights, for users who have them in their
    torch cache; occparse's shipped models are trained from scratch (``weights=None``).
    """

    def __init__(self, pretrained: bool = False):
        super().__init__()
        net = resnet18(weights=ResNet18_Weights.IMAGENET1K_V1 if pretrained else None)
        net.fc = nn.Linear(512, 1)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x)).squeeze(1)
