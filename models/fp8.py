"""OCP OFP8 formats and the golden FP8 GEMM (numpy only, no Amaranth).

Formats
-------
``E4M3`` is OCP E4M3FN: bias 7, no infinities, NaN only at ``S.1111.111``, largest
finite value 448. ``E5M2`` is IEEE-like: bias 15, ``S.11111.00`` is infinity,
``S.11111.{01,10,11}`` are NaNs, largest finite value 57344.

Encoding (float32 -> FP8, :func:`encode`)
-----------------------------------------
Round to nearest, ties to even, directly from float32 (one rounding). By default the
result saturates (SATFINITE): a finite value that rounds past the largest finite value
becomes ``±max``, and ``±inf`` becomes ``±max`` too. With ``saturate=False`` the result
is that of ml_dtypes: overflow and ``±inf`` give ``±inf`` in E5M2 and NaN in E4M3FN.
Values that round to zero keep their sign (``-1e-30 -> 0x80``). A NaN input (and every
NaN result) gives the canonical code: ``0x7F`` for E4M3 (its only positive NaN) and
``0x7E`` for E5M2 (sign 0, quiet bit set, rest 0, like FP32's ``0x7FC00000``).
ml_dtypes keeps the NaN's sign instead; the tests compare NaN-ness only there.

Products
--------
An FP8 x FP8 product is exact in float32 (:func:`fp8_product_f32`); NaN operands and
``inf * 0`` give the canonical float32 NaN ``0x7FC00000``.

GEMM accumulation order (:func:`gemm_fp8`, followed by the systolic array)
--------------------------------------------------------------------------
``K`` is cut into tiles of ``tile_k`` rows starting at ``k0 = 0, tile_k, 2*tile_k, ...``
(the last tile may be short). For each tile and each output ``(m, n)``::

    partial = +0.0f
    for k in k0 .. min(k0 + tile_k, K) - 1:          # increasing k
        partial = f32(partial + f32(a[m, k] * w[k, n]))   # one RNE rounding per add

then the tile partials are combined in increasing tile order::

    out = +0.0f
    for each tile:  out = f32(out + partial_tile)

Rows past ``K`` in the last tile are skipped (the hardware passes the partial sum
through unchanged there). Because ``partial`` starts at ``+0`` it can never be ``-0``
(``+0 + -0 = +0`` under RNE), so an exact-zero result is ``+0`` even when every product
is ``-0``; for the same reason a ``+0`` product from zero padding would not change any
result, which the tests check. Every NaN in the output is ``0x7FC00000``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.fp32 import CANONICAL_NAN_BITS, POS_INF_BITS, SIGN_BIT, canonicalize_nan

__all__ = [
    "FP8Format", "E4M3", "E5M2", "FORMATS", "FMT_E4M3", "FMT_E5M2", "decode", "encode",
    "fp8_product_f32", "gemm_fp8",
]


@dataclass(frozen=True)
class FP8Format:
    """An 8-bit floating-point format: 1 sign bit, ``exp_bits``, ``man_bits``.

    Parameters
    ----------
    name : str
        Short name (``"e4m3"`` or ``"e5m2"``).
    exp_bits, man_bits : int
        Exponent and mantissa field widths; ``1 + exp_bits + man_bits == 8``.
    bias : int
        Exponent bias.
    has_inf : bool
        True for IEEE-like formats (all-ones exponent: inf if mantissa 0, else NaN);
        False for the "FN" formats (no inf; NaN only with all-ones exponent and
        mantissa, so the all-ones exponent also holds finite values).
    """

    name: str
    exp_bits: int
    man_bits: int
    bias: int
    has_inf: bool

    def __post_init__(self):
        if self.exp_bits < 1 or self.man_bits < 1 or 1 + self.exp_bits + self.man_bits != 8:
            raise ValueError(
                f"FP8Format {self.name!r}: 1 + exp_bits ({self.exp_bits}) + man_bits "
                f"({self.man_bits}) must be 8, both >= 1")

    @property
    def max_code(self) -> int:
        """Code (sign 0) of the largest finite value."""
        if self.has_inf:
            return ((1 << self.exp_bits) - 2) << self.man_bits | ((1 << self.man_bits) - 1)
        return 0x7E

    @property
    def nan_code(self) -> int:
        """Canonical NaN code produced by :func:`encode` (0x7F E4M3, 0x7E E5M2)."""
        if self.has_inf:
            return self.inf_code | 1 << (self.man_bits - 1)   # quiet bit only
        return 0x7F

    @property
    def inf_code(self) -> int | None:
        """Code of ``+inf``, or None for formats without infinities."""
        return ((1 << self.exp_bits) - 1) << self.man_bits if self.has_inf else None

    @property
    def max_value(self) -> float:
        """Largest finite value (448.0 for E4M3, 57344.0 for E5M2)."""
        return float(_decode_table(self)[self.max_code])


E4M3 = FP8Format("e4m3", exp_bits=4, man_bits=3, bias=7, has_inf=False)
E5M2 = FP8Format("e5m2", exp_bits=5, man_bits=2, bias=15, has_inf=True)
FORMATS = {"e4m3": E4M3, "e5m2": E5M2}
#: The one-bit format select of the hardware (FP8 units, PE tile mode, ``fmt_a`` /
#: ``fmt_w`` of MATMUL commands).
FMT_E4M3 = 0
FMT_E5M2 = 1

_TABLES: dict[FP8Format, np.ndarray] = {}


def _decode_table(fmt: FP8Format) -> np.ndarray:
    """Float32 value of each of the 256 codes, computed exactly with integers."""
    if fmt not in _TABLES:
        codes = np.arange(256, dtype=np.int64)
        sign = codes >> 7
        e = (codes >> fmt.man_bits) & ((1 << fmt.exp_bits) - 1)
        m = codes & ((1 << fmt.man_bits) - 1)
        # value = sig * 2**(exp - man_bits), subnormals use exp = 1 - bias.
        sig = np.where(e == 0, m, m | (1 << fmt.man_bits))
        exp = np.maximum(e, 1) - fmt.bias - fmt.man_bits
        val = np.ldexp(sig.astype(np.float64), exp)  # exact: <= 4 significant bits
        val = np.where(sign == 1, -val, val)
        e_max = (1 << fmt.exp_bits) - 1
        if fmt.has_inf:
            val = np.where((e == e_max) & (m == 0), np.where(sign == 1, -np.inf, np.inf), val)
            nan = (e == e_max) & (m != 0)
        else:
            nan = (e == e_max) & (m == (1 << fmt.man_bits) - 1)
        table = val.astype(np.float32)
        table.view(np.uint32)[nan] = CANONICAL_NAN_BITS
        table.setflags(write=False)
        _TABLES[fmt] = table
    return _TABLES[fmt]


def _check_fmt(fmt) -> FP8Format:
    if isinstance(fmt, str) and fmt in FORMATS:
        return FORMATS[fmt]
    if not isinstance(fmt, FP8Format):
        raise TypeError(f"expected an FP8Format or one of {sorted(FORMATS)}, got {fmt!r}")
    return fmt


def _check_codes(codes, what="codes") -> np.ndarray:
    codes = np.asarray(codes)
    if codes.dtype == np.uint8:
        return codes
    if not np.issubdtype(codes.dtype, np.integer):
        raise TypeError(f"{what} must be an integer array of FP8 codes, got dtype {codes.dtype}")
    if codes.size and (codes.min() < 0 or codes.max() > 255):
        bad = codes[(codes < 0) | (codes > 255)].flat[0]
        raise ValueError(f"{what} must lie in 0..255, got {bad}")
    return codes.astype(np.uint8)


def decode(codes, fmt) -> np.ndarray:
    """Exact float32 values of FP8 codes (NaN codes give ``0x7FC00000``).

    Parameters
    ----------
    codes : array_like of uint8
        FP8 bit patterns.
    fmt : FP8Format or str
        ``E4M3``/``E5M2`` (or ``"e4m3"``/``"e5m2"``).
    """
    return _decode_table(_check_fmt(fmt))[_check_codes(codes)]


def encode(x, fmt, *, saturate: bool = True) -> np.ndarray:
    """Round float32 values to FP8 codes (RNE, saturating by default).

    Works on the float32 bit patterns with integer arithmetic (no ml_dtypes): this is
    the golden model of the hardware converters.

    Parameters
    ----------
    x : array_like of float32
        Values; other dtypes raise TypeError (a silent cast would round twice).
    fmt : FP8Format or str
        Target format.
    saturate : bool
        True (default, SATFINITE): overflow and ``±inf`` give ``±max``.
        False (ml_dtypes): overflow and ``±inf`` give ``±inf`` (E5M2) or NaN (E4M3).

    Returns
    -------
    numpy.ndarray of uint8
        Codes; NaN (input, or overflow to NaN) gives ``fmt.nan_code``.
    """
    fmt = _check_fmt(fmt)
    x = np.asarray(x)
    if x.dtype != np.float32:
        raise TypeError(f"encode expects float32 input, got dtype {x.dtype}: cast explicitly")
    bits = x.view(np.uint32).astype(np.int64)
    sign = (bits >> 31) << 7
    mag = bits & ~SIGN_BIT
    is_nan = mag > POS_INF_BITS
    is_inf = mag == POS_INF_BITS
    e32 = mag >> 23
    sig = np.where(e32 == 0, mag & 0x7F_FFFF, (mag & 0x7F_FFFF) | 0x80_0000)
    unbiased = np.maximum(e32, 1) - 127          # value = sig * 2**(unbiased - 23)
    # Keep man_bits fraction bits, more below the FP8 normal range (subnormal step).
    shift = 23 - fmt.man_bits + np.maximum(0, 1 - fmt.bias - unbiased)
    shift = np.minimum(shift, 40)                  # sig < 2**24: beyond 25 all is sticky
    q = sig >> shift
    rem = sig & ((np.int64(1) << shift) - 1)
    half = np.int64(1) << (shift - 1)
    q = q + ((rem > half) | ((rem == half) & ((q & 1) == 1)))
    # Normal: exponent field (unbiased + bias) above the hidden bit; a rounding carry
    # into bit man_bits+1 bumps the exponent by itself. Subnormal: q is the code.
    code = q + ((np.maximum(unbiased + fmt.bias, 1) - 1) << fmt.man_bits)
    overflow = is_inf | (~is_nan & (code > fmt.max_code))
    if saturate:
        code = np.where(overflow, fmt.max_code, code)
    elif fmt.has_inf:
        code = np.where(overflow, fmt.inf_code, code)
    else:
        is_nan = is_nan | overflow
    code = np.where(is_nan, fmt.nan_code, code | sign)
    return code.astype(np.uint8)


def fp8_product_f32(a_codes, fmt_a, b_codes, fmt_b) -> np.ndarray:
    """Exact float32 product of FP8 codes (golden model of ``FP8Multiplier``).

    The product is exact in float32: significands have at most 4 bits (E4M3, with the
    hidden bit) so a product has at most 8 significant bits <= 24; magnitudes lie in
    ``[2**-32, 57344**2 < 2**32]`` (smallest E5M2 subnormal 2**-16 squared), inside the
    float32 *normal* range, so no rounding, overflow or underflow can occur.

    Parameters
    ----------
    a_codes, b_codes : array_like of uint8
        Operand codes (broadcast together).
    fmt_a, fmt_b : FP8Format or str
        Operand formats.

    Returns
    -------
    numpy.ndarray of float32
        Products; zero sign is the XOR of signs; NaN operand or ``inf * 0`` gives
        ``0x7FC00000``; ``inf`` times a nonzero finite value is a signed ``inf``.
    """
    a = decode(a_codes, fmt_a)
    b = decode(b_codes, fmt_b)
    with np.errstate(invalid="ignore"):
        p = np.multiply(a, b, dtype=np.float32)
    return canonicalize_nan(p)


def gemm_fp8(a_codes, fmt_a, w_codes, fmt_w, *, tile_k: int) -> np.ndarray:
    """Golden FP8 GEMM ``A[M,K] @ W[K,N] -> float32[M,N]`` in the hardware's order.

    Products are exact (:func:`fp8_product_f32`); sums follow the module docstring:
    along ``k`` inside each ``tile_k`` tile starting from ``+0``, one float32 rounding
    per add, then tile partials into ``out = +0`` in increasing tile order. Rows past
    ``K`` in the last tile are skipped, not padded (the hardware passes the partial
    sum through unchanged there).

    Parameters
    ----------
    a_codes : array_like of uint8, shape (M, K)
        Activation codes in ``fmt_a``.
    w_codes : array_like of uint8, shape (K, N)
        Weight codes in ``fmt_w``.
    fmt_a, fmt_w : FP8Format or str
        Operand formats.
    tile_k : int
        Rows of ``K`` per tile (the systolic array's row count), >= 1.

    Returns
    -------
    numpy.ndarray of float32, shape (M, N)
        Every NaN is ``0x7FC00000``.

    Raises
    ------
    ValueError
        On bad shapes or ``tile_k``.
    """
    a = decode(_check_codes(a_codes, "a_codes"), fmt_a)
    w = decode(_check_codes(w_codes, "w_codes"), fmt_w)
    if a.ndim != 2 or w.ndim != 2 or a.shape[1] != w.shape[0]:
        raise ValueError(f"gemm_fp8 needs (M,K) @ (K,N), got {a.shape} @ {w.shape}")
    if isinstance(tile_k, bool) or not isinstance(tile_k, (int, np.integer)) or tile_k < 1:
        raise ValueError(f"tile_k must be an integer >= 1, got {tile_k!r}")
    m_dim, k_dim = a.shape
    n_dim = w.shape[1]
    out = np.zeros((m_dim, n_dim), dtype=np.float32)
    partial = np.empty_like(out)
    prod = np.empty_like(out)
    with np.errstate(all="ignore"):
        for k0 in range(0, k_dim, int(tile_k)):
            partial.fill(0.0)
            for k in range(k0, min(k0 + int(tile_k), k_dim)):
                np.multiply(a[:, k, None], w[None, k, :], out=prod)   # exact
                np.add(partial, prod, out=partial)                     # RNE float32
            np.add(out, partial, out=out)
    # NaN propagates through every add, so canonicalising once at the end gives the
    # same bits as canonicalising after each operation (as the hardware does).
    return canonicalize_nan(out)
