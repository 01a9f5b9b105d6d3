"""libtorch's profile of one training step of `smoothadv train`, op by op.

Runs the step that smoothadv/train/epoch.go runs (cifar_resnet20 TorchScript
export, batch 256 split into m = 2 chunks of 128 images, each tiled m times,
noise sigma 0.25, multi-noise: one SGD step per chunk) in PyTorch, under
torch.autograd.profiler, and prints the ops by self CPU time. --adv adds
SmoothAdv's PGD (2 steps, eps 0.5, the multi-noise attack loss).

    /usr/bin/python3 smoothadv/train/profile/profile_step.py [--adv] [--model build/models/cifar_resnet20.pt]
"""
import argparse

import torch
import torch.nn.functional as F


def pgd(model, x, y, noise, m, eps=0.5, steps=2):
    delta = torch.zeros_like(x[::m])
    for _ in range(steps):
        delta.requires_grad_(True)
        logits = model(x + delta.repeat_interleave(m, 0) + noise)
        p = F.softmax(logits, 1).reshape(-1, m, logits.shape[1]).mean(1)
        loss = F.nll_loss(torch.log(p.clamp_min(1e-20)), y)
        grad, = torch.autograd.grad(loss, [delta])
        norms = grad.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        delta = (delta.detach() + 2 * eps / steps * grad / norms)
        delta = ((x[::m] + delta).clamp(0, 1) - x[::m]).renorm(2, 0, eps)
    return (x + delta.repeat_interleave(m, 0)).detach()


def step(model, opt, x, y, adv, m=2, sigma=0.25):
    chunk = x.shape[0] // m
    for c in range(m):
        xc, yc = x[c * chunk:(c + 1) * chunk], y[c * chunk:(c + 1) * chunk]
        inputs = xc.repeat_interleave(m, 0)
        noise = torch.randn_like(inputs) * sigma
        if adv:
            model.eval()
            for p in model.parameters():
                p.requires_grad_(False)
            inputs = pgd(model, inputs, yc, noise, m)
            model.train()
            for p in model.parameters():
                p.requires_grad_(True)
        logits = model(inputs + noise)
        loss = F.cross_entropy(logits, yc.repeat_interleave(m, 0))
        opt.zero_grad()
        loss.backward()
        opt.step()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="build/models/cifar_resnet20.pt")
    ap.add_argument("--adv", action="store_true")
    ap.add_argument("--rows", type=int, default=25)
    a = ap.parse_args()
    torch.manual_seed(0)
    model = torch.jit.load(a.model)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x, y = torch.rand(256, 3, 32, 32), torch.randint(0, 10, (256,))
    step(model, opt, x, y, a.adv)  # warm-up: the profiled step runs as in an epoch
    with torch.autograd.profiler.profile() as prof:
        step(model, opt, x, y, a.adv)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.rows))


if __name__ == "__main__":
    main()
