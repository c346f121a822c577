"""Testbench for :class:`rtl.vector.unit.VectorUnit` (block ``vector_unit``).

The TB owns Python models of the two SRAMs the tensor core would attach:

* the accumulator SRAM (``uint32[acc_rows, C]``) behind ``m_acc_rd_a``, ``m_acc_rd_b``
  (one cycle of read latency, read-before-write) and ``m_acc_wr``;
* the activation SRAM (``uint8[act_rows, R]``) behind ``m_act_wr``.

Commands go through a :class:`tb.common.stream.StreamSource` on ``i_cmd`` (random
idle gaps from its pacer). The golden model (``models.vector.vector_execute``) runs
each command on its own copy of the memories and state *when it is queued*; every
row the DUT writes is compared in order with the row the model wrote (scoreboard),
and :meth:`VectorTB.finish` compares both memories in full. The unit's internal state
is checked through the commands that read it (EXP, RESCALE, NORM, STATE_STORE) and by
:meth:`VectorTB.dump_state`, which exposes every field (``m``, ``l``, ``alpha``,
``beta``, ``k``) of a range of state rows through written rows.
"""
from __future__ import annotations

import numpy as np
from cocotb.triggers import FallingEdge

from models.tensor_cmd import VECTOR_WRITES, ErrCode, TensorCmd, VecOp, check
from models.vector import VectorState, vector_execute
from rtl.formats import tensor_cmd_layout
from tb.common.clocked import ClockedTB
from tb.common.scoreboard import Scoreboard
from tb.common.stream import Pacer, StreamSource, signal_int
from tb.vector.coverage import STALLS

__all__ = ["VectorTB", "SramModel"]


class SramModel:
    """The accumulator and activation SRAMs, ticked by the TB's cycle loop.

    ``sample`` (settled values of cycle k): latch the words read by ``m_acc_rd_a`` /
    ``m_acc_rd_b`` if their ``en`` is high, then apply ``m_acc_wr`` / ``m_act_wr`` (the
    write happens at the edge that ends cycle k; a read of the same row in cycle k
    returns the old word). ``drive`` (cycle k+1): present the latched words.
    Every write is passed to ``on_write(kind, addr, row, cycle)``.
    """

    def __init__(self, dut, acc: np.ndarray, act: np.ndarray, on_write):
        self.dut, self.acc, self.act, self.on_write = dut, acc, act, on_write
        self.lanes = acc.shape[1]
        self.act_lanes = act.shape[1]
        self._rd = [(dut.m_acc_rd_a__en, dut.m_acc_rd_a__addr, dut.m_acc_rd_a__data),
                    (dut.m_acc_rd_b__en, dut.m_acc_rd_b__addr, dut.m_acc_rd_b__data)]
        self._pending = [0, 0]
        self.reads = 0
        self.writes = 0
        for _, _, data in self._rd:
            data.value = 0

    def _row_int(self, row) -> int:
        return int.from_bytes(np.ascontiguousarray(row).tobytes(), "little")

    def drive(self, cycle: int) -> None:
        for (_, _, data), value in zip(self._rd, self._pending):
            if value is not None:
                data.value = value

    def sample(self, cycle: int) -> None:
        d = self.dut
        for k, (en, addr, _) in enumerate(self._rd):
            if signal_int(en):
                a = signal_int(addr)
                if a >= self.acc.shape[0]:
                    raise AssertionError(f"cycle {cycle}: read of acc row {a} out of range")
                self._pending[k] = self._row_int(self.acc[a])
                self.reads += 1
            else:
                self._pending[k] = None
        if signal_int(d.m_acc_wr__en):
            a = signal_int(d.m_acc_wr__addr)
            row = np.frombuffer(signal_int(d.m_acc_wr__data).to_bytes(4 * self.lanes, "little"),
                                np.uint32)
            if a >= self.acc.shape[0]:
                raise AssertionError(f"cycle {cycle}: write of acc row {a} out of range")
            self.acc[a] = row
            self.writes += 1
            self.on_write("acc", a, row, cycle)
        if signal_int(d.m_act_wr__en):
            a = signal_int(d.m_act_wr__addr)
            row = np.frombuffer(signal_int(d.m_act_wr__data).to_bytes(self.act_lanes, "little"),
                                np.uint8)
            if a >= self.act.shape[0]:
                raise AssertionError(f"cycle {cycle}: write of act row {a} out of range")
            self.act[a] = row
            self.writes += 1
            self.on_write("act", a, row, cycle)


