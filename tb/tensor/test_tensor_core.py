"""cocotb tests of the tensor core (run by tests/sim/test_tensor_core_sim.py).

Every check compares SRAM words bitwise with ``models.tensor_core.TensorCoreModel``
(mirrored by :class:`tb.tensor.tb.TensorCoreTB`), and GEMM results also with an
independent reference (``models.systolic.gemm_int8`` / ``models.fp8.gemm_fp8``). Random
choices come from ``tb.rng`` (seed logged at start; ``make sim SEED=<n>`` repeats a run).
"""
import cocotb
import numpy as np
import pytest

from models.fp8 import E4M3, E5M2, gemm_fp8
from models.systolic import gemm_int8, wrap_int32
from models.tensor_cmd import VECTOR_WRITES, ErrCode, OutFmt, TensorCmd, Unit, VecOp, check
from models.tensor_core import (MEM_ACC, MEM_ACT, MEM_WEIGHT, _hazard_cycles, gemm_commands,
                                gemm_images, gemm_layout, gemm_result, matmul_bound_cycles,
                                matmul_cycles)
from cocotb.triggers import ClockCycles

from models.vector import vector_latency
from tb.common.clocked import run_config, tier, trials
from tb.common.stream import signal_int
from tb.tensor import overlap
from tb.tensor.programs import chunks, fp8_codes, illegal_cases, random_cmd
from tb.tensor.tb import STALL_MODES, TensorCoreTB
from tb.vector.sequences import random_cmd as random_vector_cmd

GUARD = 2      # accumulator words checked on each side of a written region


# --- helpers ---------------------------------------------------------------------------------
async def _gemm(tb, *, fp8=False, fmts=(0, 0), shape=None, what=""):
    """One random GEMM split into commands; checks RTL == model and model == reference."""
    rng, cfg, R, C = tb.rng, tb.config, tb.R, tb.C
    tc = cfg.tensor
    m, k, n = shape or (rng.randint(1, 3 * R), rng.randint(1, 3 * R), rng.randint(1, 2 * C + 1))
    lay0 = gemm_layout(cfg, m, k, n)
    lay = gemm_layout(cfg, m, k, n, act=rng.randrange(tc.act_rows - lay0.act_words + 1),
                      wgt=rng.randrange(tc.weight_rows - lay0.wgt_words + 1),
                      acc=rng.randrange(GUARD, tc.acc_rows - lay0.acc_words - GUARD + 1))
    if fp8:
        x, w = fp8_codes(rng, (m, k)), fp8_codes(rng, (k, n))
    else:
        x = np.array([[rng.randint(-128, 127) for _ in range(k)] for _ in range(m)], np.int8)
        w = np.array([[rng.randint(-128, 127) for _ in range(n)] for _ in range(k)], np.int8)
    for mem, addr, rows in gemm_images(cfg, lay, x, w):
        await tb.write_rows(mem, addr, rows)
    acc_into = rng.random() < 0.3
    await tb.fill_random(MEM_ACC, lay.acc - GUARD, lay.acc_words + 2 * GUARD)
    if acc_into and fp8:   # finite binary32 start values
        init = np.array([[np.float32(rng.uniform(-100, 100)) for _ in range(C)]
                         for _ in range(lay.acc_words)], np.float32)
        await tb.write_rows(MEM_ACC, lay.acc, init)
    cmds = gemm_commands(cfg, lay, chunks=chunks(rng, m, R), fp8=fp8, fmt_a=fmts[0],
                         fmt_w=fmts[1], accumulate_into=acc_into,
                         order=rng.choice(["nkm", "nmk"]))
    cycles = await tb.run(cmds)
    label = (f"{what} {'fp8 %s' % (fmts,) if fp8 else 'int8'} {m}x{k}x{n} "
             f"{len(cmds)} cmds{' acc-into' if acc_into else ''}")
    await tb.check_mem(MEM_ACC, lay.acc - GUARD, lay.acc_words + 2 * GUARD, label)
    if not acc_into:   # the model itself against the independent reference
        y = gemm_result(cfg, lay, tb.model.acc[lay.acc:])
        if fp8:
            ref = gemm_fp8(x, (E4M3, E5M2)[fmts[0]], w, (E4M3, E5M2)[fmts[1]], tile_k=R)
            ok = np.array_equal(y, ref.view(np.uint32))
        else:
            ok = np.array_equal(y.view(np.int32), gemm_int8(x, w))
        assert ok, f"{label}: model differs from the reference GEMM (seed {tb.seed})"
    tb.log.info("%-60s %6d cycles (bound %d)", label, cycles, matmul_bound_cycles(cmds))
    return cmds, cycles


