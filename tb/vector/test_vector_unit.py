"""cocotb tests of the vector unit (block ``vector_unit``) against ``models.vector``.

Every written row is compared bit-exactly, in order, with the golden model
(``vector_execute`` on the TB's copy of the memories); the unit's softmax state is
checked through the commands that read it and a final state dump (RESCALE, NORM,
EXP). Seeds are logged by cocotb (``COCOTB_RANDOM_SEED``); ``trials`` scales with
the tier. Run by tests/sim/test_vector_sim.py on Icarus and Verilator.
"""
from __future__ import annotations

import dataclasses

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from models.tensor_cmd import VECTOR_WRITES, OutFmt, TensorCmd, VecOp, f32_bits
from models.vector import K_MAX, vector_latency, vector_write_delay
from tb.common.clocked import trials
from tb.common.stream import signal_int
from tb.vector.coverage import SPECIAL_WORDS, STALLS, coverage
from tb.vector.sequences import random_cmd, random_rows
from tb.vector.tb import VectorTB

V = TensorCmd.vector


async def _start(dut, **kw) -> VectorTB:
    tb = VectorTB(dut, **kw)
    tb.coverage = coverage()            # every command of every test is sampled
    await tb.reset()
    # the state memory keeps its contents across tests (reset does not clear it)
    tb.send(V(VecOp.STATE_INIT, state=0, count=tb.acc_rows))
    return tb


def _f32(words) -> np.ndarray:
    return np.asarray(words, np.uint32).view(np.float32)


async def _random_commands(dut, n: int, *, stall: float, burst: int) -> None:
    tb = await _start(dut, stall=stall, burst=burst)
    rng = np.random.default_rng(tb.seed)
    tb.load_acc(0, random_rows(rng, 64, tb.lanes))
    for k in range(n):
        tb.send(random_cmd(rng, tb.config))
        if k % 16 == 15:                 # fresh data now and then (NaN-poisoned rows heal)
            r = int(rng.integers(0, 56))
            await tb.drain()
            tb.load_acc(r, random_rows(rng, 8, tb.lanes))
    tb.dump_state(0, 32, scratch=200)
    await tb.drain()
    tb.finish()


@cocotb.test()
async def test_random_commands_with_gaps(dut):
    """Random legal commands of every op (random data with NaN/inf/-0/subnormals,
    masks, formats, scales), random idle gaps between commands."""
    await _random_commands(dut, trials(60), stall=0.5, burst=6)


@cocotb.test()
async def test_random_commands_back_to_back(dut):
    """The same without gaps: each command offered as soon as the previous one."""
    await _random_commands(dut, trials(60), stall=0.0, burst=1)


@cocotb.test()
async def test_every_op_and_format(dut):
    """Each op with each legal output format and destination at least once (ROWMAX,
    EXP and RESCALE also with bscale, FP32 and INT8 to the accumulator)."""
    tb = await _start(dut)
    rng = np.random.default_rng(tb.seed)
    tb.load_acc(0, random_rows(rng, 64, tb.lanes, kind="float"))
    tb.load_acc(64, random_rows(rng, 16, tb.lanes, kind="int"))
    for op in VecOp:
        if op == VecOp.REQUANT:
            for dst_act in (0, 1):
                tb.send(V(op, src=64, src2=72, dst=100, count=8, bias=1, dst_act=dst_act,
                          out_fmt=OutFmt.INT8, imm=0x5000_0000, imm2=(-6) & 0xFFFF_FFFF))
            continue
        for fmt in OutFmt:
            if op == VecOp.STATE_STORE and fmt != OutFmt.FP32:
                continue
            ids = op != VecOp.TOPK or fmt == OutFmt.INT8     # TOPK to act: lane ids
            dst_acts = (0, 1) if ids and fmt in (OutFmt.INT8, OutFmt.E4M3, OutFmt.E5M2) else (0,)
            for dst_act in dst_acts:
                scaled = (op in (VecOp.ROWMAX, VecOp.EXP, VecOp.RESCALE) and not dst_act
                          and fmt in (OutFmt.FP32, OutFmt.INT8))
                for bscale in ((0, 1) if scaled else (0,)):
                    tb.send(V(op, src=8, src2=24, dst=120, count=3, state=4,
                              out_fmt=int(fmt), dst_act=dst_act, imm=0.75, imm2=3.0,
                              bscale=bscale))
    tb.send(V(VecOp.COPY, src=64, dst=130, count=8, in_int=1, imm=2.0**-20))
    tb.dump_state(0, 12, scratch=200)
    await tb.drain()
    tb.finish()


