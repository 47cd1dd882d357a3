"""`archc predict`: classify images with a built module and its weights, through the input pipeline those weights
expect (the spec's `preprocessing:`, or torchvision's weights meta for weights loaded by name), printing the top
classes with their names (torchvision's weights meta has ImageNet's).

Images are decoded by Pillow (what torchvision's transforms take; JPEG, PNG, WebP, ...) and prepared as
torchvision's `ImageClassification` transform does: resize the shorter side (antialiased), centre crop, scale to
[0, 1], normalise. Needs torchvision: `pip install 'archc[weights]'`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from archc.errors import ArchcError
from archc.spec.document import Preprocessing


@dataclass
class Prediction:
    image: str
    classes: list[tuple[int, float, str | None]]  # (class index, probability, name), most likely first

    def to_dict(self) -> dict:
        return {"image": self.image, "top": [{"class": i, "probability": p, "name": n} for i, p, n in self.classes]}


def _tv():
    from archc.weights import _torchvision

    _torchvision()  # the one message when torchvision is missing
    import torchvision.transforms.functional as F

    return F


def read_image(path: str | Path) -> torch.Tensor:
    """An image file as a uint8 tensor [3, H, W] (RGB), decoded by Pillow (torchvision's own dependency)."""
    F = _tv()
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ArchcError(f"cannot read image {path}: no such file")
    try:
        with Image.open(path) as image:
            return F.pil_to_tensor(image.convert("RGB"))
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ArchcError(f"cannot read image {path}: {first}") from None


def prepare(image: torch.Tensor, pre: Preprocessing) -> torch.Tensor:
    """A uint8 image [C, H, W] through the pipeline: float [C, crop, crop]."""
    F = _tv()
    mode = F.InterpolationMode(pre.interpolation)
    x = F.resize(image, [pre.resize], interpolation=mode, antialias=True)
    x = F.center_crop(x, [pre.crop])
    x = F.convert_image_dtype(x, torch.float)
    return F.normalize(x, mean=list(pre.mean), std=list(pre.std))


def pipeline_of(module) -> Preprocessing:
    pre = getattr(module, "preprocessing", None)
    if pre is None:
        raise ArchcError(f"{module.name}: its spec states no input pipeline (`preprocessing:` with resize and crop), "
                         "so images cannot be prepared for it")
    channels = module.analysis.input_shape[0]
    if len(pre.mean) != channels or len(pre.std) != channels:
        raise ArchcError(f"{module.name}: preprocessing has {len(pre.mean)} means and {len(pre.std)} stds for an "
                         f"input of {channels} channels")
    return pre


def categories_of(module) -> list[str] | None:
    """Class names in output order: the weights', else ImageNet's when the module is an ImageNet-1k classifier
    (1000 outputs, and a spec that publishes an ImageNet-1k figure or mirrors a torchvision model)."""
    if getattr(module, "categories", None):
        return module.categories
    spec = module.analysis.spec
    imagenet = spec.torchvision is not None or spec.published is not None and spec.published.dataset == "ImageNet-1k"
    if imagenet and module.analysis.outputs[0]["shape"] == [1000]:
        from archc.weights import imagenet_categories

        return imagenet_categories()
    return None


def predict(module, images: list[str | Path], top: int = 5) -> list[Prediction]:
    """The `top` most likely classes of each image (softmax of the main output)."""
    if top < 1:
        raise ArchcError(f"--top must be at least 1, got {top}")
    pre = pipeline_of(module)
    names = categories_of(module)
    batch = torch.stack([prepare(read_image(p), pre) for p in images])
    module = module.eval()
    with torch.inference_mode():
        out = module(batch)
    logits = next(iter(out.values())) if isinstance(out, dict) else out
    if logits.dim() != 2:
        raise ArchcError(f"{module.name}: its output {list(logits.shape[1:])} is not one score per class")
    probs = logits.float().softmax(dim=1)
    values, indices = probs.topk(min(top, probs.shape[1]), dim=1)
    return [Prediction(str(path), [(int(i), float(v), names[i] if names else None) for v, i in zip(vs, idx)])
            for path, vs, idx in zip(images, values.tolist(), indices.tolist())]


def text(predictions: list[Prediction]) -> str:
    lines = []
    for p in predictions:
        lines.append(f"{p.image}:")
        for rank, (i, prob, name) in enumerate(p.classes, 1):
            lines.append(f"  {rank}. {100 * prob:6.2f}%  {i:4d}  {name or ''}".rstrip())
    return "\n".join(lines)
