"""`archc train` and `archc.train`: from a spec and a dataset to a trained, evaluated module, built from PyTorch's
and torchvision's own parts (data.py: datasets and transforms v2; loop.py: the optimizer, schedule, mixed
precision, DistributedDataParallel, EMA; run.py: what a run writes; config.py: its settings, which the command
line reads without importing torch)."""

__all__ = ["train", "TrainConfig", "TrainResult"]


def __getattr__(name: str):
    if name == "TrainConfig":
        from archc.training.config import TrainConfig

        return TrainConfig
    if name in ("train", "TrainResult"):
        from archc.training import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'archc.training' has no attribute {name!r}")
