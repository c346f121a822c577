"""Host runtime + compiler (models/runtime.py, models/compiler.py) on the golden chip model.

Results are compared with int64 numpy matmuls (INT8), with ``models.fp8.gemm_fp8`` and a
float64 reference (FP8), under random legal schedules; random seeds are in the test ids
and in every assertion message.
"""
import dataclasses

import numpy as np
import pytest

from models import compiler
from models.chip import ChipModel
from models.chip_perf import gemm_roofline
from models.compiler import FitError, gemm_program, plan_gemm
from models.config import ConfigError, get_preset
from models.fp8 import E4M3, E5M2, decode, gemm_fp8
from models.isa import TOKEN_FLAGS, Opcode
from models.runtime import gemm, run_gemm

TINY, DEFAULT = get_preset("tiny"), get_preset("default")
#: The default chip built without the FP8 datapath (``systolic.fp8=False``).
INT8_ONLY = dataclasses.replace(DEFAULT, systolic=dataclasses.replace(DEFAULT.systolic,
                                                                      fp8=False))


def _int8(rng, *shape):
    return rng.integers(-128, 128, shape).astype(np.int8)


def _ref(a, b):
    return (a.astype(np.int64) @ b.astype(np.int64)).astype(np.int32)   # |sum| < 2**31 here


@pytest.mark.parametrize("preset, shape", [
    ("tiny", (1, 1, 1)), ("tiny", (4, 4, 4)), ("tiny", (5, 7, 3)), ("tiny", (13, 9, 22)),
    ("tiny", (37, 45, 29)), ("tiny", (64, 32, 48)), ("tiny", (3, 130, 5)),
    ("default", (16, 16, 16)), ("default", (100, 70, 50)), ("default", (33, 300, 17)),
    ("default", (200, 48, 260)),
])
@pytest.mark.parametrize("seed", [0, 1])
def test_gemm_int8_matches_int64(preset, shape, seed):
    rng = np.random.default_rng(seed)
    m, k, n = shape
    a, b = _int8(rng, m, k), _int8(rng, k, n)
    run = run_gemm(a, b, config=preset, policy="random", seed=seed)
    assert run.c.dtype == np.int32 and run.c.shape == (m, n)
    assert np.array_equal(run.c, _ref(a, b)), f"seed {seed}"
    res = run.result
    assert res.completed == len(run.commands) and res.discarded == 0
    assert not res.tokens.any(), "every token taken by the end of the program"
    # the stream keeps every tile it has work for busy
    busy = [t for t in range(get_preset(preset).soc.tiles) if res.stats["matmul_rows"][t]]
    assert len(busy) == min(len(run.plan.units), get_preset(preset).soc.tiles)


def test_gemm_default_512_cube():
    """The demo shape of issue 11 fits the default preset and is right."""
    rng = np.random.default_rng(512)
    a, b = _int8(rng, 512, 512), _int8(rng, 512, 512)
    run = run_gemm(a, b, config="default")
    assert np.array_equal(run.c, _ref(a, b))
    assert all(run.result.stats["matmul_rows"])          # all four tiles work
    shape = run.shape_roofline
    assert shape.limiter == "compute" and shape.bound_cycles == 512 ** 3 / (4 * 256)
    est = compiler.estimate_cycles(DEFAULT, run.plan)
    assert shape.bound_cycles / est >= 0.85, "the plan's own estimate reaches the target"


@pytest.mark.parametrize("forced", [dict(slots=(1, 1)), dict(slots=(2, 1)),
                                    dict(slots=(1, 2), g=1, kb=1), dict(mb=20, g=3, kb=2),
                                    dict(mb=40, g=1, kb=16)])
def test_forced_blockings_are_right(forced):
    rng = np.random.default_rng(7)
    a, b = _int8(rng, 40, 70), _int8(rng, 70, 21)
    run = run_gemm(a, b, config="tiny", policy="random", seed=3, **forced)
    for key, v in forced.items():
        got = (run.plan.ns, run.plan.na) if key == "slots" else getattr(run.plan, key)
        assert got == v
    assert np.array_equal(run.c, _ref(a, b))


