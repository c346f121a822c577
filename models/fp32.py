"""Golden model of IEEE binary32 arithmetic as the hardware does it (numpy only).

The hardware's FP32 arithmetic is numpy's IEEE float32 arithmetic (round to nearest,
ties to even, subnormals kept, no flush to zero), with one change: every NaN a unit
produces is the canonical quiet NaN ``0x7FC00000`` (positive, quiet bit only). numpy
may return other NaN bit patterns (x86 gives ``0xFFC00000`` for ``inf - inf``, or it
passes an input NaN payload through), so the models canonicalise before comparing bits
with the RTL.

This module is the golden model of ``rtl.fp.fp32_add.FP32Adder``
(:func:`fp32_add_bits`). See ``docs/numerics.md``.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "MAN_BITS", "EXP_BITS", "EXP_BIAS", "EXP_MAX", "SIGN_BIT",
    "POS_INF_BITS", "NEG_INF_BITS", "ONE_BITS", "CANONICAL_NAN_BITS",
    "f32_to_bits", "bits_to_f32", "canonicalize_nan", "fp32_add", "fp32_add_bits",
]

# --- binary32 bit layout: sign (bit 31) | exponent (bits 30..23) | fraction (22..0) ---
#: Fraction (mantissa) field width; the exponent field starts at this bit.
MAN_BITS = 23
#: Exponent field width.
EXP_BITS = 8
#: Exponent bias (a normal value is ``1.f * 2**(e - EXP_BIAS)``).
EXP_BIAS = 127
#: The all-ones exponent field: infinities (fraction 0) and NaNs (fraction != 0).
EXP_MAX = (1 << EXP_BITS) - 1
#: The sign bit (``x ^ SIGN_BIT`` negates, ``x | SIGN_BIT`` is ``-|x|``).
SIGN_BIT = 1 << (MAN_BITS + EXP_BITS)

# --- values the datapaths use, as bit patterns ---------------------------------------
POS_INF_BITS = EXP_MAX << MAN_BITS                 # 0x7F800000
NEG_INF_BITS = SIGN_BIT | POS_INF_BITS             # 0xFF800000
ONE_BITS = EXP_BIAS << MAN_BITS                    # 0x3F800000
#: The only NaN the hardware produces: sign 0, exponent all ones, quiet bit set.
CANONICAL_NAN_BITS = POS_INF_BITS | 1 << (MAN_BITS - 1)    # 0x7FC00000


def f32_to_bits(x) -> np.ndarray:
    """Return the bit patterns of a float32 array as ``uint32`` (no conversion).

    Raises
    ------
    TypeError
        If ``x`` is not float32 (a silent cast could round).
    """
    x = np.asarray(x)
    if x.dtype != np.float32:
        raise TypeError(f"expected a float32 array, got dtype {x.dtype}")
    return x.view(np.uint32)


def bits_to_f32(bits) -> np.ndarray:
    """Return the float32 values of an array of ``uint32`` bit patterns."""
    bits = np.asarray(bits)
    if bits.dtype != np.uint32:
        if np.any((bits < 0) | (bits > 0xFFFF_FFFF)):
            raise ValueError("bit patterns must lie in 0 .. 2**32-1")
        bits = bits.astype(np.uint32)
    return bits.view(np.float32)


def canonicalize_nan(x) -> np.ndarray:
    """Return a float32 copy of ``x`` with every NaN replaced by ``0x7FC00000``."""
    x = np.array(x, dtype=np.float32, copy=True)
    bits = x.view(np.uint32)
    bits[np.isnan(x)] = CANONICAL_NAN_BITS
    return x


def fp32_add(a, b) -> np.ndarray:
    """IEEE binary32 addition with canonical NaN (float32 in, float32 out).

    Parameters
    ----------
    a, b : array_like of float32
        Operands (broadcast together).

    Returns
    -------
    numpy.ndarray of float32
        ``a + b`` rounded to nearest even, NaN canonicalised.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    for name, v in (("a", a), ("b", b)):
        if v.dtype != np.float32:
            raise TypeError(f"fp32_add: {name} must be float32, got dtype {v.dtype}")
    with np.errstate(all="ignore"):
        s = np.add(a, b, dtype=np.float32)
    return canonicalize_nan(s)


def fp32_add_bits(a_bits, b_bits) -> np.ndarray:
    """Golden model of ``FP32Adder``: add two arrays of binary32 bit patterns.

    Parameters
    ----------
    a_bits, b_bits : array_like of uint32
        Operand bit patterns (broadcast together).

    Returns
    -------
    numpy.ndarray of uint32
        Bits of the float32 sum: round to nearest even, subnormals in and out,
        ``x + (-x) = +0``, ``-0 + -0 = -0``, ``inf + -inf = NaN``, overflow to
        ``inf``, every NaN result ``0x7FC00000``.
    """
    return f32_to_bits(fp32_add(bits_to_f32(a_bits), bits_to_f32(b_bits)))
