"""Writes the checkpoint fixtures for the Go tests of smoothadv/checkpoint.

Usage: make_fixtures.py OUTDIR

For every case NAME it writes NAME_legacy.pth.tar (torch's pre-1.6 format,
as 2019 reference checkpoints are), NAME_zip.pth.tar (the zip format) and,
for cases that load, NAME.json, which describes what both files hold: per tensor its name, shape,
dtype, the SHA-256 of its contiguous little-endian bytes and its first values.
"""
import collections
import hashlib
import json
import os
import pickle
import struct
import sys

import torch
import torch.nn as nn
import torchvision

torch.manual_seed(0)


class NormalizeLayer(nn.Module):
    """Like the reference's NormalizeLayer: no parameters, no buffers."""

    def __init__(self, means, stds):
        super().__init__()
        self.means = means
        self.stds = stds

    def forward(self, x):
        m = torch.tensor(self.means).view(1, -1, 1, 1)
        s = torch.tensor(self.stds).view(1, -1, 1, 1)
        return (x - m) / s


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(out + res)


class CifarResNet(nn.Module):
    """The reference's CIFAR ResNet: depth 6n+2, widths 16/32/64."""

    def __init__(self, depth, num_classes):
        super().__init__()
        n = (depth - 2) // 6
        self.inplanes = 16
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(16, n, 1)
        self.layer2 = self._make_layer(32, n, 2)
        self.layer3 = self._make_layer(64, n, 2)
        self.avgpool = nn.AvgPool2d(8)
        self.fc = nn.Linear(64, num_classes)

    def _make_layer(self, planes, blocks, stride):
        layers = [BasicBlock(self.inplanes, planes, stride)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes, 1) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


CIFAR = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def describe(t):
    c = t.detach().contiguous()
    return {
        "shape": list(c.shape),
        "dtype": str(c.dtype).replace("torch.", ""),
        "sha256": hashlib.sha256(c.numpy().tobytes()).hexdigest(),
        "first": [float(v) for v in c.flatten()[:3].tolist()],
    }


def trained(arch, model, size):
    """One SGD step, so that momentum buffers exist, as in a real checkpoint."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9,
                          weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)
    x = torch.rand(2, 3, size, size)
    loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 1]))
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    ckpt = {"epoch": 1, "arch": arch, "state_dict": model.state_dict(),
            "optimizer": opt.state_dict()}
    n = len(opt.param_groups[0]["params"])
    want = {
        "epoch": 1,
        "arch": arch,
        "state_dict": [dict(name=k, **describe(v))
                       for k, v in ckpt["state_dict"].items()],
        "optimizer": {
            "lr": opt.param_groups[0]["lr"],
            "momentum": 0.9, "weight_decay": 1e-4,
            "momentum_buffers": [describe(opt.state[p]["momentum_buffer"])
                                 for p in opt.param_groups[0]["params"]],
            "params": list(range(n)),
        },
    }
    return ckpt, want


def with_old_ids(ckpt, want):
    """Rewrites the optimizer's keys as PyTorch < 1.5 saved them: id(param)."""
    sd = ckpt["optimizer"]
    ids = [140000000000000 + 64 * (7 * i % 13) + 100000 * i
           for i in range(len(sd["param_groups"][0]["params"]))]
    sd["param_groups"][0]["params"] = ids
    # Reverse the state's order: loading must go by the params list.
    sd["state"] = {ids[i]: v for i, v in reversed(list(sd["state"].items()))}
    want["optimizer"]["params"] = ids
    return ckpt, want


def views():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    big = torch.arange(100, dtype=torch.float64)
    sd = collections.OrderedDict()
    sd["transposed"] = base.t()                  # non-contiguous
    sd["row"] = base[2]                         # offset into a shared storage
    sd["col"] = base[:, 1]                      # offset and stride
    sd["whole"] = base
    sd["slice64"] = big[10:20]
    sd["every3rd"] = big[::3]
    sd["empty"] = torch.zeros(0, 5)
    sd["scalar"] = torch.tensor(7, dtype=torch.int64)
    sd["half"] = torch.tensor([1.5, -2.0], dtype=torch.float16)
    ckpt = {"epoch": 3, "arch": "views", "state_dict": sd,
            "best_acc": 0.5, "note": "hello", "sizes": [1, (2, 3)]}
    want = {"epoch": 3, "arch": "views",
            "state_dict": [dict(name=k, **describe(v)) for k, v in sd.items()]}
    return ckpt, want


