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
(the last tile may be short). For each tile and each output ``(m, n)`` the products
``a[m, k] * w[k, n]`` of the tile are summed *exactly* and the exact sum is rounded
once to binary32 (round to nearest, ties to even)::

    partial = RNE_f32( sum_{k in tile} a[m, k] * w[k, n] )      # exact sum, one rounding

then the tile partials are combined in increasing tile order with binary32 adds::

    out = +0.0f
    for each tile:  out = f32(out + partial_tile)              # one RNE rounding per add

The exact sum is what the array computes: every FP8 x FP8 product is an integer
multiple of ``2**-PRODUCT_FRAC_BITS`` (``2**-32``) below ``2**PRODUCT_MAG_BITS`` times
that unit, so a column of ``tile_k`` products sums without error in a two's-complement
word of :func:`acc_fixed_bits` bits, rounded once at the bottom of the column. The
rounding cannot overflow or underflow: a nonzero sum has magnitude in ``[2**-32,
tile_k * 2**32)``, inside the binary32 normal range for ``tile_k <= 2**95``.

Special values: a tile with a NaN product (NaN operand, ``inf * 0``), or with both a
``+inf`` and a ``-inf`` product, gives NaN; otherwise an infinite product gives that
infinity; an exact-zero sum is ``+0`` (also when every product is ``-0``), so zero
padding of ``K`` (code 0 in both operands) changes no result, which the tests check.
Rows past ``K`` in the last tile are skipped (the hardware passes the sum through
unchanged there). Every NaN in the output is ``0x7FC00000``.

Accuracy: each tile partial is within half an ulp of the exact tile sum, so the error
bound of the chained sum (docs/numerics.md) holds with depth ``ceil(K / tile_k) + 1``
instead of ``tile_k + ceil(K / tile_k)``; tests/models/test_fp8.py checks that the
result is never further from the float64 reference than the former order (one binary32
add per product).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from models.fp32 import CANONICAL_NAN_BITS, POS_INF_BITS, SIGN_BIT, canonicalize_nan