class VectorTB(ClockedTB):
    """Clock, reset, command source, SRAM models, golden model and scoreboard.

    Parameters
    ----------
    dut : cocotb handle of ``vector_unit``
    stall : float
        Probability of an idle cycle before offering each command.
    burst : int
        Longest run of idle cycles.
    """

    def __init__(self, dut, *, stall: float = 0.0, burst: int = 1):
        super().__init__(dut)
        cfg = self.config
        self.lanes = cfg.systolic.cols
        self.acc_rows = cfg.tensor.acc_rows
        self.act_rows = cfg.tensor.act_rows
        shape_acc = (self.acc_rows, self.lanes)
        shape_act = (self.act_rows, cfg.systolic.rows)
        # DUT-side memories (written by the DUT) and model-side copies
        self.acc = np.zeros(shape_acc, np.uint32)
        self.act = np.zeros(shape_act, np.uint8)
        self.m_acc = self.acc.copy()
        self.m_act = self.act.copy()
        self.m_state = VectorState.new(cfg)
        self.sb = Scoreboard("vector_unit", self.log)
        self.src = self.add(StreamSource(dut, "i_cmd", tensor_cmd_layout(),
                                         pacer=Pacer(stall, burst=burst, rng=self.rng)))
        self.mem = self.add(SramModel(dut, self.acc, self.act, self._on_write))
        self.commands = 0
        self.op_counts: dict[str, int] = {}
        self.stall_mode = "gaps" if stall > 0 else "back-to-back"
        #: a tb.vector.coverage.VectorCoverage sampled by send(), or None
        self.coverage = None

    def set_stall(self, mode: str) -> None:
        """Switch the i_cmd gap setting to ``mode`` (a key of tb.vector.coverage.STALLS)."""
        stall, burst = STALLS[mode]
        self.src.pacer = Pacer(stall, burst=burst, rng=self.rng)
        self.stall_mode = mode

    # --- memories ----------------------------------------------------------------------
    def load_acc(self, row: int, words) -> None:
        """Preload accumulator rows (both the DUT-side SRAM and the model's copy)."""
        words = np.asarray(words, np.uint32).reshape(-1, self.lanes)
        self.acc[row:row + len(words)] = words
        self.m_acc[row:row + len(words)] = words

    # --- commands ----------------------------------------------------------------------
    def send(self, cmd: TensorCmd) -> None:
        """Queue ``cmd`` for the DUT and run it on the model; expect its writes."""
        err = check(cmd, self.config)
        if err != ErrCode.NONE:
            raise ValueError(f"testbench generated an illegal command ({err.name}): {cmd}")
        if self.coverage is not None:
            self.coverage.sample(cmd, self.m_acc, self.stall_mode)
        vector_execute(self.config, cmd, self.m_acc, self.m_act, self.m_state)
        op = VecOp(cmd.op)
        self.op_counts[op.name] = self.op_counts.get(op.name, 0) + 1
        if op in VECTOR_WRITES:
            mem, kind = (self.m_act, "act") if cmd.dst_act else (self.m_acc, "acc")
            for i in range(cmd.count):
                self.sb.expect(dict(mem=kind, addr=cmd.dst + i, data=mem[cmd.dst + i].copy()),
                               tag=f"cmd #{self.commands} {op.name} row {i}")
        self.src.send(cmd.as_dict())
        self.commands += 1

    def _on_write(self, kind, addr, row, cycle):
        self.sb.got(dict(mem=kind, addr=addr, data=row.copy()), cycle)

    async def drain(self, timeout: int = 100_000) -> None:
        """Wait until every queued command was accepted and the unit is idle again.

        Polls at falling edges, where the registers' values after the rising edge are
        settled (at a RisingEdge trigger they may still read the old value).
        """
        start = self.cycle
        while True:
            await FallingEdge(self.dut.clk)
            if self.src.idle and signal_int(self.dut.o_idle):
                return
            if self.cycle - start > timeout:
                raise AssertionError(f"timeout after {timeout} cycles waiting for the vector "
                                     f"unit to finish its commands (seed {self.seed})")

    def dump_state(self, state: int, count: int, scratch: int) -> None:
        """Expose state rows ``state .. state+count-1`` through written rows.

        Uses accumulator rows ``scratch .. scratch + 4*count - 1``: a row of ones and a
        row of zeros per state row, then RESCALE (``1 * alpha + 0 = alpha``), RESCALE
        with bscale of the ones and zeros swapped (``0 * alpha + 1 * beta = beta``
        unless alpha is NaN), NORM of the ones
        (``recip(l)``), STATE_STORE (``m``, ``l`` bit for bit), EXP of the zeros with
        bscale (``exp(-m) * 2**k``) and without (``exp(-m)``; both also update ``l``)
        — all compared bit-exactly by the scoreboard.
        """
        n = count
        ones = np.full((n, self.lanes), 0x3F80_0000, np.uint32)
        self.load_acc(scratch, ones)
        self.load_acc(scratch + n, np.zeros((n, self.lanes), np.uint32))
        V = TensorCmd.vector
        self.send(V(VecOp.RESCALE, src=scratch + n, src2=scratch, dst=scratch + 2 * n,
                    count=n, state=state))
        self.send(V(VecOp.RESCALE, src=scratch, src2=scratch + n, dst=scratch + 2 * n,
                    count=n, state=state, bscale=1))
        self.send(V(VecOp.NORM, src=scratch, dst=scratch + 3 * n, count=n, state=state))
        self.send(V(VecOp.STATE_STORE, dst=scratch + 3 * n, count=n, state=state))
        self.send(V(VecOp.EXP, src=scratch + n, dst=scratch + 2 * n, count=n, state=state,
                    bscale=1))
        self.send(V(VecOp.EXP, src=scratch + n, dst=scratch + 2 * n, count=n, state=state))

    def finish(self) -> None:
        """Scoreboard complete and both memories identical to the model's."""
        self.sb.check()
        bad = np.argwhere(self.acc != self.m_acc)
        assert not bad.size, f"accumulator differs from the model at (row, lane) {bad[:4].tolist()}"
        bad = np.argwhere(self.act != self.m_act)
        assert not bad.size, f"activation SRAM differs from the model at {bad[:4].tolist()}"
        self.log.info("%d commands (%s), %d row reads, %d row writes, seed %d",
                      self.commands, ", ".join(f"{k} {v}" for k, v in sorted(self.op_counts.items())),
                      self.mem.reads, self.mem.writes, self.seed)