class Rebuild:
    """Pickles as a tensor rebuilt from a storage reference."""

    def __init__(self, ref, offset, size, stride):
        self.args = (ref, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


def write_storage_view(path):
    """Writes, by hand, a legacy file whose tensor lies in a storage that is
    a view of another (view metadata), as PyTorch before 1.0 could save;
    torch.load reads it back to check the file and to describe the tensor."""
    view = object()

    def persistent_id(obj):
        if obj is view:
            return ("storage", torch.FloatStorage, "root", "cpu", 10, ("v", 2, 6))
        return None

    with open(path, "wb") as f:
        for obj in (torch.serialization.MAGIC_NUMBER,
                    torch.serialization.PROTOCOL_VERSION,
                    {"protocol_version": 1001, "little_endian": True,
                     "type_sizes": {"short": 2, "int": 4, "long": 8}}):
            pickle.dump(obj, f, protocol=2)
        p = pickle.Pickler(f, protocol=2)
        p.persistent_id = persistent_id
        sd = collections.OrderedDict(w=Rebuild(view, 1, (2, 2), (1, 2)))
        p.dump({"epoch": 1, "arch": "x", "state_dict": sd})
        pickle.dump(["root"], f, protocol=2)
        f.write(struct.pack("<q", 10))
        f.write(torch.arange(10, dtype=torch.float32).numpy().tobytes())
    sd = torch.load(path)["state_dict"]
    return {"epoch": 1, "arch": "x",
            "state_dict": [dict(name=k, **describe(v)) for k, v in sd.items()]}


class Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def main(out):
    cases = {}
    cases["cifar_resnet20"] = trained(
        "cifar_resnet20", nn.Sequential(NormalizeLayer(*CIFAR),
                                        CifarResNet(20, 10)), 32)
    cases["cifar_resnet110"] = trained(
        "cifar_resnet110", nn.Sequential(NormalizeLayer(*CIFAR),
                                         CifarResNet(110, 10)), 32)
    cases["resnet50"] = trained(
        "resnet50", nn.Sequential(NormalizeLayer(*IMAGENET),
                                  nn.DataParallel(torchvision.models.resnet50())), 64)
    cases["oldids"] = with_old_ids(*trained(
        "cifar_resnet20", nn.Sequential(NormalizeLayer(*CIFAR),
                                        CifarResNet(20, 10)), 32))
    cases["views"] = views()
    lin = nn.Linear(2, 2)
    adam = torch.optim.Adam(lin.parameters())
    lin(torch.ones(1, 2)).sum().backward()
    adam.step()
    cases["adam"] = ({"epoch": 2, "arch": "linear", "state_dict": lin.state_dict(),
                      "optimizer": adam.state_dict()}, None)
    cases["plainlist"] = ([1, 2, 3], None)
    marker = os.path.join(out, "pwned")
    cases["system"] = ({"epoch": 1, "arch": "x",
                        "state_dict": Evil(os.system, "touch " + marker)}, None)
    cases["eval"] = ({"epoch": 1, "arch": "x",
                      "state_dict": Evil(eval, "open(%r, 'w')" % marker)}, None)
    want = write_storage_view(os.path.join(out, "storageview_legacy.pth.tar"))
    with open(os.path.join(out, "storageview.json"), "w") as f:
        json.dump(want, f)
    for name, (ckpt, want) in cases.items():
        for fmt, zipped in (("legacy", False), ("zip", True)):
            torch.save(ckpt, os.path.join(out, "%s_%s.pth.tar" % (name, fmt)),
                       _use_new_zipfile_serialization=zipped)
        if want is not None:
            with open(os.path.join(out, name + ".json"), "w") as f:
                json.dump(want, f)


if __name__ == "__main__":
    main(sys.argv[1])