async def _softmax(tb: VectorTB, *, rows: int, blocks: int, scale: float, masks: dict,
                   fmt=OutFmt.FP32, imm2=1.0) -> None:
    """FlashAttention-style online softmax over ``blocks`` column blocks of S:
    S block j at acc rows 100*j, P_j at 400 + 100*j; O accumulates P (as if V = I):
    COPY for block 0, RESCALE for the others; finally O = NORM(O). ``fmt`` is FP32
    or INT8 (converted back with COPY in_int, as the P V matmul would)."""
    tb.send(V(VecOp.STATE_INIT, count=rows, state=0))
    for j in range(blocks):
        mk = dict(masks, k_base=tb.lanes * j)
        tb.send(V(VecOp.ROWMAX, src=100 * j, count=rows, state=0, imm=scale, **mk))
        tb.send(V(VecOp.EXP, src=100 * j, dst=400 + 100 * j, count=rows, state=0, imm=scale,
                  out_fmt=int(fmt), imm2=imm2, **mk))
        p = 400 + 100 * j
        if fmt == OutFmt.INT8:      # P back to binary32 (the P V matmul would do it)
            tb.send(V(VecOp.COPY, src=p, dst=p, count=rows, in_int=1))
        if j == 0:
            tb.send(V(VecOp.COPY, src=p, dst=900, count=rows))
        else:
            tb.send(V(VecOp.RESCALE, src=p, src2=900, dst=900, count=rows, state=0))
    tb.send(V(VecOp.NORM, src=900, dst=950, count=rows, state=0))
    await tb.drain()


def _ref_softmax(s: np.ndarray, scale: float, mask: np.ndarray) -> np.ndarray:
    z = np.where(mask, -np.inf, s.astype(np.float64) * scale)
    mx = z.max(axis=1, keepdims=True)
    e = np.where(mask, 0.0, np.exp(z - np.where(np.isfinite(mx), mx, 0.0)))
    tot = e.sum(axis=1, keepdims=True)
    return np.divide(e, tot, out=np.zeros_like(e), where=tot > 0)


@cocotb.test()
async def test_softmax_rows(dut):
    """Softmax of rows (ROWMAX, EXP, NORM): bit-exact, and within 3e-4 of float64."""
    tb = await _start(dut)
    rng = np.random.default_rng(tb.seed)
    rows = 16
    s = (rng.standard_normal((rows, tb.lanes)) * 4).astype(np.float32)
    tb.load_acc(0, s.view(np.uint32))
    await _softmax(tb, rows=rows, blocks=1, scale=0.5, masks={})
    got = _f32(tb.acc[950:950 + rows]).astype(np.float64)
    err = np.abs(got - _ref_softmax(s, 0.5, np.zeros(s.shape, bool))).max()
    tb.log.info("softmax max abs error vs float64: %.3e", err)
    assert err < 3e-4, err
    tb.finish()


@cocotb.test()
async def test_online_softmax_blocks(dut):
    """Online softmax over 3 column blocks with causal + padding masks (FP32 P) and
    over 2 blocks with INT8 P (x127): bit-exact, and close to float64 softmax."""
    tb = await _start(dut)
    rng = np.random.default_rng(tb.seed)
    L, rows = tb.lanes, 12
    for blocks, fmt, imm2, tol in ((3, OutFmt.FP32, 1.0, 3e-4), (2, OutFmt.INT8, 127.0, 0.03)):
        s = (rng.standard_normal((rows, blocks * L)) * 3).astype(np.float32)
        for j in range(blocks):
            tb.load_acc(100 * j, s[:, L * j:L * (j + 1)].copy().view(np.uint32))
        kv_len = blocks * L - 1
        await _softmax(tb, rows=rows, blocks=blocks, scale=0.7, fmt=fmt, imm2=imm2,
                       masks=dict(causal=1, q_base=2, pad=1, kv_len=kv_len))
        o = _f32(tb.acc[950:950 + rows]).astype(np.float64)
        # O holds, per lane t, the sum over blocks of the probabilities of key j*L + t
        k = np.arange(blocks * L)
        mask = (k[None, :] > 2 + np.arange(rows)[:, None]) | (k[None, :] >= kv_len)
        ref = _ref_softmax(s, 0.7, mask).reshape(rows, blocks, L).sum(axis=1)
        err = np.abs(o - ref).max()
        tb.log.info("online softmax (%d blocks, %s) max abs error %.3e", blocks, fmt.name, err)
        assert err < tol, err
    tb.finish()


