"""Formal harness of the AXI4 manager port of :class:`rtl.dma.engine.DmaEngine`
(docs/formal.md).

The tiny preset's DMA with 2 bursts outstanding and 4-beat bursts, on 8-byte beats. The
descriptors are free one-row copies (``rows = planes = 1``, no strides: the engine's
extent multipliers become constants, so the solver sees no 32 x 32 products) of up to 64
bytes, in either direction, to any address (so rejected ones too), plain or indexed
(``index`` and ``index_addr`` free: an index read on AR, also before a store's AW, and
the index's product with the zero zstride); the SRAM read data
and the completion ``ready`` are free. The subordinate follows the AXI rules: R beats
only for an accepted AR, with its ID and RLAST on its last beat; B only after a whole
write burst, with its AWID; W accepted only after its AW (a subordinate may wait for
AW). Checked: AR, AW and W VALID held until READY with a stable payload, WLAST exactly
on the burst's last beat by AWLEN, and the completion stream's handshake.
"""
from __future__ import annotations

import dataclasses

from amaranth import Cat, Mux, Signal
from amaranth.hdl import Fragment
from amaranth.lib import data

from models.axi import LEN_BITS
from models.config import PRESETS
from rtl.dma.engine import DmaEngine
from rtl.lib.harness_formal import (AnySeq, FormalHarness, Proof, legal_stream_in,
                                    stable_stream_out)
from rtl.lib.stream import Queue

__all__ = ["DmaHarness", "PROOFS", "formal_dma_config"]

MAX_ROW = 64        # bytes per descriptor
ID_BITS = 2


def formal_dma_config():
    """The tiny preset's DMA, smaller: 2 bursts and 2 descriptors in flight."""
    return dataclasses.replace(PRESETS["tiny"].dma, max_burst_beats=4, max_outstanding=2,
                               descs_in_flight=2, sram_bytes=4096, max_bytes=1024)