# --- tests -------------------------------------------------------------------------------------
@cocotb.test()
async def test_gemm_int8(dut):
    """Random INT8 GEMMs split into tiles (counts 1, < R, R, > R; K-fold accumulation,
    N-fold outputs, both issue orders, overwrite and accumulate-into), with and without
    i_cmd gaps and o_rd backpressure; guard words around each result untouched."""
    tb = TensorCoreTB(dut)
    await tb.reset()
    for mode, cmd_stall, rd_stall, burst in STALL_MODES:
        tb.set_stalls(cmd_stall, rd_stall, burst)
        for _ in range(trials(2)):
            await _gemm(tb, what=f"[{mode}]")
    tb.finish()


@cocotb.test()
async def test_gemm_fp8(dut):
    """Random FP8 GEMMs (all four format pairs, NaN/inf/zero/max/subnormal codes),
    bit-exact vs the model and vs gemm_fp8. On arrays without FP8 the test is SKIPPED
    (cocotb's summary and the results XML say so; test_errors checks NO_FP8 there):
    ``pytest.skip``, not ``@cocotb.skipif``, because cocotb runs a skip-marked test
    anyway when a filter names it (``make sim TEST=test_gemm_fp8``)."""
    if not run_config().systolic.fp8:
        pytest.skip("array built without FP8")
    tb = TensorCoreTB(dut)
    await tb.reset()
    for mode, cmd_stall, rd_stall, burst in STALL_MODES:
        tb.set_stalls(cmd_stall, rd_stall, burst)
        for fmts in ((0, 0), (0, 1), (1, 0), (1, 1)):
            for _ in range(trials(1)):
                await _gemm(tb, fp8=True, fmts=fmts, what=f"[{mode}]")
    tb.finish()


@cocotb.test()
async def test_accumulate_hazards(dut):
    """Back-to-back small tiles accumulating into the same or overlapping rows (the
    result writer's read-after-write case), INT8 and FP8, overwrite mixed in."""
    tb = TensorCoreTB(dut)
    await tb.reset()
    rng, R, cfg = tb.rng, tb.R, tb.config
    x = np.array([[rng.randint(-128, 127) for _ in range(R)] for _ in range(64)], np.int8)
    w = np.array([[rng.randint(-128, 127) for _ in range(tb.C)] for _ in range(4 * R)], np.int8)
    await tb.write_rows(MEM_ACT, 0, x)
    await tb.write_rows(MEM_WEIGHT, 0, w)
    base = 100
    await tb.fill_random(MEM_ACC, base - GUARD, 64)
    fp8_ok = cfg.systolic.fp8
    for trial in range(trials(3)):
        cmds = []
        dst = base
        for i in range(12):
            cnt = rng.choice([1, 1, 2, max(1, R - 1), R, R + 1])
            fp8 = fp8_ok and trial % 2 == 1
            cmds.append(TensorCmd.matmul(src=rng.randrange(64 - cnt), w=rng.randrange(3) * R,
                                         dst=dst, m=cnt, accumulate=rng.random() < 0.85,
                                         fp8=fp8, fmt_a=rng.randint(0, 1), fmt_w=rng.randint(0, 1)))
            dst = base + rng.choice([0, dst - base + cnt - 1, max(0, dst - base - 1)]) % 20
        cycles = await tb.run(cmds)
        model = matmul_cycles(cfg, cmds)
        tb.log.info("hazard trial %d: %d cycles, model %d (read-after-write stalls %d)", trial,
                    cycles, model, _hazard_cycles(cfg, cmds))
        assert cycles == model, f"hazard trial {trial}: {cycles} cycles, model {model}"
        await tb.check_mem(MEM_ACC, base - GUARD, 24 + 2 * GUARD, f"hazard trial {trial}")
    tb.finish()


