# amaranth: UnusedElaboratable=no
"""Compute tile: a tensor core and a DMA engine that fills and drains its SRAMs while
the array computes (decoupled access/execute)."""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from models.config import JalapenoConfig
from models.tile import REGIONS, region_bytes, tile_dma_config
from rtl.dma.engine import DmaEngine
from rtl.formats import dma_desc_layout, dma_done_layout
from rtl.lib.axi import AxiSignature
from rtl.lib.stream import Queue
from rtl.tensor.core import MemSel, TensorCore, dma_rd_ports, row_bytes

__all__ = ["ComputeTile", "dma_perf_layout", "WR_BUFFER"]

#: SRAM writes of the DMA buffered in the tile (the AXI R channel stalls beyond).
WR_BUFFER = 4

_NAMES = {MemSel.ACT: "act", MemSel.WEIGHT: "wgt", MemSel.ACC: "acc"}
#: Ports of the tensor core the tile exposes unchanged.
_CORE_PORTS = ("i_cmd", "i_wr", "i_rd", "o_rd", "o_idle", "o_retire", "o_error",
               "o_err_code", "i_clear_err", "o_perf")


def _log2(x: int) -> int:
    return x.bit_length() - 1


def _pow2(x: int) -> bool:
    return x > 0 and x & (x - 1) == 0


def dma_perf_layout() -> data.StructLayout:
    """The tile's DMA counters (32-bit, wrap around, cleared by reset).

    ``wr``: SRAM row writes by the DMA; ``rd``: SRAM word reads by the DMA; ``wait``:
    cycles a DMA write was held because a unit wrote the same SRAM; ``overlap``: cycles
    in which the DMA wrote or read an SRAM while the tensor core was busy.
    """
    return data.StructLayout({"wr": 32, "rd": 32, "wait": 32, "overlap": 32})


