"""Independent checks of the TOPK and STATE_LOAD vector ops (models/vector.py, issue 15).

References: Python's ``sorted`` on ``(key, lane)`` tuples built from Python floats (the
tie rule written out), numpy float32 arithmetic for MoE's combine step
``fadd(out, fmul(w, y))``, and the rules of docs/vector_unit.md for ``check``.
"""
import itertools
import math

import numpy as np
import pytest

from models.config import get_preset
from models.tensor_cmd import (VECTOR_READS_SRC, VECTOR_USES_STATE, VECTOR_WRITES, ErrCode,
                               OutFmt, TensorCmd, VecOp, check, f32_bits)
from models.tensor_core import TensorCoreModel
from models.vector import VectorState, order_key, output_stage, topk_perm, vector_execute

SEED = 20261124
TINY = get_preset("tiny")
DEFAULT = get_preset("default")
V = TensorCmd.vector
NAN = 0x7FC0_0000
#: Values that make ties: both zeros, both infinities, NaNs (negative, with payload),
#: subnormals of both signs, equal normals, the extremes.
TIE_WORDS = np.array([0x0000_0000, 0x8000_0000, 0x7F80_0000, 0xFF80_0000, NAN, 0xFFC1_2345,
                      0x7F80_0001, 0x0000_0001, 0x8000_0001, 0x3F80_0000, 0xBF80_0000,
                      0x7F7F_FFFF, 0xFF7F_FFFF, 0x0080_0000], np.uint32)


def _ref_perm(row_words) -> list[int]:
    """The lanes by value descending, NaN first (all equal), ``-0 == +0``, ties by lane:
    ``sorted`` on ``(key, lane)`` with ``key = (0, 0) for NaN else (1, -value)``."""
    vals = [float(v) for v in np.asarray(row_words, np.uint32).view(np.float32)]
    keys = [((0, 0.0) if math.isnan(v) else (1, -v), j) for j, v in enumerate(vals)]
    return [j for _, j in sorted(keys)]


def _check_rows(words: np.ndarray) -> None:
    perm = topk_perm(words.view(np.float32))
    assert perm.dtype == np.int64 and perm.shape == words.shape
    for i, row in enumerate(words):
        assert perm[i].tolist() == _ref_perm(row), [hex(w) for w in row]


def test_topk_perm_every_pair_of_specials():
    """Every ordered pair of the tie-making values in two lanes (and padded to 4 lanes
    with a copy of the pair: equal values in lanes far apart)."""
    pairs = np.array(list(itertools.product(TIE_WORDS, repeat=2)), np.uint32)
    _check_rows(pairs)
    _check_rows(np.concatenate([pairs, pairs], axis=1))


def test_topk_perm_random_rows_with_ties():
    """Random rows over a small alphabet (many ties), and random binary32 patterns."""
    rng = np.random.default_rng(SEED)
    for lanes in (1, 3, 4, 16):
        _check_rows(rng.choice(TIE_WORDS, (300, lanes)).astype(np.uint32))
        _check_rows(rng.integers(0, 1 << 32, (300, lanes), dtype=np.uint64).astype(np.uint32))


def test_order_key_orders_numbers():
    """The integer key is monotone in the value (float64 compare of the non-NaN ones),
    -0 and +0 share a key, every NaN has the one largest key."""
    rng = np.random.default_rng(SEED + 1)
    w = np.concatenate([TIE_WORDS, rng.integers(0, 1 << 32, 4000, dtype=np.uint64)
                        .astype(np.uint32)])
    x = w.view(np.float32)
    k = order_key(x)
    nan = np.isnan(x)
    assert len(set(k[nan].tolist())) == 1 and k[nan][0] > k[~nan].max()
    v = x[~nan].astype(np.float64)
    kv = k[~nan]
    i, j = rng.integers(0, v.size, (2, 20000))
    assert np.array_equal(kv[i] < kv[j], v[i] < v[j])
    assert np.array_equal(kv[i] == kv[j], v[i] == v[j])


def _run(cfg, cmd, acc, act=None, state=None):
    act = np.zeros((cfg.tensor.act_rows, cfg.systolic.rows), np.uint8) if act is None else act
    state = VectorState.new(cfg) if state is None else state
    assert check(cmd, cfg) == ErrCode.NONE, check(cmd, cfg)
    vector_execute(cfg, cmd, acc, act, state)
    return acc, act, state


