"""What every bench prints first: the machine its numbers come from.

Whisper's cost depends on the CPU more than on its clock: tiny.en int8 took ~270 ms per
utterance on the 2-core Xeon of the first benches and takes ~650 ms on a 2-core AMD EPYC with
AVX2 and no AVX-512 (ctranslate2 picks its int8 kernels by the CPU's vector extensions). So
the SIMD flags are part of the machine line, or numbers from two machines look comparable
when they are not.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

_SIMD = ("avx512f", "avx512_vnni", "avx_vnni", "avx2", "fma", "neon", "asimd")


def cpu_line() -> str:
    """CPU model, core count and the SIMD extensions the speech engines use."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (line.split(":", 1)[1].strip() for line in info.splitlines()
         if line.startswith(("model name", "Model"))),
        platform.processor() or platform.machine(),
    )  # fmt: skip
    flags = set()
    for line in info.splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[1].split())
    simd = " ".join(flag for flag in _SIMD if flag in flags) or "none seen"
    return f"{model}, {os.cpu_count()} cores, SIMD: {simd}"


def describe(packages: tuple[str, ...] = ()) -> str:
    """The lines a bench prints before its numbers (machine, Python, engine versions, load)."""
    lines = [f"machine: {cpu_line()}, {platform.platform()}, Python {platform.python_version()}"]
    if packages:
        lines.append("engines: " + ", ".join(f"{n} {_version(n)}" for n in packages))
    lines.append(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return "\n".join(lines)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
