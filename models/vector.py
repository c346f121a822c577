"""Golden model of the vector unit (``rtl.vector.unit.VectorUnit``), numpy only.

The vector unit runs VECTOR :class:`models.tensor_cmd.TensorCmd` s on rows of the
accumulator SRAM. Everything here is integer-exact or IEEE binary32 as numpy computes
it (round to nearest even, subnormals kept), with every NaN the canonical
``0x7FC00000``; the RTL is bit-exact to it. docs/vector_unit.md has the error bounds.

Data
----
``L = config.systolic.cols`` lanes. An accumulator row is ``L`` 32-bit words
(``uint32[rows, L]``), an activation row ``R = config.systolic.rows`` 8-bit codes
(``uint8[rows, R]``). Per-row softmax state (:class:`VectorState`, depth
``config.tensor.acc_rows``): ``m`` running max, ``l`` running sum, ``alpha`` rescale
factor, ``beta`` scale of the newest contribution (block scale or merge), all binary32,
and ``k`` (integer ``0 .. K_MAX``) the block-scale exponent.

Row ``i`` of a command (``i = 0 .. count-1``) reads ``x = acc[src+i]``, ``b =
acc[src2+i]``, uses ``state[state+i]`` and writes row ``dst+i``. Rows are independent;
the model reads every source row before writing any, which is also what the RTL does
unless a written row is read again by a *later* row of the same command
(``src < dst < src + count``, or the same for ``src2``): such partial overlaps are
not allowed (in-place, ``dst == src``, is fine).

Primitives
----------
``fmul``  IEEE binary32 multiply (numpy float32, canonical NaN).
``fadd``  :func:`models.fp32.fp32_add`.
``i2f``   int32 -> binary32, round to nearest even (numpy's cast).
``max``   NaN if either operand is NaN, else the larger; equal values (``+0``/``-0``)
          keep the left operand.
``row_max`` fixed binary tree of ``max`` over the lanes padded to a power of two with
          ``-inf``; level by level, pairs ``(2k, 2k+1)``, left = lower lane.
``row_sum`` the same tree of ``fadd``, padded with ``+0``.
``exp_approx``, ``recip_approx``: table + linear interpolation, integer-exact
          (:func:`exp_approx`, :func:`recip_approx`).

Stage A (every op except STATE_INIT and REQUANT)
-------------------------------------------------
``a = fmul(in_int ? i2f(int32 x) : x, imm)``; then lane ``j`` is *masked* (``a =
-inf``) if ``causal and k_base + j > q_base + i`` or ``pad and k_base + j >= kv_len``
(exact integer comparisons, no wrap-around).

Operations (``y`` is the row written, through the output stage)
----------------------------------------------------------------
COPY        ``y = a``.
ROWMAX      ``mb = row_max(a)``; ``m_new = max(m, mb)``; ``alpha = 1.0 if m_new ==
            -inf else exp_approx(fadd(m, -m_new))``; ``m = m_new``. Block scale: with
            ``bscale``, ``g = exp_approx(fadd(mb, -m_new))`` (the block's largest
            probability, as EXP will compute it), ``k = clamp(126 - E(g), 0, K_MAX)``
            with ``E`` the biased exponent field of ``g``'s bits (so ``g * 2**k`` is in
            [0.5, 1] when ``g`` is normal and ``k`` is not clamped); without ``bscale``
            ``k = 0``. ``beta = 2**-k`` (binary32, exact). No write.
EXP         ``e = +0 if a == -inf else exp_approx(fadd(a, -m))``; with ``bscale``
            ``e = fmul(e, 2**k)`` (exact: ``e`` is ``+0``, NaN or normal <= 1);
            ``out`` = output stage of ``e``; ``l = fadd(fmul(l, alpha), s)`` with ``s =
            row_sum(deq(out))``, times ``beta`` with ``bscale`` (``fmul(s, beta)``),
            where ``deq(out)`` is the binary32 value of what was written (FP32: the
            value, INT8: ``float(q)``, FP8: :func:`models.fp8.decode`, BF16: the bf16
            value).
RESCALE     ``y = fadd(fmul(b, alpha), a)``; with ``bscale`` ``fadd(fmul(b, alpha),
            fmul(a, beta))``.
NORM        ``y = +0`` (all lanes) if ``l`` is ``±0``, else ``fmul(a, recip_approx(l))``.
STATE_INIT  ``m = -inf, l = +0, alpha = 1.0, beta = 1.0, k = 0``. No read, no write.
BIAS        ``y = fadd(a, b)``.
RELU        ``y = a`` if ``a`` is NaN (canonical) or has sign 0, else ``+0``
            (``-0`` and ``-inf`` give ``+0``).
GELU        :func:`gelu_approx` (``a * sigmoid(1.702 a)``).
REQUANT     integer, no stage A, no mask: :func:`requant`; output INT8 only.
RECIP       ``y = recip_approx(a)``.
ROWSUM      ``l = fadd(fmul(l, alpha), row_sum(a))``. No write.
STATE_STORE no read, no stage A, no output stage: writes the accumulator row
            ``[m, l, +0, ...]`` (binary32 bits; ``out_fmt`` FP32, not ``dst_act``).
STATE_MERGE merges a partial softmax stored by STATE_STORE (flash-decoding's combine):
            ``m_s, l_s = a[0], a[1]`` (stage A applies); ``m_new = max(m, m_s)``;
            ``alpha = 1.0 if m_new == -inf else exp_approx(fadd(m, -m_new))``, ``beta``
            the same with ``m_s``; ``l = fadd(fmul(l, alpha), fmul(l_s, beta))``;
            ``m = m_new``; ``k = 0``. No write. A RESCALE with ``bscale`` then merges
            the partial's unnormalized output rows: ``O = O * alpha + O_s * beta``.
TOPK        sorts the lanes of ``a`` by value, descending (:func:`topk_perm`: compared
            as numbers, ``-0 == +0``, NaN above ``+inf``, all NaN equal, equal values
            keep the lower lane first); ``perm[r]`` = the lane of rank ``r``.
            ``dst_act = 0``: ``y[r] = a[perm[r]]`` (the sorted values, through the
            output stage). ``dst_act = 1`` (``out_fmt`` INT8): activation byte ``r`` =
            ``perm[r]`` (the lane ids; no output stage). No state change.
STATE_LOAD  ``alpha = a[k_base]`` (stage A applies, so a masked lane loads ``-inf``);
            nothing else in the state changes; no write. ``k_base >= L`` is illegal
            (``ErrCode.BAD_LANE``). With RESCALE after it (``y = fadd(fmul(b, alpha),
            a)``), a per-row weight from a row's lane scales another row: MoE's
            combine ``out = fadd(out, fmul(w, y))``.

Negation (``-m``) flips the sign bit (of NaN too; a NaN operand gives the canonical
NaN anyway). ``-`` in ``fadd(a, -m)`` is exact.

Output stage (every writing op except REQUANT and TOPK to the activation SRAM)
----------------------------------------------
``o = fmul(y, imm2)``, then by ``out_fmt``:

FP32  the bits of ``o``.
INT8  :func:`to_int8`: round half to even to an integer, saturate to [-128, 127],
      NaN -> 0.
E4M3, E5M2  :func:`models.fp8.encode` (saturating; canonical NaN codes).
BF16  :func:`to_bf16`: round to nearest even to bfloat16, saturate to ``±max finite``
      (``0x7F7F``; ``±inf`` too), NaN -> ``0x7FC0``.

Destination: ``dst_act = 1`` writes the L 8-bit codes to activation row ``dst+i``
(INT8 as a two's-complement byte, FP8 as the code; ``R == C`` is required by
:func:`models.tensor_cmd.check`). ``dst_act = 0`` writes 32-bit words to accumulator
row ``dst+i``: FP32 bits, INT8 sign-extended, FP8 code zero-extended, BF16 as
``bf16 << 16``.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, getcontext
from fractions import Fraction

import numpy as np

from models.fp8 import E4M3, E5M2, decode, encode
from models.fp32 import (
    CANONICAL_NAN_BITS, EXP_MAX, POS_INF_BITS, SIGN_BIT, canonicalize_nan, fp32_add)
from models.tensor_cmd import OutFmt, TensorCmd, VecOp, VECTOR_READS_SRC2

__all__ = [
    "VectorState", "vector_execute", "stage_a", "output_stage", "dequant_written",
    "topk_perm", "order_key",
    "fmul", "fadd", "fneg", "i2f", "fmax", "row_max", "row_sum",
    "exp_approx", "recip_approx", "gelu_approx", "to_int8", "to_bf16", "requant",
    "srdhm", "rounding_divide_by_pot",
    "EXP_LUT", "RECIP_LUT", "LOG2E_F32", "GELU_K_F32", "EXP_FRAC_BITS", "EXP_IDX_BITS",
    "RECIP_IDX_BITS", "EXP_T_MIN", "BF16_MAX_BITS", "BF16_INF_BITS", "BF16_NAN_BITS",
    "INT32_MIN", "INT32_MAX",
    "K_MAX", "pow2", "block_scale_k", "VECTOR_LANE_LATENCY", "VECTOR_SUM_LEVEL_LATENCY", "VECTOR_BETA_LATENCY",
    "vector_write_delay",
    "vector_latency",
]

f32 = np.float32

#: exp_approx: fraction bits of ``t = x * log2(e)`` kept, and table index bits.
EXP_FRAC_BITS = 16
EXP_IDX_BITS = 6
#: exp_approx: ``t = x * log2(e)`` below this gives ``+0`` (no subnormal results).
EXP_T_MIN = -126
#: recip_approx: table index bits (from the top of the 23-bit mantissa).
RECIP_IDX_BITS = 6
#: binary32 constants of the datapath.
LOG2E_F32 = f32(1.4426950408889634)        # 0x3FB8AA3B
GELU_K_F32 = f32(1.702)                     # 0x3FD9DB23
#: bfloat16 is the top half of binary32: +inf, canonical NaN, largest finite (the
#: saturation value of the BF16 output).
BF16_INF_BITS = POS_INF_BITS >> 16                  # 0x7F80
BF16_NAN_BITS = CANONICAL_NAN_BITS >> 16            # 0x7FC0
BF16_MAX_BITS = BF16_INF_BITS - 1                   # 0x7F7F
#: Largest block-scale exponent ``k`` (ROWMAX with ``bscale``): 5 bits of state.
K_MAX = 31
#: int32 range (REQUANT saturation).
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1

# --- pipeline timing of rtl.vector.unit.VectorUnit (the arithmetic above does not
# depend on it). The single source for the RTL (which asserts its pipeline against it),
# the testbench and the cycle models; docs/vector_unit.md has the stage table.
#: Cycles from a row's SRAM read data to its accumulator / activation write: the lane's
#: compute pipeline (``LaneCompute``, 51) and output stage (``LaneOutput``, 10).
VECTOR_LANE_LATENCY = 61
#: Cycles per level of the row-sum tree (a 4-stage FP32 adder and a register); also the
#: final ``l`` add of EXP / ROWSUM.
VECTOR_SUM_LEVEL_LATENCY = 5
#: Cycles of the row sum's multiply by ``beta`` before the final ``l`` add (EXP with
#: ``bscale``; a 5-stage FP32 multiplier and a register, passed by every op).
VECTOR_BETA_LATENCY = 6


def vector_write_delay() -> int:
    """A command accepted in cycle ``c`` writes its row ``i`` in cycle
    ``c + vector_write_delay() + i`` (one cycle to register the command, one to read)."""
    return 2 + VECTOR_LANE_LATENCY


def vector_latency(lanes: int) -> int:
    """Cycles a VECTOR command occupies the unit beyond its ``count`` rows.

    Accepted in cycle ``c``, the unit is idle (``o_idle``, ready for the next command)
    again in cycle ``c + count + vector_latency(lanes)``: the last row's state update
    (after the row-sum tree of ``ceil(log2(lanes))`` levels, the multiply by ``beta``
    and the ``l`` add) is the last event.
    """
    if lanes < 1:
        raise ValueError(f"lanes must be >= 1, got {lanes}")
    levels = (lanes - 1).bit_length()
    return (vector_write_delay() + VECTOR_SUM_LEVEL_LATENCY * levels
            + VECTOR_BETA_LATENCY + VECTOR_SUM_LEVEL_LATENCY)


def _exp_table() -> np.ndarray:
    """``LUT[k] = round(2**(k/64) * 2**23)``, k = 0..64 (Q1.23; LUT[64] = 2**24)."""
    getcontext().prec = 60
    n = 1 << EXP_IDX_BITS
    out = []
    for k in range(n + 1):
        v = (Decimal(2) ** (Decimal(k) / Decimal(n))) * (1 << 23)
        out.append(int(v.to_integral_value()))   # ROUND_HALF_EVEN (never a tie)
    t = np.array(out, np.int64)
    t.setflags(write=False)
    return t


def _recip_table() -> np.ndarray:
    """``RL[k] = round(2**24 / (1 + k/64))``, k = 0..64 (RL[0] = 2**24, RL[64] = 2**23)."""
    n = 1 << RECIP_IDX_BITS
    t = np.array([round(Fraction(1 << 24) / (1 + Fraction(k, n))) for k in range(n + 1)],
                 np.int64)
    t.setflags(write=False)
    return t


#: The two tables, shared with the RTL (rtl/vector/exp.py, rtl/vector/recip.py).
EXP_LUT = _exp_table()
RECIP_LUT = _recip_table()


# --- binary32 primitives -------------------------------------------------------------
def _f32(x, name="x") -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != np.float32:
        raise TypeError(f"{name} must be float32, got dtype {x.dtype}")
    return x


def _bits(x) -> np.ndarray:
    return np.ascontiguousarray(x).view(np.uint32)


def fmul(a, b) -> np.ndarray:
    """IEEE binary32 product, round to nearest even, subnormals, canonical NaN.

    Golden model of ``rtl.fp.fp32_mul.FP32Multiplier`` (float32 in, float32 out).
    """
    a, b = _f32(a, "a"), _f32(b, "b")
    with np.errstate(all="ignore"):
        p = np.multiply(a, b, dtype=np.float32)
    return canonicalize_nan(p)


def fadd(a, b) -> np.ndarray:
    """IEEE binary32 sum (:func:`models.fp32.fp32_add`)."""
    return fp32_add(a, b)


def fneg(x) -> np.ndarray:
    """Sign-bit flip (exact, also of NaN and zeros)."""
    x = np.array(_f32(x), copy=True)
    _bits(x)[...] ^= np.uint32(SIGN_BIT)
    return x


def i2f(x) -> np.ndarray:
    """int32 -> binary32, round to nearest even (numpy's cast). Accepts int32/uint32 bits."""
    x = np.asarray(x)
    if x.dtype == np.uint32:
        x = x.view(np.int32)
    if x.dtype != np.int32:
        raise TypeError(f"i2f expects int32 (or uint32 bit patterns), got dtype {x.dtype}")
    return x.astype(np.float32)


def fmax(a, b) -> np.ndarray:
    """``max(a, b)``: canonical NaN if either is NaN; else the larger; ties keep ``a``."""
    a, b = _f32(a, "a"), _f32(b, "b")
    out = np.where(b > a, b, a).astype(np.float32)
    out = np.array(np.broadcast_to(out, np.broadcast(a, b).shape), np.float32)
    _bits(out)[np.isnan(a) | np.isnan(b)] = CANONICAL_NAN_BITS
    return out


def _tree(x: np.ndarray, op, pad) -> np.ndarray:
    """Reduce the last axis by a fixed binary tree: pad to 2**k, pairs (2k, 2k+1)."""
    n = x.shape[-1]
    width = 1 << max(0, (n - 1).bit_length())
    if width != n:
        fill = np.full(x.shape[:-1] + (width - n,), pad, np.float32)
        x = np.concatenate([x, fill], axis=-1)
    while x.shape[-1] > 1:
        x = op(x[..., 0::2], x[..., 1::2])
    return x[..., 0]


def row_max(x) -> np.ndarray:
    """Max over the last axis by the fixed tree of :func:`fmax` (pad ``-inf``)."""
    return _tree(_f32(x), fmax, -np.inf)


def row_sum(x) -> np.ndarray:
    """Sum over the last axis by the fixed tree of :func:`fadd` (pad ``+0``)."""
    return _tree(_f32(x), fadd, 0.0)


def order_key(x) -> np.ndarray:
    """Integer key of binary32 values (int64) whose order is TOPK's order of numbers.

    ``-0`` counts as ``+0`` and every NaN as the canonical NaN, whose key is above
    ``+inf``'s; otherwise the key is the bit pattern with the sign flipped (positive
    values) or all bits inverted (negative values), which orders binary32 as numbers.
    """
    b = _bits(_f32(x)).astype(np.int64)
    b = np.where(b == SIGN_BIT, 0, b)
    b = np.where((b & ~SIGN_BIT) > POS_INF_BITS, CANONICAL_NAN_BITS, b)
    return np.where(b & SIGN_BIT, b ^ 0xFFFF_FFFF, b | SIGN_BIT)


def topk_perm(a) -> np.ndarray:
    """TOPK's order of the lanes of each row of ``a`` (float32 ``(rows, L)``).

    ``perm[i, r]`` (int64) is the lane of rank ``r`` in row ``i``: by value descending
    (:func:`order_key`: ``-0 == +0``, NaN above ``+inf``, all NaN equal), equal values
    the lower lane first. The rank of lane ``j`` is ``#{k : a_k > a_j} + #{k < j :
    a_k == a_j}`` (what the RTL counts).
    """
    a = _f32(a, "a")
    if a.ndim != 2:
        raise ValueError(f"a must be float32 (rows, lanes), got shape {a.shape}")
    return np.argsort(-order_key(a), axis=1, kind="stable").astype(np.int64)


# --- table-based functions -------------------------------------------------------------
def exp_approx(x) -> np.ndarray:
    """``exp(x)`` for ``x <= 0``, binary32 -> binary32, integer-exact.

    * NaN -> canonical NaN; ``x > 0`` (incl. ``+inf``) is clamped to 0 -> ``1.0``;
      ``±0 -> 1.0``.
    * ``t = fmul(x, f32(log2 e))``; ``t < -126`` (incl. ``-inf``) -> ``+0``.
    * Else ``T = floor(t * 2**16)`` (exact), ``n = T >> 16`` (floor), ``f = T & 0xFFFF``;
      ``idx = f >> 10``, ``fr = f & 0x3FF``;
      ``p = LUT[idx] + (((LUT[idx+1] - LUT[idx]) * fr) >> 10)`` with
      ``LUT[k] = round(2**(k/64) * 2**23)``; ``2**23 <= p < 2**24``;
      result: biased exponent ``n + 127`` (1..127, always normal), mantissa
      ``p - 2**23``.

    Max relative error vs float64 ``exp`` (measured, docs/vector_unit.md):
    see ``tests/models/test_vector_model.py::test_exp_approx_error``.
    """
    x = _f32(x)
    nan = np.isnan(x)
    xc = np.where(nan | (x > 0), f32(0.0), x).astype(np.float32)
    t = fmul(xc, LOG2E_F32)
    zero = t < EXP_T_MIN
    tt = np.where(zero, 0.0, t.astype(np.float64))
    T = np.floor(tt * (1 << EXP_FRAC_BITS)).astype(np.int64)   # exact
    n = T >> EXP_FRAC_BITS
    f = T & ((1 << EXP_FRAC_BITS) - 1)
    sh = EXP_FRAC_BITS - EXP_IDX_BITS
    idx = f >> sh
    fr = f & ((1 << sh) - 1)
    lo = EXP_LUT[idx]
    p = lo + (((EXP_LUT[idx + 1] - lo) * fr) >> sh)
    bits = ((n + 127) << 23) | (p - (1 << 23))
    bits = np.where(zero, 0, bits)
    bits = np.where(nan, CANONICAL_NAN_BITS, bits)
    return np.asarray(bits, np.int64).astype(np.uint32).view(np.float32).reshape(x.shape)


def recip_approx(x) -> np.ndarray:
    """``1 / x``, binary32 -> binary32, integer-exact.

    * NaN -> canonical NaN; ``±0 -> ±inf``; ``±inf -> ±0``; a **subnormal** ``x``
      gives ``±inf`` (treated as zero).
    * Normal ``x`` with biased exponent ``e`` and mantissa ``mt``:
      ``idx = mt >> 17``, ``fr = mt & 0x1FFFF``,
      ``r = RL[idx] - (((RL[idx] - RL[idx+1]) * fr) >> 17)`` with
      ``RL[k] = round(2**24 / (1 + k/64))``. ``r == 2**24`` (only ``mt == 0``):
      exponent ``254 - e``, mantissa 0; else exponent ``253 - e``, mantissa
      ``r - 2**23``. A result exponent ``<= 0`` flushes to ``±0`` (no subnormal
      results: ``|x| >= 2**126`` gives ``±0``).
    """
    x = _f32(x)
    b = _bits(x).astype(np.int64)
    sign = b >> 31
    e = (b >> 23) & 0xFF
    mt = b & 0x7F_FFFF
    sh = 23 - RECIP_IDX_BITS
    idx = mt >> sh
    fr = mt & ((1 << sh) - 1)
    hi = RECIP_LUT[idx]
    r = hi - (((hi - RECIP_LUT[idx + 1]) * fr) >> sh)
    exact = r == (1 << 24)
    ex = np.where(exact, 254 - e, 253 - e)
    man = np.where(exact, 0, r - (1 << 23))
    mag = np.where(ex <= 0, 0, (ex << 23) | man)
    mag = np.where(e == 0, POS_INF_BITS, mag)            # zero or subnormal -> inf
    mag = np.where((e == EXP_MAX) & (mt == 0), 0, mag)   # inf -> 0
    bits = (sign << 31) | mag
    bits = np.where((e == EXP_MAX) & (mt != 0), CANONICAL_NAN_BITS, bits)
    return np.asarray(bits, np.int64).astype(np.uint32).view(np.float32).reshape(x.shape)


def gelu_approx(a) -> np.ndarray:
    """``a * sigmoid(1.702 a)`` with the unit's primitives (binary32 -> binary32).

    ::

        z = fmul(a, f32(1.702));  e = exp_approx(-|z|)      # e in [0, 1]
        d = fadd(1.0, e);         r = recip_approx(d)        # d in [1, 2]: r normal
        s = r if z >= 0 else fmul(e, r)                      # sigmoid(z)
        y = fmul(a, s)

    Special cases: NaN -> canonical NaN; ``+inf -> +inf``; ``-inf -> -0`` (the formula
    would give ``-inf * 0 = NaN``; finite ``a`` below about -52 already gives ``-0``
    because ``e`` underflows to ``+0``); ``±0 -> ±0``. ``z`` overflowing to ``±inf``
    gives ``y = a`` / ``-0`` as the limits say. No NaN for a non-NaN input.
    """
    a = _f32(a)
    z = fmul(a, GELU_K_F32)
    negabs = np.array(z, np.float32, copy=True)
    _bits(negabs)[...] |= np.uint32(SIGN_BIT)
    e = exp_approx(negabs)
    d = fadd(np.ones_like(e), e)
    r = recip_approx(d)
    s = np.where(z >= 0, r, fmul(e, r)).astype(np.float32)
    y = fmul(a, s)
    y = np.where(a == -np.inf, f32(-0.0), y).astype(np.float32)
    return canonicalize_nan(y)


# --- conversions ---------------------------------------------------------------------
def to_int8(x) -> np.ndarray:
    """binary32 -> int8: round half to even, saturate to [-128, 127], NaN -> 0."""
    x = _f32(x)
    with np.errstate(invalid="ignore"):
        r = np.rint(x.astype(np.float64))
        r = np.clip(np.where(np.isnan(r), 0.0, r), -128, 127)
    return r.astype(np.int8)


def to_bf16(x) -> np.ndarray:
    """binary32 -> bfloat16 bits (uint16): RNE, saturating to ``±0x7F7F``, NaN -> 0x7FC0.

    Rounding acts on the bit pattern (``bits + 0x7FFF + lsb >> 16``), which is RNE for
    normals and subnormals alike; a result that rounds to the infinity pattern, and
    ``±inf`` itself, become ``±max finite``.
    """
    b = _bits(_f32(x)).astype(np.int64)
    sign = b & SIGN_BIT
    mag = b & ~SIGN_BIT
    nan = mag > POS_INF_BITS
    r = (mag + 0x7FFF + ((mag >> 16) & 1)) >> 16
    r = np.where(r >= BF16_INF_BITS, BF16_MAX_BITS, r)
    r = (sign >> 16) | r
    r = np.where(nan, BF16_NAN_BITS, r)
    return np.asarray(r, np.int64).astype(np.uint16)


# --- REQUANT (TFLite / gemmlowp fixed point) ------------------------------------------


def _wrap32(v) -> np.ndarray:
    return (np.asarray(v, np.int64) & 0xFFFF_FFFF).astype(np.uint32).view(np.int32)


def srdhm(a, b) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul(a, b)`` on int32 arrays.

    ``(a * b + nudge) / 2**31`` with C division (truncation toward zero),
    ``nudge = 2**30`` if ``a * b >= 0`` else ``1 - 2**30``: ``a * b / 2**31`` rounded
    to nearest with ties toward ``+inf`` (``2.5 -> 3``, ``-2.5 -> -2``). The one
    overflow, ``a == b == INT32_MIN``, saturates to ``INT32_MAX``.
    """
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b
    v = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    q = np.where(v >= 0, v >> 31, -((-v) >> 31))
    q = np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)
    return q.astype(np.int32)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT(x, exponent)``: ``x / 2**exponent`` rounded to
    nearest, ties away from zero (``exponent`` in 0..31)."""
    x = np.asarray(x, np.int64)
    exponent = np.asarray(exponent, np.int64)
    mask = (np.int64(1) << exponent) - 1
    rem = x & mask
    thr = (mask >> 1) + (x < 0)
    return ((x >> exponent) + (rem > thr)).astype(np.int32)


def requant(acc, multiplier, shift) -> np.ndarray:
    """TFLite ``MultiplyByQuantizedMultiplier`` then clamp to int8.

    ``acc`` int32 (already bias-added, wrapping), ``multiplier`` int32 (Q31, normally
    ``>= 0``), ``shift`` signed int. With ``left = clamp(shift, 0, 31)`` and
    ``right = clamp(-shift, 0, 31)``::

        v = saturate_int32(acc * 2**left)        # TFLite leaves overflow undefined
        v = srdhm(v, multiplier)                 # round to nearest, ties toward +inf
        v = rounding_divide_by_pot(v, right)     # round half away from zero
        y = clamp(v, -128, 127)

    (Clamping ``left`` to 31 changes nothing: any nonzero ``acc`` saturates by then
    or is -1 -> INT32_MIN either way; TFLite restricts ``shift`` to [-31, 30].)
    """
    acc = np.asarray(acc, np.int64)
    shift = np.asarray(shift, np.int64)
    left = np.clip(shift, 0, 31)
    right = np.clip(-shift, 0, 31)
    v = np.clip(acc << left, INT32_MIN, INT32_MAX)
    v = srdhm(v, multiplier)
    v = rounding_divide_by_pot(v, right)
    return np.clip(v, -128, 127).astype(np.int8)


# --- state and execution -------------------------------------------------------------
@dataclass
class VectorState:
    """Per-row softmax state of one vector unit (float32 arrays of depth acc_rows)."""

    m: np.ndarray
    l: np.ndarray      # noqa: E741
    alpha: np.ndarray
    beta: np.ndarray
    k: np.ndarray      # int64, 0 .. K_MAX

    @classmethod
    def new(cls, config) -> "VectorState":
        """STATE_INIT values on every row (also the RTL's power-up contents)."""
        n = config.tensor.acc_rows
        s = cls(m=np.empty(n, np.float32), l=np.empty(n, np.float32),
                alpha=np.empty(n, np.float32), beta=np.empty(n, np.float32),
                k=np.empty(n, np.int64))
        s.init(slice(0, n))
        return s

    def init(self, rows: slice) -> None:
        """STATE_INIT on ``rows``."""
        self.m[rows] = -np.inf
        self.l[rows] = 0.0
        self.alpha[rows] = 1.0
        self.beta[rows] = 1.0
        self.k[rows] = 0

    def copy(self) -> "VectorState":
        return VectorState(self.m.copy(), self.l.copy(), self.alpha.copy(),
                           self.beta.copy(), self.k.copy())


def _imm_f32(v: int) -> np.float32:
    return np.array([v & 0xFFFF_FFFF], np.uint32).view(np.float32)[0]


def stage_a(cmd: TensorCmd, x: np.ndarray) -> np.ndarray:
    """Stage A on rows ``x`` (uint32[count, L]): convert, scale by ``imm``, mask."""
    n, lanes = x.shape
    a = i2f(x) if cmd.in_int else x.view(np.float32)
    a = fmul(a, np.full(a.shape, _imm_f32(cmd.imm), np.float32))
    i = np.arange(n, dtype=np.int64)[:, None]
    j = np.arange(lanes, dtype=np.int64)[None, :]
    mask = np.zeros((n, lanes), bool)
    if cmd.causal:
        mask |= cmd.k_base + j > cmd.q_base + i
    if cmd.pad:
        mask |= np.broadcast_to(cmd.k_base + j >= cmd.kv_len, (n, lanes))
    return np.where(mask, f32(-np.inf), a).astype(np.float32)


def output_stage(cmd: TensorCmd, y: np.ndarray) -> np.ndarray:
    """Scale by ``imm2`` and convert; returns the 32-bit words (uint32) written to the
    accumulator; for ``dst_act`` the low byte of each word is the activation code."""
    o = fmul(y, np.full(y.shape, _imm_f32(cmd.imm2), np.float32))
    fmt = OutFmt(cmd.out_fmt)
    if fmt == OutFmt.FP32:
        return _bits(o).copy()
    if fmt == OutFmt.INT8:
        return to_int8(o).astype(np.int32).view(np.uint32)
    if fmt == OutFmt.E4M3:
        return encode(o, E4M3).astype(np.uint32)
    if fmt == OutFmt.E5M2:
        return encode(o, E5M2).astype(np.uint32)
    return to_bf16(o).astype(np.uint32) << np.uint32(16)


def dequant_written(out_fmt: int, words: np.ndarray) -> np.ndarray:
    """binary32 value of written words (``deq`` of EXP's running sum)."""
    fmt = OutFmt(out_fmt)
    words = np.asarray(words, np.uint32)
    if fmt == OutFmt.FP32:
        return words.view(np.float32)
    if fmt == OutFmt.INT8:
        return words.view(np.int32).astype(np.float32)
    if fmt == OutFmt.E4M3:
        return decode((words & 0xFF).astype(np.uint8), E4M3)
    if fmt == OutFmt.E5M2:
        return decode((words & 0xFF).astype(np.uint8), E5M2)
    return (words & np.uint32(0xFFFF_0000)).view(np.float32)


def _rows(v: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Per-row values ``v`` broadcast over the lanes of ``like``."""
    return np.broadcast_to(v[:, None], like.shape).astype(np.float32)


def pow2(k) -> np.ndarray:
    """``2**k`` as binary32 (exact; ``|k| <= 126``)."""
    return np.ldexp(np.float32(1.0), np.asarray(k, np.int64)).astype(np.float32)


def block_scale_k(g) -> np.ndarray:
    """ROWMAX's block-scale exponent from ``g`` (the block's largest probability):
    ``clamp(126 - E(g), 0, K_MAX)``, ``E`` = biased exponent field of the bits."""
    e = (_bits(g) >> np.uint32(23)).astype(np.int64) & 0xFF
    return np.clip(126 - e, 0, K_MAX)


def _apply(cmd: TensorCmd, a: np.ndarray, b: np.ndarray | None, m, l, alpha, beta):
    op = VecOp(cmd.op)
    if op == VecOp.COPY:
        return a
    if op == VecOp.RESCALE:
        if cmd.bscale:
            a = fmul(a, _rows(beta, a))
        return fadd(fmul(b, _rows(alpha, b)), a)
    if op == VecOp.NORM:
        r = recip_approx(l)
        y = fmul(a, np.broadcast_to(r[:, None], a.shape).astype(np.float32))
        return np.where((l == 0)[:, None], f32(0.0), y).astype(np.float32)
    if op == VecOp.BIAS:
        return fadd(a, b)
    if op == VecOp.RELU:
        neg = (_bits(a) >> 31).astype(bool) & ~np.isnan(a)
        return canonicalize_nan(np.where(neg, f32(0.0), a))
    if op == VecOp.GELU:
        return gelu_approx(a)
    if op == VecOp.RECIP:
        return recip_approx(a)
    raise AssertionError(op)


def vector_execute(config, cmd: TensorCmd, acc: np.ndarray, act: np.ndarray,
                   state: VectorState) -> None:
    """Execute one VECTOR command in place (module docstring has the semantics).

    Parameters
    ----------
    config : JalapenoConfig
    cmd : TensorCmd
        Assumed legal: ``models.tensor_cmd.check(cmd, config) == ErrCode.NONE``.
    acc : numpy.ndarray of uint32, shape (acc_rows, C)
    act : numpy.ndarray of uint8, shape (act_rows, R)
    state : VectorState
    """
    lanes = config.systolic.cols
    if acc.dtype != np.uint32 or acc.ndim != 2 or acc.shape[1] != lanes:
        raise ValueError(f"acc must be uint32[rows, {lanes}], got {acc.dtype}{acc.shape}")
    if act.dtype != np.uint8 or act.ndim != 2 or act.shape[1] != config.systolic.rows:
        raise ValueError(f"act must be uint8[rows, {config.systolic.rows}], "
                         f"got {act.dtype}{act.shape}")
    op = VecOp(cmd.op)
    n = cmd.count
    st = slice(cmd.state, cmd.state + n)
    if op == VecOp.STATE_INIT:
        state.init(st)
        return
    if op == VecOp.STATE_STORE:
        words = np.zeros((n, lanes), np.uint32)
        words[:, 0] = _bits(state.m[st])
        words[:, 1] = _bits(state.l[st])
        _write(config, cmd, acc, act, words)
        return
    x = acc[cmd.src:cmd.src + n].copy()
    reads_b = op in VECTOR_READS_SRC2 or (op == VecOp.REQUANT and cmd.bias)
    b = acc[cmd.src2:cmd.src2 + n].copy() if reads_b else None

    if op == VecOp.REQUANT:
        v = x.view(np.int32).astype(np.int64)
        if cmd.bias:
            v = _wrap32(v + b.view(np.int32))
        mult = np.int64(np.uint32(cmd.imm).view(np.int32))
        shift = np.int64(np.uint32(cmd.imm2).view(np.int32))
        words = requant(v, mult, shift).astype(np.int32).view(np.uint32)
        _write(config, cmd, acc, act, words)
        return

    a = stage_a(cmd, x)
    bf = b.view(np.float32) if b is not None else None
    if op == VecOp.STATE_LOAD:
        state.alpha[st] = a[:, cmd.k_base]
        return
    if op == VecOp.TOPK:
        perm = topk_perm(a)
        words = (perm.astype(np.uint32) if cmd.dst_act
                 else output_stage(cmd, np.take_along_axis(a, perm, axis=1)))
        _write(config, cmd, acc, act, words)
        return
    if op == VecOp.ROWMAX:
        m_old = state.m[st].copy()
        mb = row_max(a)
        m_new = fmax(m_old, mb)
        state.alpha[st] = _merge_factor(m_old, m_new)
        k = block_scale_k(exp_approx(fadd(mb, fneg(m_new)))) if cmd.bscale else 0
        state.k[st] = k
        state.beta[st] = pow2(-state.k[st])
        state.m[st] = m_new
        return
    if op == VecOp.STATE_MERGE:
        m_old, m_s, l_s = state.m[st].copy(), a[:, 0].copy(), a[:, 1].copy()
        m_new = fmax(m_old, m_s)
        state.alpha[st] = _merge_factor(m_old, m_new)
        state.beta[st] = _merge_factor(m_s, m_new)
        state.l[st] = fadd(fmul(state.l[st], state.alpha[st]), fmul(l_s, state.beta[st]))
        state.k[st] = 0
        state.m[st] = m_new
        return
    if op == VecOp.ROWSUM:
        state.l[st] = fadd(fmul(state.l[st], state.alpha[st]), row_sum(a))
        return
    if op == VecOp.EXP:
        m = state.m[st]
        e = exp_approx(fadd(a, fneg(np.broadcast_to(m[:, None], a.shape).astype(np.float32))))
        e = np.where(a == -np.inf, f32(0.0), e).astype(np.float32)
        if cmd.bscale:
            e = fmul(e, _rows(pow2(state.k[st]), e))
        words = output_stage(cmd, e)
        _write(config, cmd, acc, act, words)
        s = row_sum(dequant_written(cmd.out_fmt, words))
        if cmd.bscale:
            s = fmul(s, state.beta[st])
        state.l[st] = fadd(fmul(state.l[st], state.alpha[st]), s)
        return
    y = _apply(cmd, a, bf, state.m[st], state.l[st], state.alpha[st], state.beta[st])
    _write(config, cmd, acc, act, output_stage(cmd, y))


def _merge_factor(m_old: np.ndarray, m_new: np.ndarray) -> np.ndarray:
    """``1.0 if m_new == -inf else exp_approx(fadd(m_old, -m_new))`` (alpha, beta)."""
    d = exp_approx(fadd(m_old, fneg(m_new)))
    return np.where(m_new == -np.inf, f32(1.0), d).astype(np.float32)


def _write(config, cmd: TensorCmd, acc, act, words: np.ndarray) -> None:
    n = cmd.count
    if cmd.dst_act:
        act[cmd.dst:cmd.dst + n, :] = (words & 0xFF).astype(np.uint8)
    else:
        acc[cmd.dst:cmd.dst + n, :] = words
