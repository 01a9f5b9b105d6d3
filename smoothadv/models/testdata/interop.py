"""PyTorch's side of the checkpoint interop tests of smoothadv/models.

  interop.py write DIR   writes reference-style checkpoints and their logits
  interop.py check DIR   loads the checkpoints Go wrote as the reference's
                         scripts would, and prints what it saw as JSON

write: for each architecture, the reference's model (export_models.build)
with random BatchNorm terms, running statistics measured on random inputs and
nudged, and, for the CIFAR nets, one SGD step so that momentum buffers exist;
saved as {'epoch', 'arch', 'state_dict', 'optimizer'} in torch's legacy format
(ARCH_legacy.pth.tar) and the zip format (ARCH_zip.pth.tar). ARCH.in.f32 is a
fixed input batch in [0, 1] and ARCH.out.f32 the eval-mode logits, both
little-endian float32. Also center_zip.pth.tar (a net trained behind
InputCenterLayer), macer_{legacy,zip}.pth.tar (MACER's {'net', 'epoch'} of a
bare cifar_resnet20 net) and files that must fail to load. manifest.json lists it all.

check: DIR/go.json lists the checkpoints Go saved, with the input and Go's
logits for each.
"""
import json
import os
import pickle
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from export_models import ARCHS, build  # noqa: E402

BATCH = {"cifar_resnet20": 4, "cifar_resnet110": 2, "resnet50": 1}


def randomize(model, shape, gen):
    """BatchNorm affine terms at random; running statistics from one batch of
    random inputs (so activations keep their scale through deep nets), then
    nudged; num_batches_tracked at random."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            m.weight.copy_(1 + 0.1 * torch.randn(m.num_features, generator=gen))
            m.bias.copy_(0.1 * torch.randn(m.num_features, generator=gen))
            m.momentum = None
        model.train()
        model(torch.rand([4] + shape, generator=gen))
        for m in bns:
            m.momentum = 0.1
            m.running_mean.add_(0.01 * torch.randn(m.num_features, generator=gen))
            m.running_var.mul_(1 + 0.05 * torch.rand(m.num_features, generator=gen))
            m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=gen)))


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)


def sgd_step(model, opt, shape, gen):
    model.train()
    x = torch.rand([2] + shape, generator=gen)
    loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 1]))
    opt.zero_grad()
    loss.backward()
    opt.step()


def save_both(ckpt, out, name):
    torch.save(ckpt, os.path.join(out, name + "_legacy.pth.tar"), _use_new_zipfile_serialization=False)
    torch.save(ckpt, os.path.join(out, name + "_zip.pth.tar"))


def golden(model, shape, batch, gen, out, name):
    x = torch.rand([batch] + shape, generator=gen)
    model.eval()
    with torch.no_grad():
        y = model(x)
    x.numpy().astype("<f4").tofile(os.path.join(out, name + ".in.f32"))
    y.numpy().astype("<f4").tofile(os.path.join(out, name + ".out.f32"))
    return {"input": name + ".in.f32", "input_shape": list(x.shape), "logits": name + ".out.f32"}


class Evil:
    """Unpickling this runs a shell command: what a malicious file does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


