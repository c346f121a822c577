"""Command-program generators shared by the tensor-core tests and the pyuvm environment."""
import numpy as np

from models.tensor_cmd import ErrCode, OutFmt, TensorCmd, Unit, VecOp

__all__ = ["chunks", "fp8_codes", "illegal_cases", "random_cmd"]


def chunks(rng, m, R):
    """Random split of M rows into commands: counts 1, < R, == R and > R all occur."""
    out = []
    while m:
        kind = rng.random()
        n = (1 if kind < 0.2 else rng.randint(1, max(1, R - 1)) if kind < 0.45
             else R if kind < 0.6 else rng.randint(R + 1, 3 * R))
        n = min(n, m)
        out.append(n)
        m -= n
    return out


def fp8_codes(rng, shape, specials=0.1):
    """FP8 codes, mostly finite, some NaN/inf/zero/max/subnormal codes."""
    a = np.array([rng.randrange(256) for _ in range(int(np.prod(shape)))], np.uint8)
    special = [0x00, 0x80, 0x7F, 0xFF, 0x7E, 0xFE, 0x7C, 0xFC, 0x7B, 0x01, 0x81, 0x3F]
    for i in range(a.size):
        if rng.random() < specials:
            a[i] = rng.choice(special)
        elif (a[i] & 0x7F) >= 0x78:    # keep most values finite in both formats
            a[i] &= 0xB7
    return a.reshape(shape)


def illegal_cases(cfg):
    """(ErrCode, command) pairs: one per code this configuration can raise."""
    tc, sa = cfg.tensor, cfg.systolic
    R, C = sa.rows, sa.cols
    mm = TensorCmd.matmul
    V = TensorCmd.vector
    yield ErrCode.ZERO_COUNT, mm(src=0, w=0, dst=0, m=0)
    yield ErrCode.ZERO_COUNT, TensorCmd(unit=Unit.VECTOR, op=15, count=0)  # count before op
    yield ErrCode.ACT_RANGE, mm(src=tc.act_rows - 2, w=0, dst=0, m=3)
    yield ErrCode.ACT_RANGE, mm(src=0xFFFF, w=0, dst=0, m=0xFFFF)       # no 16-bit wrap
    yield ErrCode.WEIGHT_RANGE, mm(src=0, w=tc.weight_rows - R + 1, dst=0, m=1)
    yield ErrCode.ACC_RANGE, mm(src=0, w=0, dst=tc.acc_rows - 1, m=2)
    if not sa.fp8:
        yield ErrCode.NO_FP8, mm(src=0, w=0, dst=0, m=1, fp8=True)
    # (BAD_OP is unreachable: the 4-bit op field holds 16 ops, every value is one)
    yield ErrCode.BAD_FMT, V(VecOp.COPY, count=1, out_fmt=7)
    yield ErrCode.BAD_FMT, V(VecOp.COPY, count=1, dst_act=1, out_fmt=OutFmt.FP32)
    yield ErrCode.BAD_FMT, V(VecOp.REQUANT, count=1, out_fmt=OutFmt.E4M3)
    yield ErrCode.ACC_RANGE, V(VecOp.COPY, src=tc.acc_rows - 1, count=2)
    yield ErrCode.ACC_RANGE, V(VecOp.BIAS, src2=tc.acc_rows, count=1)
    yield ErrCode.ACC_RANGE, V(VecOp.RELU, dst=tc.acc_rows - 3, count=4)
    if R == C:
        yield ErrCode.ACT_RANGE, V(VecOp.COPY, dst=tc.act_rows - 1, count=2, dst_act=1,
                                   out_fmt=OutFmt.INT8)
    yield ErrCode.STATE_RANGE, V(VecOp.ROWMAX, state=tc.acc_rows - 1, count=2)
    if R == C:
        yield ErrCode.BAD_FMT, V(VecOp.TOPK, count=1, dst_act=1, out_fmt=OutFmt.E4M3)
    yield ErrCode.BAD_LANE, V(VecOp.STATE_LOAD, count=1, k_base=C)


def random_cmd(rng, cfg):
    """A command with fields biased to the legality boundaries."""
    tc, sa = cfg.tensor, cfg.systolic

    def addr(limit):
        return rng.choice([0, 1, limit - 2, limit - 1, limit, limit + 1, 0xFFFF,
                           rng.randrange(0x10000)]) & 0xFFFF
    cnt = rng.choice([0, 1, 2, 3, sa.rows, rng.randrange(0x10000)])
    # STATE_LOAD more often: its lane rule (BAD_LANE) comes after every range rule
    op = rng.randrange(16) if rng.random() < 0.8 else int(VecOp.STATE_LOAD)
    return TensorCmd(unit=rng.randint(0, 1), op=op, src=addr(tc.act_rows),
                     src2=addr(tc.weight_rows - sa.rows + 1), dst=addr(tc.acc_rows),
                     count=cnt, state=addr(tc.acc_rows), fp8=rng.randint(0, 1),
                     bias=rng.randint(0, 1), dst_act=rng.randint(0, 1),
                     out_fmt=rng.randrange(8), k_base=addr(sa.cols))