@cocotb.test()
async def test_int32_wraparound(dut):
    """INT32 accumulation wraps modulo 2^32 (accumulator preloaded near +-2^31)."""
    tb = TensorCoreTB(dut)
    await tb.reset()
    R, C = tb.R, tb.C
    await tb.write_rows(MEM_ACT, 0, np.array([[127] * R, [-128] * R, [-128] * R], np.int8))
    await tb.write_rows(MEM_WEIGHT, 0, np.array([[127] * C] * R + [[-128] * C] * R, np.int8))
    start = np.array([[2**31 - 1 - c for c in range(C)], [-2**31 + c for c in range(C)],
                      [2**31 - 5] * C], np.int32)
    await tb.fill_random(MEM_ACC, 8, 7)
    await tb.write_rows(MEM_ACC, 10, start)
    cmds = [TensorCmd.matmul(src=0, w=0, dst=10, m=3, accumulate=True),       # + 127*127*R ...
            TensorCmd.matmul(src=1, w=R, dst=12, m=1, accumulate=True)]      # + (-128)^2 * R
    await tb.run(cmds)
    got = (await tb.read_rows(MEM_ACC, 10, 3)).view(np.int32)
    p = np.array([127 * 127 * R, -128 * 127 * R, -128 * 127 * R], np.int64)
    want = wrap_int32(start.astype(np.int64) + p[:, None])
    want[2] = wrap_int32(want[2].astype(np.int64) + 128 * 128 * R)
    assert np.array_equal(got, want), f"wrap-around: got {got}, expected {want}"
    await tb.check_mem(MEM_ACC, 8, 7, "wrap-around")
    tb.finish()


@cocotb.test()
async def test_errors(dut):
    """Every ErrCode: status latched, that command and every later one discarded (their
    rows untouched), first error wins, i_clear_err recovers, never hangs."""
    tb = TensorCoreTB(dut)
    await tb.reset()
    R, C, cfg = tb.R, tb.C, tb.config
    x = np.array([[tb.rng.randint(-128, 127) for _ in range(R)] for _ in range(8)], np.int8)
    w = np.array([[tb.rng.randint(-128, 127) for _ in range(C)] for _ in range(R)], np.int8)
    await tb.write_rows(MEM_ACT, 0, x)
    await tb.write_rows(MEM_WEIGHT, 0, w)
    good_a = TensorCmd.matmul(src=0, w=0, dst=20, m=4)
    good_b = TensorCmd.matmul(src=4, w=0, dst=30, m=4)
    depth = cfg.tensor.cmd_depth
    for code, bad in illegal_cases(cfg):
        assert check(bad, cfg) == code, (code, bad)         # the case is what it claims
        await tb.fill_random(MEM_ACC, 18, 18)
        second = TensorCmd(unit=Unit.VECTOR, op=13, count=1)  # another illegal (BAD_OP)
        flood = [good_b, second] * (2 * depth)
        d0 = tb.perf()["discarded"]
        await tb.send([good_a, bad] + flood)
        await tb.wait_idle(timeout=5000)
        st = tb.status()
        assert st["error"] == 1 and st["err_code"] == code, f"{bad}: status {st}, expected {code!r}"
        assert tb.model.error == code
        assert tb.perf()["discarded"] - d0 == 1 + len(flood)
        await tb.check_mem(MEM_ACC, 18, 18, f"{code.name}: earlier command done, later ones not")
        await tb.clear_error()
        st = tb.status()
        assert st["error"] == 0 and st["err_code"] == ErrCode.NONE, st
        await tb.run([good_b])
        await tb.check_mem(MEM_ACC, 28, 8, f"{code.name}: command after i_clear_err executed")
    tb.finish()


