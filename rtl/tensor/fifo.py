"""Small stream FIFO and SRAM port signatures shared by the tensor-core blocks."""
from amaranth import Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["StreamFifo", "sram_read_signature", "sram_write_signature", "ADDR_BITS"]

#: Width of every SRAM address on the tensor core's internal ports (commands carry
#: 16-bit addresses; the memories use the low bits of a legal address).
ADDR_BITS = 16


def sram_read_signature(data_bits: int) -> wiring.Signature:
    """Initiator side of a synchronous SRAM read port: ``data`` is valid the cycle after
    ``en`` (and holds while ``en`` is low)."""
    return wiring.Signature({"addr": Out(ADDR_BITS), "en": Out(1), "data": In(data_bits)})


def sram_write_signature(data_bits: int) -> wiring.Signature:
    """Initiator side of an SRAM write port: ``data`` is written at ``addr`` when ``en``."""
    return wiring.Signature({"addr": Out(ADDR_BITS), "data": Out(data_bits), "en": Out(1)})


class StreamFifo(wiring.Component):
    """First-word-fall-through stream FIFO of ``depth`` entries (a memory, read
    combinationally, so simulators touch storage only on writes).

    Parameters
    ----------
    shape : shape-castable
        Payload shape.
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

    Latency: an entry written in cycle t is on ``o`` in cycle t + 1. A full FIFO
    accepts nothing even when it is read in the same cycle.
    """

    def __init__(self, shape, depth: int):
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"StreamFifo depth must be an int >= 1, got {depth!r}")
        self.depth = depth
        self._shape = shape
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
            "level": Out(range(depth + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        D = self.depth
        width = len(Value.cast(self.i.payload))
        m.submodules.mem = mem = Memory(shape=width, depth=D, init=[])
        wr = mem.write_port()
        rd = mem.read_port(domain="comb")
        wptr = Signal(range(D))
        rptr = Signal(range(D))
        do_w = self.i.valid & self.i.ready
        do_r = self.o.valid & self.o.ready

        def nxt(p):
            return Mux(p == D - 1, 0, p + 1)

        m.d.comb += [
            self.i.ready.eq(self.level != D),
            self.o.valid.eq(self.level != 0),
            rd.addr.eq(rptr),
            Value.cast(self.o.payload).eq(rd.data),
            wr.addr.eq(wptr),
            wr.data.eq(Value.cast(self.i.payload)),
            wr.en.eq(do_w),
        ]
        with m.If(do_w):
            m.d.sync += wptr.eq(nxt(wptr))
        with m.If(do_r):
            m.d.sync += rptr.eq(nxt(rptr))
        m.d.sync += self.level.eq(self.level + do_w - do_r)
        return m