def write(out):
    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    manifest = {"archs": {}}
    for arch, batch in BATCH.items():
        shape = ARCHS[arch][1]
        model = build(arch)
        randomize(model, shape, gen)
        opt = sgd(model)
        if arch != "resnet50":  # resnet50 keeps an optimizer without state
            sgd_step(model, opt, shape, gen)
        ckpt = {"epoch": 7, "arch": arch, "state_dict": model.state_dict(), "optimizer": opt.state_dict()}
        save_both(ckpt, out, arch)
        manifest["archs"][arch] = golden(model, shape, batch, gen, out, arch)

    shape = ARCHS["cifar_resnet20"][1]
    model = build("cifar_resnet20", "center")
    randomize(model, shape, gen)
    torch.save({"epoch": 3, "arch": "cifar_resnet20", "state_dict": model.state_dict()},
               os.path.join(out, "center_zip.pth.tar"))
    manifest["center"] = golden(model, shape, 4, gen, out, "center")

    # MACER's layout, {'net': state_dict, 'epoch'}: the bare net, trained
    # without an input layer.
    net = build("cifar_resnet20")[1]
    randomize(net, shape, gen)
    save_both({"net": net.state_dict(), "epoch": 440}, out, "macer")
    manifest["macer"] = golden(net, shape, 4, gen, out, "macer")

    # Files that must not load.
    sd = build("cifar_resnet20").state_dict()
    torch.save({"epoch": 1, "arch": "cifar_resnet110", "state_dict": sd}, os.path.join(out, "claims110.pth.tar"))
    wide = dict(sd)
    wide["1.fc.weight"] = torch.zeros(100, 64)
    wide["1.fc.bias"] = torch.zeros(100)
    torch.save({"epoch": 1, "arch": "cifar_resnet20", "state_dict": wide}, os.path.join(out, "fc100.pth.tar"))
    torch.save({"epoch": 1, "arch": "vgg16", "state_dict": sd}, os.path.join(out, "vgg16.pth.tar"))
    marker = os.path.join(out, "PWNED")
    save_both({"epoch": 1, "arch": "cifar_resnet20", "state_dict": Evil(marker)}, out, "evil")
    with open(os.path.join(out, "evil.pkl"), "wb") as f:
        pickle.dump(Evil(marker), f, protocol=2)
    manifest["marker"] = marker
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


def read_f32(path, shape):
    with open(path, "rb") as f:
        return torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(shape)


WEIGHTS_ONLY = int(torch.__version__.split(".")[0]) >= 2


def check(out):
    with open(os.path.join(out, "go.json")) as f:
        cases = json.load(f)
    results = {}
    for c in cases:
        # As the reference loads: no map_location, so any tensor saved with a
        # GPU location would fail here (this machine has no GPU); and
        # weights_only=True, torch.load's default from 2.6, which refuses
        # any global outside its allowlist. (1.13's weights-only unpickler
        # cannot read floats at all, the reference's checkpoints' included.)
        ckpt = torch.load(c["path"], weights_only=WEIGHTS_ONLY)
        r = {"keys": list(ckpt.keys()), "types": {k: type(v).__name__ for k, v in ckpt.items()}}
        sd = ckpt["state_dict"]
        r["devices"] = sorted({str(t.device) for t in sd.values()})
        model = build(ckpt["arch"], ckpt["normalization"])
        r["key_order_matches"] = list(sd.keys()) == list(model.state_dict().keys())
        model.load_state_dict(sd)  # strict: every key, no extras
        model.eval()
        x = read_f32(c["input"], c["input_shape"])
        with torch.no_grad():
            y = model(x)
        go = read_f32(c["logits"], y.shape)
        r["max_abs_diff"] = (y - go).abs().max().item()
        r["meta"] = {k: ckpt[k] for k in ("epoch", "arch", "normalization", "noise_sd", "means", "sds")}
        if "optimizer" in ckpt:
            opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.5)
            opt.load_state_dict(ckpt["optimizer"])
            g = opt.param_groups[0]
            r["sgd"] = {k: g[k] for k in ("lr", "momentum", "dampening", "weight_decay", "nesterov")}
            bufs = [opt.state[p].get("momentum_buffer") for p in g["params"]]
            r["momentum_buffers"] = sum(b is not None for b in bufs)
            if c.get("original"):
                orig = torch.load(c["original"])["optimizer"]["state"]
                r["momentum_max_abs_diff"] = max(
                    (b - orig[i]["momentum_buffer"]).abs().max().item() for i, b in enumerate(bufs))
            if r["momentum_buffers"]:  # a step uses them, so their shapes must fit
                sgd_step(model, opt, list(x.shape[1:]), torch.Generator().manual_seed(0))
        results[c["name"]] = r
    json.dump(results, sys.stdout, indent=1)


if __name__ == "__main__":
    {"write": write, "check": check}[sys.argv[1]](sys.argv[2])