#: Random draws after which test_check_rules_random gives up steering toward unseen codes.
MAX_DRAWS = 5000


@cocotb.test()
async def test_check_rules_random(dut):
    """Random commands near every boundary: the RTL's error code equals
    models.tensor_cmd.check for each illegal one (legal ones are not sent). At least
    trials(30) illegal commands are checked and every code this configuration can raise
    (illegal_cases) is among them: after the random draws, further draws are sent only
    if their code was not seen yet (at most MAX_DRAWS draws in all)."""
    tb = TensorCoreTB(dut)
    await tb.reset()
    reachable = {code for code, _ in illegal_cases(tb.config)}
    seen: dict[ErrCode, int] = {}
    draws = 0
    while draws < MAX_DRAWS and (draws < trials(40) or not reachable <= seen.keys()):
        cmd = random_cmd(tb.rng, tb.config)
        code = check(cmd, tb.config)
        draws += 1
        if code == ErrCode.NONE or (draws > trials(40) and code in seen):
            continue
        await tb.run([cmd], timeout=1000)
        st = tb.status()
        assert st["err_code"] == code, f"{cmd}: RTL {st['err_code']!r}, model {code!r}"
        await tb.clear_error()
        seen[code] = seen.get(code, 0) + 1
    n = sum(seen.values())
    tb.log.info("%d illegal commands checked in %d draws: %s", n, draws,
                ", ".join(f"{c.name} {k}" for c, k in sorted(seen.items())))
    assert n >= trials(30), f"only {n} illegal commands checked (seed {tb.seed})"
    missing = sorted(c.name for c in reachable - seen.keys())
    assert not missing, f"codes never produced in {draws} draws: {missing} (seed {tb.seed})"
    tb.finish()


@cocotb.test()
async def test_host_port(dut):
    """Host writes and reads of all three SRAMs at random addresses with o_rd
    backpressure; out-of-range addresses and mem 3 are ignored / read as zero."""
    tb = TensorCoreTB(dut, rd_stall=0.4, burst=3)
    await tb.reset()
    rng, tc = tb.rng, tb.config.tensor
    depth = {MEM_ACT: tc.act_rows, MEM_WEIGHT: tc.weight_rows, MEM_ACC: tc.acc_rows}
    for _ in range(trials(3)):
        for mem, lanes, dt in ((MEM_ACT, tb.R, np.uint8), (MEM_WEIGHT, tb.C, np.uint8),
                               (MEM_ACC, tb.C, np.uint32)):
            n = rng.randint(1, 12)
            addr = rng.choice([0, depth[mem] - n, rng.randrange(depth[mem] - n + 1)])
            bits = 8 * np.dtype(dt).itemsize
            rows = np.array([[rng.getrandbits(bits) for _ in range(lanes)] for _ in range(n)], dt)
            await tb.write_rows(mem, addr, rows)
            await tb.check_mem(mem, addr, n, f"host mem {mem} @{addr}")
    # past the end: writes ignored (the model is not told), reads return zeros
    for mem in (MEM_ACT, MEM_WEIGHT, MEM_ACC):
        if depth[mem] < 0x10000:
            lanes = tb.R if mem == MEM_ACT else tb.C
            dt = np.uint32 if mem == MEM_ACC else np.uint8
            before = await tb.read_rows(mem, 0, 2)
            await tb.write_rows(mem, depth[mem], np.full((2, lanes), 0x5A, dt), model=False)
            assert not (await tb.read_rows(mem, depth[mem], 2)).any()
            assert np.array_equal(await tb.read_rows(mem, 0, 2), before), "out-of-range write aliased"
    got = await tb.read_words([(3, 0), (3, 1)])
    assert got == [0, 0], f"mem 3 reads returned {got}"
    tb.finish()


