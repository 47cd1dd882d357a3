"""What `archc train` feeds the module: torchvision's datasets and transforms v2, checked against the spec first.

DATA is a folder of images, one subfolder per class (torchvision's ImageFolder): with `train/` and `val/` (or
`valid/`, `validation/`, `test/`) inside, those are the splits; otherwise a seeded, per-class share of each class
(`val_split`) is held out for validation. Or it is the name of a torchvision dataset (`cifar10`, `mnist`, ...:
DATASETS), downloaded by torchvision into a cache folder on first use.

Every problem a user can cause is an ArchcError raised before anything is trained or written: a folder that does
not exist, no class folders, a class without images, train and validation classes that differ, images of another
channel count than the spec's input, a dataset that cannot be downloaded.
"""

from __future__ import annotations

import os
import random
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from archc.errors import ArchcError

VAL_FOLDERS = ("val", "valid", "validation", "test")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# Augmentation presets: (what training applies, what validation applies), written out in `transforms`.
PRESETS = {
    "crop-flip": "random-resized crop to the input size and horizontal flip; validation: resize to size/0.875, "
                 "centre crop (ImageNet's)",
    "pad-crop-flip": "resize to the input size, random crop after 1/8 zero padding, horizontal flip (CIFAR's); "
                     "validation: resize",
    "pad-crop": "as pad-crop-flip without the flip (digits, signs: a flip changes the class)",
    "none": "resize to the input size only",
}


@dataclass(frozen=True)
class Named:
    """A torchvision dataset by name: its class, the keyword arguments of its two splits, its images' channels,
    mean and std (None: ImageNet's), and the augmentation preset that suits it."""

    cls: str
    train: dict
    val: dict
    channels: int = 3
    mean: tuple | None = None
    std: tuple | None = None
    augment: str = "crop-flip"
    download: bool = True


DATASETS: dict[str, Named] = {
    "cifar10": Named("CIFAR10", {"train": True}, {"train": False}, 3, (0.4914, 0.4822, 0.4465),
                     (0.2470, 0.2435, 0.2616), "pad-crop-flip"),
    "cifar100": Named("CIFAR100", {"train": True}, {"train": False}, 3, (0.5071, 0.4865, 0.4409),
                      (0.2673, 0.2564, 0.2762), "pad-crop-flip"),
    "mnist": Named("MNIST", {"train": True}, {"train": False}, 1, (0.1307,), (0.3081,), "none"),
    "fashionmnist": Named("FashionMNIST", {"train": True}, {"train": False}, 1, (0.2860,), (0.3530,),
                          "pad-crop-flip"),
    "kmnist": Named("KMNIST", {"train": True}, {"train": False}, 1, (0.1918,), (0.3483,), "none"),
    "svhn": Named("SVHN", {"split": "train"}, {"split": "test"}, 3, (0.4377, 0.4438, 0.4728),
                  (0.1980, 0.2010, 0.1970), "pad-crop"),
    "stl10": Named("STL10", {"split": "train"}, {"split": "test"}, 3, augment="pad-crop-flip"),
    "gtsrb": Named("GTSRB", {"split": "train"}, {"split": "test"}, 3, augment="pad-crop"),
    "flowers102": Named("Flowers102", {"split": "train"}, {"split": "test"}),
    "food101": Named("Food101", {"split": "train"}, {"split": "test"}),
    "pets": Named("OxfordIIITPet", {"split": "trainval"}, {"split": "test"}),
    "dtd": Named("DTD", {"split": "train"}, {"split": "test"}),
    "aircraft": Named("FGVCAircraft", {"split": "trainval"}, {"split": "test"}),
    "country211": Named("Country211", {"split": "train"}, {"split": "valid"}),
    "imagenet": Named("ImageNet", {"split": "train"}, {"split": "val"}, download=False),  # its archives, given
}
ALIASES = {"fashion-mnist": "fashionmnist", "fashion_mnist": "fashionmnist", "cifar-10": "cifar10",
           "cifar-100": "cifar100", "oxford-iiit-pet": "pets", "fgvc-aircraft": "aircraft"}
ONE_CHANNEL = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def torchvision():
    """The torchvision module, or the one-line error saying which extra installs it."""
    try:
        import torchvision
        import torchvision.transforms.v2  # noqa: F401
    except ImportError as e:
        raise ArchcError(f"archc train needs torchvision ({e}): pip install 'archc[train]' (torchvision built for "
                         f"the installed torch {torch.__version__.split('+')[0]})") from None
    return torchvision


@dataclass
class Data:
    """The two splits, ready for DataLoaders, and what the training needs to know about them."""

    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset
    classes: list[str]
    channels: int
    source: str  # how the data was found, for the log
    mean: tuple | None = None  # the dataset's own statistics, when known
    std: tuple | None = None
    augment: str | None = None  # the preset that suits it (a named dataset's)
    first: str = ""  # an image of the data (its first), for messages
    counts: dict = field(default_factory=dict)  # split -> number of images


def reference(data) -> str:
    """DATA as a run records it: a folder's absolute path (a resume may start elsewhere), or a dataset's name."""
    return str(Path(data).resolve()) if _key(data) is None else _key(data)


