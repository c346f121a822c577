"""binary32 fields and special values as Amaranth expressions.

The layout (field widths, all-ones exponent, sign bit) and the bit patterns of the
special values come from :mod:`models.fp32`, the golden model's module; the FP units
(rtl/fp, rtl/vector) read them through these helpers instead of writing ``[23:31]`` or
``0x7F800000`` themselves.
"""
from __future__ import annotations

from amaranth import Cat, Const

from models.fp32 import EXP_BITS, EXP_MAX, MAN_BITS

__all__ = ["fraction", "exponent", "sign", "magnitude", "is_nan", "is_inf", "inf", "zero"]

_SIGN = MAN_BITS + EXP_BITS


def fraction(x):
    """The 23-bit fraction field of binary32 bits ``x``."""
    return x[:MAN_BITS]


def exponent(x):
    """The 8-bit biased exponent field of ``x``."""
    return x[MAN_BITS:_SIGN]


def sign(x):
    """The sign bit of ``x``."""
    return x[_SIGN]


def magnitude(x):
    """``x`` without its sign bit (31 bits; compares like ``|x|`` for non-NaN values)."""
    return x[:_SIGN]


def is_nan(x):
    """``x`` is a NaN (all-ones exponent, nonzero fraction)."""
    return (exponent(x) == EXP_MAX) & (fraction(x) != 0)


def is_inf(x):
    """``x`` is ``±inf`` (all-ones exponent, zero fraction)."""
    return (exponent(x) == EXP_MAX) & (fraction(x) == 0)


def inf(sign_bit):
    """The bits of ``±inf`` with sign ``sign_bit``."""
    return Cat(Const(0, MAN_BITS), Const(EXP_MAX, EXP_BITS), sign_bit)


def zero(sign_bit):
    """The bits of ``±0`` with sign ``sign_bit``."""
    return Cat(Const(0, _SIGN), sign_bit)
