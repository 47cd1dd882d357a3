"""The names a spec's modules take in PyTorch, checked without importing torch (so `archc validate` runs the
same checks as `compile`): a module path cannot be both an op and a group of ops, and no name may be an
attribute of nn.Module (or, at the top, of ArchcModule), which add_module refuses."""

from __future__ import annotations

from archc.errors import Diagnostics, SpecError
from archc.ir.graph import Graph

# dir(torch.nn.Module()); a test keeps it equal to the installed torch's.
MODULE_ATTRIBUTES = frozenset(["T_destination", "__annotations__", "__call__", "__class__", "__delattr__", "__dict__", "__dir__", "__doc__", "__eq__", "__format__", "__ge__", "__getattr__", "__getattribute__", "__getstate__", "__gt__", "__hash__", "__init__", "__init_subclass__", "__le__", "__lt__", "__module__", "__ne__", "__new__", "__reduce__", "__reduce_ex__", "__repr__", "__setattr__", "__setstate__", "__sizeof__", "__str__", "__subclasshook__", "__weakref__", "_apply", "_backward_hooks", "_backward_pre_hooks", "_buffers", "_call_impl", "_compiled_call_impl", "_forward_hooks", "_forward_hooks_always_called", "_forward_hooks_with_kwargs", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_get_backward_hooks", "_get_backward_pre_hooks", "_get_name", "_is_full_backward_hook", "_load_from_state_dict", "_load_state_dict_post_hooks", "_load_state_dict_pre_hooks", "_maybe_warn_non_full_backward_hook", "_modules", "_named_members", "_non_persistent_buffers_set", "_parameters", "_register_load_state_dict_pre_hook", "_register_state_dict_hook", "_replicate_for_data_parallel", "_save_to_state_dict", "_slow_forward", "_state_dict_hooks", "_state_dict_pre_hooks", "_version", "_wrapped_call_impl", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state", "get_parameter", "get_submodule", "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers", "named_children", "named_modules", "named_parameters", "parameters", "register_backward_hook", "register_buffer", "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook", "register_full_backward_pre_hook", "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module", "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train", "training", "type", "xpu", "zero_grad"])
# What ArchcModule adds (and `analysis`, which archc.build sets); a test keeps it equal too.
ARCHC_ATTRIBUTES = frozenset({"graph", "name", "output_names", "analysis", "node_modules", "_plan", "_plans",
                              "_modules_by_node", "_modules_by_path", "module_at", "_sample", "_check_input",
                              "returns_dict", "weights_report", "_sizes", "_spec_graph",
                              # what archc.build sets: the weights' name, input pipeline and class names
                              "weights_name", "preprocessing", "categories",
                              # timm's model API (model_api.py)
                              "forward_features", "forward_head", "reset_classifier", "get_classifier",
                              "num_classes", "num_features", "head_hidden_size", "feature_info",
                              "pretrained_cfg", "default_cfg", "_head", "_run", "_rebuild",
                              "_check_features_input"})


def check(graph: Graph) -> None:
    """Every clash, located at the node that makes it."""
    errors = Diagnostics()
    kinds: dict[str, tuple] = {}  # path -> ("op" | "group", the node that made it)
    for node in graph.nodes():
        if node.name == graph.input:
            continue
        parts = node.module.split(".")
        for depth, part in enumerate(parts, 1):
            path = ".".join(parts[:depth])
            owner = "ArchcModule" if depth == 1 and part in ARCHC_ATTRIBUTES else "nn.Module"
            if part in MODULE_ATTRIBUTES or depth == 1 and part in ARCHC_ATTRIBUTES:
                errors.add(SpecError(f"{part!r} is an attribute of {owner}: a module cannot take this name",
                                     node.loc, node.module))
                break
            kind = "op" if depth == len(parts) else "group"
            first_kind, first = kinds.setdefault(path, (kind, node))
            if first_kind != kind:
                where = f" (first at {first.loc.line}:{first.loc.col})" if first.loc else ""
                errors.add(SpecError(f"{path!r} names both an op and a group of ops{where}: rename one",
                                     node.loc, node.module))
                break
    errors.raise_if_any()