@cocotb.test()
async def test_back_to_back_cycles(dut):
    """Tile sequences sent back to back: measured cycles == models.tensor_core.matmul_cycles
    (tiles with count >= R stream with no bubble: period max(count, R)); perf counters."""
    tb = TensorCoreTB(dut)
    await tb.reset()
    rng, R, C, cfg = tb.rng, tb.R, tb.C, tb.config
    x = np.array([[rng.randint(-128, 127) for _ in range(R)] for _ in range(8 * R)], np.int8)
    w = np.array([[rng.randint(-128, 127) for _ in range(C)] for _ in range(4 * R)], np.int8)
    await tb.write_rows(MEM_ACT, 0, x)
    await tb.write_rows(MEM_WEIGHT, 0, w)
    await tb.fill_random(MEM_ACC, 0, 64 + 4 * R)
    for kind in ("count >= R", "count = R", "any count", "single"):
        cmds = []
        for i in range({"single": 1}.get(kind, 12)):
            cnt = {"count >= R": rng.randint(R, 4 * R), "count = R": R,
                   "any count": rng.randint(1, 3 * R), "single": rng.randint(1, 4 * R)}[kind]
            cmds.append(TensorCmd.matmul(src=rng.randrange(8 * R - cnt + 1), w=rng.randrange(4) * R,
                                         dst=rng.randrange(64), m=cnt, accumulate=rng.random() < 0.5,
                                         fp8=cfg.systolic.fp8 and rng.random() < 0.3))
        p0 = tb.perf()
        cycles = await tb.run(cmds)
        p1 = tb.perf()
        model = matmul_cycles(cfg, cmds)
        bound = matmul_bound_cycles(cmds)
        tb.log.info("%-12s %2d tiles: %5d cycles, model %5d, compute bound %5d, util %.3f",
                    kind, len(cmds), cycles, model, bound, bound / cycles)
        assert cycles == model, f"{kind}: {cycles} cycles, model {model} (seed {tb.seed})"
        assert p1["act"] - p0["act"] == bound
        assert p1["cmds"] - p0["cmds"] == len(cmds)
        assert p1["busy"] - p0["busy"] >= cycles - 2
        await tb.check_mem(MEM_ACC, 0, 64 + 3 * R, kind)
    tb.finish()