class ComputeTile(wiring.Component):
    """Tensor core + DMA engine, the DMA's SRAM window mapped onto the core's SRAMs.

    The engine (:class:`rtl.dma.engine.DmaEngine`, config
    :func:`models.tile.tile_dma_config`) sees the tile's SRAM space of
    :mod:`models.tile`: region ``k`` of ``dma.sram_bytes`` bytes is SRAM ``k``
    (activation, weight, accumulator) at its ISA byte addresses; region 3 and bytes
    past an SRAM's end are unmapped (writes dropped, reads zero). A DMA word of W =
    ``hbm.data_bytes`` bytes is a slice of one SRAM row (row bytes >= W) or covers W /
    row-bytes consecutive rows.

    * DMA reads (STORE) go to the core's own DMA read ports
      (:func:`rtl.tensor.core.dma_rd_ports` per SRAM): one cycle, never delayed, so the
      engine's fixed read latency holds.
    * DMA writes (LOAD) are registered by the engine, queued here (:data:`WR_BUFFER`),
      split into row writes (byte masks; rows with no byte to write are skipped) and
      offered to the core's ``i_dma_wr``, which serves them in cycles in which no unit
      writes that SRAM (units first: compute never waits for the DMA). While the queue
      could overflow the tile holds the AXI R channel (``rready`` low to the outside,
      ``rvalid`` low to the engine), so no beat is lost.

    The core's host port (``i_wr`` / ``i_rd`` / ``o_rd``, served while idle) stays
    available for testbenches. Ordering between DMA and commands is the program's (the
    command processor's tokens): the tile does not check that a DMA write hits rows a
    running command reads.

    Throughput: a LOAD into an SRAM whose rows are >= W bytes writes one beat per
    cycle; into narrower rows, W / row-bytes cycles per beat. STOREs read one word per
    cycle. Golden model: :class:`models.tile.TileModel`.

    Parameters
    ----------
    config : JalapenoConfig
        Array rows and columns, ``hbm.data_bytes`` and ``dma.sram_bytes`` must be powers
        of two.

    Members
    -------
    i_cmd, i_wr, i_rd, o_rd, o_idle, o_retire, o_error, o_err_code, i_clear_err, o_perf
        The tensor core's (:class:`rtl.tensor.core.TensorCore`).
    i_desc : In(stream.Signature(rtl.formats.dma_desc_layout()))
        Tile descriptors (:func:`models.tile.tile_descriptor`).
    o_done : Out(stream.Signature(rtl.formats.dma_done_layout()))
    m_axi : Out(AxiSignature(addr_width=32, data_width=8 * hbm.data_bytes, id_width=hbm.id_bits))
    i_win_base, i_win_limit : In(32)
        The engine's AXI window.
    o_dma_busy : Out(1)
        The engine has work or the tile has SRAM writes pending.
    o_dma_perf : Out(dma_perf_layout())
    """

    def __init__(self, config: JalapenoConfig):
        if not isinstance(config, JalapenoConfig):
            raise TypeError(f"ComputeTile needs a JalapenoConfig, got {config!r}")
        sa, W = config.systolic, config.hbm.data_bytes
        for name, v in (("systolic.rows", sa.rows), ("systolic.cols", sa.cols),
                        ("hbm.data_bytes", W), ("dma.sram_bytes", config.dma.sram_bytes)):
            if not _pow2(v):
                raise ValueError(f"ComputeTile needs {name} to be a power of two, got {v}")
        self._config = config
        self.core = TensorCore(config, dma_port=True)
        self.dma = DmaEngine(tile_dma_config(config), data_bytes=W, id_bits=config.hbm.id_bits)
        # the core's host-side ports pass through under the same names
        core_ports = {name: member for name, member in self.core.signature.members.items()
                      if name in _CORE_PORTS}
        super().__init__(core_ports | {
            "i_desc": In(stream.Signature(dma_desc_layout())),
            "o_done": Out(stream.Signature(dma_done_layout())),
            "m_axi": Out(AxiSignature(addr_width=32, data_width=8 * W,
                                      id_width=config.hbm.id_bits)),
            "i_win_base": In(32), "i_win_limit": In(32),
            "o_dma_busy": Out(1),
            "o_dma_perf": Out(dma_perf_layout()),
        })

    @property
    def config(self) -> JalapenoConfig:
        return self._config

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.dma = dma = self.dma
        for name in ("i_cmd", "i_wr", "i_rd"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(core, name))
        wiring.connect(m, core.o_rd, wiring.flipped(self.o_rd))
        wiring.connect(m, wiring.flipped(self.i_desc), dma.i_desc)
        m.d.comb += [self.o_idle.eq(core.o_idle), self.o_retire.eq(core.o_retire),
                     self.o_error.eq(core.o_error),
                     self.o_err_code.eq(core.o_err_code), core.i_clear_err.eq(self.i_clear_err),
                     self.o_perf.eq(core.o_perf),
                     dma.i_win_base.eq(self.i_win_base), dma.i_win_limit.eq(self.i_win_limit)]
        gate = self._writes(m)
        # AXI: straight through, except R, which the write buffer may hold
        for name, member in self.m_axi.signature.members.items():
            if name in ("rvalid", "rready"):
                continue
            if member.flow == Out:
                m.d.comb += getattr(self.m_axi, name).eq(getattr(dma.m_axi, name))
            else:
                m.d.comb += getattr(dma.m_axi, name).eq(getattr(self.m_axi, name))
        m.d.comb += [dma.m_axi.rvalid.eq(self.m_axi.rvalid & gate),
                     self.m_axi.rready.eq(dma.m_axi.rready & gate)]
        rd_fire = self._reads(m)
        p = self.o_dma_perf
        wr_fire = core.i_dma_wr.valid & core.i_dma_wr.ready
        m.d.sync += [p.wr.eq(p.wr + wr_fire), p.rd.eq(p.rd + rd_fire),
                     p.wait.eq(p.wait + (core.i_dma_wr.valid & ~core.i_dma_wr.ready)),
                     p.overlap.eq(p.overlap + ((wr_fire | rd_fire) & ~core.o_idle))]
        return m

    def _decode(self, word):
        """(region, word offset in the region) of an engine SRAM word address."""
        lrw = _log2(region_bytes(self._config) // self._config.hbm.data_bytes)
        return word[lrw:lrw + _log2(REGIONS)], word[:lrw]

    def _writes(self, m: Module):
        """Engine SRAM writes -> queue -> row writes on the core's ``i_dma_wr``.

        Returns the R-channel gate: high while one more beat cannot overflow the queue.
        """
        cfg, W = self._config, self._config.hbm.data_bytes
        core, wr = self.core, self.dma.m_sram_wr
        lay = data.StructLayout({"addr": len(wr.addr), "data": 8 * W, "strb": W})
        m.submodules.wq = wq = Queue(lay, WR_BUFFER)
        push = wr.en.any()
        m.d.comb += [wq.i.valid.eq(push), wq.i.payload.addr.eq(wr.addr),
                     wq.i.payload.data.eq(wr.data), wq.i.payload.strb.eq(wr.en)]
        # a beat taken now is written (pushed) next cycle: never into a full queue
        gate = Signal()
        m.d.comb += gate.eq(wq.level + push < WR_BUFFER)

        head = wq.o.payload
        region, wo = self._decode(head.addr)
        nmax = max(dma_rd_ports(cfg, s) for s in MemSel)
        sub = Signal(range(max(nmax, 2)))
        rows = {MemSel.ACT: cfg.tensor.act_rows, MemSel.WEIGHT: cfg.tensor.weight_rows,
                MemSel.ACC: cfg.tensor.acc_rows}
        cand = {}
        for sel in MemSel:
            B = row_bytes(cfg, sel)
            if B >= W:
                row = wo >> _log2(B // W)
                k = wo[:_log2(B // W)] if B > W else Const(0, 1)
                # the beat in word k of the row, zeros elsewhere; no variable shift:
                # Amaranth widens `x << k` to len(x) + 2**len(k) - 1 bits (and `k << 8`
                # is such a shift of Const(8)), past its 65536-bit limit on `jalapeno`
                wdata = Cat(*[Mux(k == i, head.data, 0) for i in range(B // W)])
                mask = Cat(*[Mux(k == i, head.strb, 0) for i in range(B // W)])
                last = Const(1, 1)
            else:
                n = W // B
                row = (wo << _log2(n)) + sub
                wdata = head.data.word_select(sub[:_log2(n)], 8 * B)
                mask = head.strb.word_select(sub[:_log2(n)], B)
                last = sub == n - 1
            cand[sel] = (row, wdata, mask, last, row < rows[sel])
        pick = lambda i: Mux(region == MemSel.ACT, cand[MemSel.ACT][i],   # noqa: E731
                             Mux(region == MemSel.WEIGHT, cand[MemSel.WEIGHT][i],
                                 cand[MemSel.ACC][i]))
        row, wdata, mask, last, ok = (pick(i) for i in range(5))
        mapped = (region < len(MemSel)) & ok & mask.any()
        dw = core.i_dma_wr
        m.d.comb += [dw.payload.mem.as_value().eq(region), dw.payload.addr.eq(row),
                     dw.payload.data.eq(wdata), dw.payload.mask.eq(mask),
                     dw.valid.eq(wq.o.valid & mapped)]
        step = wq.o.valid & (~mapped | dw.ready)      # this row is written or skipped
        m.d.comb += wq.o.ready.eq(step & last)
        with m.If(step):
            m.d.sync += sub.eq(Mux(last, 0, sub + 1))
        m.d.comb += self.o_dma_busy.eq(self.dma.o_busy | wq.o.valid | push)
        self._completions(m, push, wq.o.valid & wq.o.ready)
        return gate

    def _completions(self, m: Module, push, pop):
        """A completion leaves once every SRAM write queued before it is in its SRAM.

        The engine's completion follows its last SRAM write; when it appears, the number
        of writes pushed so far (this cycle's included) is the target of the pops.
        Counters wrap; at most :data:`WR_BUFFER` + 1 writes separate them.
        """
        bits = max(WR_BUFFER, 2).bit_length() + 2
        pushed, popped, target = Signal(bits), Signal(bits), Signal(bits)
        have = Signal()
        m.d.sync += [pushed.eq(pushed + push), popped.eq(popped + pop)]
        src = self.dma.o_done
        release = have & ~(popped - target)[-1]
        fire = self.o_done.valid & self.o_done.ready
        with m.If(src.valid & ~have):
            m.d.sync += [target.eq(pushed + push), have.eq(1)]
        with m.If(fire):
            m.d.sync += have.eq(0)
        m.d.comb += [self.o_done.payload.eq(src.payload),
                     self.o_done.valid.eq(src.valid & release),
                     src.ready.eq(self.o_done.ready & release)]

    def _reads(self, m: Module):
        """Engine SRAM reads -> the core's DMA read ports; returns the read-enable."""
        cfg, W = self._config, self._config.hbm.data_bytes
        core, rd = self.core, self.dma.m_sram_rd
        region, wo = self._decode(rd.addr)
        rows = {MemSel.ACT: cfg.tensor.act_rows, MemSel.WEIGHT: cfg.tensor.weight_rows,
                MemSel.ACC: cfg.tensor.acc_rows}
        r_region = Signal(2)
        m.d.sync += r_region.eq(region)
        words = {}
        for sel in MemSel:
            B = row_bytes(cfg, sel)
            ports = getattr(core, f"s_dma_{_NAMES[sel]}_rd")
            en = rd.en & (region == sel)
            if B >= W:
                row = wo >> _log2(B // W)
                k = Signal(max(_log2(B // W), 1), name=f"rd_k_{_NAMES[sel]}")
                ok = Signal(name=f"rd_ok_{_NAMES[sel]}")
                m.d.comb += [ports[0].addr.eq(row), ports[0].en.eq(en)]
                m.d.sync += ok.eq(row < rows[sel])
                if B > W:
                    m.d.sync += k.eq(wo[:_log2(B // W)])
                word = Mux(ok, ports[0].data.word_select(k, 8 * W), 0)
            else:
                n = W // B
                lanes = []
                for j, p in enumerate(ports):
                    r = (wo << _log2(n)) + j
                    ok = Signal(name=f"rd_ok_{_NAMES[sel]}_{j}")
                    m.d.comb += [p.addr.eq(r), p.en.eq(en)]
                    m.d.sync += ok.eq(r < rows[sel])
                    lanes.append(Mux(ok, p.data, 0))
                word = Cat(*lanes)
            words[sel] = word
        m.d.comb += rd.data.eq(Mux(r_region == MemSel.ACT, words[MemSel.ACT],
                                   Mux(r_region == MemSel.WEIGHT, words[MemSel.WEIGHT],
                                       Mux(r_region == MemSel.ACC, words[MemSel.ACC], 0))))
        return rd.en
