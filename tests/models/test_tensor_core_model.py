"""The tensor-core golden model, checked against references that share none of its code.

References: pure-Python integers with an explicit two's-complement wrap (INT8), a
float64 GEMM of ml_dtypes-decoded FP8 with a stated error bound and a slow pure-Python
loop in the documented binary32 order (FP8), ``models.fp8.gemm_fp8`` (whole GEMMs),
and the rules of ``models.tensor_cmd.check`` for the error behaviour.
"""
import dataclasses
import struct

import ml_dtypes
import numpy as np
import pytest

from models.config import get_preset
from models.fp8 import E4M3, E5M2, gemm_fp8
from models.systolic import scalesim_cycles
from models.tensor_cmd import ErrCode, OutFmt, TensorCmd, VecOp
from models.tensor_core import (ACC_ADD_STAGES, MEM_ACC, MEM_ACT, MEM_WEIGHT, PIPELINE_CYCLES,
                                TensorCoreModel,
                                gemm_commands, gemm_images, gemm_layout, gemm_result,
                                matmul_bound_cycles, matmul_cycles, useful_macs)

TINY = get_preset("tiny")
DEFAULT = get_preset("default")
ML = (ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2)


def _py_wrap(v: int) -> int:
    v &= 0xFFFF_FFFF
    return v - (1 << 32) if v >> 31 else v


def _f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def _rand_int8(rng, shape):
    return rng.integers(-128, 128, shape).astype(np.int8)


# --- host port -------------------------------------------------------------------------------
def test_write_read_round_trip_and_errors():
    m = TensorCoreModel(TINY)
    R, C = TINY.systolic.rows, TINY.systolic.cols
    m.write(MEM_ACT, 5, np.array([[-1, 2, -3, 4]], np.int8))
    assert m.read(MEM_ACT, 5, 1).tolist() == [[255, 2, 253, 4]]
    m.write(MEM_ACC, 0, np.array([[1.0, -2.0, 0.5, -0.0]], np.float32))
    assert m.read(MEM_ACC, 0, 1).tolist() == [[0x3F800000, 0xC0000000, 0x3F000000, 0x80000000]]
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        m.write(MEM_WEIGHT, 0, np.zeros((1, C + 1), np.uint8))
    with pytest.raises(ValueError, match="outside mem 0"):
        m.write(MEM_ACT, TINY.tensor.act_rows - 1, np.zeros((2, R), np.uint8))
    with pytest.raises(TypeError, match="32-bit"):
        m.write(MEM_ACC, 0, np.zeros((1, C), np.uint8))
    with pytest.raises(ValueError, match="mem must be"):
        m.read(3, 0, 1)


# --- INT8 matmul -------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_int8_commands_match_python_integers(seed):
    """Random overwrite/accumulate commands vs a pure-Python model with explicit wrap."""
    rng = np.random.default_rng(seed)
    cfg = TINY
    R, C = cfg.systolic.rows, cfg.systolic.cols
    m = TensorCoreModel(cfg)
    act = _rand_int8(rng, (40, R))
    wgt = _rand_int8(rng, (3 * R, C))
    acc0 = rng.integers(-2**31, 2**31, (30, C)).astype(np.int32)
    m.write(MEM_ACT, 0, act)
    m.write(MEM_WEIGHT, 0, wgt)
    m.write(MEM_ACC, 0, acc0)
    ref = [[int(v) for v in row] for row in acc0]
    for _ in range(20):
        cnt = int(rng.integers(1, 10))
        src, w0, dst = int(rng.integers(0, 40 - cnt)), int(rng.integers(0, 2 * R + 1)), \
            int(rng.integers(0, 30 - cnt))
        accumulate = bool(rng.integers(0, 2))
        assert m.execute([TensorCmd.matmul(src=src, w=w0, dst=dst, m=cnt,
                                           accumulate=accumulate)]) == ErrCode.NONE
        for i in range(cnt):
            for c in range(C):
                s = sum(int(act[src + i][r]) * int(wgt[w0 + r][c]) for r in range(R))
                ref[dst + i][c] = _py_wrap((ref[dst + i][c] if accumulate else 0) + s)
    assert m.read(MEM_ACC, 0, 30).view(np.int32).tolist() == ref


def test_int32_wraps_around():
    m = TensorCoreModel(TINY)
    R, C = 4, 4
    m.write(MEM_ACT, 0, np.full((1, R), 127, np.int8))
    m.write(MEM_WEIGHT, 0, np.full((R, C), 127, np.int8))
    m.write(MEM_ACC, 0, np.full((1, C), 2**31 - 1, np.int32))
    m.execute(TensorCmd.matmul(src=0, w=0, dst=0, m=1, accumulate=True))
    assert m.read(MEM_ACC, 0, 1).view(np.int32).tolist() == [[_py_wrap(2**31 - 1 + 4 * 127 * 127)] * C]


