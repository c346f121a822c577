"""The host register block: an AXI4-Lite subordinate built from the compiled register map.

This is the exporter from SystemRDL to Amaranth: :class:`HostRegs` takes the
:class:`rtl.regs.description.RegMap` flattened from ``rtl/regs/jalapeno.rdl`` and
builds, in memory at elaboration, one storage element per stored field, the hardware
ports named by :func:`rtl.regs.description.port_names`, the write decode with byte
strobes and the read multiplexer. Nothing is generated into a file.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.axi import Resp
from models.config import JalapenoConfig
from rtl.lib.axi import AxiLiteSignature
from rtl.regs.description import DATA_BITS, RegMap, port_names, regmap

__all__ = ["HostRegs"]

_WORD = DATA_BITS // 8


class HostRegs(wiring.Component):
    """AXI4-Lite host registers of the command processor (docs/registers.md).

    Parameters
    ----------
    config : JalapenoConfig
        Chip config; the map is ``rtl.regs.description.regmap(config)``.
    regs : RegMap, optional
        A map to build instead (tests of other parameter sets).

    Members
    -------
    s_axil : In(AxiLiteSignature(addr_width=regs.addr_width, data_width=32))
        The host port. One write and one read are handled at a time, independently; AW
        and W may arrive in any order or together. A write takes effect on the clock edge
        after both are held, with ``bvalid`` rising on that edge; a read returns the
        values at its AR handshake, ``rvalid`` one cycle later. ``bvalid``/``rvalid`` and
        their payloads hold until ``bready``/``rready``. An address with no register
        answers SLVERR (reads return 0, writes change nothing); the two low address
        bits are ignored; ``wstrb`` selects the bytes written.
    i_<reg>_<field>, o_<reg>_<field>, o_<reg>_<field>_wr, i_<reg>_<field>_incr, o_<reg>_intr
        The hardware side of each field (:class:`rtl.regs.description.Field` for the
        semantics of each kind); ``.array(n)`` for registers inside arrays (TILE[n]).
        Every output is a flip-flop except ``o_<reg>_intr`` (AND/OR of flip-flops).

    Latency: write 2 cycles from the later of AW/W to ``bvalid``; read 1 cycle from AR
    to ``rvalid``; throughput one write per 2 cycles and one read per 2 cycles.
    """

    def __init__(self, config: JalapenoConfig | None = None, *, regs: RegMap | None = None):
        if regs is None:
            if not isinstance(config, JalapenoConfig):
                raise TypeError(f"HostRegs needs a JalapenoConfig or regs=RegMap, got {config!r}")
            regs = regmap(config)
        self.regs = regs
        members = {"s_axil": In(AxiLiteSignature(addr_width=regs.addr_width,
                                                 data_width=DATA_BITS))}
        for p in regs.ports():
            shape = (In if p.direction == "i" else Out)(p.width)
            members[p.name] = shape.array(*p.dims) if p.dims else shape
        super().__init__(members)

    def _port(self, name: str, index: tuple[int, ...]):
        port = getattr(self, name)
        for i in index:
            port = port[i]
        return port

    def elaborate(self, platform):
        m = Module()
        bus = self.s_axil
        aw = self.regs.addr_width

        # --- write channel: hold AW and W independently, apply once both are held -------
        aw_full, w_full = Signal(), Signal()
        aw_word = Signal(aw - 2)
        w_data, w_strb = Signal(DATA_BITS), Signal(_WORD)
        bvalid, bresp = Signal(), Signal(2)
        m.d.comb += [bus.awready.eq(~aw_full), bus.wready.eq(~w_full),
                     bus.bvalid.eq(bvalid), bus.bresp.eq(bresp)]
        with m.If(bus.awvalid & ~aw_full):
            m.d.sync += [aw_full.eq(1), aw_word.eq(bus.awaddr[2:])]
        with m.If(bus.wvalid & ~w_full):
            m.d.sync += [w_full.eq(1), w_data.eq(bus.wdata), w_strb.eq(bus.wstrb)]
        do_write = Signal()
        m.d.comb += do_write.eq(aw_full & w_full & ~bvalid)
        with m.If(do_write):
            m.d.sync += [aw_full.eq(0), w_full.eq(0), bvalid.eq(1)]
        with m.Elif(bvalid & bus.bready):
            m.d.sync += bvalid.eq(0)
        # per bit of the data word: written by this write (its byte's strobe)
        bit_en = Cat(*(w_strb[b // 8] for b in range(DATA_BITS)))

        # --- read channel ---------------------------------------------------------------
        rvalid, rresp, rdata = Signal(), Signal(2), Signal(DATA_BITS)
        m.d.comb += [bus.arready.eq(~rvalid), bus.rvalid.eq(rvalid), bus.rresp.eq(rresp),
                     bus.rdata.eq(rdata)]
        ar_word = bus.araddr[2:]

        # --- registers ------------------------------------------------------------------
        values = {}            # register path -> its 32-bit read value
        fields = {}            # "REG.field" -> value signal (enable references)
        w_hits, r_hits = [], []
        for r in self.regs:
            word = r.address // _WORD
            w_hit = Signal(name=f"w_hit_{r.key}" + "".join(f"_{i}" for i in r.index))
            m.d.comb += w_hit.eq(do_write & (aw_word == word))
            w_hits.append(w_hit)
            r_hits.append(ar_word == word)
            parts = []
            for f in r.fields:
                v = self._field(m, r, f, w_hit, w_data, bit_en)
                fields[f"{r.path}.{f.name}"] = v
                parts.append((f.lsb, v))
            values[r.path] = _place(parts)
        for r in self.regs:                  # interrupt outputs, after every enable exists
            if r.has_intr:
                terms = []
                for f in r.fields:
                    if f.kind == "intr":
                        v = fields[f"{r.path}.{f.name}"]
                        terms.append((v & fields[f.enable]).any() if f.enable else v.any())
                m.d.comb += self._port(f"o_{r.key}_intr", r.index).eq(_or(terms))

        mapped_w = _or(w_hits)
        with m.If(do_write):
            m.d.sync += bresp.eq(Mux(mapped_w, Resp.OKAY, Resp.SLVERR))

        read_value = _or([Mux(hit, values[r.path], 0) for hit, r in zip(r_hits, self.regs)])
        mapped_r = _or(r_hits)
        with m.If(bus.arvalid & ~rvalid):
            m.d.sync += [rvalid.eq(1), rdata.eq(read_value),
                         rresp.eq(Mux(mapped_r, Resp.OKAY, Resp.SLVERR))]
        with m.Elif(rvalid & bus.rready):
            m.d.sync += rvalid.eq(0)
        return m

    def _field(self, m: Module, r, f, w_hit, w_data, bit_en):
        """Storage and ports of field ``f`` of register ``r``; returns its read value."""
        sl = slice(f.lsb, f.lsb + f.width)
        wd, en = w_data[sl], bit_en[sl]
        ports = [self._port(name, r.index) for name, _, _ in port_names(r, f)]
        if f.kind == "const":
            return Const(f.reset_value, f.width)
        if f.kind == "wire":
            return ports[0]
        name = f"{r.key}{''.join(f'_{i}' for i in r.index)}_{f.name}"
        store = Signal(f.width, init=f.reset_value or 0, name=name)
        if f.kind in ("control", "scratch"):
            merged = (store & ~en) | (wd & en)
            if f.singlepulse:
                m.d.sync += store.eq(Mux(w_hit, wd & en, 0))
            else:
                with m.If(w_hit):
                    m.d.sync += store.eq(merged)
            if f.kind == "control":
                m.d.comb += ports[0].eq(store)
                if f.swmod:                   # aligned with the new value on ports[0]
                    strobe = Signal(name=f"{name}_wr")
                    m.d.sync += strobe.eq(w_hit & en.any())
                    m.d.comb += ports[1].eq(strobe)
        elif f.kind == "intr":
            hw_set = ports[0]
            clear = Mux(w_hit, wd & en, 0)
            if f.precedence == "hw":
                m.d.sync += store.eq((store & ~clear) | hw_set)
            else:
                m.d.sync += store.eq((store | hw_set) & ~clear)
        elif f.kind == "counter":
            m.d.sync += store.eq(store + ports[0])       # truncated to the field: wraps
        else:                                         # description.py rejects the rest
            raise AssertionError(f"{r.path}.{f.name}: kind {f.kind!r}")
        return store


def _place(parts) -> Value:
    """A 32-bit value with each (lsb, value) at its bits and zeros between."""
    out, pos = [], 0
    for lsb, v in sorted(parts, key=lambda p: p[0]):
        if lsb > pos:
            out.append(Const(0, lsb - pos))
        out.append(v)
        pos = lsb + len(v)
    if pos < DATA_BITS:
        out.append(Const(0, DATA_BITS - pos))
    return Cat(*out)


def _or(values):
    """Balanced OR of 1-bit or equal-width values (0 if none)."""
    values = list(values)
    if not values:
        return Const(0, 1)
    while len(values) > 1:
        values = [values[i] | values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]