def cache_folder() -> Path:
    """Where datasets named by torchvision are downloaded: $ARCHC_DATA, else ~/.cache/archc/datasets."""
    if os.environ.get("ARCHC_DATA"):
        return Path(os.environ["ARCHC_DATA"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "archc" / "datasets"


def named(data: str | os.PathLike) -> Named | None:
    """The torchvision dataset DATA names (a name that is not an existing path), if it names one."""
    key = _key(data)
    return DATASETS[key] if key is not None else None


def _key(data) -> str | None:
    key = ALIASES.get(str(data).lower(), str(data).lower())
    return key if key in DATASETS and os.sep not in str(data) and not Path(data).exists() else None


def open_data(data: str | os.PathLike, val_split: float, seed: int, root: str | os.PathLike | None = None,
              download: bool = True) -> Data:
    """The training and validation splits of DATA (a folder or a dataset name), without transforms yet
    (`set_transforms` sets them). Raises ArchcError for anything wrong with the data."""
    torchvision()
    path = Path(data)
    key = _key(data)
    if key is not None:
        return _named(key, Path(root) if root else cache_folder(), download)
    if not path.exists():
        names = ", ".join(DATASETS)
        raise ArchcError(f"data {data}: no such folder (nor a dataset torchvision downloads: {names})")
    if not path.is_dir():
        raise ArchcError(f"data {data}: not a folder (a folder of class folders of images, or a dataset name)")
    return _folder(path, val_split, seed)


def _named(key: str, root: Path, download: bool) -> Data:
    import torchvision.datasets as datasets

    named = DATASETS[key]
    cls = getattr(datasets, named.cls)
    splits = {}
    folder = root / key
    made = [p for p in (*reversed(folder.parents), folder) if not p.exists()]  # removed again if it fails
    for split, kwargs in (("train", named.train), ("val", named.val)):
        extra = {"download": download} if named.download else {}
        try:
            if download and named.download:
                folder.mkdir(parents=True, exist_ok=True)
            splits[split] = cls(str(folder), **kwargs, **extra)
        except Exception as e:  # no network, a damaged archive, a missing file: torchvision's own words
            if made:  # the folders this call made, and what the failed download left in them
                shutil.rmtree(made[0], ignore_errors=True)
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            how = f"downloading it into {root / key} failed" if download and named.download else \
                f"it is not in {root / key}"
            raise ArchcError(f"data {key}: torchvision's {named.cls} {split} split could not be opened: {how} "
                             f"({type(e).__name__}: {reason[:200]}); with no network, put its files there "
                             f"(--data-root sets the folder)") from None
    classes = _classes(splits["train"])
    return Data(splits["train"], splits["val"], classes, named.channels, f"torchvision {named.cls} in {root / key}",
                named.mean, named.std, named.augment, first=f"{key} image 0",
                counts={s: len(d) for s, d in splits.items()})


def _classes(dataset) -> list[str]:
    names = getattr(dataset, "classes", None)
    if names:
        return [str(c) for c in names]
    for attr in ("targets", "labels", "_labels"):
        labels = getattr(dataset, attr, None)
        if labels is not None:
            return [str(i) for i in range(int(max(labels)) + 1)]
    raise ArchcError(f"{type(dataset).__name__}: cannot tell its classes")


def _folder(path: Path, val_split: float, seed: int) -> Data:
    """ImageFolder splits: train/ and val/ inside, or one folder of class folders split per class."""
    from torchvision.datasets import ImageFolder

    inner = [path / "train"] + [path / v for v in VAL_FOLDERS]
    if inner[0].is_dir():
        val = next((p for p in inner[1:] if p.is_dir()), None)
        if val is None:
            raise ArchcError(f"data {path}: it has train/ but no validation folder beside it "
                             f"({'/, '.join(VAL_FOLDERS)}/)")
        train_set, classes = _image_folder(ImageFolder, inner[0])
        val_set, val_classes = _image_folder(ImageFolder, val)
        if val_classes != classes:
            only_train = sorted(set(classes) - set(val_classes))
            only_val = sorted(set(val_classes) - set(classes))
            raise ArchcError(f"data {path}: {inner[0].name}/ and {val.name}/ hold different classes (only in "
                             f"{inner[0].name}/: {_few(only_train)}; only in {val.name}/: {_few(only_val)})")
        source = f"image folders {inner[0]} and {val}"
    else:
        if not 0 < val_split < 1:
            raise ArchcError(f"--val-split must be between 0 and 1 (the share of each class held out), got "
                             f"{val_split}")
        full, classes = _image_folder(ImageFolder, path)
        train_idx, val_idx = split_per_class(full.targets, val_split, seed)
        twin, _ = _image_folder(ImageFolder, path)  # its own transform, the same files
        train_set, val_set = torch.utils.data.Subset(full, train_idx), torch.utils.data.Subset(twin, val_idx)
        source = f"image folder {path}, {val_split:g} of each class held out for validation (seed {seed})"
    first = _base(train_set).samples[0][0]
    channels = _channels(first)
    return Data(train_set, val_set, classes, channels, source, first=first,
                counts={"train": len(train_set), "val": len(val_set)})


def _image_folder(cls, folder: Path):
    try:
        ds = cls(str(folder), allow_empty=True)
    except FileNotFoundError as e:  # no class folder at all
        raise ArchcError(f"data {folder}: no class folders in it (one subfolder of images per class) "
                         f"({str(e).splitlines()[0]})") from None
    except OSError as e:
        raise ArchcError(f"data {folder}: cannot read it: {e.strerror or e}") from None
    counts = Counter(ds.targets)
    empty = [c for i, c in enumerate(ds.classes) if counts[i] == 0]
    if empty:
        from torchvision.datasets.folder import IMG_EXTENSIONS

        raise ArchcError(f"data {folder / empty[0]}: class {empty[0]!r} has no images"
                         + (f" (nor {_few(empty[1:])})" if empty[1:] else "")
                         + f" (image files end in {', '.join(IMG_EXTENSIONS)})")
    return ds, list(ds.classes)


def _base(ds):
    while isinstance(ds, torch.utils.data.Subset):
        ds = ds.dataset
    return ds


def split_per_class(targets, share: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices of (train, val): in each class, a seeded shuffle, round(share * n) held out (at least one image
    where the class has two)."""
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = {}
    for i, t in enumerate(targets):
        by_class.setdefault(int(t), []).append(i)
    train, val = [], []
    for _, idx in sorted(by_class.items()):
        idx = idx[:]
        rng.shuffle(idx)
        k = min(len(idx) - 1, max(1, round(share * len(idx)))) if len(idx) > 1 else 0
        val += idx[:k]
        train += idx[k:]
    return sorted(train), sorted(val)


def _channels(path: str) -> int:
    from PIL import Image

    try:
        with Image.open(path) as im:
            mode = im.mode
    except Exception as e:
        raise ArchcError(f"{path}: cannot read image ({type(e).__name__}: {str(e)[:200]})") from None
    return 1 if mode in ONE_CHANNEL else 3


def _few(names) -> str:
    names = list(names)
    return (", ".join(map(str, names[:5])) + (f" and {len(names) - 5} more" if len(names) > 5 else "")) or "none"


# -- transforms --------------------------------------------------------------------------------------------


class ToMode:
    """PIL image -> the channel mode the spec takes ('L' or 'RGB'): a grayscale or CMYK file among colour images
    is converted as torchvision's loader does. A file that is not an image is one located error."""

    def __init__(self, mode: str):
        self.mode = mode

    def __call__(self, image):
        try:
            return image if image.mode == self.mode else image.convert(self.mode)
        except Exception as e:
            raise ArchcError(f"{getattr(image, 'filename', 'an image')}: cannot convert to {self.mode} ({e})") \
                from None


def load_image(path: str):
    """ImageFolder's loader, with a located error for a file that is not an image."""
    from PIL import Image

    try:
        with open(path, "rb") as f:
            image = Image.open(f)
            image.load()
            return image
    except Exception as e:
        raise ArchcError(f"{path}: cannot read image ({type(e).__name__}: {str(e).splitlines()[0][:200]})") \
            from None


def transforms(preset: str, size: tuple[int, int], mean, std, mode: str, resize: int | None = None,
               crop: tuple[int, int] | None = None, interpolation: str = "bilinear"):
    """(train, val) transforms v2 pipelines: PIL image -> normalised float tensor [C, H, W] of the spec's size."""
    from torchvision.transforms import v2

    if preset not in PRESETS:
        raise ArchcError(f"--augment {preset!r}: unknown preset (presets: {', '.join(PRESETS)})")
    interp = {"bilinear": v2.InterpolationMode.BILINEAR, "bicubic": v2.InterpolationMode.BICUBIC,
              "nearest": v2.InterpolationMode.NEAREST}[interpolation]
    head = [ToMode(mode), v2.ToImage()]
    tail = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    if preset == "crop-flip":
        train = [v2.RandomResizedCrop(size, interpolation=interp, antialias=True), v2.RandomHorizontalFlip()]
        short = resize or round(min(size) / 0.875)
        val = [v2.Resize(short, interpolation=interp, antialias=True), v2.CenterCrop(crop or size)]
    else:
        fit = v2.Resize(size, interpolation=interp, antialias=True)
        train = [fit]
        if preset in ("pad-crop-flip", "pad-crop"):
            train.append(v2.RandomCrop(size, padding=max(1, min(size) // 8)))
        if preset == "pad-crop-flip":
            train.append(v2.RandomHorizontalFlip())
        val = [fit]
    return v2.Compose(head + train + tail), v2.Compose(head + val + tail)


def set_transforms(data: Data, train_tf, val_tf) -> None:
    """Put the pipelines on the two splits (on the datasets under a Subset: each split has its own)."""
    for split, tf in ((data.train, train_tf), (data.val, val_tf)):
        base = _base(split)
        base.transform = tf
        if hasattr(base, "loader") and base.loader.__module__.startswith("torchvision"):
            base.loader = load_image
