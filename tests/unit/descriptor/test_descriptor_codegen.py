"""The unsafe cases checked against the code the real compilers generate.

Each test compiles a small function with the flags (``-S``, no assembler or
linker needed) and checks that what the descriptor records matches the code:
an instruction the host may lack shows up as a feature, a library call as a
runtime need.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ipfsbin.descriptor import normalize_cflags, runtime_needs

AMD64 = "x86_64-pc-linux-gnu"
ARM64 = "aarch64-unknown-linux-gnu"

ATOMIC = "long counter;\nvoid bump(long n) { __atomic_fetch_add(&counter, n, __ATOMIC_SEQ_CST); }\n"
VECTOR = (
    "void add(float *restrict a, const float *restrict b, int n)\n"
    "{ for (int i = 0; i < n; i++) a[i] += b[i] * 2.0f; }\n"
)
LOOP = (
    "void scale(double *restrict a, int n)\n"
    "{ for (int i = 0; i < n; i++) a[i] = a[i] * 3.0 + 1.0; }\n"
)


def _assembly(compiler: str, flags: str, source: str, tmp_path: Path) -> str:
    path = shutil.which(compiler)
    if path is None:
        pytest.fail(f"{compiler} is missing: scripts/test installs it")
    file = tmp_path / "unit.c"
    file.write_text(source)
    done = subprocess.run(
        [path, *flags.split(), "-S", "-o", "-", str(file)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.mark.parametrize(
    ("flags", "inline_lse"),
    [("-O2 -march=armv8.2-a -mcpu=cortex-a72", True), ("-O2 -mcpu=cortex-a72", False)],
)
def test_arm_atomics_follow_march_not_mcpu(flags: str, inline_lse: bool, tmp_path: Path) -> None:
    """Unsafe case 1: the armv8.2 build inlines LSE atomics a Cortex-A72 lacks."""
    code = _assembly("aarch64-linux-gnu-gcc", flags, ATOMIC, tmp_path)
    assert ("\tldaddal\t" in code) is inline_lse
    assert ("atomics" in normalize_cflags(flags, chost=ARM64).features) is inline_lse


@pytest.mark.parametrize(
    ("flags", "avx"), [("-O3 -mno-avx -mavx2", True), ("-O3 -mavx2 -mno-avx", False)]
)
def test_x86_vector_code_follows_option_order(flags: str, avx: bool, tmp_path: Path) -> None:
    """Unsafe case 2: only the first order emits 256-bit AVX code."""
    code = _assembly("gcc", flags, VECTOR, tmp_path)
    assert ("%ymm" in code) is avx
    assert ("avx2" in normalize_cflags(flags, chost=AMD64).features) is avx


def test_parallelized_loops_call_libgomp(tmp_path: Path) -> None:
    """Unsafe case 3: the loop becomes a GOMP_parallel call, so libgomp is a runtime need."""
    flags = "-O2 -ftree-parallelize-loops=4"
    assert "GOMP_parallel" in _assembly("gcc", flags, LOOP, tmp_path)
    assert "GOMP_parallel" not in _assembly("gcc", "-O2", LOOP, tmp_path)
    assert runtime_needs(flags) == ("libgomp.so.1",)
    assert "-ftree-parallelize-loops=4" in normalize_cflags(flags, chost=AMD64).flags
