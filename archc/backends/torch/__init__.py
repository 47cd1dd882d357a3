"""The PyTorch backend. `names` checks a graph's module names without importing torch; `lower` (the lowering
table), `executor` (ArchcModule), `inference` (archc.fuse), `fused` (the fused op's module) and `layers` build
and run modules."""
