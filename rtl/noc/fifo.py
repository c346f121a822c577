"""Small register FIFO for flits (input and ejection buffers of the router)."""
from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["FlitFifo"]


class FlitFifo(wiring.Component):
    """First-word-fall-through FIFO of ``depth`` entries of ``shape``, built from registers.

    Parameters
    ----------
    shape : shape-castable
        Entry shape (a flit layout).
    depth : int
        Number of entries (>= 1).

    Members
    -------
    w_en : In(1)
        Write ``w_data`` this cycle (ignored, and ``overflow`` pulses, when full).
    w_data : In(shape)
    w_rdy : Out(1)
        Not full.
    r_valid : Out(1)
        Not empty; ``r_data`` is the oldest entry.
    r_data : Out(shape)
    r_en : In(1)
        Pop the oldest entry (must only be raised with ``r_valid``).
    overflow : Out(1)
        Pulse: a write was lost because the FIFO was full (a credit bug upstream).

    Latency: a written entry is visible on ``r_data`` the next cycle. Reading and
    writing in the same cycle is allowed at any level (a full FIFO accepts no write).
    """

    def __init__(self, shape, depth: int):
        if depth < 1:
            raise ValueError(f"FlitFifo depth must be >= 1, got {depth}")
        self.depth = depth
        super().__init__({
            "w_en": In(1), "w_data": In(shape), "w_rdy": Out(1),
            "r_valid": Out(1), "r_data": Out(shape), "r_en": In(1),
            "overflow": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        D = self.depth
        width = len(self.w_data.as_value())
        # a memory (not D registers): simulators then touch storage only on writes
        m.submodules.mem = mem = Memory(shape=width, depth=D, init=[])
        wr = mem.write_port()
        rd = mem.read_port(domain="comb")
        wptr = Signal(range(D))
        rptr = Signal(range(D))
        level = Signal(range(D + 1))
        full = level == D
        do_w = self.w_en & ~full
        do_r = self.r_en & (level != 0)

        def nxt(p):
            return Mux(p == D - 1, 0, p + 1) if D & (D - 1) else (p + 1)[:max(1, (D - 1).bit_length())]

        m.d.comb += [
            self.w_rdy.eq(~full),
            self.r_valid.eq(level != 0),
            rd.addr.eq(rptr),
            self.r_data.eq(rd.data),
            wr.addr.eq(wptr),
            wr.data.eq(self.w_data),
            wr.en.eq(do_w),
            self.overflow.eq(self.w_en & full),
        ]
        with m.If(do_w):
            m.d.sync += wptr.eq(nxt(wptr))
        with m.If(do_r):
            m.d.sync += rptr.eq(nxt(rptr))
        m.d.sync += level.eq(level + do_w - do_r)
        return m
