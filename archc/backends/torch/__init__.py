"""The PyTorch backend. `names` checks a graph's module names without importing torch; `lower` (the lowering
table), `executor` (ArchcModule), `fused` (the inference module) and `layers` build and run modules."""
