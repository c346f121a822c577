"""Golden model of the vector unit's block scale (``bscale``) and partial-softmax ops
(STATE_STORE, STATE_MERGE), checked against float64 and exact properties.

Issue 14: INT8 probabilities stored as ``round(127 p)`` relative to the running max lose
every p below 1/254; with the per-row block scale ``2**k`` a key block's largest
probability uses at least half of the INT8 range. STATE_STORE / STATE_MERGE let a
softmax split over tiles (flash-decoding) be combined on chip.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from models.tensor_cmd import ErrCode, OutFmt, TensorCmd, VecOp, check
from models.vector import (
    K_MAX, block_scale_k, dequant_written, exp_approx, pow2, vector_execute)
from tests.models.test_vector_model import CFG, V, _mem, bits, f

SEED = 20261130
L = CFG.systolic.cols


def _frexp_k(g: float) -> int:
    """Independent k: the smallest k >= 0 with g * 2**k >= 0.5 (g normal, <= 1)."""
    if g == 0.0 or math.isnan(g):
        return K_MAX if g == 0.0 else 0
    mant, exp = math.frexp(g)            # g = mant * 2**exp, mant in [0.5, 1)
    return int(min(max(-exp, 0), K_MAX))


def test_block_scale_k_matches_frexp():
    rng = np.random.default_rng(SEED)
    g = np.concatenate([exp_approx(-rng.uniform(0, 40, 5000).astype(np.float32)),
                        np.float32([1.0, 0.5, 0.25, 2.0 ** -31, 2.0 ** -40, 0.0])])
    k = block_scale_k(g)
    want = [_frexp_k(float(x)) for x in g]
    assert k.tolist() == want
    scaled = g.astype(np.float64) * 2.0 ** k
    ok = (g > 2.0 ** -(K_MAX + 1))
    assert np.all((scaled[ok] >= 0.5) & (scaled[ok] <= 1.0))
    assert pow2(-k).tolist() == (2.0 ** -k.astype(np.float64)).tolist()


def _blocks_program(q, nblk, *, bscale, out_fmt, imm2, scale):
    cmds = [V(VecOp.STATE_INIT, count=q)]
    for j in range(nblk):
        kw = dict(src=40 * j, count=q, imm=scale, bscale=bscale)
        cmds.append(V(VecOp.ROWMAX, **kw))
        cmds.append(V(VecOp.EXP, dst=600 + 40 * j, out_fmt=out_fmt, imm2=imm2, **kw))
    return cmds


def _run_blocks(s, *, bscale, out_fmt, imm2, scale=1.0):
    """Online softmax of score rows ``s`` (q x nblk*L); returns P words, k, beta, alpha per
    block and the state."""
    q, n = s.shape
    acc, act, st = _mem()
    for j in range(n // L):
        acc[40 * j:40 * j + q] = bits(s[:, L * j:L * (j + 1)])
    ks, betas, alphas = [], [], []
    for cmd in _blocks_program(q, n // L, bscale=bscale, out_fmt=out_fmt, imm2=imm2,
                               scale=scale):
        vector_execute(CFG, cmd, acc, act, st)
        if cmd.op == VecOp.ROWMAX:
            ks.append(st.k[:q].copy())
            betas.append(st.beta[:q].astype(np.float64))
            alphas.append(st.alpha[:q].astype(np.float64))
    p = [acc[600 + 40 * j:600 + 40 * j + q] for j in range(n // L)]
    return p, ks, betas, alphas, st


@pytest.mark.parametrize("spread", [1.0, 3.0, 8.0])
def test_int8_block_scale_keeps_small_blocks(spread):
    """Later blocks far below the running max: with bscale every block's largest code is
    >= 64 (>= half the INT8 range), and the softmax (P * beta * later alphas / l) is
    within the INT8 bound of float64; l is the float64 sum of what was stored."""
    rng = np.random.default_rng(SEED + int(spread))
    q, nblk = 16, 6
    s = rng.standard_normal((q, nblk * L)).astype(np.float32) * np.float32(spread)
    s[:, :L] += np.float32(6.0)           # block 0 holds the max: later blocks are small
    p, ks, betas, alphas, st = _run_blocks(s, bscale=1, out_fmt=OutFmt.INT8, imm2=127.0)
    print(f"seed {SEED + int(spread)}: k per block {[k.tolist()[:4] for k in ks]}")
    got = []
    for j in range(nblk):
        codes = dequant_written(OutFmt.INT8, p[j]).astype(np.float64)
        live = ks[j] < K_MAX
        assert np.all(codes.max(1)[live] >= 64), (j, codes.max(1), ks[j])
        w = betas[j].copy()
        for later in alphas[j + 1:]:
            w *= later
        got.append(codes * w[:, None])
    pm = np.concatenate(got, 1)
    assert np.allclose(st.l[:q], pm.sum(1), rtol=1e-5)
    ref = np.exp(s.astype(np.float64) - s.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    # per-element error of INT8 P relative to its block's scale (<= 1/127 of block max)
    assert np.max(np.abs(pm / st.l[:q, None] - ref)) < 0.01
    if spread == 3.0:
        assert max(int(k.max()) for k in ks[1:]) >= 3      # the scale was exercised


def test_fp32_block_scale_is_an_exact_power_of_two():
    """FP32 P: bscale writes exactly e * 2**k and leaves l bit-identical."""
    rng = np.random.default_rng(SEED + 5)
    s = (rng.standard_normal((8, 4 * L)) * 4).astype(np.float32)
    s[:, :L] += 10
    p0, _, _, _, st0 = _run_blocks(s, bscale=0, out_fmt=OutFmt.FP32, imm2=1.0)
    p1, ks, betas, _, st1 = _run_blocks(s, bscale=1, out_fmt=OutFmt.FP32, imm2=1.0)
    for j in range(4):
        assert np.array_equal(f(p1[j]).astype(np.float64),
                              f(p0[j]).astype(np.float64) * 2.0 ** ks[j][:, None])
    assert np.array_equal(bits(st0.l[:8]), bits(st1.l[:8]))
    assert np.array_equal(bits(st0.m[:8]), bits(st1.m[:8]))


def test_rowmax_without_bscale_resets_k_and_beta():
    acc, act, st = _mem()
    st.k[:] = 7
    st.beta[:] = 0.25
    acc[0] = bits(np.float32([1, 2, 3, 4]))
    vector_execute(CFG, V(VecOp.ROWMAX, src=0, state=3), acc, act, st)
    assert st.k[3] == 0 and st.beta[3] == 1.0 and st.k[4] == 7
    vector_execute(CFG, V(VecOp.STATE_INIT, state=4), acc, act, st)
    assert st.k[4] == 0 and st.beta[4] == 1.0


def test_fully_masked_block_with_bscale_writes_zero():
    acc, act, st = _mem()
    acc[0] = bits(np.float32([5, 1, 0, -1]))
    acc[1] = bits(np.float32([9, 9, 9, 9]))
    prog = [V(VecOp.ROWMAX, src=0, bscale=1), V(VecOp.EXP, src=0, dst=10, bscale=1,
                                                 out_fmt=OutFmt.INT8, imm2=127.0),
            V(VecOp.ROWMAX, src=1, bscale=1, pad=1, kv_len=0),
            V(VecOp.EXP, src=1, dst=11, bscale=1, pad=1, kv_len=0, out_fmt=OutFmt.INT8,
              imm2=127.0)]
    for cmd in prog:
        vector_execute(CFG, cmd, acc, act, st)
    l_before = st.l[0]
    assert not acc[11].any() and st.l[0] == l_before and st.k[0] == K_MAX


def _partial(acc, act, st, s, v, *, row, state):
    """One split: online softmax of scores s (q x L, one block) and O = P V (float32,
    computed by numpy as the array would, here exactly in float64 then rounded); leaves
    [m, l] at acc row ``row`` (STATE_STORE) and O at ``row + 50``."""
    q = s.shape[0]
    acc[row:row + q] = bits(s)
    for cmd in (V(VecOp.STATE_INIT, count=q, state=state),
                V(VecOp.ROWMAX, src=row, count=q, state=state),
                V(VecOp.EXP, src=row, dst=row + 20, count=q, state=state)):
        vector_execute(CFG, cmd, acc, act, st)
    p = f(acc[row + 20:row + 20 + q]).astype(np.float64)
    acc[row + 50:row + 50 + q] = bits((p @ v).astype(np.float32))
    vector_execute(CFG, V(VecOp.STATE_STORE, dst=row, count=q, state=state), acc, act, st)


def test_state_store_and_merge_combine_splits():
    """Flash-decoding on one unit: 3 splits of the keys, each stored as [m, l] + O; the
    merge (STATE_MERGE, RESCALE with bscale, NORM) equals float64 softmax(s) V."""
    rng = np.random.default_rng(SEED + 9)
    q, nsplit = 6, 3
    s = (rng.standard_normal((q, nsplit * L)) * 3).astype(np.float32)
    s[:, L:2 * L] += 4                      # the max is in split 1
    s[2, :] = -np.inf                       # row 2: split 0 fully masked ...
    s[2, 2 * L:] = rng.standard_normal(L).astype(np.float32)     # ... only split 2 live
    v = rng.standard_normal((nsplit * L, L))
    acc, act, st = _mem()
    for i in range(nsplit):
        _partial(acc, act, st, s[:, i * L:(i + 1) * L], v[i * L:(i + 1) * L],
                 row=100 * (i + 1), state=32 + 8 * i)
        stored = f(acc[100 * (i + 1):100 * (i + 1) + q])
        assert np.array_equal(bits(stored[:, 0]), bits(st.m[32 + 8 * i:32 + 8 * i + q]))
        assert np.array_equal(bits(stored[:, 1]), bits(st.l[32 + 8 * i:32 + 8 * i + q]))
        assert not acc[100 * (i + 1):100 * (i + 1) + q, 2:].any()
    vector_execute(CFG, V(VecOp.STATE_INIT, count=q), acc, act, st)
    acc[900:900 + q] = bits(np.full((q, L), np.nan, np.float32))     # O is not cleared
    for i in range(nsplit):
        row = 100 * (i + 1)
        vector_execute(CFG, V(VecOp.STATE_MERGE, src=row, count=q), acc, act, st)
        if i == 0:
            cmd = V(VecOp.COPY, src=row + 50, dst=900, count=q)       # O = O_0 (beta = 1)
            assert np.all(st.beta[:q][[0, 1, 3, 4, 5]] == 1.0)
        else:
            cmd = V(VecOp.RESCALE, src=row + 50, src2=900, dst=900, count=q, bscale=1)
        vector_execute(CFG, cmd, acc, act, st)
    vector_execute(CFG, V(VecOp.NORM, src=900, dst=950, count=q), acc, act, st)
    got = f(acc[950:950 + q]).astype(np.float64)
    sd = s.astype(np.float64)
    p = np.exp(sd - sd.max(1, keepdims=True))
    ref = (p / p.sum(1, keepdims=True)) @ v
    assert np.max(np.abs(got - ref)) < 3e-4 * np.abs(v).max(), np.abs(got - ref).max()
    # the merged state is the float64 merge of the stored partials (exp_approx error)
    m_parts = np.stack([f(acc[100 * (i + 1):100 * (i + 1) + q])[:, 0] for i in range(nsplit)])
    l_parts = np.stack([f(acc[100 * (i + 1):100 * (i + 1) + q])[:, 1] for i in range(nsplit)])
    m = m_parts.max(0)
    assert np.array_equal(st.m[:q], m.astype(np.float32))
    with np.errstate(invalid="ignore"):
        l_ref = np.nansum(l_parts * np.exp(m_parts.astype(np.float64) - m), 0)
    assert np.allclose(st.l[:q], l_ref, rtol=1e-4)


def test_merge_of_an_empty_state_and_empty_partial():
    acc, act, st = _mem()
    acc[0] = bits(np.float32([-np.inf, 0, 0, 0]))
    vector_execute(CFG, V(VecOp.STATE_MERGE, src=0, state=5), acc, act, st)
    assert st.m[5] == -np.inf and st.l[5] == 0 and st.alpha[5] == 1 and st.beta[5] == 1


def test_new_ops_and_fields_in_check_and_image():
    assert check(TensorCmd.vector(VecOp.STATE_STORE, out_fmt=OutFmt.INT8), CFG) == ErrCode.BAD_FMT
    assert check(TensorCmd.vector(VecOp.STATE_STORE, dst_act=1), CFG) == ErrCode.BAD_FMT
    rows = CFG.tensor.acc_rows
    assert check(TensorCmd.vector(VecOp.STATE_STORE, dst=rows - 1, count=2), CFG) == ErrCode.ACC_RANGE
    assert check(TensorCmd.vector(VecOp.STATE_STORE, src=rows, state=rows - 2, count=2),
                 CFG) == ErrCode.NONE                       # src unused
    assert check(TensorCmd.vector(VecOp.STATE_MERGE, src=rows - 1, count=2), CFG) == ErrCode.ACC_RANGE
    assert check(TensorCmd.vector(VecOp.STATE_MERGE, state=rows - 1, count=2),
                 CFG) == ErrCode.STATE_RANGE
    cmd = TensorCmd.vector(VecOp.RESCALE, bscale=1, indep=1)
    word0 = int.from_bytes(cmd.to_bytes()[:4], "little")
    assert (word0 >> 25) & 3 == 3
    assert TensorCmd.from_bytes(cmd.to_bytes()) == cmd