@cocotb.test()
async def test_fully_masked_rows_are_zero(dut):
    """kv_len = 0 masks every key: m = -inf, alpha = 1, P = 0, l = 0, NORM gives +0
    (never NaN), also through a second block and a RESCALE."""
    tb = await _start(dut)
    rng = np.random.default_rng(tb.seed)
    rows = 6
    for j in range(2):
        tb.load_acc(100 * j, random_rows(rng, rows, tb.lanes, kind="float"))
    await _softmax(tb, rows=rows, blocks=2, scale=1.0, masks=dict(pad=1, kv_len=0))
    assert np.all(tb.acc[400:400 + rows] == 0) and np.all(tb.acc[500:500 + rows] == 0)
    assert np.all(tb.acc[950:950 + rows] == 0), tb.acc[950:950 + rows]
    assert np.all(tb.m_state.m[:rows] == -np.inf) and np.all(tb.m_state.l[:rows] == 0)
    tb.finish()


@cocotb.test()
async def test_nan_propagation(dut):
    """A NaN score poisons its row's max, alpha, P, l and output (canonical NaN);
    other rows are unaffected; RELU/GELU/COPY pass NaN as 0x7FC00000."""
    tb = await _start(dut)
    rows = 4
    s = np.ones((rows, tb.lanes), np.float32)
    s[1, 0] = np.float32("nan")
    w = s.view(np.uint32).copy()
    w[1, 0] = 0xFFC1_2345                        # a negative NaN with payload
    tb.load_acc(0, w)
    await _softmax(tb, rows=rows, blocks=1, scale=1.0, masks={})
    assert np.all(tb.acc[401] == 0x7FC0_0000) and np.all(tb.acc[951] == 0x7FC0_0000)
    assert not np.isnan(_f32(tb.acc[950])).any()
    for op in (VecOp.RELU, VecOp.GELU, VecOp.COPY, VecOp.RECIP):
        tb.send(V(op, src=0, dst=300, count=rows))
        await tb.drain()
        assert tb.acc[301, 0] == 0x7FC0_0000, op.name
    tb.finish()


@cocotb.test()
async def test_latency_and_idle(dut):
    """A command accepted in cycle c writes row i at the end of cycle
    c + vector_write_delay() + i, one row per cycle, and ``o_idle`` returns in cycle
    c + count + vector_latency(lanes) (``models.vector``, the RTL asserts the same)."""
    tb = await _start(dut)
    await tb.drain()
    writes = []
    tb.sb.expected.clear()
    tb.mem.on_write = lambda kind, addr, row, cycle: writes.append(cycle)
    n = 10
    tb.load_acc(0, np.zeros((n, tb.lanes), np.uint32))
    cmd = V(VecOp.COPY, src=0, dst=20, count=n)
    sent = tb.src.sent
    tb.src.send(cmd.as_dict())
    await tb.wait_until(lambda: tb.src.sent > sent, timeout=20, what="accept")
    c = tb.src.last_fire
    lat = vector_latency(tb.lanes)
    await tb.wait_until(lambda: len(writes) == n, timeout=n + lat + 10, what="writes")
    # the SRAM model records a write in the cycle its en is high (write at that edge)
    assert writes == [c + vector_write_delay() + i for i in range(n)], (c, writes)
    await tb.drain()                     # returns in the first cycle o_idle is high
    tb.log.info("accepted in cycle %d, writes %d..%d, idle again in cycle %d",
                c, writes[0], writes[-1], tb.cycle)
    assert tb.cycle == c + n + lat, (c, tb.cycle, lat)


