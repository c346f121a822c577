"""cocotb tests of the INT8 systolic array (run by tests/sim/test_systolic_sim.py).

Every test uses the seeded ``tb.rng`` (seed logged by cocotb at start; re-run with
``make sim SEED=<n>``) and ends with the scoreboard's completeness check.
"""
import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge

from models.systolic import utilization
from tb.common.clocked import trials
from tb.systolic.tb import STALL_MODES, SystolicTB


def _int8(rng, shape, lo=-128, hi=127):
    return np.array([[rng.randint(lo, hi) for _ in range(shape[1])] for _ in range(shape[0])],
                    dtype=np.int8)


async def _gemm(tb, x, w, label):
    res = await tb.run_gemm(x, w)
    tb.check_gemm(x, w, res)
    tb.log.info("%-28s %4dx%4dx%4d: %6d cycles (model %6d), utilization %.3f", label,
                res.m, res.k, res.n, res.cycles, res.model_cycles,
                utilization(tb.acfg, res.m, res.k, res.n, res.cycles))
    return res


def _directed_cases(tb):
    """Corner cases named in the test plan (docs/testplan.md)."""
    R, C = tb.acfg.rows, tb.acfg.cols
    rng = tb.rng
    ones = lambda s, v: np.full(s, v, dtype=np.int8)   # noqa: E731
    k, n = R + max(1, R // 2), C + max(1, C // 3)     # not multiples of the array
    eye = np.eye(max(R, C) + 1, dtype=np.int8)
    yield "all -128", ones((R, 2 * R), -128), ones((2 * R, 2 * C), -128)
    yield "all 127", ones((R, 2 * R), 127), ones((2 * R, 2 * C), 127)
    yield "-128 x 127", ones((3, R), -128), ones((R, C), 127)
    yield "zeros", ones((5, k), 0), _int8(rng, (k, n))
    yield "identity weights", _int8(rng, (7, eye.shape[0])), eye
    yield "K, N not multiples", _int8(rng, (2 * R + 1, k)), _int8(rng, (k, n))
    yield "M = 1", _int8(rng, (1, k)), _int8(rng, (k, n))
    yield "1 x 1 x 1", _int8(rng, (1, 1)), _int8(rng, (1, 1))


@cocotb.test()
async def test_directed(dut):
    """Corner-case GEMMs, each with no stalls, random stalls and bursty stalls."""
    tb = SystolicTB(dut)
    await tb.reset()
    for mode, stall, burst in STALL_MODES:
        tb.set_stalls(stall, burst)
        for name, x, w in _directed_cases(tb):
            await _gemm(tb, x, w, f"{name} [{mode}]")
    tb.finish()


@cocotb.test()
async def test_random(dut):
    """Constrained-random shapes and values, random stall settings per GEMM."""
    tb = SystolicTB(dut)
    await tb.reset()
    R, C = tb.acfg.rows, tb.acfg.cols
    rng = tb.rng
    for i in range(trials(6)):
        m = rng.choice([1, 2, rng.randint(1, 2 * R), rng.randint(R, 4 * R)])
        k = rng.randint(1, 3 * R)
        n = rng.randint(1, 3 * C)
        lo, hi = rng.choice([(-128, 127), (-128, 127), (-2, 2), (120, 127), (-128, -120)])
        stall, burst = rng.choice([(0.0, 1), (0.1, 1), (0.5, 1), (0.25, 8)])
        tb.set_stalls(stall, burst)
        await _gemm(tb, _int8(rng, (m, k), lo, hi), _int8(rng, (k, n), lo, hi),
                    f"random #{i} stall={stall}/{burst}")
    tb.finish()


@cocotb.test()
async def test_back_to_back_cycles(dut):
    """Without stalls, cycles equal the cycle model exactly and beat SCALE-Sim's count.

    M = 4R with several weight tiles: the next tile loads while the current one
    computes, so utilization must reach 90% on arrays where the pipeline fill
    (3R + C cycles) is small against the run.
    """
    from models.systolic import scalesim_cycles
    tb = SystolicTB(dut)
    await tb.reset()
    R, C = tb.acfg.rows, tb.acfg.cols
    for m, k, n in [(4 * R, 2 * R, 2 * C), (8 * R, 4 * R, 4 * C), (R // 2 or 1, 2 * R, 2 * C)]:
        x, w = _int8(tb.rng, (m, k)), _int8(tb.rng, (k, n))
        res = await _gemm(tb, x, w, "back-to-back")
        assert res.cycles == res.model_cycles, \
            f"{m}x{k}x{n}: measured {res.cycles} cycles, cycle model says {res.model_cycles}"
        assert res.cycles < scalesim_cycles(tb.acfg, m, k, n)
        if m >= 8 * R:
            u = utilization(tb.acfg, m, k, n, res.cycles)
            assert u >= 0.9, f"utilization {u:.3f} < 0.9 for M = {m} >= 8R"
    tb.finish()


@cocotb.test()
async def test_reset_mid_traffic(dut):
    """A reset in the middle of a GEMM leaves the array usable and outputs nothing stale."""
    tb = SystolicTB(dut, stall=0.2)
    await tb.reset()
    R, C = tb.acfg.rows, tb.acfg.cols
    x, w = _int8(tb.rng, (3 * R, 2 * R)), _int8(tb.rng, (2 * R, 2 * C))
    task = cocotb.start_soon(tb.run_gemm(x, w))
    await ClockCycles(dut.clk, 2 * R + 3)
    task.cancel()
    await FallingEdge(dut.clk)
    # drop what the sources still hold; the DUT forgets everything in reset
    for src in (tb.w_src, tb.a_src):
        src.clear()
    tb.sb.expected.clear()
    tb._gemm = None
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    unexpected = tb.sb.unexpected          # results accepted just before the reset edge
    await ClockCycles(dut.clk, R + C + 2)
    assert tb.sb.unexpected == unexpected, "results of the aborted GEMM came out after reset"
    await _gemm(tb, x, w, "after reset")
    tb.finish()


@cocotb.test()
async def test_selfcheck_corrupted_expectation(dut):
    """The checking works: one flipped expected bit must be reported as a mismatch."""
    tb = SystolicTB(dut)
    await tb.reset()
    R, C = tb.acfg.rows, tb.acfg.cols
    x, w = _int8(tb.rng, (R, R)), _int8(tb.rng, (R, C))

    def corrupt(tile):
        tile = tile.copy()
        tile[tb.rng.randrange(tile.shape[0]), tb.rng.randrange(tile.shape[1])] ^= 1 << 7
        return tile

    await tb.run_gemm(x, w, corrupt=corrupt)
    assert len(tb.sb.mismatches) == 1, f"expected exactly 1 mismatch, got {len(tb.sb.mismatches)}"
    try:
        tb.sb.check()
    except AssertionError as e:
        tb.log.info("scoreboard reported the corrupted expectation as it must: %s",
                    str(e).splitlines()[0])
    else:
        raise AssertionError("scoreboard.check() passed with a corrupted expectation")
