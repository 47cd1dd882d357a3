"""The PyTorch backend. `names` checks a graph's module names without importing torch; `lower` (the lowering
table), `executor` (ArchcModule), `inference` (archc.fuse), `fused` (the fused op's module) and `layers` build
and run modules."""

# Lowerings of ops that plugins register (archc.register_op): op name -> builder of an nn.Module from the op's
# attributes and input shapes, as lower.LOWERINGS. Kept here, free of torch, so that registering an op does not
# import torch (`archc validate` never does).
PLUGINS: dict = {}
