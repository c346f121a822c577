"""Bodies of the tensor core's overlap tests (``indep``, docs/tensor_core.md "Overlap"):
``tb.tensor.test_tensor_core`` wraps each in a cocotb test of the same name (one
simulation start-up for both; tests/sim/test_tensor_core_sim.py runs them). The overlap logic does not depend on
the array size or FP8: they run on ``tiny`` in every tier, on the other presets in the
nightly tier only (SKIP otherwise).

Every check compares SRAM words bitwise with ``models.tensor_core.TensorCoreModel``
(which executes in program order: overlapped runs must equal it) and, for programs
sent without gaps, the cycles with ``models.tensor_core.program_cycles``. Random
choices come from ``tb.rng`` (seed logged at start; ``make sim SEED=<n>`` repeats a run).
"""
import dataclasses

import numpy as np
import pytest
from cocotb.triggers import ClockCycles

from models.tensor_cmd import TensorCmd, VecOp
from models.tensor_core import (MEM_ACC, MEM_ACT, MEM_WEIGHT, overlap_errors, program_cycles)
from models.vector import vector_latency
from tb.common.clocked import run_config, tier, trials
from tb.tensor.tb import STALL_MODES, TensorCoreTB
from tb.vector.sequences import random_cmd as random_vector_cmd

#: Vector ops of the random programs: all (bscale on half of them, as
#: ``tb.vector.sequences.random_cmd`` draws it).
OPS = list(VecOp)
#: Accumulator rows used at the bottom of each bank; activation rows for vector writes
#: start at ACT_V * R (matmuls read rows below).
WINDOW = 64
ACT_V = 8