class DmaHarness(FormalHarness):
    """One DMA engine against a rule-abiding AXI subordinate."""

    def __init__(self, config=None, data_bytes: int = 8):
        super().__init__()
        self.cfg, self.W = config or formal_dma_config(), data_bytes

    def build(self, m, p):
        e = DmaEngine(self.cfg, data_bytes=self.W, id_bits=ID_BITS)
        m.submodules.dut = Fragment.get(e, None)
        self._descriptors(m, p, e)
        ax = e.m_axi
        m.d.comb += [e.i_win_base.eq(0), e.i_win_limit.eq(1 << 16),
                     e.m_sram_rd.data.eq(AnySeq(8 * self.W)), e.o_done.ready.eq(AnySeq(1)),
                     ax.arready.eq(AnySeq(1)), ax.awready.eq(AnySeq(1))]
        stable_stream_out(m, p, ax.arvalid, ax.arready,
                          Cat(ax.arid, ax.araddr, ax.arlen, ax.arsize, ax.arburst), "dma.ar")
        stable_stream_out(m, p, ax.awvalid, ax.awready,
                          Cat(ax.awid, ax.awaddr, ax.awlen, ax.awsize, ax.awburst), "dma.aw")
        stable_stream_out(m, p, ax.wvalid, ax.wready, Cat(ax.wdata, ax.wstrb, ax.wlast),
                          "dma.w")
        stable_stream_out(m, p, e.o_done.valid, e.o_done.ready, e.o_done.payload, "dma.done")
        self._reads(m, p, ax)
        self._writes(m, p, ax)
        p.cover("dma.cover.read_burst_done", ax.rvalid & ax.rready & ax.rlast)
        p.cover("dma.cover.write_burst_done", ax.wvalid & ax.wready & ax.wlast)
        p.cover("dma.cover.completion", e.o_done.valid & e.o_done.ready)

    def _descriptors(self, m, p, e):
        d = e.i_desc.payload
        m.d.comb += [e.i_desc.valid.eq(AnySeq(1)), d.dir.eq(AnySeq(1)), d.tag.eq(AnySeq(8)),
                     d.src.eq(AnySeq(32)), d.dst.eq(AnySeq(32)), d.row_bytes.eq(AnySeq(7)),
                     d.rows.eq(1), d.planes.eq(1), d.index.eq(AnySeq(1)),
                     d.index_addr.eq(AnySeq(32))]
        legal_stream_in(m, p, e.i_desc, "dma_desc")
        p.assume("env.short_rows", d.row_bytes <= MAX_ROW)

    def _bursts(self, m, name, push, id_, len_):
        """A shadow queue of accepted bursts ``{id, len}`` and its beat counter."""
        q = Queue(data.StructLayout({"id": ID_BITS, "len": LEN_BITS}), self.cfg.max_outstanding + 1)
        m.submodules[f"shadow_{name}"] = q
        m.d.comb += [q.i.valid.eq(push), q.i.payload.id.eq(id_), q.i.payload.len.eq(len_)]
        beat = Signal(LEN_BITS, name=f"{name}_beat")
        return q, beat

    def _reads(self, m, p, ax):
        """The subordinate's R channel: beats of accepted ARs, in order."""
        q, beat = self._bursts(m, "ar", ax.arvalid & ax.arready, ax.arid, ax.arlen)
        fields = [ax.rvalid, ax.rdata, ax.rresp]
        m.d.comb += [f.eq(AnySeq(len(f))) for f in fields]
        m.d.comb += [ax.rid.eq(q.o.payload.id), ax.rlast.eq(beat == q.o.payload.len)]
        p.assume("env.r_only_for_an_ar", ~ax.rvalid | q.o.valid)
        fire = ax.rvalid & ax.rready
        m.d.comb += q.o.ready.eq(fire & ax.rlast)
        with m.If(fire):
            m.d.sync += beat.eq(Mux(ax.rlast, 0, beat + 1))
        p.check("dma.ar.shadow_never_full", ~q.i.valid | q.i.ready)

    def _writes(self, m, p, ax):
        """W after its AW; WLAST by AWLEN; B after the last W, with the AWID."""
        q, beat = self._bursts(m, "aw", ax.awvalid & ax.awready, ax.awid, ax.awlen)
        m.d.comb += ax.wready.eq(AnySeq(1) & q.o.valid)
        fire = ax.wvalid & ax.wready
        last = beat == q.o.payload.len
        p.check("dma.w.wlast_on_last_beat_of_awlen", ~(ax.wvalid & q.o.valid) | (ax.wlast == last))
        m.d.comb += q.o.ready.eq(fire & last)
        with m.If(fire):
            m.d.sync += beat.eq(Mux(last, 0, beat + 1))
        p.check("dma.aw.shadow_never_full", ~q.i.valid | q.i.ready)
        b = Queue(ID_BITS, self.cfg.max_outstanding + 1)
        m.submodules.shadow_b = b
        m.d.comb += [b.i.valid.eq(fire & last), b.i.payload.eq(q.o.payload.id),
                     ax.bvalid.eq(AnySeq(1) & b.o.valid), ax.bid.eq(b.o.payload),
                     ax.bresp.eq(AnySeq(2)), b.o.ready.eq(ax.bvalid & ax.bready)]


PROOFS = [
    Proof("dma_axi", "rtl/dma/engine.py::DmaEngine (AXI manager)", "DMA AXI manager rules",
          DmaHarness, "bmc", 12,
          why="bounded: 12 steps take a descriptor through its check to its first bursts' "
              "addresses and data with back-pressure on every channel"),
    Proof("dma_cover", "rtl/dma/engine.py::DmaEngine (AXI manager)",
          "DMA: the bounded run is not vacuous", DmaHarness, "cover", 12,
          why="a read burst, a write burst and a completion within the depth"),
]
