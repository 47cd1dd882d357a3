"""CPU inference for archc.fuse's modules: `memory` plans where every value of a forward lives (pure: no
torch), `forward` generates the straight-line forward that materialises the plan with oneDNN's ops and archc's
native kernels, `probes` check and measure it (tests, benchmarks)."""
