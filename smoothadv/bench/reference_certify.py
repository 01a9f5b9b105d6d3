#!/usr/bin/env python3
"""CERTIFY as the Python reference runs it (Cohen et al.'s certify.py and
core.py), on a checkpoint.pth.tar written by smoothadv or the reference, for
Fashion-MNIST test images read with numpy. Writes the reference's log, so
`smoothadv compare` can check our certify log of the same model against it.

Usage: reference_certify.py CHECKPOINT SIGMA OUTFILE [--skip 20] [--max -1]
       [--N0 100] [--N 1000] [--alpha 0.001] [--batch 1000]
"""
import argparse
import datetime
import gzip
import os
import sys
import time

import numpy as np
import torch
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
from export_models import ARCHS, build  # noqa: E402
from reference_sampling import sample_noise  # noqa: E402

FASHION = "/usr/share/datasets/fashion-mnist"


def fashion_test():
    with gzip.open(os.path.join(FASHION, "t10k-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(os.path.join(FASHION, "t10k-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images, labels


def certify(model, x, n0, n, alpha, batch, sigma, classes):
    counts0 = sample_noise(model, x, n0, batch, sigma, classes)
    c_a = counts0.argmax().item()
    counts = sample_noise(model, x, n, batch, sigma, classes)
    n_a = counts[c_a].item()
    p_a = proportion_confint(n_a, n, alpha=2 * alpha, method="beta")[0]
    if p_a < 0.5:
        return -1, 0.0
    return c_a, sigma * norm.ppf(p_a)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("checkpoint")
    p.add_argument("sigma", type=float)
    p.add_argument("outfile")
    p.add_argument("--skip", type=int, default=1)
    p.add_argument("--max", type=int, default=-1)
    p.add_argument("--N0", type=int, default=100)
    p.add_argument("--N", type=int, default=100000)
    p.add_argument("--alpha", type=float, default=0.001)
    p.add_argument("--batch", type=int, default=1000)
    args = p.parse_args()
    ckpt = torch.load(args.checkpoint, map_location="cpu")
    model = build(ckpt["arch"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    classes = ARCHS[ckpt["arch"]][2]
    images, labels = fashion_test()
    with open(args.outfile, "w") as f:
        print("idx\tlabel\tpredict\tradius\tcorrect\ttime", file=f, flush=True)
        for i in range(len(images)):
            if i % args.skip != 0:
                continue
            if i == args.max:
                break
            x = torch.from_numpy(images[i:i + 1].astype(np.float32) / 255)
            before = time.time()
            prediction, radius = certify(model, x, args.N0, args.N, args.alpha, args.batch, args.sigma, classes)
            elapsed = str(datetime.timedelta(seconds=time.time() - before))
            correct = int(prediction == labels[i])
            print("{}\t{}\t{}\t{:.3}\t{}\t{}".format(i, labels[i], prediction, radius, correct, elapsed), file=f, flush=True)


if __name__ == "__main__":
    main()