def test_tokens_are_what_makes_it_right():
    """Strip the token flags: some legal schedule then computes garbage (or hangs)."""
    rng = np.random.default_rng(11)
    a, b = _int8(rng, 24, 20), _int8(rng, 20, 12)
    plan = plan_gemm(TINY, 24, 20, 12)
    hbm = np.zeros(TINY.hbm.total_bytes, np.uint8)
    hbm[plan.a_addr:plan.a_addr + plan.a_bytes] = compiler.pack_a(plan, a)
    hbm[plan.b_addr:plan.b_addr + plan.b_bytes] = compiler.pack_b(plan, b)
    cmds = gemm_program(plan)
    bare = [dataclasses.replace(c, **{f: 0 for f in TOKEN_FLAGS}) for c in cmds]
    ok = []
    for seed in range(8):
        for prog, want in ((cmds, True), (bare, None)):
            res = ChipModel(TINY, hbm, policy="random", seed=seed).run(prog)
            right = res.ok and np.array_equal(
                compiler.unpack_c(plan, res.hbm).view(np.int32), _ref(a, b))
            if want:
                assert right, f"seed {seed}"
            else:
                ok.append(right)
    assert not all(ok)


def test_program_shape():
    plan = plan_gemm(TINY, 40, 33, 21, mb=20, g=2, kb=3, slots=(2, 2))
    cmds = gemm_program(plan)
    ops = [c.opcode for c in cmds]
    assert ops[-1] == Opcode.IRQ and ops.count(Opcode.IRQ) == 1
    assert ops.count(Opcode.TENSOR) == plan.nmb * plan.nt * plan.kt == 2 * 6 * 9
    assert ops.count(Opcode.DMA_STORE) == len(plan.units) == 2 * 3
    assert ops.count(Opcode.DMA_LOAD) == 2 * len(plan.units) * len(plan.kblocks)
    # the first two loads of a tile need no free slot, later ones wait for one
    loads0 = [c for c in cmds if c.opcode == Opcode.DMA_LOAD and c.tile == 0][::2]
    assert [c.wait_next for c in loads0] == [0, 0] + [1] * (len(loads0) - 2)
    # HBM regions do not overlap and the ring is last
    assert plan.a_addr + plan.a_bytes <= plan.b_addr < plan.b_addr + plan.b_bytes <= \
        plan.c_addr < plan.c_addr + plan.c_bytes <= plan.ring_addr < plan.hbm_bytes


def test_quantized_float_inputs():
    rng = np.random.default_rng(21)
    a, b = rng.standard_normal((30, 50)), rng.standard_normal((50, 20))
    c = gemm(a, b, config="tiny")
    sa, sb = np.max(np.abs(a)) / 127, np.max(np.abs(b)) / 127
    qa, qb = np.rint(a / sa).astype(np.int64), np.rint(b / sb).astype(np.int64)
    assert c.dtype == np.float64
    assert np.allclose(c, (qa @ qb) * sa * sb, rtol=1e-12, atol=0)
    ref = a @ b
    assert np.max(np.abs(c - ref)) <= 0.03 * np.max(np.abs(ref))
    qi = rng.integers(-5, 6, (8, 9))
    assert np.allclose(gemm(qi, qi.T.copy(), config="tiny", scales=(0.5, 0.25)),
                       (qi @ qi.T) * 0.125)


@pytest.mark.parametrize("fmt", ["e4m3", ("e4m3", "e5m2"), "e5m2"])
def test_fp8_codes_match_gemm_fp8(fmt):
    fa, fw = (fmt, fmt) if isinstance(fmt, str) else fmt
    FA, FW = (E4M3 if f == "e4m3" else E5M2 for f in (fa, fw))
    rng = np.random.default_rng(31)
    a = rng.integers(0, 256, (9, 13), dtype=np.uint8)
    b = rng.integers(0, 256, (13, 6), dtype=np.uint8)
    for x, F in ((a, FA), (b, FW)):              # no NaN/inf codes: compare numerically too
        x[~np.isfinite(decode(x, F))] = 0x38
    c = gemm(a, b, config="tiny", fmt=fmt)
    want = gemm_fp8(a, FA, b, FW, tile_k=TINY.systolic.rows)
    assert c.dtype == np.float32 and np.array_equal(c.view(np.uint32), want.view(np.uint32))
    ref = decode(a, FA).astype(np.float64) @ decode(b, FW).astype(np.float64)
    assert np.allclose(c, ref, rtol=1e-5, atol=1e-6 * np.max(np.abs(ref)))


def test_fp8_float_inputs_quantized():
    rng = np.random.default_rng(41)
    a, b = rng.standard_normal((12, 20)), rng.standard_normal((20, 8))
    c = gemm(a, b, config="tiny", fmt="e4m3")
    ref = a @ b
    assert c.dtype == np.float64 and np.max(np.abs(c - ref)) <= 0.1 * np.max(np.abs(ref))


