"""Reusable testbench of :class:`rtl.tensor.core.TensorCore` (block ``tensor_core``).

``TensorCoreTB`` owns the bus models of the core's streams (commands ``i_cmd``, host
writes ``i_wr``, host reads ``i_rd`` -> ``o_rd``) and a golden model
(``models.tensor_core.TensorCoreModel``) that mirrors every host write and command, so
a test is a list of writes and commands followed by checks of SRAM regions::

    tb = TensorCoreTB(dut)
    await tb.reset()
    await tb.write_rows(MEM_ACT, 0, x_rows)          # RTL and model
    await tb.send(cmds)                              # RTL and model (model first)
    cycles = await tb.wait_idle()
    await tb.check_mem(MEM_ACC, 0, n)                # RTL rows == model rows, bitwise

Long runs are not bound by Python work per cycle: the agent loop sleeps while no
agent has anything to do, or while the only pending item is a command the core does
not accept yet (it wakes on ``i_cmd.ready`` rising), and :meth:`wait_idle` waits on
the ``o_idle`` signal's rising edge. Cycle numbers (``tb.cycle``) come from simulation
time, so they stay right while the loop sleeps.

Host accesses are served only while the core is idle: :meth:`write_rows` and
:meth:`read_rows` simply wait for it (the RTL holds ``ready`` low).
"""
from __future__ import annotations

import itertools

import numpy as np
from cocotb.triggers import Event, FallingEdge, First, ReadOnly, RisingEdge, with_timeout
from cocotb.triggers import SimTimeoutError
from cocotb.utils import get_sim_steps, get_sim_time

from models.tensor_core import MEM_ACC, MEM_ACT, MEM_WEIGHT, TensorCoreModel
from models.tensor_cmd import ErrCode, TensorCmd
from rtl.formats import tensor_cmd_layout
from rtl.tensor.core import host_data_bits, host_rd_layout, host_rdata_layout, host_wr_layout, perf_layout
from tb.common.clocked import CLOCK_NS, ClockedTB
from tb.common.packing import packer
from tb.common.stream import Pacer, StreamSink, StreamSource, signal_int

__all__ = ["TensorCoreTB", "MEM_ACT", "MEM_WEIGHT", "MEM_ACC", "STALL_MODES"]

# (name, i_cmd gap probability, o_rd backpressure probability, max burst)
STALL_MODES = [("no stalls", 0.0, 0.0, 1), ("cmd gaps + rd backpressure", 0.3, 0.3, 4)]