@cocotb.test()
async def test_mixed_matmul_vector(dut):
    """GEMM -> vector requantization into the activation SRAM -> GEMM consuming it,
    plus softmax-style vector commands, with and without i_cmd gaps: every word of the
    regions written bit-exact vs the model (the fences at each unit switch are what
    make the vector unit see the matmul's results and vice versa)."""
    tb = TensorCoreTB(dut)
    await tb.reset()
    rng, R, C, cfg = tb.rng, tb.R, tb.C, tb.config
    if R != C:
        tb.log.info("R != C: activation rows cannot come from accumulator rows")
        return
    V = TensorCmd.vector
    for mode, cmd_stall, rd_stall, burst in STALL_MODES:
        tb.set_stalls(cmd_stall, rd_stall, burst)
        for fp8 in ([False, True] if cfg.systolic.fp8 else [False]):
            m, k1, n1, n2 = rng.randint(1, 3 * R), rng.randint(1, 3 * R), 2 * C, rng.randint(1, 2 * C)
            lay1 = gemm_layout(cfg, m, k1, n1, act=0, wgt=0, acc=0)
            # GEMM 2's activations are GEMM 1's outputs, requantized: same word layout
            lay2 = gemm_layout(cfg, m, n1, n2, act=lay1.act_words, wgt=lay1.wgt_words,
                               acc=lay1.acc_words)
            if fp8:
                x = fp8_codes(rng, (m, k1), specials=0.0)
                w1 = fp8_codes(rng, (k1, n1), specials=0.0)
                w2 = fp8_codes(rng, (n1, n2), specials=0.0)
            else:
                x = np.array([[rng.randint(-128, 127) for _ in range(k1)] for _ in range(m)], np.int8)
                w1 = np.array([[rng.randint(-128, 127) for _ in range(n1)] for _ in range(k1)], np.int8)
                w2 = np.array([[rng.randint(-128, 127) for _ in range(n2)] for _ in range(n1)], np.int8)
            for mem, addr, rows in gemm_images(cfg, lay1, x, w1):
                await tb.write_rows(mem, addr, rows)
            await tb.write_rows(MEM_WEIGHT, lay2.wgt, gemm_images(cfg, lay2, np.zeros((m, n1), np.uint8), w2)[1][2])
            out_words = lay2.acc + lay2.acc_words
            await tb.fill_random(MEM_ACC, out_words, 2 * m + GUARD)
            await tb.fill_random(MEM_ACT, lay2.act, lay2.act_words + m)
            kw = dict(fp8=fp8)
            cmds = gemm_commands(cfg, lay1, chunks=chunks(rng, m, R), **kw)
            # requantize GEMM 1 to 8-bit activations (INT8 from INT32, E4M3 from FP32)
            cmds.append(V(VecOp.COPY, src=lay1.acc, dst=lay2.act, count=lay1.acc_words,
                          in_int=int(not fp8), imm=(1 / 256 if not fp8 else 1 / 16),
                          out_fmt=OutFmt.E4M3 if fp8 else OutFmt.INT8, dst_act=1))
            cmds += gemm_commands(cfg, lay2, chunks=chunks(rng, m, R), **kw)
            # softmax of GEMM 2's first N tile, probabilities as 8-bit codes, then a GEMM
            sm = dict(src=lay2.acc, count=m, state=0, in_int=int(not fp8), imm=1 / 4096)
            cmds += [V(VecOp.STATE_INIT, count=m, state=0), V(VecOp.ROWMAX, **sm),
                     V(VecOp.EXP, dst=out_words, **sm),
                     V(VecOp.EXP, dst=lay2.act + lay2.act_words, dst_act=1,
                       out_fmt=OutFmt.E4M3 if fp8 else OutFmt.INT8, imm2=127.0, **sm),
                     TensorCmd.matmul(src=lay2.act + lay2.act_words, w=lay2.wgt,
                                      dst=out_words + m, m=m, fp8=fp8),
                     V(VecOp.NORM, src=out_words, dst=out_words, count=m, state=0)]
            await tb.run(cmds)
            label = f"[{mode}] {'fp8' if fp8 else 'int8'} {m}x{k1}x{n1}x{n2}"
            await tb.check_mem(MEM_ACT, lay2.act, lay2.act_words + m, f"{label} requantized acts")
            await tb.check_mem(MEM_ACC, 0, out_words + 2 * m + GUARD, f"{label} accumulators")
            assert tb.status()["error"] == 0, tb.status()
            tb.log.info("%s: %d commands bit-exact", label, len(cmds))
    tb.finish()


#: Arrays up to this many rows get the SRAM-window checks after a reset in every tier;
#: larger ones (default: 16x16, ~100 simulated cycles/s) only in the nightly tier.
WINDOW_CHECK_MAX_ROWS = 8


def _window_checks(rows: int) -> bool:
    """Whether the reset tests read back whole SRAM windows (hundreds of host reads)."""
    return rows <= WINDOW_CHECK_MAX_ROWS or tier() == "nightly"


def _owned_rows(cmds) -> dict[int, set[int]]:
    """Rows each SRAM's aborted commands may have written: their destinations."""
    owned = {MEM_ACT: set(), MEM_WEIGHT: set(), MEM_ACC: set()}
    for c in cmds:
        if c.unit == Unit.MATMUL:
            owned[MEM_ACC].update(range(c.dst, c.dst + c.count))
        elif VecOp(c.op) in VECTOR_WRITES:
            owned[MEM_ACT if c.dst_act else MEM_ACC].update(range(c.dst, c.dst + c.count))
    return owned


