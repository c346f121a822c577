"""The one queue of the design: a stream FIFO over ``amaranth.lib.fifo.SyncFIFO`` (a
register when it holds one entry)."""
from __future__ import annotations

from amaranth import Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

__all__ = ["Queue"]


class Queue(wiring.Component):
    """First-word-fall-through stream queue of ``depth`` entries.

    A thin wrapper of :class:`amaranth.lib.fifo.SyncFIFO` (storage is a memory with a
    combinational read port, so simulators touch it only on writes) that speaks
    ``amaranth.lib.stream`` on both sides, as Glasgow's ``Queue`` does.

    Parameters
    ----------
    shape : shape-castable
        Payload shape (a layout keeps its fields on ``o.payload``).
    depth : int
        Entries (>= 1).

    Members
    -------
    i : In(stream.Signature(shape))
        ``ready`` is "not full" (a register: it never depends on ``i.valid``).
    o : Out(stream.Signature(shape))
        ``valid`` is "not empty" (a register); ``payload`` is the oldest entry.
    level : Out(range(depth + 1))
        Entries held.

    Latency: an entry accepted in cycle t is on ``o`` in cycle t + 1. A full queue
    accepts nothing even when it is read in the same cycle; an empty one passes
    nothing through combinationally. Throughput: one entry per cycle.
    """

    def __init__(self, shape, depth: int):
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"Queue depth must be an int >= 1, got {depth!r}")
        self.depth = depth
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
            "level": Out(range(depth + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        width = len(Value.cast(self.i.payload))
        if self.depth == 1:
            # one register: SyncFIFO's read/write pointers of a depth-1 queue are zero
            # bits wide (`wire [-1:0]` in the Verilog, Verilator's ASCRANGE); same timing
            full = Signal()
            entry = Signal(max(width, 1))
            m.d.comb += [
                self.i.ready.eq(~full),
                self.o.valid.eq(full),
                Value.cast(self.o.payload).eq(entry),
                self.level.eq(full),
            ]
            with m.If(~full):
                with m.If(self.i.valid):
                    m.d.sync += [entry.eq(Value.cast(self.i.payload)), full.eq(1)]
            with m.Elif(self.o.ready):
                m.d.sync += full.eq(0)
            return m
        m.submodules.fifo = fifo = SyncFIFO(width=max(width, 1), depth=self.depth)
        m.d.comb += [
            fifo.w_data.eq(Value.cast(self.i.payload)),
            fifo.w_en.eq(self.i.valid),
            self.i.ready.eq(fifo.w_rdy),
            Value.cast(self.o.payload).eq(fifo.r_data),
            self.o.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.o.ready),
            self.level.eq(fifo.level),
        ]
        return m
