"""Operand generators for the vector unit's FP helpers (numpy only; shared by the
Amaranth-simulator tests in tests/rtl and the cocotb tests in tb/vector)."""
from __future__ import annotations

import numpy as np

from tb.fp.vectors import SPECIAL_F32

__all__ = ["SPECIALS", "mul_vectors", "random_f32_bits"]

#: Special binary32 patterns, both signs.
SPECIALS = np.concatenate([SPECIAL_F32, SPECIAL_F32 | np.uint32(0x8000_0000)])


def random_f32_bits(rng, n) -> np.ndarray:
    """Uniform random bit patterns."""
    return rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)


def mul_vectors(rng, n):
    """Operand pairs weighted toward the hard cases of binary32 multiplication:
    all pairs of specials, uniform patterns, products near the subnormal range and
    the overflow threshold, subnormal operands, and exact ties of the rounding."""
    sign = lambda k: rng.integers(0, 2, k, dtype=np.uint32) << np.uint32(31)   # noqa: E731
    k = max(n // 6, 1)
    groups = [(np.repeat(SPECIALS, SPECIALS.size), np.tile(SPECIALS, SPECIALS.size)),
              (random_f32_bits(rng, k), random_f32_bits(rng, k))]
    # exponents summing to 127 + t for t around the subnormal and overflow edges
    for lo, hi in ((-30, 3), (-3, 3), (120, 130)):
        ea = rng.integers(1, 255, k)
        t = rng.integers(lo, hi, k) + (0 if lo > 100 else -126)
        eb = np.clip(t + 127 - ea + 127, 0, 254)
        a = (ea.astype(np.uint32) << np.uint32(23)) | (random_f32_bits(rng, k) & np.uint32(0x7F_FFFF))
        b = (eb.astype(np.uint32) << np.uint32(23)) | (random_f32_bits(rng, k) & np.uint32(0x7F_FFFF))
        groups.append((a | sign(k), b | sign(k)))
    # one subnormal operand
    a = random_f32_bits(rng, k) & np.uint32(0x807F_FFFF)
    groups.append((a, random_f32_bits(rng, k)))
    # short significands: exact products and exact ties (few significant bits)
    a = (random_f32_bits(rng, k) & np.uint32(0xFF80_0000)) | (
        rng.integers(0, 1 << 12, k).astype(np.uint32) << np.uint32(11))
    b = (random_f32_bits(rng, k) & np.uint32(0xBF80_0000) | np.uint32(0x3F00_0000)) | (
        rng.integers(0, 1 << 13, k).astype(np.uint32) << np.uint32(10))
    groups.append((a, b))
    a = np.concatenate([g[0] for g in groups])
    b = np.concatenate([g[1] for g in groups])
    swap = rng.random(a.size) < 0.5
    return np.where(swap, b, a).astype(np.uint32), np.where(swap, a, b).astype(np.uint32)