@pytest.mark.parametrize("cfg", [TINY, DEFAULT], ids=["tiny", "default"])
def test_topk_command_values_and_ids_with_pad_mask(cfg):
    """TOPK on INT32 router logits scaled by imm, lanes >= E masked by pad: ids to the
    activation SRAM and sorted values (FP32) to the accumulator equal the reference
    sort of stage A's values; masked lanes come last, in lane order; state unchanged."""
    L = cfg.systolic.cols
    rng = np.random.default_rng(SEED + 2)
    n, e = 24, max(1, L - 1)
    acc = np.zeros((cfg.tensor.acc_rows, L), np.uint32)
    acc[:n] = rng.integers(-3, 4, (n, L)).astype(np.int32).view(np.uint32)   # ties
    kw = dict(src=0, count=n, in_int=1, imm=0.5, pad=1, kv_len=e)
    st = VectorState.new(cfg)
    st.alpha[:] = 3.0
    before = st.copy()
    _, act, _ = _run(cfg, V(VecOp.TOPK, dst=5, dst_act=1, out_fmt=OutFmt.INT8, **kw), acc,
                     state=st)
    _run(cfg, V(VecOp.TOPK, dst=100, **kw), acc, state=st)
    a = acc[:n].view(np.int32).astype(np.float32) * np.float32(0.5)
    a[:, e:] = -np.inf
    for i in range(n):
        ref = _ref_perm(a[i].view(np.uint32))
        assert act[5 + i].tolist() == ref
        assert acc[100 + i].tolist() == a[i][ref].view(np.uint32).tolist()
        assert ref[e:] == list(range(e, L))
    for f in ("m", "l", "alpha", "beta", "k"):
        assert np.array_equal(getattr(st, f), getattr(before, f)), f


def test_topk_values_through_the_output_stage():
    """dst_act = 0 writes the output stage (imm2, out_fmt) of the sorted values."""
    cfg = TINY
    rng = np.random.default_rng(SEED + 3)
    acc = np.zeros((cfg.tensor.acc_rows, 4), np.uint32)
    acc[:8] = rng.choice(TIE_WORDS, (8, 4))
    for fmt in OutFmt:
        cmd = V(VecOp.TOPK, src=0, dst=20, count=8, out_fmt=int(fmt), imm2=-3.0)
        _run(cfg, cmd, acc)
        a = acc[:8].view(np.float32)
        srt = np.stack([a[i][_ref_perm(acc[i])] for i in range(8)]).astype(np.float32)
        assert np.array_equal(acc[20:28], output_stage(cmd, srt)), fmt


def _f32_add(a, b):
    """numpy's float32 add (IEEE RNE, subnormals), NaN canonical."""
    with np.errstate(all="ignore"):
        s = np.add(a, b, dtype=np.float32)
    w = s.view(np.uint32).copy()
    w[np.isnan(s)] = NAN
    return w


def _rand_f32(rng, shape):
    """Normals over many scales, ±0 and subnormals."""
    x = (rng.standard_normal(shape) * 10.0 ** rng.integers(-4, 5, shape)).astype(np.float32)
    w = x.view(np.uint32).copy()
    r = rng.random(shape)
    w[r < 0.1] = 0
    w[(r >= 0.1) & (r < 0.2)] = 0x8000_0000
    sub = (r >= 0.2) & (r < 0.35)
    w[sub] = rng.integers(1, 1 << 23, int(sub.sum())).astype(np.uint32) | (
        rng.integers(0, 2, int(sub.sum())).astype(np.uint32) << np.uint32(31))
    return w


@pytest.mark.parametrize("cfg", [TINY, DEFAULT], ids=["tiny", "default"])
def test_state_load_then_rescale_is_moe_combine(cfg):
    """STATE_LOAD ``alpha = w[lane j]``, RESCALE ``out = fadd(fmul(y, alpha), out)``
    equals ``fadd(out, fmul(w_j, y))`` computed with numpy float32, bit for bit (±0,
    subnormals, random data); STATE_LOAD changes alpha only."""
    L = cfg.systolic.cols
    rng = np.random.default_rng(SEED + 4)
    n = 32
    acc = np.zeros((cfg.tensor.acc_rows, L), np.uint32)
    acc[0:n] = _rand_f32(rng, (n, L))            # w rows (lanes 0..k-1 used)
    acc[40:40 + n] = _rand_f32(rng, (n, L))      # y rows
    acc[80:80 + n] = _rand_f32(rng, (n, L))      # out rows
    st = VectorState.new(cfg)
    st.m[:] = 7.0
    for j in sorted({0, L - 1, int(rng.integers(0, L))}):
        out0, before = acc[80:80 + n].copy(), st.copy()
        _run(cfg, V(VecOp.STATE_LOAD, src=0, count=n, state=3, k_base=j), acc, state=st)
        assert np.array_equal(st.alpha[3:3 + n].view(np.uint32), acc[0:n, j])
        for f in ("m", "l", "beta", "k"):
            assert np.array_equal(getattr(st, f), getattr(before, f)), f
        assert np.array_equal(np.delete(st.alpha, range(3, 3 + n)),
                              np.delete(before.alpha, range(3, 3 + n)))
        _run(cfg, V(VecOp.RESCALE, src=80, src2=40, dst=80, count=n, state=3), acc, state=st)
        w = acc[0:n, j].view(np.float32)[:, None]
        with np.errstate(all="ignore"):
            prod = np.multiply(w, acc[40:40 + n].view(np.float32), dtype=np.float32)
        assert np.array_equal(acc[80:80 + n], _f32_add(out0.view(np.float32), prod)), j


