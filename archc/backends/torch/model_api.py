"""timm's model API on every built module (archc.analysis.head finds the head statically):

    forward_features(x)            -> the last feature map [N, C, H, W] (what the head pools)
    forward_head(x, pre_logits=False) -> the head on a feature map: logits, or (pre_logits) the classifier's input
    reset_classifier(num_classes)  -> rebuilds the head from the spec with `classes=num_classes` (0: no classifier,
                                      forward returns the pooled features); everything else is kept, the same
                                      parameters (an optimizer holding them goes on)
    num_classes, num_features, head_hidden_size
    feature_info                   -> FeatureInfo: per returned feature map (a features= module's outputs, else the
                                      last feature map) its channels, reduction (input pixels per step) and module
    pretrained_cfg (default_cfg)   -> input size, mean, std, crop_pct, interpolation, classifier, ... from the
                                      spec's preprocessing (or its weights') and the head
"""

from __future__ import annotations

import torch

from archc.analysis import Analysis, head
from archc.errors import ArchcError


class FeatureInfo(list):
    """timm's FeatureInfo: one dict per feature map ({"num_chs", "reduction", "module"}), with its accessors."""

    def _get(self, key: str, idx=None):
        if idx is None:
            return [f[key] for f in self]
        if isinstance(idx, (list, tuple)):
            return [self[i][key] for i in idx]
        return self[idx][key]

    def channels(self, idx=None):
        return self._get("num_chs", idx)

    def reduction(self, idx=None):
        return self._get("reduction", idx)

    def module_name(self, idx=None):
        return self._get("module", idx)


