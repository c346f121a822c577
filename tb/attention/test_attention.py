"""cocotb tests: attention heads on the tensor core, bit-exact to the golden model.

Each head's accumulator and activation regions are compared bitwise with
``models.tensor_core.TensorCoreModel`` running the same command program; then O is
compared with the float64 reference (issue 6 targets: RMS <= 1 %, max <= 4 % of
max|V|). Inputs come from ``numpy.random.default_rng(seed + i)`` (seed logged at start;
``make sim TESTS=attention SEED=<n>`` repeats a run).
"""
import cocotb
import numpy as np

from models import attention as att
from models.fp8 import E4M3
from models.tensor_core import MEM_ACC, MEM_ACT
from tb.attention.head import run_head
from tb.common.clocked import tier
from tb.tensor.tb import STALL_MODES, TensorCoreTB

RMS_TARGET, MAX_TARGET = 0.01, 0.04

# (seq_q, seq_k, head_dim, causal, kv_len, query block) on the tiny preset (4x4 array):
# several key blocks (online softmax), several query blocks, padding, causal.
SHAPES = [(16, 16, 32, False, None, None), (20, 24, 32, True, None, 8),
          (12, 18, 16, False, 13, None)]
#: Added in the nightly tier (half the cycles of the regression's heads together).
NIGHTLY_SHAPES = [(32, 32, 32, True, None, None), (40, 36, 16, True, 30, 12)]


def _rng(tb, i):
    return np.random.default_rng(tb.seed + i)


def _check_accuracy(p, acc: dict, seed) -> None:
    """O vs the float64 reference: no NaN, RMS and max error within the targets."""
    assert acc["nan"] == 0, f"NaN in O for {p} (seed {seed})"
    assert acc["rms_rel"] <= RMS_TARGET, (p, acc, seed)
    assert acc["max_rel"] <= MAX_TARGET, (p, acc, seed)


async def _heads(dut, path):
    tb = TensorCoreTB(dut)
    await tb.reset()
    n = 0
    # Icarus runs this core at a few hundred cycles/s: the regression runs every shape
    # once (alternating stall modes); the nightly tier repeats them with new data.
    nightly = tier() == "nightly"
    shapes = SHAPES + NIGHTLY_SHAPES if nightly else SHAPES
    for rep in range(5 if nightly else 1):
        for i, (sq, sk, d, causal, kv_len, mq) in enumerate(shapes):
            name, cmd_stall, rd_stall, burst = STALL_MODES[(i + rep) % len(STALL_MODES)]
            tb.set_stalls(cmd_stall, rd_stall, burst)
            p = att.AttentionProblem(sq, sk, d, path=path, causal=causal, kv_len=kv_len)
            head = att.random_head(p, _rng(tb, n), logit_std=1.0 + 2.0 * (n % 2))
            run = await run_head(tb, head, mq=mq)
            tb.log.info("%s %s (%s): %d cycles, %d commands, rms %.5f max %.5f", path, p, name,
                        run.cycles, len(run.cmds), run.accuracy["rms_rel"],
                        run.accuracy["max_rel"])
            _check_accuracy(p, run.accuracy, tb.seed)
            n += 1
    tb.finish()


@cocotb.test()
async def test_attention_int8(dut):
    """INT8 heads: bit-exact vs the model on every written word, accuracy vs float64."""
    await _heads(dut, "int8")


@cocotb.test()
async def test_attention_fp8(dut):
    """FP8 E4M3 heads: bit-exact vs the model on every written word, accuracy vs float64."""
    await _heads(dut, "fp8")


@cocotb.test()
async def test_fully_masked_rows(dut):
    """kv_len = 0 (every key padded): O is exactly +0 everywhere, never NaN, both paths."""
    tb = TensorCoreTB(dut)
    await tb.reset()
    for i, path in enumerate(att.PATHS):
        p = att.AttentionProblem(8, 12, 16, path=path, causal=bool(i), kv_len=0)
        run = await run_head(tb, att.random_head(p, _rng(tb, i)))
        assert not np.any(np.isnan(run.o)), f"NaN in a fully masked head ({path})"
        assert np.all(run.o.view(np.uint32) == 0), f"fully masked rows not +0 ({path})"
    tb.finish()