class TensorCoreTB(ClockedTB):
    """Clock, reset, stream agents and golden model of one tensor core.

    Parameters
    ----------
    dut : cocotb handle of ``tensor_core``
    cmd_stall : float
        Probability of an idle cycle before each command on ``i_cmd`` (random gaps).
    rd_stall : float
        Backpressure probability on ``o_rd``.
    burst : int
        Maximum length of one gap / backpressure run.

    Attributes
    ----------
    model : TensorCoreModel
        Mirror of the DUT: every :meth:`write_rows` and :meth:`send` also goes there.
    R, C : int
        Array shape; ``config`` is the chip config the DUT was built from.
    """

    def __init__(self, dut, *, cmd_stall: float = 0.0, rd_stall: float = 0.0, burst: int = 1):
        self._t0 = get_sim_time("step")       # the clock starts now (rising edge)
        self._period = get_sim_steps(CLOCK_NS, "ns")
        super().__init__(dut)
        cfg = self.config
        self.R, self.C = cfg.systolic.rows, cfg.systolic.cols
        self.model = TensorCoreModel(cfg)
        self._hbits = host_data_bits(cfg)
        self.cmd_src = self.add(StreamSource(dut, "i_cmd", tensor_cmd_layout()))
        self.wr_src = self.add(StreamSource(dut, "i_wr", host_wr_layout(cfg)))
        self.rd_src = self.add(StreamSource(dut, "i_rd", host_rd_layout()))
        self.rd_sink = self.add(StreamSink(dut, "o_rd", host_rdata_layout(cfg),
                                           on_item=self._on_rdata))
        self._sources = (self.cmd_src, self.wr_src, self.rd_src)
        self._perf_unpack = packer(perf_layout())[1]
        self._rdata: list[int] = []
        self._rd_want = 0
        self._wake = Event()
        self._events: list[tuple] = []        # (condition, Event) checked after sampling
        self.loop_cycles = 0                  # cycles the agent loop ran (not slept)
        self.dut.i_clear_err.value = 0
        self.set_stalls(cmd_stall, rd_stall, burst)

    # --- cycle loop that sleeps when nothing is pending -------------------------------------
    @property
    def cycle(self) -> int:
        """Current cycle number, from simulation time: cycle k runs from the k-th rising
        edge of this TB's clock (k = 0 when the TB was created) to the next."""
        return (get_sim_time("step") - self._t0) // self._period

    @cycle.setter
    def cycle(self, value) -> None:     # ClockedTB's counter is replaced by the sim time
        pass

    async def reset(self, cycles: int = 3) -> None:
        """Synchronous reset (also in the middle of traffic): queued stream items are
        dropped and the model's error is cleared. SRAM contents and the vector unit's
        softmax state survive a reset, in the DUT; the model keeps what it executed."""
        for s in self._sources:
            s.clear()
        self._rdata, self._rd_want = [], 0
        self.dut.i_clear_err.value = 0
        self.model.clear_err()
        await super().reset(cycles)

    def set_stalls(self, cmd_stall: float = 0.0, rd_stall: float = 0.0, burst: int = 1) -> None:
        """Random gaps on ``i_cmd`` and backpressure on ``o_rd``."""
        self.cmd_src.pacer = Pacer(cmd_stall, burst=burst, rng=self.rng)
        self.rd_sink.pacer = Pacer(rd_stall, burst=burst, rng=self.rng)

    def _notify(self) -> None:
        for cond, ev in list(self._events):
            if cond():
                ev.set()
                self._events.remove((cond, ev))

    async def _until(self, cond, what: str | None = None, timeout: int = 1_000_000) -> None:
        """Wait until ``cond()`` holds after an agent sample (no per-cycle polling here).

        Fails after ``timeout`` cycles with an ``AssertionError`` naming ``what`` (default:
        the calling method and the condition) and the state of every stream agent.
        """
        if cond():
            return
        import ast
        import inspect
        import sys

        from tb.common.clocked import bounded
        if what is None:            # the calling method and the lambda's expression
            what = f"{sys._getframe(1).f_code.co_name}()"
            try:
                tree = compile(inspect.getsource(cond).strip(), "<cond>", "exec",
                               ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
                lam = next(n for n in ast.walk(tree) if isinstance(n, ast.Lambda))
                what += f": {ast.unparse(lam.body)}"
            except (OSError, TypeError, SyntaxError, StopIteration):
                pass
        ev = Event()
        self._events.append((cond, ev))
        self._wake.set()
        try:
            await bounded(ev.wait(), cycles=timeout, what=what)
        except AssertionError as e:
            self._events = [(c, v) for c, v in self._events if v is not ev]
            state = []
            for s in self._sources:
                if s.idle:
                    state.append(f"{s.name} idle")
                elif s._offer is not None:
                    state.append(f"{s.name} valid, ready={signal_int(s._ready)}, "
                                 f"{len(s.queue)} more queued")
                else:
                    state.append(f"{s.name} {len(s.queue)} queued")
            state.append(f"{self.rd_sink.name} {len(self._rdata)}/{self._rd_want} words")
            raise AssertionError(f"{e} [at cycle {self.cycle}: {'; '.join(state)}]") from None

    def _sleepy(self) -> bool:
        if self._rd_want or self._events and any(cond() for cond, _ in self._events):
            return False
        for s in self._sources:
            if s.idle:
                continue
            if s._offer is None or signal_int(s._ready):
                return False
        return True

    async def _loop(self) -> None:
        clk = self.dut.clk
        while True:
            cyc = self.cycle
            self.loop_cycles += 1
            for a in self.agents:
                a.drive(cyc)
            if self._sleepy():        # after drive: idle sources have dropped valid
                self._wake.clear()
                trig = [self._wake.wait()]
                trig += [RisingEdge(s._ready) for s in self._sources if s._offer is not None]
                await First(*trig)
                await FallingEdge(clk)
                continue
            await ReadOnly()
            for a in self.agents:
                a.sample(cyc)
            self._notify()
            await FallingEdge(clk)

    # --- host port ------------------------------------------------------------------------
    def _row_bits(self, mem: int, rows: np.ndarray) -> list[int]:
        width = {MEM_ACT: self.R, MEM_WEIGHT: self.C, MEM_ACC: self.C}[mem]
        rows = np.asarray(rows)
        if rows.ndim != 2 or rows.shape[1] != width:
            raise ValueError(f"rows for mem {mem} must be (n, {width}), got {rows.shape}")
        item = 4 if mem == MEM_ACC else 1
        if rows.dtype.itemsize != item:
            raise TypeError(f"rows for mem {mem} must be {8 * item}-bit, got {rows.dtype}")
        raw = np.ascontiguousarray(rows).view(np.uint8).reshape(rows.shape[0], -1)
        return [int.from_bytes(r.tobytes(), "little") for r in raw]

    async def write_rows(self, mem: int, addr: int, rows, *, model: bool = True) -> None:
        """Write ``rows`` (int8/uint8 rows of R or C lanes, or 32-bit accumulator rows)
        from word ``addr`` of SRAM ``mem``; returns when the last write was accepted."""
        bits = self._row_bits(mem, rows)
        if model:
            self.model.write(mem, addr, rows)
        self.wr_src.feed({"mem": mem, "addr": (addr + i) & 0xFFFF, "data": b}
                         for i, b in enumerate(bits))
        await self._until(lambda: self.wr_src.idle)

    async def read_words(self, reqs) -> list[int]:
        """Raw host reads: ``reqs`` is a list of ``(mem, addr)``; returns the ``o_rd``
        data words (ints, in order)."""
        reqs = list(reqs)
        self._rdata = []
        self._rd_want = len(reqs)
        self.rd_src.feed({"mem": mem, "addr": addr & 0xFFFF} for mem, addr in reqs)
        await self._until(lambda: len(self._rdata) >= len(reqs))
        self._rd_want = 0
        return self._rdata

    async def read_rows(self, mem: int, addr: int, n: int) -> np.ndarray:
        """Read ``n`` words from ``addr`` of SRAM ``mem`` through ``i_rd``/``o_rd``:
        uint8 (n, R or C) rows, or uint32 (n, C) accumulator rows."""
        data = await self.read_words((mem, addr + i) for i in range(n))
        words, lanes, dt = {MEM_ACT: (1, self.R, np.uint8), MEM_WEIGHT: (1, self.C, np.uint8),
                            MEM_ACC: (4, self.C, np.uint32)}[mem]
        nbytes = self._hbits // 8
        raw = b"".join(v.to_bytes(nbytes, "little")[:words * lanes] for v in data)
        return np.frombuffer(raw, dtype=dt).reshape(n, lanes).copy()

    def _on_rdata(self, item, cycle) -> None:
        self._rdata.append(int(item["data"]))

    async def fill_random(self, mem: int, addr: int, n: int) -> np.ndarray:
        """Write random words to ``n`` rows from ``addr`` (DUT and model) and return them.
        SRAMs are not cleared by reset: a test fills what it later checks."""
        lanes = self.R if mem == MEM_ACT else self.C
        dt = np.uint32 if mem == MEM_ACC else np.uint8
        bits = 32 if mem == MEM_ACC else 8
        rows = np.array([[self.rng.getrandbits(bits) for _ in range(lanes)] for _ in range(n)], dt)
        await self.write_rows(mem, addr, rows)
        return rows

    async def check_mem(self, mem: int, addr: int, n: int, what: str = "") -> None:
        """Read ``n`` words from the DUT and compare them bitwise with the model."""
        got = await self.read_rows(mem, addr, n)
        want = self.model.read(mem, addr, n)
        if not np.array_equal(got, want):
            bad = np.argwhere(got != want)
            i, j = bad[0]
            raise AssertionError(
                f"{what or 'SRAM check'}: mem {mem} words {addr}..{addr + n - 1}: {len(bad)} "
                f"lanes differ, first word {addr + i} lane {j}: got {got[i, j]:#x} expected "
                f"{want[i, j]:#x} (seed {self.seed})")

    # --- commands -----------------------------------------------------------------------------
    async def send(self, cmds, *, stall: float | None = None, burst: int = 1,
                   model: bool = True, wait: bool = True) -> None:
        """Queue ``cmds`` (TensorCmd list) on ``i_cmd``; the model executes them at once.

        ``stall`` (with ``burst``) sets the probability of random gaps before each
        command from now on (default: keep the TB's setting). With ``wait``, return when
        all were accepted; without, later calls append to the queue.
        """
        cmds = [cmds] if isinstance(cmds, TensorCmd) else list(cmds)
        if stall is not None:
            self.cmd_src.pacer = Pacer(stall, burst=burst, rng=self.rng)
        if model:
            self.model.execute(cmds)
        if self.cmd_src.idle:
            self.cmd_src.first_fire = None
        items = (c.as_dict() for c in cmds)
        pending = self.cmd_src._feed
        self.cmd_src.feed(itertools.chain(pending, items) if pending is not None else items)
        self._wake.set()
        if wait:
            await self._until(lambda: self.cmd_src.idle)

    async def wait_idle(self, timeout: int = 1_000_000) -> int:
        """Wait until every queued command was accepted and the core is idle again.

        Returns the cycles from the first command accepted (since the last :meth:`send`
        that found the command queue empty) to the first cycle ``o_idle`` is seen high
        (``models.tensor_core.matmul_cycles`` predicts it). Raises ``AssertionError``
        after ``timeout`` cycles (a hang).
        """
        start = self.cycle
        await self._until(lambda: self.cmd_src.idle)
        await RisingEdge(self.dut.clk)      # the edge that took the last command
        await ReadOnly()
        # o_idle is combinational: a simulator may show a zero-time glitch to VPI (Icarus
        # does, when the vector unit goes idle while a MATMUL waits for it), so a rising
        # edge counts only if o_idle is still high once the time step has settled
        while not signal_int(self.dut.o_idle):
            left = max(1, timeout - (self.cycle - start))
            try:
                await with_timeout(RisingEdge(self.dut.o_idle), left * CLOCK_NS, "ns")
            except SimTimeoutError:
                raise AssertionError(f"tensor core not idle after {timeout} cycles "
                                     f"(status {self.status()}, seed {self.seed})") from None
            await ReadOnly()
        first = self.cmd_src.first_fire
        return self.cycle - (first if first is not None else start)

    async def run(self, cmds, **kw) -> int:
        """:meth:`send` then :meth:`wait_idle`; returns the cycles."""
        await self.send(cmds)
        return await self.wait_idle(**kw)

    async def clear_error(self) -> None:
        """Pulse ``i_clear_err`` for one cycle (the model's error is cleared too). Call it
        after :meth:`wait_idle` so every command sent before it was discarded."""
        await FallingEdge(self.dut.clk)
        self.dut.i_clear_err.value = 1
        await FallingEdge(self.dut.clk)
        self.dut.i_clear_err.value = 0
        self.model.clear_err()

    def status(self) -> dict:
        """``idle``, ``error`` and ``err_code`` (an ErrCode): ``o_idle``, ``o_error``,
        ``o_err_code`` as read now."""
        return {"idle": signal_int(self.dut.o_idle), "error": signal_int(self.dut.o_error),
                "err_code": ErrCode(signal_int(self.dut.o_err_code))}

    def perf(self) -> dict:
        """The perf counters ``o_perf`` (busy, act, vector, cmds, discarded)."""
        return {k: int(v) for k, v in self._perf_unpack(signal_int(self.dut.o_perf)).items()}

    def finish(self) -> None:
        """End-of-test checks: no stream protocol violation on ``o_rd``."""
        assert not self.rd_sink.protocol_errors, self.rd_sink.protocol_errors[:5]