@cocotb.test()
async def test_selfcheck_corrupted_expectation_is_caught(dut):
    """The scoreboard is live: flipping one bit of one expected row fails the check."""
    tb = await _start(dut)
    tb.load_acc(0, np.full((4, tb.lanes), f32_bits(1.5), np.uint32))
    tb.send(V(VecOp.GELU, src=0, dst=10, count=4))
    item = dict(tb.sb.expected[-2][0])
    item["data"] = item["data"].copy()
    item["data"][0] ^= 1
    tb.sb.expected[-2] = (item, "corrupted")
    await tb.drain()
    try:
        tb.sb.check()
    except AssertionError as e:
        tb.log.info("corrupted expectation reported as it must: %s", str(e)[:120])
    else:
        raise AssertionError("a corrupted expectation was not reported")


@cocotb.test()
async def test_reset_mid_traffic(dut):
    """Reset at a random cycle (seeded) while random commands run: every write before
    the reset lands in a row the aborted commands own, nothing is written after it,
    every other accumulator / activation row is unchanged byte for byte, and the next
    commands (after STATE_INIT: the state memory survives a reset) are bit-exact."""
    tb = await _start(dut)
    rng = np.random.default_rng(tb.seed)
    tb.load_acc(0, random_rows(rng, 64, tb.lanes))
    await tb.drain()
    lat = vector_latency(tb.lanes)
    busy = 0
    for trial in range(trials(1)):
        cmds = [random_cmd(rng, tb.config, max_count=16) for _ in range(4)]
        owned = {"acc": set(), "act": set()}
        for c in cmds:
            if VecOp(c.op) in VECTOR_WRITES:
                owned["act" if c.dst_act else "acc"].update(range(c.dst, c.dst + c.count))
        snap = {"acc": tb.acc.copy(), "act": tb.act.copy()}
        writes, stale = [], []
        tb.mem.on_write = lambda kind, addr, row, cycle: writes.append((kind, addr))
        for c in cmds:                       # to the DUT only: the model never runs them
            tb.src.send(c.as_dict())
        # from the first write on, to the last command's state update
        when = int(rng.integers(vector_write_delay() + 2, sum(c.count for c in cmds) + 2 * lat))
        await ClockCycles(dut.clk, when)
        busy += not signal_int(dut.o_idle)
        tb.src.clear()
        await tb.reset()
        tb.mem.on_write = lambda kind, addr, row, cycle: stale.append((kind, addr, cycle))
        await ClockCycles(dut.clk, 2 * lat + 20)
        assert not stale, f"writes after the reset: {stale[:4]} (seed {tb.seed})"
        bad = [(k, a) for k, a in writes if a not in owned[k]]
        assert not bad, f"aborted commands wrote rows they do not own: {bad[:4]}"
        for kind, mem in (("acc", tb.acc), ("act", tb.act)):
            keep = np.ones(len(mem), bool)
            keep[sorted(owned[kind])] = False
            diff = np.argwhere((mem != snap[kind]) & keep[:, None])
            assert not diff.size, f"{kind} row {diff[0][0]} changed by the aborted commands"
        tb.m_acc[:], tb.m_act[:] = tb.acc, tb.act     # owned rows: whatever was written
        tb.mem.on_write = tb._on_write
        tb.log.info("reset %d at cycle %d (%s): %d writes, all to owned rows; %d acc and "
                    "%d act rows not owned unchanged", trial, when,
                    ", ".join(VecOp(c.op).name for c in cmds), len(writes),
                    len(tb.acc) - len(owned["acc"]), len(tb.act) - len(owned["act"]))
        tb.send(V(VecOp.STATE_INIT, state=0, count=64))    # random_cmd's state rows
        for _ in range(8):
            tb.send(random_cmd(rng, tb.config))
        await tb.drain()
    assert busy == trials(1), f"only {busy} of {trials(1)} resets hit a busy unit"
    tb.dump_state(0, 32, scratch=200)
    await tb.drain()
    tb.finish()