class ModelApi:
    """Mixed into ArchcModule (which provides graph, analysis, _modules_by_node and _check_input)."""

    # -- the head, found once per graph --------------------------------------------------------------------
    def _head(self):
        cached = self.__dict__.get("_head_cache")
        if cached is None or cached[0] is not self.graph:
            if self.returns_dict:
                raise ArchcError(f"{self.name}: this module returns named values (features= or outputs:); "
                                 "forward_features, forward_head and the classifier apply to a classifier's module")
            cached = (self.graph, head(self.graph))
            self.__dict__["_head_cache"] = cached
        return cached[1]

    def _run(self, names, values: dict):
        g, modules = self.graph, self._modules_by_node
        for n in names:
            values[n] = modules[n](*[values[i] for i in g.inputs(n)])
        return values

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map: the network up to where its head starts."""
        h = self._head()
        g = self.graph
        below = _ancestors(g, h.features)
        order = [n for n in g.order() if n in below and n != g.input]
        self._check_features_input(x, order)
        return self._run(order, {g.input: x})[h.features]

    def _check_features_input(self, x, order) -> None:
        """forward's input check, a new size checked against the feature layers only (the head may take one size,
        as AlexNet's flatten into a linear: the feature maps take any size their layers allow)."""
        sample = self._sample
        if not isinstance(x, torch.Tensor) or x.dim() != len(sample) + 1 or x.shape[1] != sample[0] or \
                x.shape[1:] == sample:
            self._check_input(x)  # its message for a wrong rank or channels; the spec's size passes
            return
        seen = self.__dict__.setdefault("_feature_sizes", set())
        key = (tuple(x.shape[1:]), self.graph)
        if key not in seen:
            from archc.passes import shapes

            shapes.infer(self.graph, key[0], [self.graph.input, *order])
            seen.add(key)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The head on a feature map (forward_features' value): the logits, or with `pre_logits` the classifier's
        input (the pooled features)."""
        h = self._head()
        stop = h.pre_logits if pre_logits else self.graph.outputs[0].node
        if stop == h.features:
            return x
        nodes = list(h.nodes)
        return self._run(nodes[:nodes.index(stop) + 1], {h.features: x})[stop]

    # -- figures -------------------------------------------------------------------------------------------------
    @property
    def num_features(self) -> int:
        """Channels of the last feature map."""
        return self.graph[self._head().features].shape[0]

    @property
    def head_hidden_size(self) -> int:
        """Size of the classifier's input (VGG's 4096; the pooled features elsewhere)."""
        return self.graph[self._head().pre_logits].shape[0]

    @property
    def num_classes(self) -> int:
        """Classes the head scores (0 once reset_classifier(0) removed the classifier)."""
        if self.__dict__.get("_no_classifier"):
            return 0
        return self.graph[self.graph.outputs[0].node].shape[0]

    @property
    def feature_info(self) -> FeatureInfo:
        """For a features= module each returned feature map, else the last feature map: channels, reduction (the
        stride of its grid in input pixels) and module path, all static."""
        g = self.graph
        if self.returns_dict:  # named as the module returns them (the names given to features=)
            named = [(o.name, o.node) for o in g.outputs if not o.aux]
        else:  # named by the outermost module group it leaves, as timm names it (layer4, features)
            from archc.passes.outputs import groups, leaving

            features = self._head().features
            found = groups(g)
            parts = g[features].module.split(".")
            prefixes = [".".join(parts[:i]) for i in range(1, len(parts))]
            name = next((q for q in prefixes if leaving(g, found[q]) == [features]), g[features].module)
            named = [(name, features)]
        info = FeatureInfo()
        for name, n in named:
            jumps = g[n].meta["rf"].jump
            reduction = jumps[0] if len(set(jumps)) == 1 else tuple(jumps)
            info.append({"num_chs": g[n].shape[0], "reduction": _plain(reduction), "module": name})
        return info

    @property
    def pretrained_cfg(self) -> dict:
        """timm's pretrained_cfg: the input the weights expect (the spec's `preprocessing:`, or that of weights
        loaded by name) and what the head is."""
        pre = getattr(self, "preprocessing", None)
        shape = list(self.analysis.input_shape)
        h = None if self.returns_dict else self._head()
        cfg = {"architecture": self.name, "tag": getattr(self, "weights_name", None),
               "input_size": tuple([shape[0], pre.crop, pre.crop] if pre and len(shape) == 3 else shape),
               "num_classes": self.num_classes if h else None,
               "classifier": h.classifier if h else None,
               "first_conv": next((n.module for n in self.graph.nodes() if n.op == "conv"), None)}
        if pre:
            cfg.update(mean=pre.mean, std=pre.std, crop_pct=pre.crop / pre.resize, crop_mode="center",
                       interpolation=pre.interpolation)
        if h:
            cfg["pool_size"] = tuple(self.graph[h.features].shape[1:])
        published = self.analysis.spec.published
        if published:
            cfg.update(dataset=published.dataset, top1=published.top1)
        return cfg

    default_cfg = pretrained_cfg

    # -- a new head --------------------------------------------------------------------------------------------
    def get_classifier(self) -> torch.nn.Module | None:
        h = self._head()
        return self.module_at(h.classifier) if h.classifier else None

    def reset_classifier(self, num_classes: int, global_pool=None) -> None:
        """A new head for `num_classes` classes, rebuilt from the spec (`classes=num_classes`; its layers
        initialised afresh); 0 removes the classifier: forward returns the pooled features (the classifier's
        input). Every other module is kept as it is, the same objects."""
        from archc.backends.torch.executor import ArchcModule

        if global_pool is not None:
            raise ArchcError(f"{self.name}: the pooling is the spec's; reset_classifier takes no global_pool")
        if type(self) is not ArchcModule:
            raise ArchcError(f"{self.name}: reset the classifier of the trained module, then fuse it again")
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 0:
            raise ArchcError(f"reset_classifier: num_classes is a count (0 or more), got {num_classes!r}")
        h = self._head()
        spec = self.analysis.spec
        if num_classes == 0:
            if h.classifier is None:
                raise ArchcError(f"{self.name}: its head holds no classifier to remove (its classes come from its "
                                 "feature maps); reset_classifier(N) with N > 0 rebuilds them")
            from archc.passes.outputs import select_outputs

            graph = select_outputs(self.analysis.graph.copy(), [h.pre_logits])
            graph.meta["dict_outputs"] = False  # one tensor, as timm's
            analysis = Analysis(spec, graph)
        else:
            if "classes" not in spec.params:
                raise ArchcError(f"{self.name}: its spec has no `classes` parameter for reset_classifier to set",
                                 spec.loc(("params",)))
            from archc.ir.expand import expand
            from archc.passes import ANALYSIS, run

            spec = spec.with_params({"classes": num_classes})
            analysis = Analysis(spec, run(expand(spec), ANALYSIS))
        before = self.num_classes
        categories = getattr(self, "categories", None)
        self._rebuild(analysis)
        self.__dict__["_no_classifier"] = num_classes == 0
        self.categories = categories if num_classes == before else None  # names for the classes kept

    def _rebuild(self, analysis: Analysis) -> None:
        """This module, in place, computing `analysis.graph`: every module whose node is unchanged (op,
        attributes, input shapes) is kept, the rest built afresh on the device and dtype of the others."""
        from archc.backends.torch.executor import ArchcModule

        old, new = self.graph, analysis.graph
        kept = {}
        for n in new.nodes():
            if n.name == new.input or n.name not in old or n.module in kept:
                continue
            o = old[n.name]
            if (o.op, o.attrs, o.module) == (n.op, n.attrs, n.module) and \
                    [old[i].shape for i in old.inputs(n.name)] == [new[i].shape for i in new.inputs(n.name)]:
                kept[n.module] = self._modules_by_path[n.module]
        like = next(iter(self.parameters()), None)
        keep = {k: getattr(self, k) for k in ("weights_report", "weights_name", "preprocessing", "training")
                if k in self.__dict__}
        ArchcModule.__init__(self, new, kept)
        if like is not None:
            for path, module in self._modules_by_path.items():
                if path not in kept:
                    module.to(device=like.device, dtype=like.dtype)
        self.__dict__.update(keep)
        self.train(keep.get("training", True))
        self.analysis = analysis


def _ancestors(g, name: str) -> set[str]:
    from archc.analysis import _ancestors as ancestors

    return ancestors(g, name)


def _plain(v):
    """A Fraction that is whole as an int; tuples as tuples of those."""
    if isinstance(v, tuple):
        return tuple(_plain(x) for x in v)
    return int(v) if getattr(v, "denominator", 1) == 1 else float(v)
