"""cocotb tests of the array's FP8 mode and run-time mode switching.

Run by tests/sim/test_fp8_array_sim.py. Every test uses the seeded ``tb.rng`` (seed
logged by cocotb) and ends with the scoreboard's completeness check.
"""
import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge

from models.systolic import array_cycles
from tb.common.clocked import trials
from tb.systolic.fp8_values import VALUE_CLASSES, fp8_codes
from tb.systolic.tb import STALL_MODES
from tb.systolic.tb_fp8 import Job, SystolicModesTB

PAIRS = [("e4m3", "e4m3"), ("e4m3", "e5m2"), ("e5m2", "e4m3"), ("e5m2", "e5m2")]


def _np_rng(tb):
    return np.random.default_rng(tb.rng.randrange(2**32))


def fp8_job(tb, m, k, n, fa, fw, cls, label=""):
    rng = _np_rng(tb)
    x = fp8_codes(rng, (m, k), fa, cls)
    w = fp8_codes(rng, (k, n), fw, "finite" if cls == "cancel" else cls)
    if cls == "cancel":          # a[2j+1] = -a[2j] and w[2j+1] = w[2j]: products cancel
        w[1::2] = w[0::2][:w[1::2].shape[0]]
    return Job(x, w, "fp8", fa, fw, label or cls)


def int8_job(tb, m, k, n, label="int8"):
    rng = _np_rng(tb)
    return Job(rng.integers(-128, 128, (m, k)).astype(np.int8),
               rng.integers(-128, 128, (k, n)).astype(np.int8), "int8", label=label)


async def _run(tb, jobs):
    cycles = await tb.run_jobs(jobs)
    for job in jobs:
        tb.check_job(job)
    return cycles


@cocotb.test()
async def test_fp8_directed(dut):
    """Each format pair x value class (NaN, inf, subnormal, max, cancellation, zeros...)."""
    tb = SystolicModesTB(dut)
    await tb.reset()
    R, C = tb.acfg.rows, tb.acfg.cols
    k, n = R + max(1, R // 2), C + max(1, C // 3)        # ragged: padding in both
    for mode, stall, burst in STALL_MODES:
        tb.set_stalls(stall, burst)
        jobs = [fp8_job(tb, 3, k, n, fa, fw, cls, f"{cls} [{mode}]")
                for fa, fw in PAIRS for cls in VALUE_CLASSES]
        await _run(tb, jobs)
        tb.log.info("%s: %d FP8 GEMMs bit-exact", mode, len(jobs))
    tb.finish()


@cocotb.test()
async def test_fp8_random(dut):
    """Random shapes, formats, value classes and stall settings."""
    tb = SystolicModesTB(dut)
    await tb.reset()
    R, C = tb.acfg.rows, tb.acfg.cols
    rng = tb.rng
    for i in range(trials(8)):
        m = rng.choice([1, rng.randint(1, 2 * R), rng.randint(R, 3 * R)])
        k, n = rng.randint(1, 3 * R), rng.randint(1, 2 * C)
        fa, fw = rng.choice(PAIRS)
        cls = rng.choice(VALUE_CLASSES)
        stall, burst = rng.choice([(0.0, 1), (0.1, 1), (0.5, 1), (0.25, 8)])
        tb.set_stalls(stall, burst)
        await _run(tb, [fp8_job(tb, m, k, n, fa, fw, cls, f"random #{i} {cls} stall={stall}/{burst}")])
    tb.finish()


@cocotb.test()
async def test_mode_switch_back_to_back(dut):
    """INT8 and FP8 tiles of every format pair interleaved with no gap; cycle model holds."""
    tb = SystolicModesTB(dut)
    await tb.reset()
    R, C = tb.acfg.rows, tb.acfg.cols
    # Without stalls, mixed jobs stream like one long GEMM: M >= R keeps the array full.
    m = 2 * R
    jobs = [int8_job(tb, m, 2 * R, C)]
    for fa, fw in PAIRS:
        jobs += [fp8_job(tb, m, R + 1, C, fa, fw, "specials"), int8_job(tb, m, R, 2 * C)]
    cycles = await _run(tb, jobs)
    folds = sum(tb.acfg.folds(j.x.shape[1], j.w.shape[1]) for j in jobs)
    predicted = R + (folds - 1) * max(m, R) + m + tb.acfg.latency
    assert cycles == predicted, f"mixed stream took {cycles} cycles, cycle model {predicted}"
    # One FP8 GEMM alone: exactly models.systolic.array_cycles (same as INT8).
    job = fp8_job(tb, 4 * R, 2 * R, 2 * C, "e4m3", "e5m2", "finite")
    cycles = await _run(tb, [job])
    assert cycles == array_cycles(tb.acfg, 4 * R, 2 * R, 2 * C), cycles
    # Again with stalls, shorter tiles (M < R) and random formats.
    for stall, burst in [(0.3, 1), (0.2, 6)]:
        tb.set_stalls(stall, burst)
        jobs = []
        for i in range(6):
            if tb.rng.random() < 0.4:
                jobs.append(int8_job(tb, tb.rng.randint(1, 2 * R), tb.rng.randint(1, 2 * R), C))
            else:
                fa, fw = tb.rng.choice(PAIRS)
                jobs.append(fp8_job(tb, tb.rng.randint(1, 2 * R), tb.rng.randint(1, 2 * R), C,
                                    fa, fw, tb.rng.choice(VALUE_CLASSES)))
        await _run(tb, jobs)
    tb.finish()


@cocotb.test()
async def test_reset_returns_to_int8(dut):
    """A reset in the middle of FP8 traffic; afterwards mode-0 tiles are INT8 again."""
    tb = SystolicModesTB(dut, stall=0.2)
    await tb.reset()
    R, C = tb.acfg.rows, tb.acfg.cols
    task = cocotb.start_soon(tb.run_jobs([fp8_job(tb, 3 * R, 2 * R, 2 * C, "e5m2", "e5m2", "finite")]))
    await ClockCycles(dut.clk, 2 * R + 3)
    task.cancel()
    await FallingEdge(dut.clk)
    for src in (tb.w_src, tb.a_src):
        src.clear()
    tb.sb.expected.clear()
    tb._slots.clear()
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    unexpected = tb.sb.unexpected
    await ClockCycles(dut.clk, R + C + 2)
    assert tb.sb.unexpected == unexpected, "results of the aborted GEMM came out after reset"
    await _run(tb, [int8_job(tb, 2 * R, 2 * R, C, "int8 after reset"),
                    fp8_job(tb, R, R, C, "e4m3", "e4m3", "specials", "fp8 after reset")])
    tb.finish()


@cocotb.test()
async def test_selfcheck_corrupted_fp8_expectation(dut):
    """One flipped bit in an expected FP32 partial must be reported."""
    tb = SystolicModesTB(dut)
    await tb.reset()
    R, C = tb.acfg.rows, tb.acfg.cols
    job = fp8_job(tb, R, R, C, "e4m3", "e4m3", "finite")

    def corrupt(tile):
        tile = tile.copy()
        tile[tb.rng.randrange(tile.shape[0]), tb.rng.randrange(tile.shape[1])] ^= 1
        return tile

    await tb.run_jobs([job], corrupt=corrupt)
    assert len(tb.sb.mismatches) == 1, f"expected exactly 1 mismatch, got {len(tb.sb.mismatches)}"
    try:
        tb.sb.check()
    except AssertionError as e:
        tb.log.info("corrupted expectation reported as it must: %s", str(e).splitlines()[0])
    else:
        raise AssertionError("scoreboard.check() passed with a corrupted expectation")