def _beta_probe(tb: VectorTB, state: int, n: int, scratch: int) -> None:
    """Write each state row's ``beta`` (RESCALE bscale of ones with a zero ``b``:
    ``0 * alpha + 1 * beta``) to rows ``scratch + 2n ..`` (uses ``scratch .. + 3n``)."""
    tb.load_acc(scratch, np.full((n, tb.lanes), f32_bits(1.0), np.uint32))
    tb.load_acc(scratch + n, np.zeros((n, tb.lanes), np.uint32))
    tb.send(V(VecOp.RESCALE, src=scratch, src2=scratch + n, dst=scratch + 2 * n, count=n,
              state=state, bscale=1))


@cocotb.test()
async def test_block_scale_k_clamps(dut):
    """ROWMAX with bscale: a first block (m = -inf before it) gives g = 1.0 and k = 0;
    a later fully masked block (m finite, block max -inf) gives g = +0 and k = K_MAX
    (31, beta = 2**-31); blocks a few units below the running max give k in between.
    beta (exposed by a RESCALE with bscale), the EXP outputs e * 2**k and l are read
    from the DUT's writes and compared with the model and with 2**-k."""
    tb = await _start(dut)
    rng = np.random.default_rng(tb.seed)
    rows, L = 8, tb.lanes
    s = (rng.standard_normal((rows, L)) * 2).astype(np.float32)
    tb.load_acc(0, s.view(np.uint32))
    # second block: rows 0-3 fully masked (pad, kv_len 0), rows 4-7 d below the max
    d = np.float32([0, 0, 0, 0, 3, 9, 14, 60])[:, None]
    tb.load_acc(100, (s.max(axis=1, keepdims=True) - d - np.abs(s)).astype(np.float32)
                .view(np.uint32))
    tb.send(V(VecOp.STATE_INIT, count=rows))
    tb.send(V(VecOp.ROWMAX, src=0, count=rows, bscale=1))
    assert np.all(tb.m_state.k[:rows] == 0)
    _beta_probe(tb, 0, rows, scratch=300)
    tb.send(V(VecOp.EXP, src=0, dst=400, count=rows, bscale=1, out_fmt=OutFmt.INT8, imm2=127.0))
    await tb.drain()
    assert np.all(tb.acc[300 + 2 * rows:300 + 3 * rows] == f32_bits(1.0)), "beta != 1 (k = 0)"
    for half, kw in ((slice(0, 4), dict(pad=1, kv_len=0)), (slice(4, 8), {})):
        n = half.stop - half.start
        tb.send(V(VecOp.ROWMAX, src=100 + half.start, count=n, state=half.start, bscale=1,
                  **kw))
    k = tb.m_state.k[:rows].copy()
    assert np.all(k[:4] == K_MAX), k
    assert np.all(k[4:] > 0) and k[7] == K_MAX and np.all(np.diff(k[4:]) >= 0), k
    _beta_probe(tb, 0, rows, scratch=300)
    for half, kw in ((slice(0, 4), dict(pad=1, kv_len=0)), (slice(4, 8), {})):
        n = half.stop - half.start
        tb.send(V(VecOp.EXP, src=100 + half.start, dst=500 + half.start, count=n,
                  state=half.start, bscale=1, out_fmt=OutFmt.INT8, imm2=127.0, **kw))
    await tb.drain()
    beta = _f32(tb.acc[300 + 2 * rows:300 + 3 * rows, 0]).astype(np.float64)
    assert beta.tolist() == (2.0 ** -k.astype(np.float64)).tolist(), (beta, k)
    q = tb.acc[500:500 + rows].view(np.int32)
    assert np.all(q[:4] == 0), q                  # masked keys: e = 0
    # unmasked rows 4..6: the block's largest probability scaled into [0.5, 1] * 127
    assert np.all(q[4:7].max(axis=1) >= 63), q
    tb.log.info("k per row %s, beta %s (seed %d)", k.tolist(), beta.tolist(), tb.seed)
    tb.dump_state(0, rows, scratch=200)
    await tb.drain()
    tb.finish()