def _base(tb, bank: int) -> int:
    return bank * (tb.config.tensor.acc_rows // 2)


async def _fill(tb) -> dict[int, list[tuple[int, int]]]:
    """Random contents of every window the programs touch; returns them per SRAM."""
    R = tb.R
    win = {MEM_ACT: [(0, (ACT_V + 1) * R + WINDOW)], MEM_WEIGHT: [(0, 4 * R)],
           MEM_ACC: [(_base(tb, 0), WINDOW), (_base(tb, 1), WINDOW)]}
    for mem, spans in win.items():
        for addr, n in spans:
            await tb.fill_random(mem, addr, n)
    return win


async def _check(tb, win, what: str) -> None:
    for mem, spans in win.items():
        for addr, n in spans:
            await tb.check_mem(mem, addr, n, what)


def _matmul(tb, bank: int, indep: bool) -> TensorCmd:
    rng, R = tb.rng, tb.R
    n = rng.choice([2, R, R + 1, 2 * R])
    cmd = TensorCmd.matmul(src=rng.randrange(4 * R), w=rng.choice([0, R, 2 * R]),
                           dst=_base(tb, bank) + rng.randrange(WINDOW - n + 1), m=n,
                           accumulate=rng.random() < 0.5)
    return dataclasses.replace(cmd, indep=int(indep))


def _vector(tb, vrng, bank: int, indep: bool) -> TensorCmd:
    """A random vector command on the rows of ``bank`` (activation writes above the
    matmuls' source rows: no race)."""
    c = random_vector_cmd(vrng, tb.config, rows=48, state_rows=16, max_count=8, ops=OPS)
    b = _base(tb, bank)
    dst = c.dst + (ACT_V * tb.R if c.dst_act else b)
    return dataclasses.replace(c, src=c.src + b, src2=c.src2 + b, dst=dst, indep=int(indep))


def _random_program(tb, vrng, rounds: int) -> list[TensorCmd]:
    """Ping-pong rounds: MATMULs into bank r % 2, then vector commands on the other bank
    (the previous round's results), most with ``indep``; now and then a vector command in
    the matmuls' bank (a bank conflict: the hardware must wait)."""
    rng = tb.rng
    cmds = []
    for r in range(rounds):
        b = r % 2
        cmds += [_matmul(tb, b, rng.random() < 0.8) for _ in range(rng.randint(1, 4))]
        for _ in range(rng.randint(1, 3)):
            bank = b if rng.random() < 0.15 else 1 - b
            cmds.append(_vector(tb, vrng, bank, rng.random() < 0.8))
    return cmds


def _preset_gate() -> None:
    """SKIP on presets other than tiny outside the nightly tier (make test budget)."""
    if run_config().name != "tiny" and tier() != "nightly":
        pytest.skip("overlap tests: tiny preset, other presets in the nightly tier")


def _n_trials() -> int:
    """Programs per stall mode (or resets) per test: 1 smoke and full (``make test``,
    whose budget is tight), 5 nightly."""
    return max(1, trials(1) // 4)


def _kinds(cfg, cmds) -> dict[str, int]:
    issues = overlap_errors(cfg, cmds)
    kinds = {k: sum(e.kind == k for e in issues) for k in ("race", "wait", "bank")}
    assert kinds["race"] == 0, [e for e in issues if e.kind == "race"][:3]
    return kinds


# --- tests -------------------------------------------------------------------------------------
async def overlap_random(dut):
    """Random legal ping-pong programs (matmuls in one bank, vector commands in the other
    and now and then in the same one), with and without i_cmd gaps and o_rd
    backpressure: every word of the windows bit-exact vs the in-order model; without
    gaps the cycles equal program_cycles; the overlap counter shows both units busy."""
    _preset_gate()
    tb = TensorCoreTB(dut)
    await tb.reset()
    vrng = np.random.default_rng(tb.seed)
    win = await _fill(tb)
    init = [TensorCmd.vector(VecOp.STATE_INIT, state=0, count=24)]
    await tb.run(init)
    overlapped = 0
    for mode, cmd_stall, rd_stall, burst in STALL_MODES:
        tb.set_stalls(cmd_stall, rd_stall, burst)
        for trial in range(_n_trials()):
            cmds = _random_program(tb, vrng, rounds=4)
            kinds = _kinds(tb.config, cmds)
            before = tb.perf()["overlap"]
            cycles = await tb.run(cmds)
            ov = tb.perf()["overlap"] - before
            overlapped += ov
            label = f"[{mode}] program {trial} ({len(cmds)} cmds, {kinds})"
            await _check(tb, win, label)
            if cmd_stall == 0:
                want = program_cycles(tb.config, cmds)
                assert cycles == want, f"{label}: {cycles} cycles, model {want} (seed {tb.seed})"
            tb.log.info("%s: %d cycles, %d with both units busy", label, cycles, ov)
    assert overlapped > 0, "no cycle had both units busy"
    assert tb.status()["error"] == 0, tb.status()
    tb.finish()


def _ping_pong(tb, indep: bool, mq: int) -> list[TensorCmd]:
    """Attention-like program of two query blocks (bank q for block q): S_q = Q_q K^T
    (one tile), softmax (STATE_INIT, ROWMAX, EXP to 8-bit P_q in the activation SRAM),
    O_q = P_q V, NORM. With ``indep`` the softmax of one block runs while the array
    does the other's matmuls; the MATMULs reading P stay fenced (they depend on EXP)."""
    R = tb.R
    V = TensorCmd.vector
    i = int(indep)
    S = [_base(tb, q) for q in (0, 1)]
    O = [s + mq for s in S]
    P = [ACT_V * R + q * mq for q in (0, 1)]
    st = [0, mq]

    def sm(q):
        kw = dict(src=S[q], count=mq, state=st[q], in_int=1, imm=1 / 256)
        return [V(VecOp.STATE_INIT, count=mq, state=st[q], indep=i), V(VecOp.ROWMAX, indep=i, **kw),
                V(VecOp.EXP, dst=P[q], dst_act=1, out_fmt=1, imm2=127.0, indep=i, **kw)]

    def mm(src, w, dst, ind=0):
        return dataclasses.replace(TensorCmd.matmul(src=src, w=w, dst=dst, m=mq), indep=ind)

    def norm(q):
        return V(VecOp.NORM, src=O[q], dst=O[q], count=mq, state=st[q], in_int=1, indep=i)

    return ([mm(0, 0, S[0]), mm(mq, 0, S[1], i)] + sm(0) + [mm(P[0], R, O[0])] + sm(1)
            + [mm(P[1], R, O[1]), norm(0), norm(1)])


async def ping_pong_attention(dut):
    """Two query blocks, softmax of one overlapping the other's matmuls: fewer cycles
    than the fenced program (both printed, both equal program_cycles), same SRAM
    contents as the in-order model; the fenced run never has both units busy."""
    _preset_gate()
    tb = TensorCoreTB(dut)
    await tb.reset()
    R, C = tb.R, tb.C
    if R != C:
        tb.log.info("R != C: no 8-bit P rows in the activation SRAM")
        return
    mq = 4 * R
    res = {}
    for indep in (False, True):
        win = await _fill(tb)
        cmds = _ping_pong(tb, indep, mq)
        kinds = _kinds(tb.config, cmds)
        before = tb.perf()["overlap"]
        cycles = await tb.run(cmds)
        ov = tb.perf()["overlap"] - before
        await _check(tb, win, f"ping-pong indep={indep}")
        want = program_cycles(tb.config, cmds)
        assert cycles == want, f"indep={indep}: {cycles} cycles, model {want} (seed {tb.seed})"
        res[indep] = cycles
        tb.log.info("ping-pong %s: %d cycles (model %d), %d with both units busy, overlap "
                    "issues %s", "overlapped" if indep else "fenced", cycles, want, ov, kinds)
        assert (ov > 0) == indep, f"indep={indep}: {ov} overlap cycles"
    assert res[True] < res[False], res
    tb.log.info("ping-pong: fenced %d cycles, overlapped %d (%.1f %% fewer)", res[False],
                res[True], 100 * (1 - res[True] / res[False]))
    tb.finish()


async def bank_conflict_stalls(dut):
    """An indep command whose accumulator bank an in-flight command of the other unit
    uses waits (cycles == program_cycles, more than with disjoint banks); a dependency
    through common rows (VECTOR reading a MATMUL's rows, MATMUL overwriting rows a VECTOR
    reads) gives the in-order values."""
    _preset_gate()
    tb = TensorCoreTB(dut)
    await tb.reset()
    R = tb.R
    V = TensorCmd.vector
    b0, b1 = _base(tb, 0), _base(tb, 1)
    long_mm = dataclasses.replace(TensorCmd.matmul(src=0, w=0, dst=b0, m=4 * R), indep=1)
    cases = {
        "vector, other bank": [long_mm, V(VecOp.RELU, src=b1, dst=b1 + 40, count=8, indep=1)],
        "vector, same bank": [long_mm, V(VecOp.RELU, src=b0 + 40, dst=b0 + 50, count=8, indep=1)],
        "vector reads the matmul's rows": [long_mm, V(VecOp.COPY, src=b0 + 2, dst=b1 + 40,
                                                     count=8, indep=1)],
        "matmul, other bank": [V(VecOp.RELU, src=b1, dst=b1 + 40, count=8), long_mm],
        "matmul overwrites the vector's rows": [V(VecOp.RELU, src=b0, dst=b1 + 40, count=8),
                                                long_mm],
    }
    got = {}
    win = await _fill(tb)           # the model follows every case: one fill is enough
    for name, cmds in cases.items():
        cycles = await tb.run(cmds)
        await _check(tb, win, name)
        want = program_cycles(tb.config, cmds)
        assert cycles == want, f"{name}: {cycles} cycles, model {want} (seed {tb.seed})"
        got[name] = cycles
        tb.log.info("%-40s %5d cycles, issues %s", name, cycles, _kinds(tb.config, cmds))
    assert got["vector, same bank"] > got["vector, other bank"], got
    assert got["vector reads the matmul's rows"] > got["vector, other bank"], got
    assert got["matmul overwrites the vector's rows"] > got["matmul, other bank"], got
    tb.finish()


async def _check_bank1_untouched(tb, owned: set[int], what: str) -> int:
    """The bank-1 accumulator window: rows the aborted commands do not own equal the
    model; owned rows are taken into the model. Returns the owned rows."""
    b = _base(tb, 1)
    got = await tb.read_rows(MEM_ACC, b, WINDOW)
    want = tb.model.read(MEM_ACC, b, WINDOW)
    mine = [r - b for r in sorted(owned) if b <= r < b + WINDOW]
    keep = np.ones(WINDOW, bool)
    keep[mine] = False
    diff = np.argwhere((got != want) & keep[:, None])
    assert not diff.size, (f"{what}: accumulator row {b + diff[0][0]} changed by a reset-"
                           f"aborted command that does not own it (seed {tb.seed})")
    for r in mine:
        tb.model.write(MEM_ACC, b + r, got[r:r + 1])
    return len(mine)


async def reset_during_overlap(dut):
    """Reset at a seeded random cycle while both units are busy: idle, no error, counters
    zero; rows the aborted commands do not own unchanged byte for byte; the next
    overlapped program bit-exact with exact cycles."""
    _preset_gate()
    from tb.tensor.test_tensor_core import _abort, _check_untouched, _owned_rows
    tb = TensorCoreTB(dut)
    await tb.reset()
    vrng = np.random.default_rng(tb.seed)
    win = await _fill(tb)
    windows = {MEM_ACT: (ACT_V + 1) * tb.R + WINDOW, MEM_WEIGHT: 4 * tb.R, MEM_ACC: WINDOW}
    for trial in range(_n_trials()):
        cmds = [dataclasses.replace(TensorCmd.matmul(src=0, w=0, dst=_base(tb, 0), m=8 * tb.R))]
        cmds += [_vector(tb, vrng, 1, True) for _ in range(3)]
        cmds += [_matmul(tb, 0, True) for _ in range(3)]
        when = tb.rng.randint(6, 6 + 8 * tb.R)
        assert await _abort(tb, cmds, when), f"core idle at the reset (cycle {when})"
        await ClockCycles(dut.clk, 2 * vector_latency(tb.C) + 16)
        owned_rows = _owned_rows(cmds)
        owned = await _check_untouched(tb, windows, owned_rows, f"overlap reset {trial}")
        owned += await _check_bank1_untouched(tb, owned_rows[MEM_ACC], f"overlap reset {trial}")
        tb.log.info("overlap reset %d at cycle %d: %d owned rows", trial, when, owned)
        await tb.run([TensorCmd.vector(VecOp.STATE_INIT, state=0, count=24)])
        nxt = _random_program(tb, vrng, rounds=2)
        cycles = await tb.run(nxt)
        assert cycles == program_cycles(tb.config, nxt), (cycles, program_cycles(tb.config, nxt))
        await _check(tb, win, f"after overlap reset {trial}")
    tb.finish()
