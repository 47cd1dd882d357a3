"""The environment variables that steer archc_kernels, read at call time."""
import os

BACKEND = "ARCHC_KERNELS"        # "reference" | "triton" | "cpu" | "auto" (default)
TUNE = "ARCHC_KERNELS_TUNE"      # "0": one fixed Triton config instead of autotuning
BACKENDS = ("reference", "triton", "cpu")


def raw_backend() -> str | None:
    """ARCHC_KERNELS as set (unchecked): cheap enough to read on every call."""
    return os.environ.get(BACKEND)


def forced_backend() -> str | None:
    """The backend ARCHC_KERNELS forces, or None to choose per tensor."""
    value = os.environ.get(BACKEND, "").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in BACKENDS:
        raise ValueError(f"{BACKEND}={value!r}: expected one of {BACKENDS} or 'auto'")
    return value


def interpreting() -> bool:
    """True when Triton runs kernels on the CPU through its interpreter."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def tuning() -> bool:
    """Autotune Triton configs (GPU only; the interpreter always runs one small config)."""
    return not interpreting() and os.environ.get(TUNE, "1") != "0"
