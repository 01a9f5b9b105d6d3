#!/usr/bin/env python3
"""Times the Python reference's training step (Salman et al.'s train_pgd.py,
which is Cohen et al.'s train.py without --adv-training) on a model exported
by export_models.py, for comparison with ours.

The step is the reference's, per loaded batch: split it into m chunks; tile
each chunk m times, draw noise; with --attack-steps > 0, attack it with the
multi-noise PGD_L2 of attacks.py (model in eval mode, parameters frozen),
then back to train mode; with multi-noise training, a forward/backward/SGD
step per chunk on the attacked noisy copies, otherwise one step per batch on
the first copy of each image. Loss and top-1/top-5 accuracy are read with
.item() every step, as the reference's meters do. The batch is read from
--images/--labels (raw little-endian float32 / int64) and copied to the
device every step, as the reference's loader hands it over.

Prints one JSON line: seconds per batch over the timed steps, the first
batch's mean loss, thread count, allocator.

Usage: reference_train.py --model M.pt --images X.f32 --labels Y.i64 --batch B
       [--steps S --warmup W --noise-sd SD --m M --attack-steps T --epsilon E256 --multi-noise]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, optim

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
from export_models import build  # noqa: E402


def requires_grad_(model, requires_grad):
    for p in model.parameters():
        p.requires_grad_(requires_grad)


def pgd_l2_multinoise(model, inputs, labels, noise, m, steps, max_norm):
    """attacks.py PGD_L2._attack_mutlinoise: the untargeted attack on the
    softmax averaged over the m noisy copies of each image."""
    batch_size = labels.shape[0]
    delta = torch.zeros((len(labels), *inputs.shape[1:]), requires_grad=True, device=inputs.device)
    optimizer = optim.SGD([delta], lr=max_norm / steps * 2)
    for _ in range(steps):
        adv = inputs + delta.repeat(1, m, 1, 1).view_as(inputs) + noise
        logits = model(adv)
        softmax = F.softmax(logits, dim=1)
        average_softmax = softmax.reshape(-1, m, logits.shape[-1]).mean(1, keepdim=True).squeeze(1)
        logsoftmax = torch.log(average_softmax.clamp(min=1e-20))
        loss = -F.nll_loss(logsoftmax, labels)
        optimizer.zero_grad()
        loss.backward()
        grad_norms = delta.grad.view(batch_size, -1).norm(p=2, dim=1)
        delta.grad.div_(grad_norms.view(-1, 1, 1, 1))
        if (grad_norms == 0).any():
            delta.grad[grad_norms == 0] = torch.randn_like(delta.grad[grad_norms == 0])
        optimizer.step()
        delta.data.add_(inputs[::m])
        delta.data.clamp_(0, 1).sub_(inputs[::m])
        delta.data.renorm_(p=2, dim=0, maxnorm=max_norm)
    return inputs + delta.repeat(1, m, 1, 1).view_as(inputs)


def accuracy(output, target, topk):
    maxk = max(topk)
    _, pred = output.topk(maxk, 1, True, True)
    correct = pred.t().eq(target.view(1, -1).expand_as(pred.t()))
    return [correct[:k].reshape(-1).float().sum(0) * 100.0 / target.size(0) for k in topk]


def sgd_step(model, criterion, optimizer, inputs, targets):
    outputs = model(inputs)
    loss = criterion(outputs, targets)
    acc1, acc5 = accuracy(outputs, targets, topk=(1, min(5, outputs.shape[1])))
    value = loss.item()
    acc1.item(), acc5.item()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return value


def train_batch(args, model, criterion, optimizer, x, y, device):
    """One loaded batch of train_pgd.py's train(); returns its mean loss."""
    m = args.m
    size = len(x) // m
    kept, losses = [], []
    for c in range(m):
        inputs, targets = x[c * size:(c + 1) * size].to(device), y[c * size:(c + 1) * size].to(device)
        inputs = inputs.repeat((1, m, 1, 1)).view((size * m,) + tuple(x.shape[1:]))
        noise = torch.randn_like(inputs, device=device) * args.noise_sd
        if args.attack_steps > 0:
            requires_grad_(model, False)
            model.eval()
            inputs = pgd_l2_multinoise(model, inputs, targets, noise, m, args.attack_steps, args.epsilon / 256)
            model.train()
            requires_grad_(model, True)
        if args.multi_noise:
            targets = targets.unsqueeze(1).repeat(1, m).reshape(-1, 1).squeeze()
            losses.append(sgd_step(model, criterion, optimizer, inputs + noise, targets))
        else:
            kept.append(inputs[::m] + noise[::m])
    if not args.multi_noise:
        losses.append(sgd_step(model, criterion, optimizer, torch.cat(kept), y.to(device)))
    return sum(losses) / len(losses)


def allocator():
    """The malloc serving this process, from the libraries mapped into it."""
    with open("/proc/self/maps") as f:
        maps = f.read()
    for name in ("tcmalloc", "jemalloc", "mimalloc"):
        if name in maps:
            return name
    return "glibc"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--images", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--noise-sd", type=float, default=0.25)
    p.add_argument("--m", type=int, default=1)
    p.add_argument("--attack-steps", type=int, default=0)
    p.add_argument("--epsilon", type=float, default=128)
    p.add_argument("--multi-noise", action="store_true")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.steps < 1 or args.warmup < 1 or args.batch < 1 or args.m < 1 or args.batch % args.m:
        p.error("want steps, warmup, batch, m >= 1 and batch a multiple of m")
    if args.attack_steps > 0 and not (args.multi_noise and args.m > 1):
        p.error("the attack is timed in its multi-noise form only: want --multi-noise and m > 1")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    extra = {"smoothadv.json": ""}
    scripted = torch.jit.load(args.model, map_location="cpu", _extra_files=extra)
    meta = json.loads(extra["smoothadv.json"])
    model = build(meta["arch"], meta.get("normalization", "normalize"))
    model.load_state_dict(scripted.state_dict())
    model.to(device)
    shape = [args.batch] + meta["input"]
    x = torch.from_numpy(np.fromfile(args.images, dtype="<f4")).view(shape)
    y = torch.from_numpy(np.fromfile(args.labels, dtype="<i8"))
    if len(y) != args.batch:
        p.error(f"{args.labels} holds {len(y)} labels, want {args.batch}")
    criterion = nn.CrossEntropyLoss().to(device)
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    model.train()
    requires_grad_(model, True)
    first = train_batch(args, model, criterion, optimizer, x, y, device)
    for _ in range(args.warmup - 1):
        train_batch(args, model, criterion, optimizer, x, y, device)
    start = time.perf_counter()
    for _ in range(args.steps):
        train_batch(args, model, criterion, optimizer, x, y, device)
    secs = (time.perf_counter() - start) / args.steps
    print(json.dumps({"seconds_per_batch": secs, "first_loss": first, "threads": torch.get_num_threads(),
                      "allocator": allocator(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
