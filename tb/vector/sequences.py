"""Random data and legal random VECTOR commands for the vector-unit tests (numpy)."""
from __future__ import annotations

import numpy as np

from models.tensor_cmd import OutFmt, TensorCmd, VecOp, VECTOR_WRITES, f32_bits
from tb.vector.vectors import SPECIALS

__all__ = ["random_rows", "random_cmd", "IMM_CHOICES", "IMM2_CHOICES"]

#: Input scales: mostly ordinary, sometimes zero, negative, huge, tiny or special.
IMM_CHOICES = [1.0, 1.0, 0.5, 0.125, -2.0, 3.0, 0.0, -0.0, 1e-30, 3e38,
               float("inf"), float("nan")]
#: Output scales, including the ones that make INT8/FP8 outputs meaningful.
IMM2_CHOICES = [1.0, 1.0, 127.0, 256.0, 0.25, -1.0, 1e30, 0.0]


def random_rows(rng: np.random.Generator, n: int, lanes: int, *, kind: str = "mix") -> np.ndarray:
    """``n`` accumulator rows (uint32): binary32 values over many scales with
    specials (NaN, ±inf, ±0, subnormals, extremes), or int32 values (``kind="int"``)."""
    if kind == "int":
        scale = 2 ** rng.integers(0, 32, (n, lanes)).astype(np.float64)
        v = np.clip(np.round(rng.standard_normal((n, lanes)) * scale), -2**31, 2**31 - 1)
        return v.astype(np.int64).astype(np.int32).view(np.uint32)
    x = (rng.standard_normal((n, lanes)) * 10.0 ** rng.integers(-3, 4, (n, lanes))).astype(np.float32)
    w = x.view(np.uint32).copy()
    special = rng.random((n, lanes)) < 0.08
    w[special] = rng.choice(SPECIALS, special.sum())
    if kind == "mix":
        ints = rng.random(n) < 0.2
        w[ints] = random_rows(rng, int(ints.sum()), lanes, kind="int")
    return w


def _imm(rng, choices) -> int:
    v = choices[rng.integers(0, len(choices))]
    if rng.random() < 0.15:
        v = float(np.float32(rng.standard_normal() * 4))
    return f32_bits(v)


def random_cmd(rng: np.random.Generator, config, *, rows: int = 48, state_rows: int = 24,
               max_count: int = 8, ops=None, fmt: OutFmt | None = None) -> TensorCmd:
    """A random legal VECTOR command touching accumulator rows ``0 .. rows + max_count``
    and state rows ``0 .. state_rows + max_count``; never a partial overlap of a
    source and the destination (``src < dst < src + count``). ``fmt`` fixes the output
    format (ignored for REQUANT, which writes INT8 only, and STATE_STORE, FP32 to the
    accumulator only; TOPK's lane ids to the activation SRAM INT8 only; STATE_LOAD's
    ``k_base`` is a lane). ``bscale`` is set on half the commands (ROWMAX, EXP and
    RESCALE use it, the other ops ignore it)."""
    ops = list(VecOp) if ops is None else list(ops)
    op = ops[rng.integers(0, len(ops))]
    count = int(rng.integers(1, max_count + 1))
    kw = dict(count=count, state=int(rng.integers(0, state_rows)),
              bscale=int(rng.random() < 0.5))
    src = int(rng.integers(0, rows))
    src2 = int(rng.integers(0, rows))
    while True:
        dst = int(rng.integers(0, rows))
        if rng.random() < 0.1:
            dst = src                                # in place
        if not (src < dst < src + count or src2 < dst < src2 + count):
            break
    kw.update(src=src, src2=src2, dst=dst)
    eight_bit = (OutFmt.INT8, OutFmt.E4M3, OutFmt.E5M2)
    if op == VecOp.REQUANT:
        kw.update(out_fmt=OutFmt.INT8, bias=int(rng.random() < 0.5),
                  dst_act=int(rng.random() < 0.4 and config.systolic.rows == config.systolic.cols))
        mult = int(rng.integers(1 << 30, 1 << 31)) if rng.random() < 0.9 else int(rng.integers(0, 1 << 31))
        shift = int(rng.integers(-12, 3)) if rng.random() < 0.8 else int(rng.integers(-40, 40))
        kw.update(imm=mult, imm2=shift & 0xFFFF_FFFF)
        return TensorCmd.vector(op, **kw)
    fmt = OutFmt(int(rng.integers(0, len(OutFmt)))) if fmt is None else OutFmt(fmt)
    if op == VecOp.STATE_STORE:
        fmt = OutFmt.FP32
    ids_ok = op != VecOp.TOPK or fmt == OutFmt.INT8     # TOPK's lane ids: INT8 only
    dst_act = (op in VECTOR_WRITES and fmt in eight_bit and ids_ok and rng.random() < 0.4
               and config.systolic.rows == config.systolic.cols)
    kw.update(out_fmt=int(fmt), dst_act=int(dst_act), in_int=int(rng.random() < 0.2),
              imm=_imm(rng, IMM_CHOICES), imm2=_imm(rng, IMM2_CHOICES))
    if rng.random() < 0.3:
        kw.update(causal=1, q_base=int(rng.integers(0, 8)), k_base=int(rng.integers(0, 8)))
    if rng.random() < 0.3:
        kw.update(pad=1, kv_len=int(rng.integers(0, 12)), k_base=int(rng.integers(0, 8)))
    if op == VecOp.STATE_LOAD:                       # the lane loaded: k_base < L
        kw.update(k_base=int(rng.integers(0, config.systolic.cols)))
    return TensorCmd.vector(op, **kw)
