"""A spec document as read: what it computes (the Program) and what it says about the network — its name, source,
torchvision model, expected figures, published accuracy, input pipeline, variants and outputs — typed, with the
grammar's defaults filled in once (archc/spec/grammar.py). Later stages read these, never the YAML data.

A variant row may say everything the spec says about its network; what it leaves out it takes from the spec,
except its expected figures and published accuracy, which the spec's own describe its default variant only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from archc.spec.tree import Program


@dataclass(frozen=True)
class Published:
    """Accuracy published for the network as written."""

    top1: float
    source: str
    dataset: str
    top5: float | None = None
    weights: str | None = None  # the torchvision weights the figure is for

    def to_dict(self) -> dict:
        return {k: v for k, v in (("top1", self.top1), ("top5", self.top5), ("dataset", self.dataset),
                                  ("weights", self.weights), ("source", self.source)) if v is not None}


@dataclass(frozen=True)
class Preprocessing:
    """The input pipeline: resize the shorter side to `resize` pixels (`interpolation`, antialiased), take the
    centre `crop` x `crop`, scale to [0, 1], subtract `mean` and divide by `std` per channel."""

    resize: int
    crop: int
    interpolation: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_dict(self) -> dict:
        return {"resize": self.resize, "crop": self.crop, "interpolation": self.interpolation,
                "mean": list(self.mean), "std": list(self.std)}


@dataclass(frozen=True)
class Expect:
    """Figures to check, and where they are written (the path of the `expect:` mapping)."""

    figures: dict
    at: tuple


@dataclass(frozen=True)
class About:
    """What a spec, or one of its variants, says about the network it describes."""

    name: str
    description: str | None = None
    source: str | None = None
    torchvision: str | None = None
    expect: Expect | None = None
    published: Published | None = None
    preprocessing: Preprocessing | None = None


@dataclass(frozen=True)
class Variant:
    """A row of `variants:`: its parameters and what it says about its network (`about`: its own keys only)."""

    name: str
    params: dict
    about: About


@dataclass(frozen=True)
class Output:
    """An entry of `outputs:`: the output's name, the module path it returns, and its key (for locations)."""

    name: str
    path: str
    key: object


@dataclass(frozen=True)
class Document:
    program: Program
    about: About  # the spec's own
    params: dict = field(default_factory=dict)  # declared (`params:`)
    variants: dict[str, Variant] = field(default_factory=dict)
    outputs: tuple[Output, ...] = ()
    requires: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.about.name

    @property
    def default_variant(self) -> str | None:
        return self.params.get("variant") if self.variants else None

    def network(self, variant: str | None) -> About:
        """What is said about the network with `variant` selected: the row's own, else the spec's (its expected
        figures and published accuracy only for its default variant)."""
        if variant is None or variant not in self.variants:
            return self.about
        own, spec = self.variants[variant].about, self.about
        default = variant == self.default_variant
        return replace(
            own,
            description=own.description or spec.description,
            source=own.source or spec.source,
            torchvision=own.torchvision or spec.torchvision,
            expect=own.expect or (spec.expect if default else None),
            published=own.published or (spec.published if default else None),
            preprocessing=own.preprocessing or spec.preprocessing)


def network_name(spec_name: str, variant: str, row: dict) -> str:
    """A variant's network name: its `name:`, else its torchvision model's, else `<spec name>_<variant>`."""
    return row.get("name") or row.get("torchvision") or f"{spec_name}_{variant}"