@cocotb.test()
async def test_block_scale_with_nan_scores(dut):
    """A NaN score in a block makes m NaN, g NaN and k = 0 (beta = 1.0 in the model),
    also on the next block; EXP with bscale writes the canonical NaN for that row and
    its beta probe (RESCALE: ``0 * alpha`` is NaN) too - a NaN row's beta and k are not
    visible at the ports, every op that reads them also reads its NaN m or alpha; the
    other rows' beta is exactly 2**-k (k = 0 on the first block, > 0 on the second)."""
    tb = await _start(dut)
    rng = np.random.default_rng(tb.seed)
    rows = 4
    s = (rng.standard_normal((rows, tb.lanes)) * 3).astype(np.float32)
    w = s.view(np.uint32).copy()
    w[2, 1] = 0xFFC1_2345
    tb.load_acc(0, w)
    tb.load_acc(100, (s - 12).astype(np.float32).view(np.uint32))
    tb.send(V(VecOp.STATE_INIT, count=rows))
    for blk in (0, 100):
        tb.send(V(VecOp.ROWMAX, src=blk, count=rows, bscale=1))
        _beta_probe(tb, 0, rows, scratch=300)
        tb.send(V(VecOp.EXP, src=blk, dst=400 + blk, count=rows, bscale=1))
        await tb.drain()
        beta = tb.acc[300 + 2 * rows:300 + 3 * rows, 0]
        k = tb.m_state.k[:rows]
        assert k[2] == 0 and tb.m_state.beta[2] == 1.0, (k, tb.m_state.beta[:rows])
        assert beta[2] == 0x7FC0_0000, hex(beta[2])
        want = (2.0 ** -k[[0, 1, 3]].astype(np.float64)).astype(np.float32).view(np.uint32)
        assert beta[[0, 1, 3]].tolist() == want.tolist(), (beta, k)
        assert np.all(tb.acc[400 + blk + 2] == 0x7FC0_0000)
    assert tb.m_state.k[2] == 0 and tb.m_state.k[0] > 0, tb.m_state.k[:rows]
    assert np.isnan(tb.m_state.l[2]) and not np.isnan(tb.m_state.l[[0, 1, 3]]).any()
    tb.dump_state(0, rows, scratch=200)
    await tb.drain()
    tb.finish()


async def _partial_softmax(tb: VectorTB, *, state: int, rows: int, blocks, o: int,
                           fmt=OutFmt.FP32, imm2=1.0) -> None:
    """Online softmax with bscale over score blocks at acc rows ``blocks``; the
    unnormalized output O (as if V = I: the lanes' probabilities summed over blocks)
    accumulates at rows ``o .. o + rows`` by RESCALE with bscale (O = O alpha + P beta;
    INT8 P converted back by COPY in_int, so O and l are both in units of ``1/imm2``)."""
    tb.load_acc(o, np.zeros((rows, tb.lanes), np.uint32))
    tb.send(V(VecOp.STATE_INIT, count=rows, state=state))
    for j, src in enumerate(blocks):
        p = 700 + 20 * j
        tb.send(V(VecOp.ROWMAX, src=src, count=rows, state=state, bscale=1))
        tb.send(V(VecOp.EXP, src=src, dst=p, count=rows, state=state, bscale=1,
                  out_fmt=int(fmt), imm2=imm2))
        if fmt == OutFmt.INT8:
            tb.send(V(VecOp.COPY, src=p, dst=p, count=rows, in_int=1))   # O, l: x imm2
        tb.send(V(VecOp.RESCALE, src=p, src2=o, dst=o, count=rows, state=state, bscale=1))


