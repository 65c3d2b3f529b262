"""Where a local model runs (`--device auto|cpu|cuda[:N]`) and in which dtype by default.

auto is CUDA when torch sees a GPU, else the CPU. The default dtype follows the device: bfloat16 on CUDA (every
GPU that runs an 8B judge has bf16 units, and it halves the memory), float32 on the CPU (README: bf16 flipped
pooled labels of the position-biased default judge). Only torch is imported, and only when a device is resolved.
"""

from __future__ import annotations

import re

from labeler.errors import LabelerError

DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
DTYPES = ("float32", "bfloat16")  # int8 was measured and is not offered (README, `annotate`)


def resolve_device(spec: str | None) -> str:
    """`auto`, `cpu`, `cuda` or `cuda:N` -> a torch device string; CUDA asked for but missing is a LabelerError."""
    spec = (spec or "auto").strip().lower()
    if not DEVICE_RE.match(spec):
        raise LabelerError(f"--device must be auto, cpu, cuda or cuda:N, got {spec!r}")
    if spec == "cpu":
        return "cpu"
    import torch

    available = torch.cuda.is_available()
    if spec == "auto":
        return "cuda:0" if available else "cpu"
    if not available:
        build = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", built without CUDA")
        raise LabelerError(f"--device {spec}: CUDA is not available ({build}; no GPU visible); use --device cpu or auto")
    index = int(spec.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise LabelerError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) visible")
    return f"cuda:{index}"


def device_type(device: str) -> str:
    """`cuda:1` -> `cuda`: what enters the judge key (the card's index does not change a label)."""
    return device.partition(":")[0]


def default_dtype(device: str) -> str:
    return "bfloat16" if device_type(device) == "cuda" else "float32"


def resolve_dtype(dtype: str | None, device: str) -> str:
    """The weights' dtype: as given, else the device's default."""
    dtype = dtype or default_dtype(device)
    if dtype not in DTYPES:
        raise LabelerError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return dtype


def key_fields(device: str, dtype: str) -> dict[str, str]:
    """What device and dtype add to a judge key: nothing for float32 on the CPU (the keys from before devices
    existed, so those stores stay resumable), the dtype when it is not float32, the device type when not the CPU."""
    fields = {}
    if dtype != "float32":
        fields["dtype"] = dtype
    if device_type(device) != "cpu":
        fields["device"] = device_type(device)
    return fields