@pytest.mark.parametrize("cfg", [TINY, DEFAULT], ids=["tiny", "default"])
@pytest.mark.parametrize("order", ["nkm", "nmk"])
def test_int8_gemm_commands(cfg, order):
    """A GEMM split into K-fold accumulating, N-fold commands == int64 numpy matmul."""
    rng = np.random.default_rng(7)
    R, C = cfg.systolic.rows, cfg.systolic.cols
    M, K, N = 2 * R + 3, 3 * R - 1, 2 * C + 1
    x, w = _rand_int8(rng, (M, K)), _rand_int8(rng, (K, N))
    lay = gemm_layout(cfg, M, K, N, act=3, wgt=R, acc=11)
    m = TensorCoreModel(cfg)
    for mem, addr, rows in gemm_images(cfg, lay, x, w):
        m.write(mem, addr, rows)
    cmds = gemm_commands(cfg, lay, chunks=[1, R - 1, M - R], order=order)
    assert m.execute(cmds) == ErrCode.NONE
    want = ((x.astype(np.int64) @ w.astype(np.int64) + 2**31) % 2**32 - 2**31)
    assert np.array_equal(gemm_result(cfg, lay, m.acc[lay.acc:]).view(np.int32), want)
    assert not m.acc[:lay.acc].any() and not m.acc[lay.acc + lay.acc_words:].any()
    assert m.stats == {"matmul": len(cmds), "vector": 0, "discarded": 0,
                       "act": matmul_bound_cycles(cmds)}


# --- FP8 matmul --------------------------------------------------------------------------------
def _py_fp8_tile(a_vals, w_vals, R):
    """Pure-Python binary32 sum down the array (products exact, one rounding per add)."""
    M, C = len(a_vals), len(w_vals[0])
    out = [[0.0] * C for _ in range(M)]
    for i in range(M):
        for c in range(C):
            p = 0.0
            for r in range(R):
                p = _f32(p + _f32(a_vals[i][r] * w_vals[r][c]))
            out[i][c] = p
    return out


def _finite_codes(rng, shape):
    c = rng.integers(0, 256, shape).astype(np.uint8)
    return np.where((c & 0x7F) >= 0x78, c & 0xB7, c).astype(np.uint8)