@cocotb.test()
async def test_fp8_nan_propagates(dut):
    """A NaN code in K row j makes every query row that sees key j NaN (documented in
    docs/attention.md); rows that do not see it (causal) stay finite and accurate."""
    tb = TensorCoreTB(dut)
    await tb.reset()
    p = att.AttentionProblem(12, 12, 16, path="fp8", causal=True)
    head = att.random_head(p, _rng(tb, 0))
    j = 5
    k = head.k.copy()
    k[j, 3] = E4M3.nan_code
    bad = att.QuantizedHead(p, head.q, k, head.v, head.s_q, head.s_k, head.s_v)
    pl = att.plan(tb.config, p)
    run = await run_head(tb, bad)          # bit-exact vs the model, NaNs included
    sees = np.arange(p.seq_q) >= j
    assert np.all(np.isnan(run.o[sees])), "rows that see the NaN key must be NaN"
    assert not np.any(np.isnan(run.o[~sees])), "rows before the NaN key must stay finite"
    ref = att.reference(head)[~sees]
    vmax = float(np.max(np.abs(head.dequantized()[2])))
    assert np.max(np.abs(run.o[~sees] - ref)) / vmax <= MAX_TARGET
    del pl
    tb.finish()


async def _expect_failure(what: str, check) -> str:
    """Await ``check()``; it must raise AssertionError (returns its message)."""
    try:
        await check()
    except AssertionError as e:
        return str(e)
    raise AssertionError(f"self-check: {what} was not reported")


@cocotb.test()
async def test_selfcheck(dut):
    """Both checkers are live on a small head: one flipped bit in the model's O, in
    the S/PV scratch or in P (random word, lane and bit, seeded) makes the bit-exact
    SRAM check fail; an O off by 10 % of max|V| in one element fails the accuracy check,
    and so does a NaN in O."""
    tb = TensorCoreTB(dut)
    await tb.reset()
    rng = tb.rng
    p = att.AttentionProblem(4, 4, 4, path="int8")
    head = att.random_head(p, _rng(tb, 0))
    run = await run_head(tb, head)
    _check_accuracy(p, run.accuracy, tb.seed)
    pl = run.plan
    o_addr, o_n = att.output_rows(pl)
    for mem, addr, n, what in ((MEM_ACC, o_addr, o_n, "O"),
                               (MEM_ACC, pl.s_acc, pl.o_acc - pl.s_acc, "S/PV scratch"),
                               (MEM_ACT, pl.p_act, pl.mq, "P")):
        store = tb.model.acc if mem == MEM_ACC else tb.model.act
        r, lane = addr + rng.randrange(n), rng.randrange(store.shape[1])
        bit = rng.randrange(8 * store.dtype.itemsize)
        store[r, lane] ^= store.dtype.type(1 << bit)
        msg = await _expect_failure(f"a flipped bit in {what}",
                                    lambda: tb.check_mem(mem, addr, n, f"corrupted {what}"))
        tb.log.info("corrupted %s (row %d lane %d bit %d) reported: %s", what, r, lane, bit,
                    msg[:90])
        store[r, lane] ^= store.dtype.type(1 << bit)
        await tb.check_mem(mem, addr, n, f"{what} restored")
    ref = att.reference(head)
    vmax = float(np.max(np.abs(head.dequantized()[2])))
    i, j = rng.randrange(p.seq_q), rng.randrange(p.head_dim)
    for what, delta in (("an element 10 % of max|V| off", 0.1 * vmax), ("a NaN", np.nan)):
        o = run.o.astype(np.float64)
        o[i, j] += delta
        acc = att.accuracy(o, ref, head)

        async def check(acc=acc):
            _check_accuracy(p, acc, tb.seed)
        await _expect_failure(f"O with {what}", check)
    tb.log.info("accuracy check reports an O with one element 10 % of max|V| off and a NaN")
    tb.finish()
