#!/usr/bin/env python3
"""Exports the reference architectures as TorchScript, plus golden logits.

Each model is Sequential(NormalizeLayer, net) with the reference's state_dict
layout (keys "1.conv1.weight", ...; resnet50's under "1.module."), scripted
with torch.jit.script so that train()/eval() keep working from libtorch (a
traced module freezes BatchNorm in the mode it was traced in).

For every architecture the script also writes a fixed input batch in [0, 1]
and PyTorch's eval-mode logits for it, as little-endian float32, so the Go
tests can check libtorch-from-Go against PyTorch. manifest.json lists them.

Usage: export_models.py --out DIR [--arch NAME ...] [--seed N]
"""
import argparse
import json
import os
from typing import List

import torch
import torch.nn as nn
import torchvision

CIFAR_MEANS = [0.4914, 0.4822, 0.4465]
CIFAR_SDS = [0.2023, 0.1994, 0.2010]
IMAGENET_MEANS = [0.485, 0.456, 0.406]
IMAGENET_SDS = [0.229, 0.224, 0.225]
FASHION_MEANS = [0.2860]
FASHION_SDS = [0.3530]


class NormalizeLayer(nn.Module):
    """(x - mean) / sd per channel. Holds no parameters or buffers, as in the
    reference, so the net's keys start with "1."; the constants are built on
    the input's device at each call."""

    means: List[float]
    sds: List[float]

    def __init__(self, means: List[float], sds: List[float]):
        super().__init__()
        self.means = list(means)
        self.sds = list(sds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = len(self.means)
        m = torch.tensor(self.means, dtype=x.dtype, device=x.device).view(1, c, 1, 1)
        s = torch.tensor(self.sds, dtype=x.dtype, device=x.device).view(1, c, 1, 1)
        return (x - m) / s


class InputCenterLayer(nn.Module):
    """x - mean per channel: the other layer some reference models were trained behind."""

    means: List[float]

    def __init__(self, means: List[float]):
        super().__init__()
        self.means = list(means)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = len(self.means)
        return x - torch.tensor(self.means, dtype=x.dtype, device=x.device).view(1, c, 1, 1)


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        residual = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            residual = self.downsample(x)
        return self.relu(out + residual)


class CifarResNet(nn.Module):
    """ResNet of depth 6n+2 for 32x32 inputs: 3x3 stem without max-pool,
    BasicBlock stages of width 16/32/64, 8x8 average pool, fc 64 -> classes."""

    def __init__(self, depth, num_classes):
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError("depth must be 6n+2")
        n = (depth - 2) // 6
        self.inplanes = 16
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(16, n, 1)
        self.layer2 = self._make_layer(32, n, 2)
        self.layer3 = self._make_layer(64, n, 2)
        self.avgpool = nn.AvgPool2d(8)
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, (2.0 / fan) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()

    def _make_layer(self, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = self.avgpool(x)
        return self.fc(x.view(x.size(0), -1))


class DataParallelKeys(nn.Module):
    """Holds the net as .module, so its keys read like DataParallel's."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x)


class FashionCNN(nn.Module):
    """A small CNN for 1x28x28 Fashion-MNIST, cheap enough to train on 2 CPU cores."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fc = nn.Linear(128, num_classes)

    def forward(self, x):
        x = self.pool(self.relu(self.bn1(self.conv1(x))))
        x = self.pool(self.relu(self.bn2(self.conv2(x))))
        x = self.relu(self.fc1(x.flatten(1)))
        return self.fc(x)


class FashionLeNet(nn.Module):
    """A BatchNorm-free CNN for 1x28x28 Fashion-MNIST: its gradient on a batch does not depend on
    how the batch is split, so data-parallel training can be checked against one process."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5, padding=2, bias=False)
        self.conv2 = nn.Conv2d(8, 16, 5, padding=2, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = nn.Linear(16 * 7 * 7, 64)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = self.relu(self.fc1(x.flatten(1)))
        return self.fc(x)


# name -> (dataset, input shape, classes, means, sds, net constructor, golden batch)
ARCHS = {
    "cifar_resnet20": ("cifar10", [3, 32, 32], 10, CIFAR_MEANS, CIFAR_SDS, lambda: CifarResNet(20, 10), 4),
    "cifar_resnet110": ("cifar10", [3, 32, 32], 10, CIFAR_MEANS, CIFAR_SDS, lambda: CifarResNet(110, 10), 4),
    "imagenet32_resnet110": ("imagenet32", [3, 32, 32], 1000, CIFAR_MEANS, CIFAR_SDS,
                             lambda: CifarResNet(110, 1000), 4),
    "resnet50": ("imagenet", [3, 224, 224], 1000, IMAGENET_MEANS, IMAGENET_SDS,
                 lambda: DataParallelKeys(torchvision.models.resnet50()), 2),
    "fashion_cnn": ("fashion-mnist", [1, 28, 28], 10, FASHION_MEANS, FASHION_SDS, lambda: FashionCNN(10), 8),
    "fashion_lenet": ("fashion-mnist", [1, 28, 28], 10, FASHION_MEANS, FASHION_SDS, lambda: FashionLeNet(10), 8),
}


def build(arch, normalization="normalize"):
    """The reference's model for arch: Sequential(input layer, net)."""
    _, _, _, means, sds, make, _ = ARCHS[arch]
    first = NormalizeLayer(means, sds) if normalization == "normalize" else InputCenterLayer(means)
    return nn.Sequential(first, make())


def metadata(arch, normalization="normalize"):
    dataset, shape, classes, means, sds, _, _ = ARCHS[arch]
    return {"format": 1, "arch": arch, "dataset": dataset, "num_classes": classes, "input": shape,
            "normalization": normalization, "means": means, "sds": sds}


def calibrate_batchnorm(model, shape, gen):
    """Random BatchNorm affine terms, then running statistics measured on random
    inputs, so the golden logits exercise BatchNorm at a realistic scale."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            m.weight.copy_(1 + 0.1 * torch.randn(m.num_features, generator=gen))
            m.bias.copy_(0.1 * torch.randn(m.num_features, generator=gen))
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the calibration batches
        model.train()
        for _ in range(2):
            model(torch.rand([8] + shape, generator=gen))
    for m in bns:
        m.momentum = 0.1


def export(arch, out, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build(arch)
    _, shape, _, _, _, _, batch = ARCHS[arch]
    calibrate_batchnorm(model, shape, gen)
    model.eval()
    scripted = torch.jit.script(model)
    meta = metadata(arch)
    path = os.path.join(out, arch + ".pt")
    tmp = path + ".tmp"
    torch.jit.save(scripted, tmp, _extra_files={"smoothadv.json": json.dumps(meta)})
    os.replace(tmp, path)

    x = torch.rand([batch] + shape, generator=gen)
    with torch.no_grad():
        logits = model(x)
    x.numpy().astype("<f4").tofile(os.path.join(out, arch + ".golden.in.f32"))
    logits.numpy().astype("<f4").tofile(os.path.join(out, arch + ".golden.out.f32"))
    return {"model": arch + ".pt", "input": arch + ".golden.in.f32", "input_shape": list(x.shape),
            "logits": arch + ".golden.out.f32", "logits_shape": list(logits.shape),
            "parameters": len(list(model.parameters())), "buffers": len(list(model.buffers())),
            "meta": meta}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--arch", action="append", choices=sorted(ARCHS))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    manifest = {arch: export(arch, args.out, args.seed) for arch in (args.arch or sorted(ARCHS))}
    manifest_path = os.path.join(args.out, "manifest.json")
    with open(manifest_path + ".tmp", "w") as f:
        json.dump({"torch": torch.__version__, "seed": args.seed, "models": manifest}, f, indent=1)
    os.replace(manifest_path + ".tmp", manifest_path)
    for arch, m in manifest.items():
        print(f"exported {arch}: {m['parameters']} parameters, logits {m['logits_shape']}")


if __name__ == "__main__":
    main()
