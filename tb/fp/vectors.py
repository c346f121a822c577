"""Operand generators for the FP unit tests (numpy only, shared by the Amaranth and
cocotb tests)."""
from __future__ import annotations

import numpy as np

__all__ = ["SPECIAL_F32", "adder_vectors", "fp8_pairs"]

# Interesting magnitudes: zeros, subnormals, normal edges, near max, inf, NaNs.
SPECIAL_F32 = np.array([
    0, 1, 2, 3, 0x7F_FFFF, 0x40_0000, 0x7F_FFFE, 0x80_0000, 0x80_0001, 0xFF_FFFF,
    0x100_0000, 0x3F80_0000, 0x3F80_0001, 0x3FFF_FFFF, 0x4B00_0000, 0x4B7F_FFFF,
    0x3300_0000, 0x3380_0000, 0x7F00_0000, 0x7F7F_FFFE, 0x7F7F_FFFF, 0x7F80_0000,
    0x7F80_0001, 0x7FC0_0000, 0x7FFF_FFFF], np.uint32)


def adder_vectors(rng, n):
    """Operand pairs weighted toward the hard cases of binary32 addition."""
    sign = np.uint32(0x8000_0000)
    u32 = lambda lo, hi, k: rng.integers(lo, hi, k, dtype=np.uint64).astype(np.uint32)  # noqa: E731
    rsign = lambda k: rng.integers(0, 2, k, dtype=np.uint32) << np.uint32(31)          # noqa: E731
    k = n // 8
    groups = []
    # All pairs of specials, both signs.
    sp = np.concatenate([SPECIAL_F32, SPECIAL_F32 | sign])
    groups.append((np.repeat(sp, sp.size), np.tile(sp, sp.size)))
    # Uniform random bit patterns.
    groups.append((u32(0, 1 << 32, k), u32(0, 1 << 32, k)))
    # Subnormal and tiny normal operands (results crossing the normal boundary).
    groups.append((u32(0, 0x0200_0000, k) | rsign(k), u32(0, 0x0200_0000, k) | rsign(k)))
    # Same or adjacent exponents, opposite signs: massive cancellation.
    a = u32(0, 0x7F80_0000, k)
    delta = rng.integers(-(1 << 24), 1 << 24, k)
    b = np.clip(a.astype(np.int64) + np.where(rng.random(k) < 0.5, delta, delta >> 16),
                0, 0x7F7F_FFFF).astype(np.uint32)
    groups.append((a, b ^ sign))
    # Exponent differences 0..30 with random significands: every align shift,
    # guard/round/sticky combination, both signs.
    a = u32(0x0080_0000, 0x7F00_0000, k)
    d = rng.integers(0, 31, k).astype(np.uint32) << np.uint32(23)
    b = np.where((a & 0x7F80_0000) > d, a - d, a) & 0x7F80_0000 | u32(0, 1 << 23, k)
    groups.append((a | rsign(k), b | rsign(k)))
    # Exact ties: b is half an ulp of a (times an odd factor) in the aligned position.
    a = u32(0x0D80_0000, 0x7F00_0000, k) | rsign(k)
    sh = rng.integers(24, 27, k).astype(np.uint32)
    b = ((a & 0x7F80_0000) - (sh << np.uint32(23))) | (u32(0, 4, k) << np.uint32(21))
    groups.append((a, b | rsign(k)))
    # Overflow: both near the largest finite value.
    groups.append((u32(0x7F00_0000, 0x7F80_0000, k) | rsign(k), u32(0x7F00_0000, 0x7F80_0000, k)))
    # x + (-x) and x + x.
    a = u32(0, 0x7F80_0000, k)
    groups.append((a, np.where(rng.random(k) < 0.5, a ^ sign, a)))
    a = np.concatenate([g[0] for g in groups])
    b = np.concatenate([g[1] for g in groups])
    swap = rng.random(a.size) < 0.5                    # both operand orders
    return np.where(swap, b, a), np.where(swap, a, b)


def fp8_pairs():
    """All 65536 (a, b) code pairs, a-major: ``a = i >> 8``, ``b = i & 255``."""
    a = np.repeat(np.arange(256, dtype=np.uint8), 256)
    b = np.tile(np.arange(256, dtype=np.uint8), 256)
    return a, b
