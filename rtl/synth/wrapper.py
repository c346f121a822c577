"""The registered I/O wrapper of out-of-context synthesis (``make synth``).

A block synthesised alone has its ports on FPGA pins: the I/O buffers and pin-to-flop
routing would then set fmax, and a wide block (the tensor core) has more port bits than
the package has pins. :class:`SynthWrapper` puts a flop on every input and output bit of
the block, so every timed path of the block starts and ends on a flop
(register-to-register, as inside the chip), and reduces the I/O when the ports do not
fit the pins:

* **direct** (input + output bits + 2 <= ``max_pins``): one pin per port bit, an input
  flop after each input pin and an output flop before each output pin;
* **reduced** (otherwise): the block's inputs are the bits of a shift register fed from
  one serial pin (``i_serial``), its outputs are registered and folded by a pipelined
  XOR tree (4 bits -> 1 flop per level) onto ``out_pins`` output pins.

Every output bit reaches a pin (through the XOR tree) and every input bit comes from a
flop whose value yosys cannot know, so nothing of the block is optimised away. The
block is an ``Instance`` of its own Verilog module (emitted by
:func:`rtl.lib.verilog.convert`) carrying ``keep_hierarchy``: synthesis keeps it a
separate module, so its cell counts are exactly the block's and the wrapper's flops and
XOR LUTs are counted apart (scripts/synth.py reports both). The wrapper's own paths are
one LUT deep at most, so they never set fmax. ``clk`` drives both; the block's ``rst``
is the ``rst`` pin through one flop. The wrapper's flops have no reset.
"""
from __future__ import annotations

import re

from amaranth import Cat, ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["verilog_ports", "SynthWrapper"]

_PORT = re.compile(r"^\s*(input|output|inout)\s+(?:(?:wire|reg|signed)\s+)*(?:\[(\d+):(\d+)\]\s*)?"
                   r"(\\?[\w$.]+)\s*;", re.M)


def verilog_ports(text: str, module: str) -> list[tuple[str, str, int]]:
    """``(name, direction, width)`` of the ports of ``module`` in Verilog ``text`` (the
    declarations Amaranth's backend writes: ``input [7:0] i_act;``).

    Raises
    ------
    ValueError
        If ``module`` is not in ``text``, or has an ``inout`` port.
    """
    start = re.search(rf"^module\s+{re.escape(module)}\s*\(", text, re.M)
    if start is None:
        raise ValueError(f"module {module!r} not found in the Verilog")
    end = text.find("\nendmodule", start.end())
    body = text[start.end():end if end >= 0 else len(text)]
    ports = []
    for d, hi, lo, name in _PORT.findall(body):
        if d == "inout":
            raise ValueError(f"module {module!r}: inout port {name!r} is not supported")
        width = abs(int(hi) - int(lo)) + 1 if hi else 1
        ports.append((name, d, width))
    return ports


class SynthWrapper(wiring.Component):
    """Registered I/O around an ``Instance`` of Verilog module ``module``.

    Parameters
    ----------
    module : str
        The block's Verilog module name.
    ports : list of (name, direction, width)
        Its ports (:func:`verilog_ports`); ``clk`` and ``rst`` are the clock and reset.
    max_pins : int
        Signal pins available (clock and reset included): above it, reduced I/O.
    out_pins : int
        Output pins in reduced mode.

    Members
    -------
    i_pins : In(input bits), o_pins : Out(output bits)
        Direct mode.
    i_serial : In(1), o_pins : Out(out_pins)
        Reduced mode.

    Attributes
    ----------
    direct : bool
    in_bits, out_bits : int
        The block's data input and output bits (clock and reset excluded).
    """

    def __init__(self, module: str, ports, *, max_pins: int = 180, out_pins: int = 8):
        self.module = module
        self.ins = [(n, w) for n, d, w in ports if d == "input" and n not in ("clk", "rst")]
        self.outs = [(n, w) for n, d, w in ports if d == "output"]
        self.has_clk = any(n == "clk" for n, _, _ in ports)
        self.has_rst = any(n == "rst" for n, _, _ in ports)
        self.in_bits = sum(w for _, w in self.ins)
        self.out_bits = sum(w for _, w in self.outs)
        if self.out_bits == 0:
            raise ValueError(f"module {module!r} has no outputs: nothing to time")
        self.direct = self.in_bits + self.out_bits + 2 <= max_pins
        self._out_pins = out_pins
        if self.direct:
            sig = {"i_pins": In(max(self.in_bits, 1)), "o_pins": Out(self.out_bits)}
        else:
            sig = {"i_serial": In(1), "o_pins": Out(out_pins)}
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        in_q = Signal(max(self.in_bits, 1), reset_less=True)
        if self.direct:
            m.d.sync += in_q.eq(self.i_pins)
        elif self.in_bits == 1:
            m.d.sync += in_q.eq(self.i_serial)
        else:
            m.d.sync += in_q.eq(Cat(self.i_serial, in_q[:-1]))
        out_w = Signal(self.out_bits)
        out_q = Signal(self.out_bits, reset_less=True)
        m.d.sync += out_q.eq(out_w)

        args = []
        if self.has_clk:
            args.append(("i", "clk", ClockSignal()))
        if self.has_rst:
            rst_q = Signal(reset_less=True)
            m.d.sync += rst_q.eq(ResetSignal())
            args.append(("i", "rst", rst_q))
        off = 0
        for name, w in self.ins:
            args.append(("i", name, in_q[off:off + w]))
            off += w
        off = 0
        for name, w in self.outs:
            args.append(("o", name, out_w[off:off + w]))
            off += w
        args.append(("a", "keep_hierarchy", 1))
        m.submodules.dut = Instance(self.module, *args)

        if self.direct:
            m.d.comb += self.o_pins.eq(out_q)
            return m
        level = out_q
        while len(level) > self._out_pins:          # one LUT4 per flop per level
            n = (len(level) + 3) // 4
            nxt = Signal(n, reset_less=True)
            m.d.sync += [nxt[i].eq(level[4 * i:4 * i + 4].xor()) for i in range(n)]
            level = nxt
        m.d.comb += self.o_pins.eq(level)
        return m