# --- errors: all raised before a backend runs -----------------------------------------
@pytest.mark.parametrize("args, kw, exc, msg", [
    ((np.zeros((3, 4), np.int8), np.zeros((5, 2), np.int8)), {}, ValueError,
     "a is 3x4, b is 5x2: inner dimensions 4 != 5"),
    ((np.zeros(4, np.int8), np.zeros((4, 2), np.int8)), {}, ValueError,
     r"a and b must be 2-D, got shapes \(4,\) and \(4, 2\)"),
    ((np.zeros((0, 4), np.int8), np.zeros((4, 2), np.int8)), {}, FitError,
     "GEMM dimension M must be an int >= 1, got 0"),
    ((np.full((2, 2), 300), np.zeros((2, 2), np.int64)), {}, ValueError,
     r"a has values outside INT8 \[-128, 127\]: min 300, max 300"),
    ((np.array([[np.nan]]), np.ones((1, 1))), {}, ValueError, "a has NaN or inf"),
    ((np.zeros((2, 2), bool), np.zeros((2, 2), np.int8)), {}, TypeError,
     "a: INT8 operands are integer or float arrays, got bool"),
    ((np.zeros((2, 2), np.int8), np.zeros((2, 2), np.int8)), {"fmt": "e4m3"}, TypeError,
     "a: FP8 operands are float arrays or uint8 codes, got int8"),
    ((np.zeros((2, 2), np.int8), np.zeros((2, 2), np.int8)), {"fmt": "fp16"}, ValueError,
     "fmt must be 'int8', 'e4m3', 'e5m2' or a pair of FP8 formats, got 'fp16'"),
    ((np.zeros((2, 2), np.int8), np.zeros((2, 2), np.int8)), {"backend": "fpga"}, ValueError,
     r"backend must be one of \('model', 'rtl'\), got 'fpga'"),
    ((np.zeros((2, 2), np.int8), np.zeros((2, 2), np.int8)), {"backend": "rtl", "sim": "vcs"},
     ValueError, "sim must be 'verilator' or 'icarus', got 'vcs'"),
    ((np.zeros((2, 2)), np.zeros((2, 2))), {"scales": (1.0, 1.0)}, ValueError,
     "scales are for already-quantized inputs"),
    ((np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8)), {"fmt": "e4m3",
                                                              "config": INT8_ONLY},
     FitError, r"preset 'default' has no FP8 datapath \(systolic.fp8=False\)"),
    ((np.zeros((100, 100), np.int8), np.zeros((100, 100), np.int8)), {"config": "tiny"},
     FitError, r"100x100x100 GEMM does not fit preset 'tiny': needs \d+ bytes of HBM "
               r"\(A \d+, B \d+, C \d+, ring \d+\), hbm.total_bytes is 32768"),
    ((np.zeros((2, 2), np.int8), np.zeros((2, 2), np.int8)), {"config": "nope"},
     ConfigError, "unknown preset 'nope'"),
])
def test_errors(args, kw, exc, msg):
    with pytest.raises(exc, match=msg):
        gemm(*args, **kw)


def test_fit_errors_name_the_limit():
    with pytest.raises(FitError, match=r"does not fit preset 'tiny': 2048 activation SRAM "
                                       r"words, the limit is 1024"):
        plan_gemm(TINY, 40, 64, 4, mb=64, kb=16, slots=(2, 2))
    with pytest.raises(FitError, match="70000 activation SRAM words, the limit is 2048"):
        plan_gemm(DEFAULT, 70000, 16, 16, mb=70000, g=1, kb=1, slots=(1, 1))
    # the rtl backend is refused only after the shape checks
    with pytest.raises(FitError, match="hbm.total_bytes is 32768"):
        gemm(np.zeros((100, 100), np.int8), np.zeros((100, 100), np.int8), config="tiny",
             backend="rtl")


def test_shape_roofline_by_hand():
    r = gemm_roofline(DEFAULT, 512, 512, 512)
    assert r.macs == 512 ** 3 and r.compute_cycles == 131072
    assert r.hbm_cycles == (2 * 512 * 512 + 4 * 512 * 512) / 64
    assert r.noc_cycles == 4 * 512 * 512 / (4 * 16) and r.limiter == "compute"
    thin = gemm_roofline(DEFAULT, 1, 4096, 256)            # decode-like: HBM bound
    assert thin.limiter == "hbm" and thin.hbm_cycles == (4096 + 4096 * 256 + 1024) / 64