async def _abort(tb, cmds, when: int) -> bool:
    """Send ``cmds`` (not to the model), reset ``when`` cycles later; returns whether
    the core was busy at the reset. Then: idle, no error, counters zero."""
    await tb.send(cmds, wait=False, model=False)
    await ClockCycles(tb.dut.clk, when)
    busy = not signal_int(tb.dut.o_idle)
    await tb.reset()
    await ClockCycles(tb.dut.clk, 2)
    st = tb.status()
    assert st == {"idle": 1, "error": 0, "err_code": ErrCode.NONE}, st
    assert all(v == 0 for k, v in tb.perf().items() if k != "busy"), tb.perf()
    return busy


async def _check_untouched(tb, windows: dict[int, int], owned: dict[int, set[int]],
                           what: str) -> int:
    """Rows ``0 .. windows[mem]`` of each SRAM: those the aborted commands did not own
    equal the model (which never ran them) byte for byte; owned rows are then taken
    from the DUT into the model (their contents are undefined). Returns owned rows."""
    n_owned = 0
    for mem, n in windows.items():
        got = await tb.read_rows(mem, 0, n)
        want = tb.model.read(mem, 0, n)
        rows = sorted(r for r in owned[mem] if r < n)
        keep = np.ones(n, bool)
        keep[rows] = False
        diff = np.argwhere((got != want) & keep[:, None])
        assert not diff.size, (f"{what}: mem {mem} row {diff[0][0]} lane {diff[0][1]} changed "
                               f"by a reset-aborted command that does not own it (got "
                               f"{got[tuple(diff[0])]:#x}, was {want[tuple(diff[0])]:#x}; "
                               f"seed {tb.seed})")
        for r in rows:
            tb.model.write(mem, r, got[r:r + 1])
        n_owned += len(rows)
    return n_owned


@cocotb.test()
async def test_reset_mid_traffic(dut):
    """Reset while MATMUL commands stream (and while an error is latched): the core
    comes back idle with no error and zeroed counters; every SRAM row the aborted
    commands did not own (activations, weights, accumulators outside their
    destinations) is unchanged byte for byte; the next GEMM is correct. The row checks
    run on arrays of up to WINDOW_CHECK_MAX_ROWS rows, on larger ones in the nightly
    tier only (logged)."""
    tb = TensorCoreTB(dut)
    await tb.reset()
    rng, R = tb.rng, tb.R
    windows = {MEM_ACT: 8 * R, MEM_WEIGHT: 2 * R, MEM_ACC: 128}
    if not _window_checks(R):
        tb.log.info("%dx%d array, tier %s: untouched-row checks only in the nightly tier",
                    R, tb.C, tier())
        windows = {}
    for mem, n in windows.items():
        await tb.fill_random(mem, 0, n)
    for trial in range(trials(1)):
        cmds = [TensorCmd.matmul(src=rng.randrange(5 * R), w=rng.choice([0, R]),
                                 dst=rng.randrange(100), m=rng.randint(1, 3 * R),
                                 accumulate=rng.random() < 0.5) for _ in range(20)]
        if trial % 2:
            cmds.insert(3, TensorCmd.matmul(src=0, w=0, dst=0, m=0))      # error on the way
        when = rng.randint(3, 60)
        await _abort(tb, cmds, when)
        owned = await _check_untouched(tb, windows, _owned_rows(cmds), f"reset trial {trial}")
        tb.log.info("reset trial %d at cycle %d: %d owned rows, the other %d unchanged",
                    trial, when, owned, sum(windows.values()) - owned)
        await _gemm(tb, what=f"[after reset {trial}]")
        if windows:
            await tb.check_mem(MEM_ACC, 0, windows[MEM_ACC], f"after reset {trial}: no stale write")
    tb.finish()


