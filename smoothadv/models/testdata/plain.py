"""Plain TorchScript models, as users save them, for the tests of models.Fit.

  plain.py DIR   writes the models below into DIR and prints a JSON manifest

Each model takes Fashion-MNIST's 1x28x28 images in [0, 1] with its own
normalisation inside, and records no smoothadv metadata unless said:
  traced.pt    torch.jit.trace of a small CNN, 10 classes; traced.in.f32 is a
               fixed batch and traced.out.f32 its eval-mode logits
               (little-endian float32)
  scripted.pt  torch.jit.script of the same kind of net, 10 classes
  seven.pt     traced, 7 classes
  rgb.pt       traced for 3x32x32 images (a flatten and a linear layer), 10
               classes: it cannot run on 1x28x28 images
  tuple.pt     scripted, returns (logits, features) instead of a tensor
  liar.pt      scripted, 7 classes, but with metadata that says 10
"""
import json
import os
import sys

import torch
import torch.nn as nn

MEAN, SD = 0.2860, 0.3530


class Net(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.mean, self.sd = MEAN, SD
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 14 * 14, classes)

    def forward(self, x):
        x = (x - self.mean) / self.sd
        x = torch.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        return self.fc(x.flatten(1))


class RGB(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = Net(10)

    def forward(self, x):
        y = self.net(x)
        return y, y


def main(out):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand([3, 1, 28, 28], generator=gen)

    def save(module, name, example=None, extra=None):
        module.eval()
        m = torch.jit.trace(module, example) if example is not None else torch.jit.script(module)
        torch.jit.save(m, os.path.join(out, name + ".pt"), _extra_files=extra or {})
        return m

    traced = save(Net(10), "traced", x)
    with torch.no_grad():
        y = traced(x)
    x.numpy().astype("<f4").tofile(os.path.join(out, "traced.in.f32"))
    y.numpy().astype("<f4").tofile(os.path.join(out, "traced.out.f32"))
    save(Net(10), "scripted")
    save(Net(7), "seven", x)
    save(RGB(), "rgb", torch.rand([2, 3, 32, 32], generator=gen))
    save(Pair(), "tuple")
    meta = {"format": 1, "arch": "fashion_cnn", "dataset": "fashion-mnist", "num_classes": 10,
            "input": [1, 28, 28], "normalization": "normalize", "means": [MEAN], "sds": [SD]}
    save(Net(7), "liar", extra={"smoothadv.json": json.dumps(meta)})
    names = ["traced", "scripted", "seven", "rgb", "tuple", "liar"]
    json.dump({"models": {n: n + ".pt" for n in names}, "input": "traced.in.f32",
               "input_shape": list(x.shape), "logits": "traced.out.f32"}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