@pytest.mark.parametrize("fa,fw", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_fp8_command_matches_python_loop(fa, fw):
    """One FP8 tile (overwrite), then accumulate into it: pure-Python binary32 loop."""
    rng = np.random.default_rng(10 + 2 * fa + fw)
    cfg, R, C = TINY, 4, 4
    a, w = _finite_codes(rng, (5, R)), _finite_codes(rng, (R, C))
    av = a.view(ML[fa]).astype(np.float64).tolist()
    wv = w.view(ML[fw]).astype(np.float64).tolist()
    m = TensorCoreModel(cfg)
    m.write(MEM_ACT, 0, a)
    m.write(MEM_WEIGHT, 0, w)
    m.execute(TensorCmd.matmul(src=0, w=0, dst=0, m=5, fp8=True, fmt_a=fa, fmt_w=fw))
    tile = _py_fp8_tile(av, wv, R)
    assert m.read(MEM_ACC, 0, 5).view(np.float32).tolist() == tile
    m.execute(TensorCmd.matmul(src=0, w=0, dst=0, m=5, fp8=True, fmt_a=fa, fmt_w=fw,
                               accumulate=True))
    twice = [[_f32(v + v) for v in row] for row in tile]
    assert m.read(MEM_ACC, 0, 5).view(np.float32).tolist() == twice


@pytest.mark.parametrize("fa,fw", [(0, 0), (1, 1), (0, 1)])
def test_fp8_gemm_commands(fa, fw):
    """K-fold FP8 GEMM == gemm_fp8(tile_k=R) bitwise, and within the binary32 error
    bound of a float64 GEMM of the ml_dtypes-decoded operands."""
    rng = np.random.default_rng(3)
    cfg = TINY
    R, C = 4, 4
    M, K, N = 9, 3 * R + 2, C + 3
    x, w = _finite_codes(rng, (M, K)), _finite_codes(rng, (K, N))
    lay = gemm_layout(cfg, M, K, N)
    m = TensorCoreModel(cfg)
    for mem, addr, rows in gemm_images(cfg, lay, x, w):
        m.write(mem, addr, rows)
    m.execute(gemm_commands(cfg, lay, chunks=[2, 7], fp8=True, fmt_a=fa, fmt_w=fw))
    y = gemm_result(cfg, lay, m.acc).view(np.float32)
    fmts = (E4M3, E5M2)
    assert np.array_equal(y.view(np.uint32),
                          gemm_fp8(x, fmts[fa], w, fmts[fw], tile_k=R).view(np.uint32))
    xd, wd = x.view(ML[fa]).astype(np.float64), w.view(ML[fw]).astype(np.float64)
    ref = xd @ wd
    # each of the K + ceil(K/R) binary32 adds rounds by at most 2^-24 of a partial sum,
    # and every partial sum is bounded by sum |x w|
    bound = (K + lay.kt) * 2.0**-24 * (np.abs(xd) @ np.abs(wd)) + 1e-45
    assert np.all(np.abs(y.astype(np.float64) - ref) <= bound)


def test_fp8_specials():
    """NaN operand -> canonical NaN; inf * 0 -> NaN; +-0 products give +0 partials."""
    cfg = TINY
    m = TensorCoreModel(cfg)
    a = np.array([[0x7F, 0, 0, 0], [0x80, 0x80, 0x80, 0x80], [0x7C, 0, 0, 0]], np.uint8)
    w = np.array([[0x38] * 4, [0x38] * 4, [0x38] * 4, [0x38] * 4], np.uint8)   # 1.0 (E4M3)
    m.write(MEM_ACT, 0, a)
    m.write(MEM_WEIGHT, 0, w)
    m.write(MEM_WEIGHT, 4, np.zeros((4, 4), np.uint8))
    m.execute(TensorCmd.matmul(src=0, w=0, dst=0, m=2, fp8=True))           # E4M3 x E4M3
    m.execute(TensorCmd.matmul(src=2, w=4, dst=2, m=1, fp8=True, fmt_a=1))  # E5M2 inf x 0
    out = m.read(MEM_ACC, 0, 3)
    assert out[0].tolist() == [0x7FC00000] * 4
    assert out[1].tolist() == [0] * 4                                        # +0, not -0
    assert out[2].tolist() == [0x7FC00000] * 4


def test_fp8_on_int8_only_array_is_an_error():
    int8_only = dataclasses.replace(DEFAULT, systolic=dataclasses.replace(DEFAULT.systolic,
                                                                          fp8=False))
    m = TensorCoreModel(int8_only)
    assert m.execute(TensorCmd.matmul(src=0, w=0, dst=0, m=1, fp8=True)) == ErrCode.NO_FP8


# --- errors ------------------------------------------------------------------------------------
def test_error_is_sticky_discards_and_clears():
    cfg = TINY
    m = TensorCoreModel(cfg)
    m.write(MEM_ACT, 0, np.ones((4, 4), np.int8))
    m.write(MEM_WEIGHT, 0, np.ones((4, 4), np.int8))
    good = TensorCmd.matmul(src=0, w=0, dst=0, m=1)
    later = TensorCmd.matmul(src=0, w=0, dst=1, m=1)
    bad1 = TensorCmd.matmul(src=0, w=0, dst=0, m=0)
    bad2 = TensorCmd.vector(VecOp.COPY, count=1, out_fmt=OutFmt.FP32, dst=cfg.tensor.acc_rows)
    assert m.execute([good, bad1, later, bad2]) == ErrCode.ZERO_COUNT    # first error wins
    assert m.read(MEM_ACC, 0, 2).tolist() == [[4] * 4, [0] * 4]
    assert m.execute([later]) == ErrCode.ZERO_COUNT                      # still discarding
    assert m.stats["discarded"] == 4 and m.stats["matmul"] == 1
    m.clear_err()
    assert m.execute([later]) == ErrCode.NONE
    assert m.read(MEM_ACC, 1, 1).tolist() == [[4] * 4]


# --- vector commands go to models.vector --------------------------------------------------------
def test_vector_command_runs_the_vector_model():
    vector = pytest.importorskip("models.vector")
    cfg = TINY
    m = TensorCoreModel(cfg)
    rows = np.array([[1, -2, 3, -4], [5, 6, -7, 8]], np.int32)
    m.write(MEM_ACC, 10, rows)
    cmd = TensorCmd.vector(VecOp.COPY, src=10, dst=20, count=2, in_int=1, imm=0.5,
                           out_fmt=OutFmt.INT8, dst_act=1)
    acc, act, st = m.acc.copy(), m.act.copy(), vector.VectorState.new(cfg)
    vector.vector_execute(cfg, cmd, acc, act, st)
    assert m.execute(cmd) == ErrCode.NONE
    assert np.array_equal(m.act, act) and np.array_equal(m.acc, acc)
    assert m.read(MEM_ACT, 20, 2).view(np.int8).tolist() == [[0, -1, 2, -2], [2, 3, -4, 4]]


# --- cycle models ------------------------------------------------------------------------------
def test_cycle_model_values():
    cfg = TINY
    R, C = 4, 4
    # array latency: input register, skew + column (R + C - 1), PE pipeline (3), FP8
    # rounding (4)
    lat = 1 + R + C - 1 + 3 + 4
    assert cfg.systolic.fp8 and cfg.systolic.latency == lat
    mm = lambda n: TensorCmd.matmul(src=0, w=0, dst=0, m=n)     # noqa: E731
    assert matmul_cycles(cfg, [mm(1)]) == PIPELINE_CYCLES + ACC_ADD_STAGES + R + 1 + lat
    seq = [mm(n) for n in (1, 4, 9, 2, 5)]
    assert (matmul_cycles(cfg, seq)
            == PIPELINE_CYCLES + ACC_ADD_STAGES + R + (4 + 4 + 9 + 4) + 5 + lat)
    assert matmul_bound_cycles(seq + [TensorCmd.vector(VecOp.COPY, count=7)]) == 21
    assert useful_macs(cfg, seq) == 21 * 16
    with pytest.raises(ValueError, match="MATMUL"):
        matmul_cycles(cfg, [TensorCmd.vector(VecOp.COPY)])


@pytest.mark.parametrize("cfg", [TINY, DEFAULT], ids=["tiny", "default"])
def test_gemm_tile_sequence_beats_scalesim(cfg):
    """Back-to-back tiles (shadow weights) beat SCALE-Sim's per-fold count for M >= R."""
    R = cfg.systolic.rows
    for M, K, N in [(R, 4 * R, 64), (4 * R, 2 * R, 32), (64, 64, 64)]:
        lay = gemm_layout(cfg, M, K, N)
        cmds = gemm_commands(cfg, lay)
        assert matmul_cycles(cfg, cmds) < scalesim_cycles(cfg.systolic, M, K, N)
        assert matmul_bound_cycles(cmds) == M * lay.kt * lay.nt


def test_gemm_layout_errors():
    with pytest.raises(ValueError, match="activation words"):
        gemm_layout(TINY, 600, 8, 4)           # 2 K tiles x 600 rows > 1024
    with pytest.raises(ValueError, match=">= 1"):
        gemm_layout(TINY, 0, 4, 4)
    lay = gemm_layout(TINY, 4, 4, 4)
    with pytest.raises(ValueError, match="sum to M"):
        gemm_commands(TINY, lay, chunks=[1, 2])


# --- overlap (indep) checker ---------------------------------------------------------------------
def _overlap_fixture():
    from models.tensor_core import acc_bank
    half = TINY.tensor.acc_rows // 2
    mm = TensorCmd.matmul
    V = TensorCmd.vector
    assert acc_bank(TINY, half - 1) == 0 and acc_bank(TINY, half) == 1
    return half, mm, V


def test_overlap_pairs_follow_the_fences():
    """Which commands may run together: an indep VECTOR with every MATMUL since the last
    fencing VECTOR, an indep MATMUL with the last VECTOR if no fencing MATMUL lies between."""
    from models.tensor_core import overlap_pairs
    half, mm, V = _overlap_fixture()
    m0 = mm(src=0, w=0, dst=0, m=8)
    prog = [m0,                                               # 0
            V(VecOp.COPY, src=half, dst=half + 8, count=4, indep=1),   # 1: with 0
            dataclasses.replace(m0, indep=1),                 # 2: with 1
            m0,                                               # 3: fence (waits for 1)
            V(VecOp.COPY, src=half, dst=half, count=4, indep=1),       # 4: with 0, 2, 3
            V(VecOp.COPY, src=half, dst=half, count=4),       # 5: fence
            dataclasses.replace(m0, indep=1),                 # 6: with 5
            V(VecOp.COPY, src=half, dst=half, count=4, indep=1)]       # 7: with 6 only
    assert overlap_pairs(prog) == [(0, 1), (1, 2), (0, 4), (2, 4), (3, 4), (5, 6), (6, 7)]
    assert overlap_pairs([dataclasses.replace(c, indep=0) for c in prog]) == []


def test_overlap_errors_bank_and_race():
    """Disjoint banks and activation rows: no issue; a shared bank is reported as a stall
    ("bank"), a P write into rows an overlapping MATMUL reads as a "race"; illegal
    commands end the analysis (the core discards what follows)."""
    from models.tensor_core import acc_banks, overlap_errors
    half, mm, V = _overlap_fixture()
    a = mm(src=0, w=0, dst=0, m=8)                         # bank 0, act rows 0..7
    v_ok = V(VecOp.EXP, src=half, dst=64, count=4, dst_act=1, out_fmt=OutFmt.E4M3, indep=1)
    assert acc_banks(TINY, v_ok) == {1}
    assert acc_banks(TINY, mm(src=0, w=0, dst=half - 2, m=4)) == {0, 1}
    assert overlap_errors(TINY, [a, v_ok]) == []
    bank = overlap_errors(TINY, [a, dataclasses.replace(v_ok, src=8)])
    assert [(e.index, e.other, e.kind) for e in bank] == [(1, 0, "bank")]
    dep = overlap_errors(TINY, [a, dataclasses.replace(v_ok, src=4)])
    assert [(e.index, e.other, e.kind) for e in dep] == [(1, 0, "wait")]
    race = overlap_errors(TINY, [a, dataclasses.replace(v_ok, dst=6)])
    assert [(e.index, e.other, e.kind) for e in race] == [(1, 0, "race")]
    assert "rows 6..7" in race[0].what
    # the other direction: an indep MATMUL reading the P rows the running EXP writes
    m_rd = mm(src=64, w=0, dst=8, m=4)
    back = overlap_errors(TINY, [v_ok, dataclasses.replace(m_rd, indep=1)])
    assert [(e.index, e.other, e.kind) for e in back] == [(1, 0, "race")]
    assert overlap_errors(TINY, [v_ok, m_rd]) == []          # fenced: no overlap
    bad = TensorCmd.matmul(src=0, w=0, dst=0, m=0)           # ZERO_COUNT
    assert overlap_errors(TINY, [a, bad, dataclasses.replace(v_ok, dst=6)]) == []


def test_overlap_model_results_are_in_order():
    """The golden model ignores indep (executes in program order): same SRAMs either way."""
    half, mm, V = _overlap_fixture()
    rng = np.random.default_rng(5)
    prog = [mm(src=0, w=0, dst=0, m=8), V(VecOp.COPY, src=half, dst=half + 8, count=8, indep=1),
            dataclasses.replace(mm(src=8, w=4, dst=16, m=8), indep=1)]
    outs = []
    for p in (prog, [dataclasses.replace(c, indep=0) for c in prog]):
        m = TensorCoreModel(TINY)
        m.write(MEM_ACT, 0, rng.integers(0, 256, (16, 4)).astype(np.uint8))
        m.write(MEM_WEIGHT, 0, rng.integers(0, 256, (8, 4)).astype(np.uint8))
        m.write(MEM_ACC, half, rng.integers(0, 1 << 32, (8, 4)).astype(np.uint32))
        assert m.execute(p) == ErrCode.NONE
        outs.append(m.acc.copy())
        rng = np.random.default_rng(5)
    assert np.array_equal(outs[0], outs[1])


def test_program_cycles_of_matmuls_equal_matmul_cycles():
    """program_cycles reduces to matmul_cycles for MATMUL-only programs (random counts,
    rows, accumulate: hazards included), and a fenced VECTOR adds its full occupancy."""
    import random

    from models.tensor_core import program_cycles, program_schedule
    from models.vector import vector_latency
    for cfg in (TINY, DEFAULT):
        R = cfg.systolic.rows
        rng = random.Random(7)
        for _ in range(200):
            cmds = [TensorCmd.matmul(src=0, w=0, dst=rng.randrange(40),
                                     m=rng.choice([1, 2, R - 1 or 1, R, R + 1, 3 * R]),
                                     accumulate=rng.random() < 0.7)
                    for _ in range(rng.randint(1, 12))]
            assert program_cycles(cfg, cmds) == matmul_cycles(cfg, cmds)
        mm = TensorCmd.matmul(src=0, w=0, dst=0, m=2 * R)
        v = TensorCmd.vector(VecOp.RELU, src=0, dst=64, count=8)
        sched = program_schedule(cfg, [mm, v])
        assert sched[1].dispatch == sched[0].finish + 1          # the fence
        assert program_cycles(cfg, [mm, v]) == sched[0].finish + 1 + 8 + vector_latency(
            cfg.systolic.cols)
        free = dataclasses.replace(v, src=cfg.tensor.acc_rows // 2,
                                   dst=cfg.tensor.acc_rows // 2 + 8, indep=1)
        assert program_schedule(cfg, [mm, free])[1].dispatch == 2   # overlaps
        with pytest.raises(ValueError, match="illegal"):
            program_schedule(cfg, [TensorCmd.matmul(src=0, w=0, dst=0, m=0)])
