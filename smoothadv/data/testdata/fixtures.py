"""Writes small dataset files for the Go tests and prints, as JSON, what numpy, pickle and
torchvision read back from them: the independent truth the Go readers are compared with.

Usage: fixtures.py KIND DIR  (KIND: fashion, cifar, imagenet32, pseudo, imagefolder, hostile)
"""
import gzip
import json
import os
import pickle
import struct
import sys

import numpy as np


class Py2Pickler(pickle._Pickler):
    """Writes bytes with Python 2's str opcodes, as cPickle did for the CIFAR-10 batches."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj):
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def dump(path, obj, protocol, py2=False):
    with open(path, "wb") as f:
        if py2:
            Py2Pickler(f, protocol=2).dump(obj)
        else:
            pickle.dump(obj, f, protocol=protocol)


def load(path):
    with open(path, "rb") as f:  # as torchvision's CIFAR10 reads its batches
        return pickle.load(f, encoding="latin1")


def fashion(d):
    out = {}
    for split, prefix, picks in (("train", "train", [0, 1, 12345, 59999]), ("test", "t10k", [0, 9999])):
        with gzip.open(os.path.join(d, prefix + "-images-idx3-ubyte.gz")) as f:
            images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28 * 28)
        with gzip.open(os.path.join(d, prefix + "-labels-idx1-ubyte.gz")) as f:
            labels = np.frombuffer(f.read(), np.uint8, offset=8)
        out[split] = {
            "n": len(labels),
            "counts": np.bincount(labels, minlength=10).tolist(),
            "examples": {str(i): {"label": int(labels[i]), "pixels": images[i].tolist()} for i in picks},
        }
    return out


def expected(data, labels):
    return {"pixels": np.concatenate(data).reshape(-1).tolist(), "labels": [int(l) for l in labels]}


def cifar(d):
    rng = np.random.RandomState(0)
    py = os.path.join(d, "py", "cifar-10-batches-py")
    binary = os.path.join(d, "bin", "cifar-10-batches-bin")
    os.makedirs(py)
    os.makedirs(binary)
    # Batch 1 and the test batch are written as the real files are (Python 2, protocol 2, str
    # keys); the others try the forms newer Pythons and numpys write.
    styles = {
        "data_batch_1": dict(protocol=2, py2=True, keys=bytes, labels=list),
        "data_batch_2": dict(protocol=2, py2=False, keys=str, labels=list),
        "data_batch_3": dict(protocol=2, py2=False, keys=bytes, labels=lambda a: [np.int64(x) for x in a]),
        "data_batch_4": dict(protocol=4, py2=False, keys=str, labels=lambda a: a.astype(">i4")),
        "data_batch_5": dict(protocol=5, py2=False, keys=str, labels=lambda a: a.astype(np.uint8)),
        "test_batch": dict(protocol=2, py2=True, keys=bytes, labels=list),
    }
    out = {"train": {"data": [], "labels": []}, "test": {"data": [], "labels": []}}
    for name, st in styles.items():
        n = 3 + len(name) % 3
        data = rng.randint(0, 256, size=(n, 3072)).astype(np.uint8)
        labels = rng.randint(0, 10, size=n)
        key = (lambda s: s.encode()) if st["keys"] is bytes else (lambda s: s)
        labs = [int(x) for x in labels] if st["labels"] is list else st["labels"](labels)
        obj = {key("batch_label"): key(name), key("labels"): labs, key("data"): data,
               key("filenames"): [key("img%d.png" % i) for i in range(n)]}
        dump(os.path.join(py, name), obj, st["protocol"], st["py2"])
        back = load(os.path.join(py, name))
        back = {k.decode() if isinstance(k, bytes) else k: v for k, v in back.items()}
        assert np.array_equal(back["data"], data)
        split = "test" if name == "test_batch" else "train"
        out[split]["data"].append(back["data"])
        out[split]["labels"] += [int(x) for x in back["labels"]]
        with open(os.path.join(binary, name + ".bin"), "wb") as f:
            for img, lab in zip(data, labels):
                f.write(bytes([lab]) + img.tobytes())
    return {s: expected(v["data"], v["labels"]) for s, v in out.items()}


def imagenet32(d):
    rng = np.random.RandomState(1)
    os.makedirs(os.path.join(d, "Imagenet32_train"))
    os.makedirs(os.path.join(d, "Imagenet32_val"))
    paths = [os.path.join(d, "Imagenet32_train", "train_data_batch_%d" % k) for k in range(1, 11)]
    paths.append(os.path.join(d, "Imagenet32_val", "val_data"))
    out = {}
    for p in paths:
        data = rng.randint(0, 256, size=(2, 3072)).astype(np.uint8)
        labels = [1, 1000] if p.endswith("_1") else rng.randint(1, 1001, size=2).tolist()
        dump(p, {"data": data, "labels": labels, "mean": data.mean(0)}, protocol=4)
        back = load(p)
        split = "test" if p.endswith("val_data") else "train"
        e = out.setdefault(split, {"data": [], "labels": []})
        e["data"].append(back["data"])
        e["labels"] += [x - 1 for x in back["labels"]]  # as the reference's ImageNetDS
    return {s: expected(v["data"], v["labels"]) for s, v in out.items()}


def pseudo(d):
    rng = np.random.RandomState(2)
    data = rng.randint(0, 256, size=(5, 32, 32, 3)).astype(np.uint8)
    targets = rng.randint(0, 10, size=5).astype(np.int64)
    path = os.path.join(d, "pseudo.pickle")
    dump(path, {"data": data, "extrapolated_targets": targets, "ti_index": np.arange(5),
                "prediction_model": "model.pt", "prediction_model_epoch": 7}, protocol=4)
    back = load(path)
    return {"path": path, **expected([back["data"].transpose(0, 3, 1, 2)], back["extrapolated_targets"])}


def imagefolder(d):
    from PIL import Image
    from torchvision import datasets, transforms

    def smooth(w, h, seed):
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        r = np.random.RandomState(seed).uniform(0.5, 2, size=6)
        img = np.stack([127 + 120 * np.sin(x / (9 * r[0]) + y / (13 * r[1])),
                        127 + 120 * np.cos(x / (17 * r[2]) - y / (7 * r[3])),
                        127 + 120 * np.sin((x + y) / (11 * r[4]) + r[5])], axis=-1)
        return Image.fromarray(img.round().astype(np.uint8))

    sizes = [(300, 200), (211, 290), (500, 375), (256, 256)]
    layout = {
        "train": ["n02/b.JPEG", "n02/a.jpeg", "n01/x.png", "n01/sub/y.JPEG", "n01/sub-z/z.jpg", "n03/q.JPEG"],
        "val": ["n02/v1.JPEG", "n01/v2.JPEG", "n01/v3.png", "n03/v4.JPEG"],
    }
    for split, files in layout.items():
        for i, f in enumerate(files):
            p = os.path.join(d, split, f)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            img = smooth(*sizes[i % len(sizes)], seed=i)
            if f.endswith("png"):
                img.save(p)
            else:
                img.save(p, "JPEG", quality=95, subsampling=0)
        with open(os.path.join(d, split, "n01", "notes.txt"), "w") as f:
            f.write("not an image\n")
    test = datasets.ImageFolder(os.path.join(d, "val"), transforms.Compose(
        [transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor()]))
    for i in range(len(test)):
        x, _ = test[i]
        x.numpy().astype("<f4").tofile(os.path.join(d, "expected_%d.f32" % i))
    train = datasets.ImageFolder(os.path.join(d, "train"))
    return {"classes": test.classes,
            "test": [{"path": os.path.relpath(p, d), "label": l} for p, l in test.samples],
            "train": [{"path": os.path.relpath(p, d), "label": l} for p, l in train.samples]}


def hostile(d):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + os.path.join(d, "pwned"),))

    dump(os.path.join(d, "data_batch_1"), {"data": Evil(), "labels": [0]}, protocol=2)
    return {}


if __name__ == "__main__":
    kind, d = sys.argv[1], sys.argv[2]
    json.dump(globals()[kind](d), sys.stdout)