def test_state_load_masked_lane_loads_minus_inf():
    """Stage A applies: a lane masked by pad loads -inf; imm scales the value."""
    acc = np.zeros((TINY.tensor.acc_rows, 4), np.uint32)
    acc[:2] = np.float32([[1, 2, 3, 4], [5, 6, 7, 8]]).view(np.uint32)
    _, _, st = _run(TINY, V(VecOp.STATE_LOAD, count=2, k_base=2, imm=2.0), acc)
    assert st.alpha[:2].tolist() == [6.0, 14.0]
    _, _, st = _run(TINY, V(VecOp.STATE_LOAD, count=2, k_base=2, pad=1, kv_len=2), acc)
    assert st.alpha[:2].tolist() == [-np.inf, -np.inf]


def test_check_rules():
    """k_base >= L is BAD_LANE (after every other rule); TOPK to the activation SRAM
    needs INT8 (BAD_FMT); the op sets."""
    L = TINY.systolic.cols
    assert check(V(VecOp.STATE_LOAD, k_base=L - 1), TINY) == ErrCode.NONE
    for kb in (L, L + 1, 0xFFFF):
        assert check(V(VecOp.STATE_LOAD, k_base=kb), TINY) == ErrCode.BAD_LANE
    acc_rows = TINY.tensor.acc_rows
    assert check(V(VecOp.STATE_LOAD, k_base=L, state=acc_rows - 1, count=2),
                 TINY) == ErrCode.STATE_RANGE
    assert check(V(VecOp.STATE_LOAD, k_base=L, src=acc_rows, count=1),
                 TINY) == ErrCode.ACC_RANGE
    assert check(V(VecOp.TOPK, k_base=L), TINY) == ErrCode.NONE        # lane unused
    assert check(V(VecOp.TOPK, dst_act=1, out_fmt=OutFmt.INT8), TINY) == ErrCode.NONE
    for fmt in (OutFmt.E4M3, OutFmt.E5M2, OutFmt.FP32, OutFmt.BF16):
        assert check(V(VecOp.TOPK, dst_act=1, out_fmt=fmt), TINY) == ErrCode.BAD_FMT, fmt
        assert check(V(VecOp.TOPK, out_fmt=fmt), TINY) == ErrCode.NONE, fmt
    assert {VecOp.TOPK, VecOp.STATE_LOAD} <= VECTOR_READS_SRC
    assert VecOp.TOPK in VECTOR_WRITES and VecOp.STATE_LOAD not in VECTOR_WRITES
    assert VecOp.STATE_LOAD in VECTOR_USES_STATE and VecOp.TOPK not in VECTOR_USES_STATE
    assert (int(VecOp.TOPK), int(VecOp.STATE_LOAD), int(ErrCode.BAD_LANE)) == (14, 15, 9)


def test_tensor_core_model_runs_both():
    """TensorCoreModel executes TOPK / STATE_LOAD and reports BAD_LANE (sticky)."""
    tc = TensorCoreModel(TINY)
    x = np.float32([[0.5, -2.0, 0.5, 9.0], [-0.0, 0.0, -1.0, 3.0]])
    tc.write(2, 0, x)
    tc.write(2, 10, np.float32([[1, 1, 1, 1], [2, 2, 2, 2]]))
    tc.write(2, 20, np.zeros((2, 4), np.float32))
    assert tc.execute([V(VecOp.TOPK, src=0, dst=4, count=2, dst_act=1, out_fmt=OutFmt.INT8),
                       V(VecOp.STATE_LOAD, src=0, count=2, k_base=3),
                       V(VecOp.RESCALE, src=20, src2=10, dst=20, count=2)]) == ErrCode.NONE
    assert tc.read(0, 4, 2).tolist() == [[3, 0, 2, 1], [3, 0, 1, 2]]
    assert tc.read(2, 20, 2).view(np.float32).tolist() == [[9.0] * 4, [6.0] * 4]
    assert tc.execute(V(VecOp.STATE_LOAD, k_base=4)) == ErrCode.BAD_LANE
    assert tc.execute(V(VecOp.COPY)) == ErrCode.BAD_LANE and tc.stats["discarded"] == 2
    assert f32_bits(tc.vec.alpha[0]) == f32_bits(9.0)
