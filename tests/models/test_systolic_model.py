"""The systolic golden model, checked against references that share none of its code."""
import random

import numpy as np
import pytest

from models.config import SystolicConfig
from models.systolic import (SystolicArrayModel, array_cycles, gemm_int8, plan_gemm,
                             scalesim_cycles, utilization, wrap_int32)


def _py_gemm_wrapped(x, w):
    """Pure-Python integers (arbitrary precision), explicit two's-complement wrap."""
    M, K, N = len(x), len(w), len(w[0])
    out = []
    for i in range(M):
        row = []
        for j in range(N):
            s = sum(int(x[i][k]) * int(w[k][j]) for k in range(K))
            s &= 0xFFFFFFFF
            row.append(s - (1 << 32) if s >> 31 else s)
        out.append(row)
    return np.array(out, dtype=np.int64)


def test_wrap_int32_edges():
    v = np.array([2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**32, 3 * 2**32 + 5, -(2**40)])
    assert wrap_int32(v).tolist() == [2**31 - 1, -2**31, -2**31, 2**31 - 1, 0, 5, 0]


@pytest.mark.parametrize("seed", range(5))
def test_gemm_int8_matches_python_ints(seed):
    rng = np.random.default_rng(seed)
    M, K, N = rng.integers(1, 9, size=3)
    x = rng.integers(-128, 128, (M, K)).astype(np.int8)
    w = rng.integers(-128, 128, (K, N)).astype(np.int8)
    assert np.array_equal(gemm_int8(x, w), _py_gemm_wrapped(x.tolist(), w.tolist()))


def test_gemm_int8_matches_float64_when_in_range():
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, (33, 300)).astype(np.int8)
    w = rng.integers(-128, 128, (300, 17)).astype(np.int8)
    ref = x.astype(np.float64) @ w.astype(np.float64)   # exact: |sum| < 2^53
    assert np.array_equal(gemm_int8(x, w).astype(np.float64), ref)


def test_gemm_int8_wraps_on_overflow():
    """K = 2^17 products of (-128)(-128) = 2^31: exactly one past INT32_MAX, wraps to MIN."""
    K = 2**17
    x = np.full((1, K), -128, np.int8)
    w = np.full((K, 1), -128, np.int8)
    assert gemm_int8(x, w)[0, 0] == -2**31
    w[0, 0] = 127                                 # 2^31 - 128*255 -> back in range
    assert gemm_int8(x, w)[0, 0] == 2**31 - 128 * 255
    x[0, :3] = 127                                # and a python-int cross-check of the wrap
    ref = sum(int(a) * int(b) for a, b in zip(x[0], w[:, 0])) & 0xFFFFFFFF
    assert gemm_int8(x, w)[0, 0] == (ref - 2**32 if ref >> 31 else ref)


def test_gemm_int8_rejects_bad_input():
    with pytest.raises(ValueError, match="outside INT8"):
        gemm_int8(np.array([[200]]), np.array([[1]]))
    with pytest.raises(TypeError, match="must hold integers"):
        gemm_int8(np.array([[1.5]]), np.array([[1]]))
    with pytest.raises(ValueError, match=r"needs \(M,K\) @ \(K,N\)"):
        gemm_int8(np.ones((2, 3), np.int8), np.ones((2, 3), np.int8))


@pytest.mark.parametrize("R, C", [(1, 1), (4, 4), (3, 5), (16, 16)])
def test_tiled_model_equals_gemm(R, C):
    cfg = SystolicConfig(rows=R, cols=C)
    rnd = random.Random(R * 100 + C)
    for _ in range(10):
        M, K, N = rnd.randint(1, 40), rnd.randint(1, 40), rnd.randint(1, 40)
        x = np.array([[rnd.randint(-128, 127) for _ in range(K)] for _ in range(M)], np.int8)
        w = np.array([[rnd.randint(-128, 127) for _ in range(N)] for _ in range(K)], np.int8)
        assert np.array_equal(SystolicArrayModel(cfg).gemm(x, w), gemm_int8(x, w))
        tiles = plan_gemm(cfg, x, w)
        assert len(tiles) == cfg.folds(K, N)
        assert all(t.weights.shape == (R, C) and t.acts.shape == (M, R) for t in tiles)


