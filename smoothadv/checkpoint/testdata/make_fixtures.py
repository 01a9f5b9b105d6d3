"""Writes the checkpoint fixtures for the Go tests of smoothadv/checkpoint.

Usage: make_fixtures.py OUTDIR

For every case NAME it writes NAME_legacy.pth.tar (torch's pre-1.6 format,
as 2019 reference checkpoints are), NAME_zip.pth.tar (the zip format) and,
for cases that load, NAME.json, which describes what both files hold: per
tensor its name, shape, dtype, the SHA-256 of its contiguous little-endian
bytes and its first values.
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

# The reference architectures, with the reference's state_dict layout, as
# smoothadv/models exports them to TorchScript.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "models"))
from export_models import build  # noqa: E402

torch.manual_seed(0)


def describe(t):
    c = t.detach().contiguous()
    return {
        "shape": list(c.shape),
        "dtype": str(c.dtype).replace("torch.", ""),
        "sha256": hashlib.sha256(c.numpy().tobytes()).hexdigest(),
        "first": [float(v) for v in c.flatten()[:3].tolist()],
    }


def trained(arch, size):
    """One SGD step, so that momentum buffers exist, as in a real checkpoint."""
    model = build(arch)
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
    sd["param"] = nn.Parameter(torch.full((2,), 0.25))  # as keep_vars=True saves
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
    for arch, size in (("cifar_resnet20", 32), ("cifar_resnet110", 32), ("resnet50", 64)):
        cases[arch] = trained(arch, size)
    cases["oldids"] = with_old_ids(*trained("cifar_resnet20", 32))
    cases["views"] = views()
    lin = nn.Linear(2, 2)
    adam = torch.optim.Adam(lin.parameters())
    lin(torch.ones(1, 2)).sum().backward()
    adam.step()
    cases["adam"] = ({"epoch": 2, "arch": "linear", "state_dict": lin.state_dict(),
                      "optimizer": adam.state_dict()}, None)
    cases["plainlist"] = ([1, 2, 3], None)
    # MACER's layout: {'net': state_dict, 'epoch'}, the bare net's keys.
    net = build("cifar_resnet20")[1]
    cases["macer"] = ({"net": net.state_dict(), "epoch": 440},
                      {"epoch": 440, "arch": "", "state_dict": [
                          dict(name=k, **describe(v)) for k, v in net.state_dict().items()]})
    cases["netandstate"] = ({"net": lin.state_dict(), "state_dict": lin.state_dict(),
                             "epoch": 1, "arch": "linear"}, None)
    cases["netnoepoch"] = ({"net": lin.state_dict()}, None)
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