@cocotb.test()
async def test_reset_during_vector(dut):
    """Reset at a random cycle (seeded) while VECTOR commands run: nothing stale is
    written afterwards, rows the aborted commands did not own (accumulators and
    activations outside their destinations, their sources, the weights) are unchanged
    byte for byte, and the next vector program is bit-exact. SKIPPED on arrays of more
    than WINDOW_CHECK_MAX_ROWS rows outside the nightly tier (hundreds of host reads at
    ~100 cycles/s); the vector unit does not depend on the array size beyond its lanes."""
    if not _window_checks(run_config().systolic.rows):
        pytest.skip(f"arrays over {WINDOW_CHECK_MAX_ROWS} rows: nightly tier only")
    tb = TensorCoreTB(dut)
    await tb.reset()
    rng, cfg = tb.rng, tb.config
    vrng = np.random.default_rng(tb.seed)
    windows = {MEM_ACT: 64, MEM_WEIGHT: tb.R, MEM_ACC: 64}
    for mem, n in windows.items():
        await tb.fill_random(mem, 0, n)
    lat = vector_latency(tb.C)
    busy_resets = 0
    for trial in range(trials(1)):
        cmds = [random_vector_cmd(vrng, cfg, rows=48, state_rows=16, max_count=16)
                for _ in range(4)]
        work = sum(c.count + lat for c in cmds)
        when = rng.randint(2, max(3, work - lat))
        busy_resets += await _abort(tb, cmds, when)
        await ClockCycles(dut.clk, 2 * lat + 16)      # a stale pipeline write would land now
        owned = await _check_untouched(tb, windows, _owned_rows(cmds), f"vector reset {trial}")
        tb.log.info("vector reset %d at cycle %d of ~%d: %s; %d owned rows", trial, when,
                    work, ", ".join(VecOp(c.op).name for c in cmds), owned)
        # the softmax state survives a reset: re-initialise what the next program uses
        nxt = [TensorCmd.vector(VecOp.STATE_INIT, state=0, count=32)]
        nxt += [random_vector_cmd(vrng, cfg, rows=48, state_rows=16, max_count=8)
                for _ in range(3)]
        await tb.run(nxt)
        assert tb.status()["error"] == 0, tb.status()
        for mem, n in windows.items():
            await tb.check_mem(mem, 0, n, f"after vector reset {trial}")
    assert busy_resets == trials(1), f"only {busy_resets} resets hit a busy core"
    tb.finish()


@cocotb.test()
async def test_selfcheck_corrupted_expectation(dut):
    """A one-bit change in the model's expectation must make check_mem fail."""
    tb = TensorCoreTB(dut)
    await tb.reset()
    await tb.fill_random(MEM_ACT, 0, 4)
    await tb.fill_random(MEM_WEIGHT, 0, tb.R)
    await tb.fill_random(MEM_ACC, 0, 4)
    await tb.run([TensorCmd.matmul(src=0, w=0, dst=0, m=4, accumulate=True)])
    await tb.check_mem(MEM_ACC, 0, 4, "before corruption")
    tb.model.acc[2, tb.C - 1] ^= np.uint32(1 << 31)
    try:
        await tb.check_mem(MEM_ACC, 0, 4, "corrupted expectation")
    except AssertionError as e:
        tb.log.info("caught: %s", e)
    else:
        raise AssertionError("check_mem passed with a corrupted expectation")
    tb.finish()



# --- indep overlap: bodies in tb/tensor/overlap.py ----------------------------------------------
@cocotb.test()
async def test_overlap_random(dut):
    """Random legal ping-pong programs with indep, with and without gaps: bit-exact vs the
    in-order model, cycles == program_cycles without gaps (tb.tensor.overlap)."""
    await overlap.overlap_random(dut)


@cocotb.test()
async def test_ping_pong_attention(dut):
    """Two query blocks overlapped: fewer cycles than fenced, same SRAMs (tb.tensor.overlap)."""
    await overlap.ping_pong_attention(dut)


@cocotb.test()
async def test_bank_conflict_stalls(dut):
    """indep commands sharing a bank or rows wait; values in order (tb.tensor.overlap)."""
    await overlap.bank_conflict_stalls(dut)


@cocotb.test()
async def test_reset_during_overlap(dut):
    """Reset while both units run indep commands (tb.tensor.overlap)."""
    await overlap.reset_during_overlap(dut)
