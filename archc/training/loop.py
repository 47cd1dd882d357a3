"""The training run: a spec and data in, a trained and evaluated module out, from PyTorch's own parts —
torch.optim (SGD, AdamW) and its lr_scheduler, torch.amp (autocast, GradScaler), torch.compile,
DistributedDataParallel with a DistributedSampler (under torchrun), torch.optim.swa_utils.AveragedModel (EMA),
safetensors for the weights.

Everything a user can get wrong (the data, the spec's input and output, the settings, the run's folder) is
checked before anything is trained or written.
"""

from __future__ import annotations

import json
import os
import platform
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

import archc
from archc import files
from archc.errors import ArchcError, ShapeError, SpecError
from archc.ir.ops import DISTANCE, OPS
from archc.spec.load import Spec
from archc.training import data as data_
from archc.training import run as run_
from archc.training.config import FIELDS, RESUMABLE, TrainConfig, config


@dataclass
class TrainResult:
    """What `archc.train` returns: the trained module (the EMA's with `ema`; eval mode), the run's folder, its
    epoch rows (as metrics.jsonl holds them), its logged steps, the best epoch's row and the classes in order."""

    module: torch.nn.Module
    folder: Path | None
    epochs: list[dict]
    steps: list[dict]
    best: dict | None
    classes: list[str]

    @property
    def val_top1(self) -> float:
        return self.epochs[-1]["val_top1"]


def train(spec=None, data=None, *, params: dict | None = None, limits=None, log=print, **options) -> TrainResult:
    """Train the module a spec makes on DATA (a folder of class folders, or a torchvision dataset's name); see
    TrainConfig for the options (`archc train --help` lists them too). Under torchrun, every process calls this
    with the same arguments. `params`: spec parameters, as --set. `log`: where rank 0's lines go."""
    resume = options.get("resume")
    state = run_.load_state(resume) if resume else None
    if state is not None:
        options = _resumed_options(state, options)
    cfg = config(**options)
    dist = Distributed.start(cfg.device)
    try:
        return Trainer(spec, data, cfg, dict(params or {}), limits, dist, state, log if dist.rank == 0 else None)()
    finally:
        dist.close()


def _resumed_options(state: dict, given: dict) -> dict:
    """The run's own settings; what the caller gives must equal them, except how the run is watched and run
    (RESUMABLE: as given, else as the run had them; `out` and `stop_after` are this invocation's only)."""
    saved = {k: v for k, v in state["config"].items() if k in FIELDS and k not in ("resume", "out", "stop_after")}
    for k, v in given.items():
        if k in RESUMABLE:
            saved[k] = v
        elif k in FIELDS and _norm(v) != _norm(saved.get(k)):
            flag = "--" + k.replace("_", "-")
            had = f"the default {flag}" if saved.get(k) is None else f"{flag} {_show(saved.get(k))}"
            raise ArchcError(f"--resume: the run was trained with {had}, not {_show(v)}: a resumed run keeps its "
                             f"settings (start a new run to change them)")
    return saved


def _norm(v):
    return [float(x) for x in v] if isinstance(v, (list, tuple)) else v


def _show(v) -> str:
    return " ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