__all__ = [
    "FP8Format", "E4M3", "E5M2", "FORMATS", "FMT_E4M3", "FMT_E5M2", "decode", "encode",
    "fp8_product_f32", "gemm_fp8", "OPERAND_FRAC_BITS", "PRODUCT_FRAC_BITS",
    "PRODUCT_MAG_BITS", "acc_fixed_bits", "fp8_fixed", "fp8_product_fixed",
    "round_fixed_f32",
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


# --- exact fixed-point products and sums (the systolic array's FP8 accumulation) -----

def _lsb_exp(fmt: FP8Format) -> int:
    """Exponent of the smallest subnormal: every finite value is a multiple of 2**it."""
    return 1 - fmt.bias - fmt.man_bits


#: Every finite FP8 value of every format is an integer multiple of
#: ``2**-OPERAND_FRAC_BITS`` (16: E5M2's smallest subnormal is ``2**-16``).
OPERAND_FRAC_BITS = -min(_lsb_exp(f) for f in FORMATS.values())
#: Every FP8 x FP8 product (any format pair) is an integer multiple of
#: ``2**-PRODUCT_FRAC_BITS`` (32): the unit of the array's fixed-point column sums.
PRODUCT_FRAC_BITS = 2 * OPERAND_FRAC_BITS
#: Bits of the largest product magnitude in units of ``2**-PRODUCT_FRAC_BITS``
#: (64: ``57344**2 * 2**32 < 2**64``), over all format pairs.
PRODUCT_MAG_BITS = max(
    int(Fraction(fa.max_value) * Fraction(fb.max_value) * 2**PRODUCT_FRAC_BITS).bit_length()
    for fa in FORMATS.values() for fb in FORMATS.values())
#: An operand in units of ``2**-OPERAND_FRAC_BITS`` has at most this many bits (32).
_OPERAND_MAG_BITS = max(int(Fraction(f.max_value) * 2**OPERAND_FRAC_BITS).bit_length()
                        for f in FORMATS.values())


def acc_fixed_bits(rows: int) -> int:
    """Width of the two's-complement word that holds any sum of ``rows`` products
    exactly: ``PRODUCT_MAG_BITS + ceil(log2(rows)) + 1`` (sign), 69 for 16 rows.

    The systolic array's FP8 partial sums (``rtl.systolic``) have this width; INT8 tiles
    use the same adders (their INT32 result is the low 32 bits).
    """
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 1:
        raise ValueError(f"rows must be an integer >= 1, got {rows!r}")
    return PRODUCT_MAG_BITS + (int(rows) - 1).bit_length() + 1


def fp8_fixed(codes, fmt) -> tuple[np.ndarray, np.ndarray]:
    """FP8 codes as exact integers in units of ``2**-OPERAND_FRAC_BITS``.

    Returns
    -------
    (value, finite) : (numpy.ndarray of int64, numpy.ndarray of bool)
        Signed integer values (``|value| < 2**32``; 0 for NaN and inf codes) and the
        mask of finite codes.
    """
    v = decode(codes, fmt).astype(np.float64)
    finite = np.isfinite(v)
    scaled = np.ldexp(np.where(finite, v, 0.0), OPERAND_FRAC_BITS)   # exact integers
    return scaled.astype(np.int64), finite


def fp8_product_fixed(a_codes, fmt_a, b_codes, fmt_b):
    """Exact FP8 x FP8 product in units of ``2**-PRODUCT_FRAC_BITS`` (golden model of
    ``rtl.fp.fp8_fixed_mul.FP8FixedMultiplier``).

    Returns
    -------
    (mag, neg, nan, inf) : numpy arrays (uint64, bool, bool, bool)
        ``mag`` is ``|a * b| * 2**32`` (0 for NaN and inf products), ``neg`` the XOR
        of the codes' sign bits (the product's sign; also set for NaN products), ``nan`` a NaN product (NaN operand or
        ``inf * 0``), ``inf`` an infinite product (not NaN).
    """
    a = decode(a_codes, fmt_a)
    b = decode(b_codes, fmt_b)
    ia, fa = fp8_fixed(a_codes, fmt_a)
    ib, fb = fp8_fixed(b_codes, fmt_b)
    mag = np.abs(ia).astype(np.uint64) * np.abs(ib).astype(np.uint64)   # < 2**64
    sa = (_check_codes(a_codes) >> 7).astype(bool)          # sign bits of the codes
    sb = (_check_codes(b_codes) >> 7).astype(bool)
    nan = np.isnan(a) | np.isnan(b) | (np.isinf(a) & (b == 0)) | ((a == 0) & np.isinf(b))
    inf = (np.isinf(a) | np.isinf(b)) & ~nan
    return mag, sa ^ sb, nan, inf


def _round_hi_lo(hi, lo) -> np.ndarray:
    """RNE binary32 of ``(hi + lo * 2**-32)`` for int64 ``hi`` (``|hi| < 2**52``) and
    ``lo`` in ``[0, 2**32)``: the exact sum ``hi * 2**32 + lo`` in units of ``2**-32``.

    ``H + L`` in float64 by TwoSum gives ``s = fl64(x)`` and the exact error ``e``. The
    binary32 midpoints are float64 numbers, so RNE32(s) = RNE32(x) unless ``s`` is a
    midpoint that ``x`` is not: then ``s`` moves one float64 ulp towards ``x``.
    """
    big = np.ldexp(np.asarray(hi, np.int64).astype(np.float64), 0)     # exact
    small = np.ldexp(np.asarray(lo, np.int64).astype(np.float64), -32)  # exact
    s = big + small
    bp = s - big
    err = (big - (s - bp)) + (small - bp)
    # |x| >= 2**-32 when nonzero: float64 normal and binary32 normal, so the binary32
    # midpoints are the float64s whose 29 fraction bits below binary32's are 100..0.
    low = s.view(np.uint64) & np.uint64((1 << 29) - 1)
    tie = np.nonzero((low == np.uint64(1 << 28)) & (err != 0))
    s[tie] = np.nextafter(s[tie], np.where(err[tie] > 0, np.inf, -np.inf))
    return (s + 0.0).astype(np.float32)       # + 0.0: an exact zero is +0


def round_fixed_f32(sums) -> np.ndarray:
    """RNE binary32 of exact sums given as integers in units of ``2**-PRODUCT_FRAC_BITS``
    (golden model of ``rtl.fp.fixed_to_f32.FixedToF32``).

    Parameters
    ----------
    sums : array_like of int (Python ints or int64)
        Exact values, ``|sum| < 2**84``.

    Returns
    -------
    numpy.ndarray of float32
        Round to nearest, ties to even; ``0 -> +0``.
    """
    flat = [int(v) for v in np.asarray(sums, dtype=object).ravel()]
    hi = np.array([v >> 32 for v in flat], np.int64).reshape(np.shape(sums))
    lo = np.array([v & 0xFFFF_FFFF for v in flat], np.int64).reshape(np.shape(sums))
    return _round_hi_lo(hi, lo)


# Limbs of the A operand for float64 matmuls that are exact whatever BLAS's summation
# order: |limb| < 2**11, |b| < 2**32, so a product is < 2**43 and up to 2**10 of them
# sum exactly (< 2**53).
_LIMB_BITS = 11
_LIMBS = -(-_OPERAND_MAG_BITS // _LIMB_BITS)
_CHUNK_K = 1 << (52 - _LIMB_BITS - _OPERAND_MAG_BITS)


def _exact_sum_hi_lo(ia, ib):
    """Exact ``ia @ ib`` (int64 operands below ``2**32``) as ``hi * 2**32 + lo``."""
    hi = np.zeros((ia.shape[0], ib.shape[1]), np.int64)
    lo = np.zeros_like(hi)
    mask = (1 << 32) - 1
    for c0 in range(0, ia.shape[1], _CHUNK_K):
        a, b = ia[:, c0:c0 + _CHUNK_K], ib[c0:c0 + _CHUNK_K].astype(np.float64)
        for j in range(_LIMBS):
            limb = a >> (_LIMB_BITS * j)
            if j < _LIMBS - 1:
                limb = limb & ((1 << _LIMB_BITS) - 1)     # the top limb keeps the sign
            t = (limb.astype(np.float64) @ b).astype(np.int64)    # exact, < 2**52
            sh = _LIMB_BITS * j                                    # t * 2**sh
            if sh < 32:
                lo += (t & ((1 << (32 - sh)) - 1)) << sh
                hi += t >> (32 - sh)
            else:
                hi += t << (sh - 32)
            hi += lo >> 32
            lo &= mask
    return hi, lo


def _special_flags(a, w):
    """(nan, pinf, ninf) of each output of ``a @ w`` (float32 values, some non-finite)."""
    f = np.float64

    def mm(x, y):
        return (x.astype(f) @ y.astype(f)) > 0

    nan = (mm(np.isnan(a), np.ones(w.shape, bool)) | mm(np.ones(a.shape, bool), np.isnan(w))
           | mm(np.isinf(a), w == 0) | mm(a == 0, np.isinf(w)))
    pa, na, pw, nw = a > 0, a < 0, w > 0, w < 0                     # NaN is neither
    ia_p, ia_n, iw_p, iw_n = a == np.inf, a == -np.inf, w == np.inf, w == -np.inf
    pinf = mm(ia_p, pw) | mm(ia_n, nw) | mm(pa, iw_p) | mm(na, iw_n)
    ninf = mm(ia_p, nw) | mm(ia_n, pw) | mm(pa, iw_n) | mm(na, iw_p)
    return nan | (pinf & ninf), pinf, ninf


def _trailing_zeros(v) -> int:
    """Trailing zero bits common to every nonzero element of an int64 array."""
    low = v & -v
    low = low[low != 0]
    return int(low.min()).bit_length() - 1 if low.size else 0


def gemm_fp8(a_codes, fmt_a, w_codes, fmt_w, *, tile_k: int) -> np.ndarray:
    """Golden FP8 GEMM ``A[M,K] @ W[K,N] -> float32[M,N]`` in the hardware's order.

    Each ``tile_k`` tile of ``K`` is summed exactly and rounded once to binary32
    (round to nearest even); tile partials are then added in increasing tile order into
    ``out = +0`` with binary32 adds (module docstring). Vectorised: operands become
    integers in units of ``2**-16`` (:func:`fp8_fixed`), the exact tile sums come from
    float64 matmuls on 11-bit limbs of ``A`` (every partial sum an integer below
    ``2**53``, so exact in any order), and are rounded with :func:`_round_hi_lo`; when
every product sum fits 53 bits (E4M3 x E4M3) one float64 matmul is already exact.

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
    a_codes = _check_codes(a_codes, "a_codes")
    w_codes = _check_codes(w_codes, "w_codes")
    a = decode(a_codes, fmt_a)
    w = decode(w_codes, fmt_w)
    if a.ndim != 2 or w.ndim != 2 or a.shape[1] != w.shape[0]:
        raise ValueError(f"gemm_fp8 needs (M,K) @ (K,N), got {a.shape} @ {w.shape}")
    if isinstance(tile_k, bool) or not isinstance(tile_k, (int, np.integer)) or tile_k < 1:
        raise ValueError(f"tile_k must be an integer >= 1, got {tile_k!r}")
    ia, _ = fp8_fixed(a_codes, fmt_a)
    iw, _ = fp8_fixed(w_codes, fmt_w)
    m_dim, k_dim = a.shape
    out = np.zeros((m_dim, w.shape[1]), dtype=np.float32)
    tk = min(int(tile_k), k_dim)
    # Operands whose products span few bits (E4M3 x E4M3: below 2**36 units of the
    # smallest product) sum exactly in one float64 matmul, which a single cast then
    # rounds (+ 0.0 turns BLAS's -0 into +0). The operands' common trailing zeros are
    # shifted out first.
    sa, sw = _trailing_zeros(ia), _trailing_zeros(iw)
    one_matmul = (int(np.abs(ia).max(initial=0)) >> sa) * (int(np.abs(iw).max(initial=0)) >> sw
                                                             ) * tk < 1 << 53
    fa, fw = np.ldexp(ia.astype(np.float64), -sa), np.ldexp(iw.astype(np.float64), -sw)
    with np.errstate(all="ignore"):
        for k0 in range(0, k_dim, int(tile_k)):
            ks = slice(k0, k0 + int(tile_k))
            if one_matmul:
                partial = (np.ldexp(fa[:, ks] @ fw[ks], sa + sw - PRODUCT_FRAC_BITS) + 0.0
                           ).astype(np.float32)
            else:
                partial = _round_hi_lo(*_exact_sum_hi_lo(ia[:, ks], iw[ks]))
            if not (np.isfinite(a[:, ks]).all() and np.isfinite(w[ks]).all()):
                nan, pinf, ninf = _special_flags(a[:, ks], w[ks])
                partial[pinf] = np.inf
                partial[ninf] = -np.inf
                partial[nan] = np.nan
            np.add(out, partial, out=out)                       # RNE float32
    # NaN propagates through every add, so canonicalising once at the end gives the
    # same bits as canonicalising after each operation (as the hardware does).
    return canonicalize_nan(out)
