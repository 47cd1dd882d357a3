"""The settings of a training run: one dataclass, whose fields are `archc.train`'s keyword arguments and whose
metadata makes `archc train`'s options (archc/cli.py adds one option per field: the help text, the flag and the
choices live here only)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from archc.errors import ArchcError


def option(help: str, default=None, *, flag: str | None = None, choices=None, metavar=None, nargs=None):  # noqa: A002
    return field(default=default, metadata={"help": help, "flag": flag, "choices": choices, "metavar": metavar,
                                            "nargs": nargs})


OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "step", "onecycle", "constant")
PRECISIONS = ("none", "bf16", "fp16")
DEFAULT_LR = {"sgd": 0.1, "adamw": 1e-3}
DEFAULT_WD = {"sgd": 5e-4, "adamw": 0.05}


@dataclass
class TrainConfig:
    # the data
    val_split: float = option("share of each class held out for validation when DATA has no val/ folder", 0.1,
                              metavar="F")
    data_root: str | None = option("where torchvision datasets named by DATA are downloaded (default "
                                   "$ARCHC_DATA, else ~/.cache/archc/datasets)", metavar="DIR")
    download: bool = option("let torchvision download a named dataset missing from the cache", True)
    augment: str | None = option("augmentation preset (default: the dataset's, else crop-flip for inputs of 128 px "
                                 "or more and pad-crop-flip below)", choices=("crop-flip", "pad-crop-flip",
                                                                              "pad-crop", "none"))
    mean: list[float] | None = option("normalisation mean per channel (default: the spec's preprocessing, else the "
                                      "dataset's, else ImageNet's or 0.5)", nargs="+", metavar="M")
    std: list[float] | None = option("normalisation std per channel (defaults as --mean)", nargs="+", metavar="S")
    workers: int | None = option("DataLoader worker processes per process (default: min(4, CPUs))", metavar="N")
    # the loop
    epochs: int = option("epochs to train", 10, metavar="N")
    batch: int = option("global batch size (split over the processes under torchrun)", 64, metavar="N")
    opt: str = option("optimizer", "sgd", choices=OPTIMIZERS)
    lr: float | None = option("peak learning rate (default: 0.1 for SGD, 1e-3 for AdamW)", metavar="LR")
    momentum: float = option("SGD momentum", 0.9, metavar="M")
    nesterov: bool = option("SGD with Nesterov momentum", False)
    wd: float | None = option("weight decay, not applied to biases and normalisation weights (default: 5e-4 for "
                              "SGD, 0.05 for AdamW)", metavar="WD")
    sched: str = option("learning-rate schedule, stepped every batch", "cosine", choices=SCHEDULES)
    warmup: float = option("epochs of linear warm-up from lr/100 (onecycle: its rising share)", 0.0, metavar="E")
    step_epochs: float = option("step schedule: epochs between reductions", 30.0, metavar="E")
    gamma: float = option("step schedule: the factor of each reduction", 0.1)
    label_smoothing: float = option("label smoothing of the cross-entropy", 0.0, metavar="EPS")
    amp: str = option("mixed precision: bf16 or fp16 autocast (fp16 with a GradScaler)", "none",
                      choices=PRECISIONS)
    compile: bool = option("torch.compile the module", False)
    clip_grad: float | None = option("clip the gradients' global norm to this", metavar="NORM")
    ema: float | None = option("keep an exponential moving average of the weights with this decay (0.999); it is "
                               "what is validated and saved", metavar="DECAY")
    channels_last: bool | None = option("channels_last memory format (default: on CUDA only)")
    device: str = option("cpu, cuda, cuda:N or auto (CUDA when present; under torchrun each process its local "
                         "GPU)", "auto")
    seed: int = option("seed of the initial weights, the data order and the validation split", 0)
    weights: str | None = option("start from these weights (a .safetensors or PyTorch state_dict, an archc "
                                 "checkpoint): what matches is loaded, the report says what did not", metavar="FILE")
    resume: str | None = option("go on with the run whose last.pt this is, exactly where it stopped "
                                "(its settings, spec and data are the run's)", metavar="FILE")
    stop_after: int | None = option("stop after this epoch, the schedule still that of --epochs (a later --resume "
                                    "goes on)", metavar="N")
    # what a person watches
    out: str | None = option("the run's folder (default: runs/SPECNAME, runs/SPECNAME-2, ...)", metavar="DIR")
    save: bool = option("write the run's folder (--no-save: train and report only)", True)
    log_every: int = option("write the training loss to metrics.jsonl every N batches", 10, metavar="N")
    plot: bool = option("draw the run's loss and accuracy curves into curves.png after every epoch (matplotlib)",
                        False)
    progress: bool = option("a progress bar per epoch (tqdm, on a terminal)", True)

    def check(self) -> None:
        """Settings that cannot work, as one-line errors."""
        def bad(what):
            raise ArchcError(f"--{what}")
        if self.epochs < 1:
            bad(f"epochs must be at least 1, got {self.epochs}")
        if self.batch < 1:
            bad(f"batch must be at least 1, got {self.batch}")
        if self.lr is not None and not self.lr > 0:
            bad(f"lr must be positive, got {self.lr}")
        if self.wd is not None and self.wd < 0:
            bad(f"wd must be at least 0, got {self.wd}")
        if not 0 <= self.label_smoothing < 1:
            bad(f"label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.ema is not None and not 0 < self.ema < 1:
            bad(f"ema is a decay in (0, 1), such as 0.999; got {self.ema}")
        if self.clip_grad is not None and not self.clip_grad > 0:
            bad(f"clip-grad must be positive, got {self.clip_grad}")
        if self.warmup < 0 or self.warmup and self.warmup >= self.epochs:
            bad(f"warmup must be at least 0 and less than --epochs {self.epochs}, got {self.warmup}")
        if self.step_epochs <= 0 or not 0 < self.gamma <= 1:
            bad(f"step-epochs must be positive and gamma in (0, 1], got {self.step_epochs} and {self.gamma}")
        if self.workers is not None and self.workers < 0:
            bad(f"workers must be at least 0, got {self.workers}")
        if self.stop_after is not None and self.stop_after < 1:
            bad(f"stop-after must be at least 1, got {self.stop_after}")
        if self.log_every < 1:
            bad(f"log-every must be at least 1, got {self.log_every}")
        for name in ("mean", "std"):
            v = getattr(self, name)
            if v is not None and (not v or any(not isinstance(x, (int, float)) for x in v)):
                bad(f"{name} takes one number per channel, got {v}")
        if self.std is not None and any(x <= 0 for x in self.std):
            bad(f"std must be positive, got {self.std}")
        for name, allowed in (("opt", OPTIMIZERS), ("sched", SCHEDULES), ("amp", PRECISIONS)):
            if getattr(self, name) not in allowed:
                bad(f"{name} {getattr(self, name)!r}: one of {', '.join(allowed)}")

    @property
    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.opt]

    @property
    def weight_decay(self) -> float:
        return self.wd if self.wd is not None else DEFAULT_WD[self.opt]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# What a resumed run may change: how it is watched and run, never what it computes.
RESUMABLE = frozenset({"resume", "out", "save", "progress", "plot", "workers", "log_every", "data_root", "download",
                       "device", "compile", "stop_after"})
FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def config(**options) -> TrainConfig:
    unknown = sorted(set(options) - set(FIELDS))
    if unknown:
        import difflib

        near = difflib.get_close_matches(unknown[0], FIELDS, 1)
        raise ArchcError(f"archc.train: unknown option {unknown[0]!r}"
                         + (f" (did you mean {near[0]!r}?)" if near else f" (options: {', '.join(FIELDS)})"))
    cfg = TrainConfig(**options)
    cfg.check()
    return cfg
