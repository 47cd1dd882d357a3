"""Small real datasets for the training tests and benchmarks, made offline from scikit-learn's 8x8 digits (1,797
images of 10 classes, shipped inside scikit-learn; a test-only dependency): written as an ImageFolder, or as
torchvision's MNIST files (so that `--data mnist` runs with no download)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


def digits(n: int | None = None):
    """(images uint8 [N, 8, 8], labels [N]): the first n of scikit-learn's digits, scaled from 0..16 to 0..255."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.round(d.images * (255 / 16)).astype(np.uint8)
    return images[:n], d.target[:n]


def write_image_folder(folder: Path, n: int | None = None, mode: str = "L", split: bool = False) -> Path:
    """folder/<class>/<i>.png (split: folder/train/... and folder/val/..., every fifth image to val)."""
    from PIL import Image

    images, labels = digits(n)
    for i, (image, label) in enumerate(zip(images, labels)):
        where = folder / ("val" if i % 5 == 0 else "train") if split else folder
        cls = where / str(label)
        cls.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, "L").convert(mode).save(cls / f"{i:04d}.png")
    return folder


def write_mnist(root: Path, n_train: int, n_test: int) -> Path:
    """torchvision's MNIST raw files under root/mnist/MNIST/raw (28x28 digits, idx format, gzipped beside), made
    from the digits: `archc train --data mnist --data-root root` finds them and downloads nothing."""
    from PIL import Image

    images, labels = digits(n_train + n_test)
    big = np.stack([np.asarray(Image.fromarray(im).resize((28, 28), Image.BILINEAR)) for im in images])
    raw = root / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, sl in (("train", slice(0, n_train)), ("t10k", slice(n_train, None))):
        ims, labs = big[sl], labels[sl].astype(np.uint8)
        files = {f"{prefix}-images-idx3-ubyte": struct.pack(">IIII", 2051, len(ims), 28, 28) + ims.tobytes(),
                 f"{prefix}-labels-idx1-ubyte": struct.pack(">II", 2049, len(labs)) + labs.tobytes()}
        for name, data in files.items():
            (raw / name).write_bytes(data)
            (raw / f"{name}.gz").write_bytes(gzip.compress(data))
    return root
