#!/usr/bin/env python3
"""Times the Python reference's CERTIFY sampling loop (Cohen et al.'s core.py)
on a model exported by export_models.py, for comparison with our sampler.

The loop is the reference's: for each image, N0 then N samples in batches of
`batch`: repeat x, add randn_like * sigma, argmax of the eager nn.Module's
logits, counts on the host; eval mode, no grad. Prints one JSON line.

Usage: reference_sampling.py --model M.pt --images K --n0 100 --n N --batch B --sigma S [--device cuda:0]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
from export_models import ARCHS, build  # noqa: E402


def sample_noise(model, x, num, batch, sigma, num_classes):
    with torch.no_grad():
        counts = np.zeros(num_classes, dtype=int)
        while num > 0:
            this_batch = min(batch, num)
            num -= this_batch
            b = x.repeat((this_batch, 1, 1, 1))
            noise = torch.randn_like(b) * sigma
            predictions = model(b + noise).argmax(1)
            counts += np.bincount(predictions.cpu().numpy(), minlength=num_classes)
        return counts


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--n0", type=int, default=100)
    p.add_argument("--n", type=int, default=100000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--sigma", type=float, default=0.25)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    extra = {"smoothadv.json": ""}
    scripted = torch.jit.load(args.model, _extra_files=extra)
    meta = json.loads(extra["smoothadv.json"])
    model = build(meta["arch"])
    model.load_state_dict(scripted.state_dict())
    model.to(args.device).eval()
    _, shape, classes, _, _, _, _ = ARCHS[meta["arch"]]
    torch.manual_seed(0)
    images = torch.rand([args.images] + shape).to(args.device)
    start = time.perf_counter()
    for i in range(args.images):
        x = images[i:i + 1]
        sample_noise(model, x, args.n0, args.batch, args.sigma, classes)
        sample_noise(model, x, args.n, args.batch, args.sigma, classes)
    if images.is_cuda:
        torch.cuda.synchronize()
    secs = time.perf_counter() - start
    print(json.dumps({"images": args.images, "seconds": secs, "seconds_per_image": secs / args.images,
                      "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "device": str(images.device)}))


if __name__ == "__main__":
    main()