@cocotb.test()
async def test_state_store_merge_round_trip(dut):
    """Flash-decoding's combine: the keys split in two halves, each an online softmax
    with bscale in its own state rows (INT8 P); STATE_STORE writes half B's [m, l, 0..]
    (checked word for word against the model's state), STATE_MERGE merges it into half
    A's state, RESCALE with bscale merges B's O into A's, NORM: bit-exact with the
    model and close to float64 softmax over all keys."""
    tb = await _start(dut)
    rng = np.random.default_rng(tb.seed)
    rows, L = 6, tb.lanes
    s = (rng.standard_normal((rows, 4 * L)) * 3).astype(np.float32)
    s[1, :2 * L] -= 30                             # half A far below half B on row 1
    s[2, 2 * L:] -= 30                             # and the other way on row 2
    for j in range(4):
        tb.load_acc(100 + 20 * j, s[:, L * j:L * (j + 1)].copy().view(np.uint32))
    await _partial_softmax(tb, state=0, rows=rows, blocks=(100, 120), o=40,
                           fmt=OutFmt.INT8, imm2=127.0)
    await _partial_softmax(tb, state=20, rows=rows, blocks=(140, 160), o=60,
                           fmt=OutFmt.INT8, imm2=127.0)
    tb.send(V(VecOp.STATE_STORE, dst=80, count=rows, state=20))
    await tb.drain()
    want = np.zeros((rows, L), np.uint32)
    want[:, 0] = tb.m_state.m[20:20 + rows].view(np.uint32)
    want[:, 1] = tb.m_state.l[20:20 + rows].view(np.uint32)
    assert np.array_equal(tb.acc[80:80 + rows], want), (tb.acc[80:80 + rows], want)
    tb.send(V(VecOp.STATE_MERGE, src=80, count=rows, state=0))
    tb.send(V(VecOp.RESCALE, src=60, src2=40, dst=40, count=rows, state=0, bscale=1))
    tb.send(V(VecOp.NORM, src=40, dst=90, count=rows, state=0))
    await tb.drain()
    got = _f32(tb.acc[90:90 + rows]).astype(np.float64)
    ref = _ref_softmax(s, 1.0, np.zeros(s.shape, bool)).reshape(rows, 4, L).sum(axis=1)
    err = np.abs(got - ref).max()
    tb.log.info("split softmax merged by STATE_STORE / STATE_MERGE: max abs error %.3e "
                "(INT8 P, seed %d)", err, tb.seed)
    assert err < 0.03, err
    tb.dump_state(0, rows, scratch=200)
    tb.dump_state(20, rows, scratch=200)
    await tb.drain()
    tb.finish()


#: Words that make ties in TOPK: both zeros, both infinities, NaNs (negative, with
#: payload), subnormals of both signs, equal normals.
TIE_WORDS = np.array([0x0000_0000, 0x8000_0000, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000,
                      0xFFC1_2345, 0x0000_0001, 0x8000_0001, 0x3F80_0000, 0xBF80_0000,
                      0x4000_0000], np.uint32)


def _zeros_and_subnormals(rng, shape) -> np.ndarray:
    """binary32 words over many scales, a fifth of them ±0 and a fifth subnormal."""
    x = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)).astype(np.float32)
    w = x.view(np.uint32).copy()
    r = rng.random(shape)
    w[r < 0.2] = rng.choice([0, 0x8000_0000], int((r < 0.2).sum()))
    sub = r > 0.8
    w[sub] = rng.integers(1, 1 << 23, int(sub.sum())).astype(np.uint32) | (
        rng.integers(0, 2, int(sub.sum())).astype(np.uint32) << np.uint32(31))
    return w


def _combine_ref(out, w, y) -> np.ndarray:
    """MoE's combine step ``fadd(out, fmul(w, y))`` in numpy float32 (NaN canonical)."""
    with np.errstate(all="ignore"):
        r = np.add(_f32(out), np.multiply(_f32(w)[:, None], _f32(y), dtype=np.float32),
                   dtype=np.float32)
    bits = r.view(np.uint32).copy()
    bits[np.isnan(r)] = 0x7FC0_0000
    return bits