def test_cycle_model_and_scalesim():
    cfg = SystolicConfig(rows=16, cols=16)
    # one tile: load R rows, stream M, drain: input register 1, skew + column
    # R + C - 1, the PE pipeline 3 (operands, product, alignment), the FP8 rounding 4;
    # INT8-only: PE pipeline 2, no rounding
    assert array_cycles(cfg, 64, 16, 16) == 16 + 64 + 1 + 31 + 3 + 4
    int8 = SystolicConfig(rows=16, cols=16, fp8=False)
    assert array_cycles(int8, 64, 16, 16) == 16 + 64 + 1 + 31 + 2
    # SCALE-Sim WS count: folds * (2R + C + M - 2)
    assert scalesim_cycles(cfg, 64, 64, 64) == 16 * (32 + 16 + 64 - 2)
    for m, k, n in [(64, 64, 64), (128, 64, 32), (256, 256, 256), (1, 256, 256), (32, 512, 32)]:
        assert array_cycles(cfg, m, k, n) < scalesim_cycles(cfg, m, k, n)
    assert utilization(cfg, 64, 64, 64, array_cycles(cfg, 64, 64, 64)) > 0.9


# --------------------------------------------------------------------------- FP8 tiles

def _fp8_codes(rng, shape, special_rate):
    """Random codes: mostly finite values, ``special_rate`` of them any code at all."""
    codes = rng.integers(0, 256, shape).astype(np.uint8)
    finite = rng.integers(0, 0x7B, shape).astype(np.uint8) | (rng.integers(0, 2, shape) << 7).astype(np.uint8)
    return np.where(rng.random(shape) < special_rate, codes, finite).astype(np.uint8)


@pytest.mark.parametrize("fa, fw", [("e4m3", "e4m3"), ("e4m3", "e5m2"), ("e5m2", "e4m3"),
                                    ("e5m2", "e5m2")])
@pytest.mark.parametrize("R, C", [(1, 1), (4, 4), (3, 5), (16, 16)])
def test_tiled_fp8_model_equals_gemm_fp8(fa, fw, R, C):
    """Padding tiles with +0 codes and combining partials gives gemm_fp8's bits."""
    from models.fp8 import gemm_fp8
    cfg = SystolicConfig(rows=R, cols=C)
    rng = np.random.default_rng(R * 100 + C)
    for special_rate in (0.0, 0.02, 1.0):
        M, K, N = int(rng.integers(1, 9)), int(rng.integers(1, 3 * R + 3)), int(rng.integers(1, 2 * C + 3))
        a, w = _fp8_codes(rng, (M, K), special_rate), _fp8_codes(rng, (K, N), special_rate)
        got = SystolicArrayModel(cfg).gemm_fp8(a, fa, w, fw)
        want = gemm_fp8(a, fa, w, fw, tile_k=R)
        assert got.dtype == np.float32
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), (special_rate, M, K, N)


def test_plan_gemm_fp8_pads_with_zero_codes():
    cfg = SystolicConfig(rows=4, cols=4)
    a = np.full((2, 5), 0xFF, np.uint8)
    w = np.full((5, 3), 0x7F, np.uint8)
    tiles = plan_gemm(cfg, a, w, fp8=True)
    assert [t.acts.dtype for t in tiles] == [np.uint8, np.uint8]
    assert (tiles[1].acts[:, 1:] == 0).all() and (tiles[1].weights[1:, :] == 0).all()
    assert (tiles[0].weights[:, 3] == 0).all()
    with pytest.raises(ValueError, match="0..255"):
        plan_gemm(cfg, np.array([[256]]), np.array([[1]]), fp8=True)
    with pytest.raises(ValueError, match="tile needs acts"):
        SystolicArrayModel(cfg).tile_output_fp8(np.zeros((1, 3), np.uint8), "e4m3",
                                                np.zeros((4, 4), np.uint8), "e4m3")