@dataclass
class Distributed:
    """This process's place under torchrun (RANK, WORLD_SIZE, LOCAL_RANK), or one process on its own."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False

    @classmethod
    def start(cls, device: str) -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
        if device == "auto":
            dev = torch.device(f"cuda:{local}" if world > 1 else "cuda") if torch.cuda.is_available() else \
                torch.device("cpu")
        else:
            try:
                dev = torch.device(device)
            except RuntimeError:
                raise ArchcError(f"--device {device!r}: not a device (cpu, cuda, cuda:N, auto)") from None
            if dev.type == "cuda" and not torch.cuda.is_available():
                raise ArchcError(f"--device {device}: no CUDA device here (torch {torch.__version__})")
            if dev.type == "cuda" and dev.index is None and world > 1:
                dev = torch.device(f"cuda:{local}")
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        d = cls(rank, world, local, dev)
        if world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if dev.type == "cuda" else "gloo")
            d.owns_group = True
        return d

    def first(self, fn):
        """fn() on rank 0 first (a download), then on the others; an error on rank 0 is raised on every rank."""
        if self.world == 1:
            return fn()
        failed = [None]
        if self.rank == 0:
            try:
                result = fn()
            except ArchcError as e:
                failed = [str(e)]
                raise
            finally:
                torch.distributed.broadcast_object_list(failed, src=0)
            return result
        torch.distributed.broadcast_object_list(failed, src=0)
        if failed[0] is not None:
            raise ArchcError(failed[0])
        return fn()

    def on_rank0(self, fn):
        """fn() on rank 0 alone (choosing and writing the run's folder); its error is raised on every rank, so that
        none waits for a rank 0 that stopped. Returns fn()'s result on rank 0, None elsewhere."""
        if self.world == 1:
            return fn()
        failed, result = [None], None
        try:
            if self.rank == 0:
                result = fn()
        except ArchcError as e:
            failed = [str(e)]
            raise
        finally:
            torch.distributed.broadcast_object_list(failed, src=0)
        if failed[0] is not None:
            raise ArchcError(failed[0])
        return result

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            torch.distributed.all_reduce(t)
        return t

    def close(self) -> None:
        if self.owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


class Trainer:
    def __init__(self, spec, data, cfg: TrainConfig, params: dict, limits, dist: Distributed, state: dict | None,
                 log):
        self.cfg, self.dist, self.state, self.log = cfg, dist, state, log or (lambda *a, **k: None)
        self.data_arg = str(data) if data is not None else None
        self.spec_arg, self.params, self.limits = spec, params, limits

    # -- setting up: every check before anything is built or written -----------------------------------------

    def __call__(self) -> TrainResult:
        cfg = self.cfg
        _requirements(cfg)
        spec = self._spec()
        data_name = self.data_arg
        if self.state is not None:
            if data_name is not None and data_.reference(data_name) != self.state["data"]:
                raise ArchcError(f"--resume: the run trained on {self.state['data']}, not {data_name} (leave --data "
                                 f"out to resume with the run's own)")
            data_name = self.state["data"]
        if data_name is None:
            raise ArchcError("archc train needs --data: a folder of class folders of images, or a dataset name")
        named = data_.named(data_name)
        if named is not None:  # its channels are known: a spec that cannot take them fails before any download
            _check_input(spec, archc.analyze(spec, check=False), named.channels, f"{data_name}'s images")
        data = self.dist.first(lambda: data_.open_data(data_name, cfg.val_split, cfg.seed, cfg.data_root,
                                                       cfg.download))
        spec, analysis = self._fit_spec(spec, data)
        self.classes = data.classes
        self._pipeline(spec, analysis, data)
        folder = self.dist.on_rank0(lambda: run_.choose_folder(cfg.out, spec.name, cfg.resume)) if cfg.save else None
        if self.state is not None and self.state["classes"] != data.classes:
            raise ArchcError(f"--resume: the data's classes differ from the run's ({_few(data.classes)} here, "
                             f"{_few(self.state['classes'])} in the run)")
        self.spec, self.analysis, self.data, self.folder, self.data_name = spec, analysis, data, folder, data_name
        self._loaders()
        self._model()
        self._optimizer()
        if self.state is not None:
            self._restore(self.state)
        if cfg.save:
            self.dist.on_rank0(lambda: (run_.make_folder(folder),
                                        files.write_text(folder / "run.json", json.dumps(self._run_info(), indent=1)
                                                        + "\n")))
        self._describe()
        return self._train()

    def _spec(self) -> Spec:
        """The spec with the caller's parameters (a resumed run's: the spec embedded in its state)."""
        if self.state is not None:
            from archc.ir.ops import spec_ops
            from archc.spec.load import loads

            if self.params and self.spec_arg is None:
                raise ArchcError("--resume: the run's spec parameters are its own (--set is for a new run)")
            saved = loads(self.state["spec"], f"{self.cfg.resume}:spec", spec_ops(), self.state["params"],
                          self.limits, folder=None)
            if self.spec_arg is not None:
                given = archc._spec(self.spec_arg, self.params, self.limits)
                if given.standalone() != saved.standalone() or dict(given.overrides) != dict(saved.overrides):
                    raise ArchcError(f"--resume: {self.spec_arg} (with its --set) is not the spec the run trained; "
                                     f"leave SPEC out to resume with the run's own")
            return saved
        if self.spec_arg is None:
            raise ArchcError("archc train needs a SPEC (a spec file, or --resume a run's last.pt)")
        return archc._spec(self.spec_arg, self.params, self.limits)

    def _fit_spec(self, spec: Spec, data: data_.Data):
        """The spec set to the data's classes, analysed, its input and output checked against the data."""
        n = len(data.classes)
        declared = spec.data.get("params", {}) or {}
        if "classes" in declared and spec.params.get("classes") != n:
            if "classes" in spec.overrides:  # the caller said otherwise
                raise ArchcError(f"the data has {n} classes ({_few(data.classes)}), but --set classes="
                                 f"{spec.overrides['classes']}: leave classes out and archc train sets it")
            spec = spec.with_params({"classes": n})
        analysis = archc.analyze(spec, check=False)
        g = analysis.graph
        _check_input(spec, analysis, data.channels, data.first)
        if g.meta.get("dict_outputs"):
            raise SpecError("archc train needs one class vector out of the network; this spec names its outputs "
                            f"({', '.join(o.name for o in g.outputs if not o.aux)})", spec.loc(("outputs",)),
                            "outputs")
        for o in g.outputs:
            node = g[o.node]
            what = "auxiliary head" if o.aux else "output"
            if len(node.shape) != 1:
                raise ShapeError(f"archc train needs a class vector [classes] out of the network; its {what} is "
                                 f"{list(node.shape)}", node.loc, node.module)
            if node.shape[0] != n:
                how = ("its `classes` parameter does not set it" if "classes" in declared else
                       "it declares no `classes` parameter to change it (add one to params: and use it in the last "
                       "layer)")
                raise ShapeError(f"the data has {n} classes ({_few(data.classes)}); the spec's {what} is "
                                 f"{list(node.shape)} and {how}", node.loc, node.module)
        return spec, analysis

    def _pipeline(self, spec: Spec, analysis, data: data_.Data) -> None:
        cfg = self.cfg
        c, h, w = analysis.input_shape
        pre = preprocessing(spec)
        mean = cfg.mean or pre.get("mean") or data.mean or (IMAGENET_MEAN if c == 3 else (0.5,))
        std = cfg.std or pre.get("std") or data.std or (IMAGENET_STD if c == 3 else (0.5,))
        for name, v in (("mean", mean), ("std", std)):
            if len(v) != c:
                whence = f"--{name}" if getattr(cfg, name) else f"the spec's preprocessing {name}"
                raise ArchcError(f"{whence} has {len(v)} values; the spec's input has {c} channels")
        preset = cfg.augment or data.augment or ("crop-flip" if min(h, w) >= 128 else "pad-crop-flip")
        train_tf, val_tf = data_.transforms(preset, (h, w), mean, std, "L" if c == 1 else "RGB", pre.get("resize"),
                                            pre.get("crop"), pre.get("interpolation", "bilinear"))
        data_.set_transforms(data, train_tf, val_tf)
        self.preset, self.mean, self.std = preset, list(mean), list(std)

    def _loaders(self) -> None:
        cfg, dist, data = self.cfg, self.dist, self.data
        if cfg.batch % dist.world:
            raise ArchcError(f"--batch {cfg.batch} is the global batch: it must divide among the {dist.world} "
                             f"processes")
        per_rank = cfg.batch // dist.world
        workers = cfg.workers if cfg.workers is not None else min(4, os.cpu_count() or 1)
        cuda = dist.device.type == "cuda"
        from torch.utils.data import DataLoader, DistributedSampler, Subset

        self.sampler = DistributedSampler(data.train, num_replicas=dist.world, rank=dist.rank, shuffle=True,
                                          seed=cfg.seed)
        self.train_loader = DataLoader(data.train, batch_size=per_rank, sampler=self.sampler, num_workers=workers,
                                       pin_memory=cuda, drop_last=True, persistent_workers=False)
        self.steps_per_epoch = len(self.train_loader)
        if self.steps_per_epoch == 0:
            raise ArchcError(f"the training split has {len(data.train)} images, fewer than one batch of "
                             f"{cfg.batch}: lower --batch")
        shard = Subset(data.val, range(dist.rank, len(data.val), dist.world)) if dist.world > 1 else data.val
        self.val_loader = DataLoader(shard, batch_size=per_rank, shuffle=False, num_workers=workers, pin_memory=cuda)
        self.workers = workers

    def _model(self) -> None:
        cfg, dist = self.cfg, self.dist
        torch.manual_seed(cfg.seed)
        module = archc.build(self.analysis)
        self.weights_report = None
        if cfg.weights and self.state is None:
            from archc.weights import load as load_weights

            self.weights_report = load_weights(module, cfg.weights)
        g = module.graph
        self.signs = [-1.0 if DISTANCE in OPS[g[o.node].op] else 1.0 for o in g.outputs]
        self.aux_weights = [1.0 if o.loss_weight is None else o.loss_weight for o in g.outputs if o.aux]
        self.channels_last = cfg.channels_last if cfg.channels_last is not None else dist.device.type == "cuda"
        module.to(dist.device)
        if self.channels_last:
            module.to(memory_format=torch.channels_last)
        self.module = module  # the parameters the optimizer updates and the checkpoints hold
        model = module
        if dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            model = DistributedDataParallel(module, device_ids=[dist.device.index] if dist.device.type == "cuda"
                                            else None)
        self.model = torch.compile(model) if cfg.compile else model
        # Validation without DDP: its forward may synchronise buffers, and the processes' shards of the validation
        # split may differ by a batch.
        self.eval_model = self.model if dist.world == 1 else torch.compile(module) if cfg.compile else module
        self.ema = None
        if cfg.ema:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
        torch.manual_seed(cfg.seed + 1 + dist.rank)  # dropout, drop-path and augmentation draws, per process
        if dist.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    def _optimizer(self) -> None:
        cfg = self.cfg
        groups = param_groups(self.module, cfg.weight_decay)
        if cfg.opt == "sgd":
            self.opt = torch.optim.SGD(groups, lr=cfg.peak_lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
        else:
            self.opt = torch.optim.AdamW(groups, lr=cfg.peak_lr)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.sched = schedule(self.opt, cfg, self.steps_per_epoch)
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)
        self.scaler = torch.amp.GradScaler(self.dist.device.type, enabled=cfg.amp == "fp16")
        self.epoch, self.step, self.best, self.rows = 0, 0, None, []

    # -- resuming --------------------------------------------------------------------------------------------

    def _state(self) -> dict:
        rng = {"torch": torch.get_rng_state(), "python": _python_rng()}
        if self.dist.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.dist.device)
        try:
            import numpy as np

            kind, keys, pos, has_gauss, gauss = np.random.get_state()
            rng["numpy"] = [torch.from_numpy(keys.astype("int64")), int(pos), int(has_gauss), float(gauss)]
        except ImportError:
            pass
        return {"format": run_.STATE_FORMAT, "spec": self.spec.standalone(), "params": dict(self.spec.overrides),
                "file": self.spec.file, "data": data_.reference(self.data_name), "classes": self.classes,
                "config": {k: v for k, v in self.cfg.to_dict().items()},
                "epoch": self.epoch, "step": self.step, "best": self.best, "rows": self.rows,
                "model": self.module.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(), "scaler": self.scaler.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None, "rng": rng,
                "world": self.dist.world}

    def _restore(self, state: dict) -> None:
        if state.get("world", 1) != self.dist.world:
            self.log(f"note: the run trained on {state.get('world', 1)} processes, it goes on with "
                     f"{self.dist.world}: the same global batch, not the same random draws")
        try:
            self.module.load_state_dict(state["model"])
            self.opt.load_state_dict(state["optimizer"])
            self.sched.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
            if self.ema is not None:
                self.ema.load_state_dict(state["ema"])
        except (RuntimeError, KeyError, ValueError, TypeError) as e:
            raise ArchcError(f"--resume {self.cfg.resume}: its state does not fit this run "
                             f"({(str(e).splitlines() or [''])[0][:200]})") from None
        self.epoch, self.step, self.best, self.rows = state["epoch"], state["step"], state["best"], state["rows"]
        rng = state["rng"]
        if self.dist.world == state.get("world", 1):
            torch.set_rng_state(rng["torch"])
            random.setstate(_tuple(rng["python"]))
            if "cuda" in rng and self.dist.device.type == "cuda":
                torch.cuda.set_rng_state(rng["cuda"], self.dist.device)
            if "numpy" in rng:
                import numpy as np

                keys, pos, has_gauss, gauss = rng["numpy"]
                np.random.set_state(("MT19937", keys.numpy().astype("uint32"), pos, has_gauss, gauss))
        if self.epoch >= self.cfg.epochs:
            raise ArchcError(f"--resume {self.cfg.resume}: the run has finished (epoch {self.epoch} of "
                             f"{self.cfg.epochs})")

    # -- the loop ---------------------------------------------------------------------------------------------

    def _describe(self) -> None:
        cfg, a, d = self.cfg, self.analysis, self.data
        self.log(f"archc train: {a.name} ({self.spec.file}), {a.params:,} parameters, input {a.input_shape}, "
                 f"{len(d.classes)} classes")
        self.log(f"data: {d.source}: {d.counts.get('train', len(d.train))} training and "
                 f"{d.counts.get('val', len(d.val))} validation images; augment {self.preset}, mean "
                 f"{_nums(self.mean)}, std {_nums(self.std)}")
        amp = f", {cfg.amp} autocast" if cfg.amp != "none" else ""
        extra = "".join(f", {x}" for x, on in (("torch.compile", cfg.compile), ("channels_last", self.channels_last),
                                               (f"EMA {cfg.ema}", cfg.ema)) if on)
        self.log(f"on {self.dist.device} x {self.dist.world} process{'es' * (self.dist.world > 1)}{amp}{extra}; "
                 f"{cfg.opt} lr {cfg.peak_lr:g}, wd {cfg.weight_decay:g}, {cfg.sched} schedule, batch {cfg.batch}, "
                 f"{cfg.epochs} epochs of {self.steps_per_epoch} steps")
        if self.weights_report is not None:
            self.log(str(self.weights_report))
        if self.folder is not None:
            self.log(f"run folder: {self.folder}" + (f" (resumed after epoch {self.epoch})" if self.state else ""))

    def _train(self) -> TrainResult:
        cfg = self.cfg
        last = cfg.epochs if cfg.stop_after is None else min(cfg.epochs, cfg.stop_after)
        while self.epoch < last:
            self.epoch += 1
            row = self._epoch()
            self.rows.append(row)
            if self.cfg.save:
                self.dist.on_rank0(lambda row=row: self._save(row))
            self.log(_summary(row, cfg.epochs))
        final = self.ema.module if self.ema is not None else self.module
        final.eval()
        epochs = [r for r in self.rows if r["kind"] == "epoch"]
        return TrainResult(final, self.folder, epochs, [r for r in self.rows if r["kind"] == "step"], self.best,
                           self.classes)

    def _epoch(self) -> dict:
        cfg, dist, dev = self.cfg, self.dist, self.dist.device
        self.model.train()
        self.sampler.set_epoch(self.epoch)
        sums = torch.zeros(3, dtype=torch.float64, device=dev)  # loss x images, correct, loss since the last log
        since = 0  # batches since the last log
        bar = _bar(self.steps_per_epoch, f"epoch {self.epoch}/{cfg.epochs}", cfg.progress and dist.rank == 0)
        start = time.perf_counter()
        seen = 0
        for i, (x, y) in enumerate(_batches(self.train_loader)):
            x = x.to(dev, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = y.to(dev, non_blocking=True)
            with torch.autocast(dev.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                out = self.model(x)
                loss, logits = self.loss(out, y)
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if cfg.clip_grad:
                self.scaler.unscale_(self.opt)
                torch.nn.utils.clip_grad_norm_(self.module.parameters(), cfg.clip_grad)
            self.scaler.step(self.opt)
            self.scaler.update()
            self.sched.step()
            if self.ema is not None:
                self.ema.update_parameters(self.module)
            self.step += 1
            seen += len(y)
            since += 1
            with torch.no_grad():  # no synchronisation: read at the log points only
                d = loss.detach()
                sums[0] += d * len(y)
                sums[1] += (logits.argmax(1) == y).sum()
                sums[2] += d
            if self.step % cfg.log_every == 0 or i + 1 == self.steps_per_epoch:
                w = dist.all_sum(sums[2:].clone())
                mean = w.item() / (since * dist.world)  # over the batches of every process
                lr = self.opt.param_groups[0]["lr"]
                if self.step % cfg.log_every == 0:
                    self.rows.append({"kind": "step", "step": self.step,
                                      "epoch": round(self.epoch - 1 + (i + 1) / self.steps_per_epoch, 6),
                                      "loss": mean, "lr": lr})
                sums[2] = 0
                since = 0
                if bar is not None:
                    rate = seen * dist.world / max(time.perf_counter() - start, 1e-9)
                    bar.set_postfix({"loss": f"{mean:.4f}", "lr": f"{lr:.3g}", "img/s": f"{rate:,.0f}"},
                                    refresh=False)
            if bar is not None:
                bar.update(1)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = time.perf_counter() - start
        if bar is not None:
            bar.close()
        totals = dist.all_sum(sums[:2].clone()).tolist()
        images = seen * dist.world  # every process takes the same number of batches of the same size
        row = {"kind": "epoch", "epoch": self.epoch, "step": self.step, "lr": self.opt.param_groups[0]["lr"],
               "train_loss": totals[0] / images, "train_top1": 100 * totals[1] / images,
               "images_per_s": images / seconds, "train_seconds": seconds}
        evaluated = self.ema.module if self.ema is not None else self.eval_model
        row.update(self.evaluate(evaluated))
        if self.ema is not None:
            row.update({f"raw_{k}": v for k, v in self.evaluate(self.eval_model).items()})
        row["best"] = self.best is None or row["val_top1"] > self.best["val_top1"]
        if row["best"]:
            self.best = {k: row[k] for k in ("epoch", "val_top1", "val_top5", "val_loss")}
        return row

    def loss(self, out, y):
        return classification_loss(out, y, self.signs, self.aux_weights, self.cfg.label_smoothing)

    @torch.inference_mode()
    def evaluate(self, model) -> dict:
        """Validation loss (plain cross-entropy), top-1 and top-5 (percent) over the whole validation split."""
        dev = self.dist.device
        model.eval()
        k = min(5, len(self.classes))
        totals = torch.zeros(4, dtype=torch.float64, device=dev)
        start = time.perf_counter()
        for x, y in _batches(self.val_loader):
            x = x.to(dev, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = y.to(dev, non_blocking=True)
            with torch.autocast(dev.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                out = model(x)
            logits = (out[0] if isinstance(out, tuple) else out).float() * self.signs[0]
            top = logits.topk(k, 1).indices
            hit = top == y[:, None]
            totals += torch.stack([F.cross_entropy(logits, y, reduction="sum").double(),
                                   hit[:, 0].sum().double(), hit.any(1).sum().double(),
                                   torch.tensor(float(len(y)), dtype=torch.float64, device=dev)])
        totals = self.dist.all_sum(totals)
        n = max(totals[3].item(), 1)
        return {"val_loss": totals[0].item() / n, "val_top1": 100 * totals[1].item() / n,
                "val_top5": 100 * totals[2].item() / n if len(self.classes) > 5 else None,
                "val_seconds": time.perf_counter() - start}

    def _save(self, row: dict) -> None:
        folder, final = self.folder, (self.ema.module if self.ema is not None else self.module)
        weights = {k: v for k, v in final.state_dict().items()}
        meta = {"format": "archc-train-weights-1", "spec": self.spec.name, "file": self.spec.file,
                "params": dict(self.spec.overrides), "classes": self.classes, "epoch": row["epoch"],
                "val_top1": row["val_top1"], "ema": bool(self.ema)}
        run_.save_weights(folder / "last.safetensors", weights, meta)
        if row["best"]:
            run_.save_weights(folder / "best.safetensors", weights, meta)
        run_.write_metrics(folder / "metrics.jsonl", self.rows)
        run_.save_state(folder / "last.pt", self._state())
        if self.cfg.plot:
            best = self.best
            run_.plot(self.rows, folder / "curves.png", f"{self.spec.name} on {Path(str(self.data_name)).name}: best "
                      f"validation top-1 {best['val_top1']:.2f}% (epoch {best['epoch']})")

    def _run_info(self) -> dict:
        import torchvision

        d = self.data
        return {"spec": self.spec.name, "file": self.spec.file, "params": dict(self.spec.overrides),
                "parameters": self.analysis.params, "input": list(self.analysis.input_shape),
                "data": data_.reference(self.data_name), "data_source": d.source, "classes": self.classes,
                "images": {"train": len(d.train), "val": len(d.val)}, "augment": self.preset, "mean": self.mean,
                "std": self.std, "aux_loss_weights": self.aux_weights,
                "settings": self.cfg.to_dict(), "processes": self.dist.world, "device": str(self.dist.device),
                "workers": self.workers, "resumed_after_epoch": self.epoch if self.state else None,
                "versions": {"python": platform.python_version(), "torch": torch.__version__,
                             "torchvision": torchvision.__version__},
                "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%dT%H:%M:%S")}


IMAGENET_MEAN, IMAGENET_STD = data_.IMAGENET_MEAN, data_.IMAGENET_STD


def classification_loss(out, y, signs, aux_weights, smoothing: float = 0.0):
    """Cross-entropy of the main output, plus each auxiliary head's times its weight (the spec's `loss_weight`);
    outputs that are distances (sign -1) enter as their negatives. Returns (loss, the main output's logits)."""
    outs = out if isinstance(out, tuple) else (out,)
    logits = outs[0].float() * signs[0]
    loss = F.cross_entropy(logits, y, label_smoothing=smoothing)
    for head, sign, weight in zip(outs[1:], signs[1:], aux_weights):
        if weight:
            loss = loss + weight * F.cross_entropy(head.float() * sign, y, label_smoothing=smoothing)
    return loss, logits


def param_groups(module, weight_decay: float) -> list[dict]:
    """The optimizer's groups: weight decay on weight matrices and kernels, none on biases and normalisation
    weights (parameters of one dimension)."""
    decay, no_decay = [], []
    for p in module.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def _check_input(spec: Spec, analysis, channels: int, images: str) -> None:
    """The spec takes images [C, H, W] with the data's channel count, or a ShapeError located at its `input:`."""
    shape = list(analysis.input_shape)
    where = spec.loc(("input",))
    if len(shape) != 3:
        raise ShapeError(f"archc train feeds images [C, H, W]; this spec's input is {shape}", where, "input")
    if shape[0] not in (1, 3):
        raise ShapeError(f"archc train feeds 1-channel (grayscale) or 3-channel (RGB) images; this spec's input "
                         f"has {shape[0]} channels", where, "input")
    if shape[0] != channels:
        kind = {1: "grayscale (1 channel)", 3: "colour (3 channels)"}
        raise ShapeError(f"the spec takes {kind[shape[0]]} images, and {images} are {kind[channels]}: convert "
                         f"the images, or give the spec {channels}-channel input", where, "input")


def preprocessing(spec: Spec) -> dict:
    """The input pipeline the spec (its selected variant) declares under `preprocessing:`, if any: mean, std,
    resize (the shorter side before the centre crop), crop, interpolation."""
    if hasattr(spec, "preprocessing"):  # the typed document's (its selected variant's, else its own)
        pre = spec.preprocessing.to_dict() if spec.preprocessing is not None else {}
    else:  # read as written
        row = spec.variants.get(spec.variant, {}) if spec.variants else {}
        pre = row.get("preprocessing") or spec.data.get("preprocessing") or {}
    if not isinstance(pre, dict):
        return {}
    out = {}
    for key in ("mean", "std"):
        if isinstance(pre.get(key), list):
            out[key] = [float(v) for v in pre[key]]
    if isinstance(pre.get("resize"), int):
        out["resize"] = pre["resize"]
    crop = pre.get("crop")
    if isinstance(crop, int):
        out["crop"] = (crop, crop)
    elif isinstance(crop, list) and len(crop) == 2:
        out["crop"] = tuple(crop)
    if pre.get("interpolation") in ("bilinear", "bicubic", "nearest"):
        out["interpolation"] = pre["interpolation"]
    return out


def schedule(opt, cfg: TrainConfig, steps_per_epoch: int):
    """The learning-rate schedule, stepped after every batch: linear warm-up from lr/100 over `warmup` epochs,
    then cosine to 0, steps of `gamma` every `step_epochs`, or constant; or the one-cycle policy."""
    from torch.optim import lr_scheduler as S

    total = cfg.epochs * steps_per_epoch
    warm = min(total - 1, round(cfg.warmup * steps_per_epoch)) if cfg.warmup else 0
    if cfg.sched == "onecycle":
        pct = cfg.warmup / cfg.epochs if cfg.warmup else 0.3
        return S.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=total, pct_start=pct)
    if cfg.sched == "cosine":
        main = S.CosineAnnealingLR(opt, T_max=max(1, total - warm), eta_min=0.0)
    elif cfg.sched == "step":
        main = S.StepLR(opt, step_size=max(1, round(cfg.step_epochs * steps_per_epoch)), gamma=cfg.gamma)
    else:
        main = S.ConstantLR(opt, factor=1.0, total_iters=0)
    if not warm:
        return main
    return S.SequentialLR(opt, [S.LinearLR(opt, start_factor=0.01, total_iters=warm), main], milestones=[warm])


def _batches(loader):
    """The loader's batches; an ArchcError raised in a worker process (an image that does not read) comes back
    from torch with the worker's traceback in its message: raised again as its own one line."""
    try:
        yield from loader
    except ArchcError as e:
        lines = [line for line in str(e.message).strip().splitlines() if line.strip()]
        if len(lines) > 1:
            last = lines[-1]
            for prefix in ("archc.errors.ArchcError: ", "ArchcError: "):
                last = last.split(prefix, 1)[-1]
            raise ArchcError(last) from None
        raise


def _requirements(cfg: TrainConfig) -> None:
    data_.torchvision()
    try:
        import safetensors.torch  # noqa: F401
    except ImportError:
        raise ArchcError("archc train saves its weights as .safetensors: pip install 'archc[train]'") from None


def _bar(total: int, desc: str, on: bool):
    if not on:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # the summary line after each epoch still says everything
        return None
    return tqdm(total=total, desc=desc, unit="batch", dynamic_ncols=True, disable=None, leave=True)


def _summary(row: dict, epochs: int) -> str:
    top5 = f", top-5 {row['val_top5']:.2f}%" if row.get("val_top5") is not None else ""
    raw = f" (without EMA {row['raw_val_top1']:.2f}%)" if "raw_val_top1" in row else ""
    return (f"epoch {row['epoch']}/{epochs}: train loss {row['train_loss']:.4f}, top-1 {row['train_top1']:.2f}%; "
            f"val loss {row['val_loss']:.4f}, top-1 {row['val_top1']:.2f}%{top5}{raw}; "
            f"{row['images_per_s']:,.0f} images/s, lr {row['lr']:.3g}" + (" (best)" if row["best"] else ""))


def _python_rng():
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _tuple(saved):
    version, internal, gauss = saved
    return (version, tuple(internal), gauss)


def _nums(v) -> str:
    return "[" + ", ".join(f"{x:.4g}" for x in v) + "]"


def _few(names) -> str:
    names = list(names)
    return ", ".join(map(str, names[:4])) + (f", ... ({len(names)})" if len(names) > 4 else "")