@cocotb.test()
async def test_topk_and_state_load(dut):
    """TOPK on rows with many ties (±0, equal values, NaN, ±inf; INT32 logits scaled
    by imm) and random pad masks: sorted values (random formats) to the accumulator and
    lane ids (a permutation of the lanes) to the activation SRAM; then MoE's combine,
    STATE_LOAD ``alpha = w[lane j]`` and RESCALE ``out = y alpha + out``, equal to
    numpy's ``fadd(out, fmul(w_j, y))`` bit for bit on data with ±0 and subnormals.
    Both with and without i_cmd gaps; every row also against the model."""
    tb = await _start(dut)
    rng = np.random.default_rng(tb.seed)
    L, n = tb.lanes, 16
    ids_ok = tb.config.systolic.rows == L
    topk = 0
    for mode in STALLS:
        tb.set_stall(mode)
        tb.load_acc(0, rng.choice(TIE_WORDS, (n, L)).astype(np.uint32))
        tb.load_acc(n, random_rows(rng, n, L, kind="float"))
        tb.load_acc(2 * n, rng.integers(-2, 3, (n, L)).astype(np.int32).view(np.uint32))
        act_rows = []
        for k in range(trials(4)):
            src = int(rng.integers(0, 3)) * n
            count = int(rng.integers(1, n + 1))
            dst = 100 + 20 * (k % 30)              # rows 100 .. 699
            mask = dict(pad=1, kv_len=int(rng.integers(0, L + 1))) if rng.random() < 0.6 else {}
            dst_act = ids_ok and rng.random() < 0.5
            fmt = OutFmt.INT8 if dst_act else OutFmt(int(rng.integers(0, len(OutFmt))))
            tb.send(V(VecOp.TOPK, src=src, dst=dst, count=count, dst_act=int(dst_act),
                      out_fmt=int(fmt), in_int=int(src == 2 * n), imm=float(rng.choice([1.0, -0.5])),
                      imm2=float(rng.choice([1.0, 127.0])), **mask))
            if dst_act:
                act_rows += range(dst, dst + count)
            topk += 1
        # combine: w rows at 900, y rows at 920, out rows at 940 (state rows 8..)
        w, y = _zeros_and_subnormals(rng, (n, L)), _zeros_and_subnormals(rng, (n, L))
        out = _zeros_and_subnormals(rng, (n, L))
        tb.load_acc(900, w)
        tb.load_acc(920, y)
        tb.load_acc(940, out)
        want = out
        for j in rng.permutation(L)[:3].tolist():
            tb.send(V(VecOp.STATE_LOAD, src=900, count=n, state=8, k_base=j))
            tb.send(V(VecOp.RESCALE, src=940, src2=920, dst=940, count=n, state=8))
            want = _combine_ref(want, w[:, j], y)
        await tb.drain()
        got = tb.acc[940:940 + n]
        assert np.array_equal(got, want), f"combine differs at {np.argwhere(got != want)[:4]}"
        for r in act_rows:                  # ids: every lane exactly once
            assert sorted(tb.act[r].tolist()) == list(range(L)), (r, tb.act[r])
    tb.log.info("%d TOPK commands (%d id rows checked as permutations), combine of 3 "
                "choices x 2 stall settings bit-exact (seed %d)", topk, len(act_rows), tb.seed)
    tb.dump_state(8, n, scratch=200)            # the rows STATE_LOAD wrote: only alpha changed
    await tb.drain()
    tb.finish()


@cocotb.test()
async def test_coverage_closure(dut):
    """Runs last: the covergroup (tb/vector/coverage.py) has sampled every command of
    the tests before it; commands aimed at each empty bin (op x format x stall setting;
    op x special value in the rows read) close it. Every command is checked like any
    other; coverage-test_coverage_closure.yml is written in the run folder."""
    tb = await _start(dut)
    cov, rng = tb.coverage, np.random.default_rng(tb.seed)
    tb.load_acc(0, random_rows(rng, 64, tb.lanes, kind="float"))
    before = cov.percent()
    for mode in STALLS:
        tb.set_stall(mode)
        for op, fmt, stall in cov.holes("op_x_fmt_x_stall"):
            if stall == mode:
                tb.send(random_cmd(rng, tb.config, ops=[VecOp[op]], fmt=OutFmt[fmt]))
        await tb.drain()
    for op, bscale in cov.holes("op_x_bscale"):
        tb.send(dataclasses.replace(random_cmd(rng, tb.config, ops=[VecOp[op]]),
                                    bscale=bscale))
    await tb.drain()
    for op, cls in cov.holes("op_x_special"):
        cmd = random_cmd(rng, tb.config, ops=[VecOp[op]])
        row = random_rows(rng, 1, tb.lanes, kind="float")
        row[0, int(rng.integers(0, tb.lanes))] = SPECIAL_WORDS[cls]
        await tb.drain()                  # the DUT must not read the row before it changes
        tb.load_acc(cmd.src, row)
        tb.send(cmd)
    tb.dump_state(0, 32, scratch=200)
    await tb.drain()
    tb.finish()
    path = cov.export("test_coverage_closure")
    after = cov.percent()
    tb.log.info("coverage before the closure commands %s; after %s; written to %s",
                {k: round(v) for k, v in before.items()}, {k: round(v) for k, v in after.items()},
                path)
    assert cov.closed(), {k: cov.holes(k)[:4] for k, v in after.items() if v < 100}
