"""Formal harness of the AXI4 subordinate port of :class:`rtl.mem.hbm.HbmChannel`
(docs/formal.md).

The tiny preset's channel at its smallest valid size (4 KiB, 2 bursts outstanding,
latencies 2, no row-miss penalty). The manager follows the AXI rules: every VALID held
until READY with its payload stable; bursts of up to 4 beats (so a bounded run sees
many whole bursts); every other field free, the verdict (``aruser``/``awuser``)
included. Shadow queues of the accepted AR and AW (id, length) check the channel: R and
B VALID held until READY with a stable payload, RID == ARID and RLAST exactly on the
burst's last beat, BID == AWID, W accepted only after its AW, no R or B without a
request (and no B before the burst's last W beat).
"""
from __future__ import annotations

import dataclasses

from amaranth import Cat, Signal
from amaranth.hdl import Fragment
from amaranth.lib import data

from models.axi import LEN_BITS
from models.config import PRESETS
from rtl.lib.harness_formal import (AnySeq, FormalHarness, Proof, legal_stream_in,
                                    stable_stream_out)
from rtl.lib.stream import Queue
from rtl.mem.hbm import HbmChannel

__all__ = ["HbmHarness", "PROOFS", "formal_hbm_config", "MAX_LEN", "AxiChannel",
           "shadow_bursts"]

MAX_LEN = 3     # AxLEN of the manager's bursts (up to 4 beats)


def formal_hbm_config():
    """The tiny preset's HBM channel at its smallest valid size."""
    return dataclasses.replace(PRESETS["tiny"].hbm, channels=1, channel_bytes=4096,
                               read_latency=2, write_latency=2, max_outstanding=2,
                               row_miss_cycles=0)


class AxiChannel:
    """One AXI channel's valid/ready and payload seen as a stream (for the stream
    helpers of :mod:`rtl.lib.harness_formal`)."""

    def __init__(self, valid, ready, *fields):
        self.valid, self.ready = valid, ready
        self.payload = Cat(*fields)


def shadow_bursts(m, p, name: str, id_bits: int, depth: int, push, push_id, push_len,
                  beat_fire, beat_last, beat_id, beat_valid):
    """A shadow queue of accepted bursts ``{id, len}`` and the response beats against it.

    Checks: a beat only when a burst is queued; its id is the burst's; ``beat_last``
    (RLAST) exactly on the burst's last beat (pass ``None`` for a one-beat response, B).
    Returns the shadow queue.
    """
    layout = data.StructLayout({"id": id_bits, "len": LEN_BITS})
    q = Queue(layout, depth)
    m.submodules[f"shadow_{name}"] = q
    beat = Signal(LEN_BITS, name=f"{name}_beat")
    head = q.o.payload
    done = beat_fire & ((beat == head.len) if beat_last is not None else 1)
    m.d.comb += [q.i.valid.eq(push), q.i.payload.id.eq(push_id), q.i.payload.len.eq(push_len),
                 q.o.ready.eq(done)]
    with m.If(beat_fire):
        m.d.sync += beat.eq(beat + 1)
        with m.If(done):
            m.d.sync += beat.eq(0)
    p.check(f"{name}.no_response_without_request", ~beat_valid | q.o.valid)
    p.check(f"{name}.id_matches_request", ~beat_valid | (beat_id == head.id))
    if beat_last is not None:
        p.check(f"{name}.last_on_last_beat", ~beat_valid | (beat_last == (beat == head.len)))
    p.check(f"{name}.shadow_never_full", ~push | q.i.ready)
    return q


class HbmHarness(FormalHarness):
    """One HBM channel behind a rule-abiding AXI manager."""

    def __init__(self, config=None):
        super().__init__()
        self.cfg = config or formal_hbm_config()

    def build(self, m, p):
        c = self.cfg
        ch = HbmChannel(c)
        m.submodules.dut = Fragment.get(ch, None)
        s = ch.s_axi
        free = [s.arid, s.araddr, s.arlen, s.arsize, s.arburst, s.aruser, s.arvalid,
                s.awid, s.awaddr, s.awlen, s.awsize, s.awburst, s.awuser, s.awvalid,
                s.wdata, s.wstrb, s.wlast, s.wvalid, s.rready, s.bready]
        m.d.comb += [sig.eq(AnySeq(len(sig))) for sig in free]
        m.d.comb += [ch.i_bd_we.eq(0), ch.i_bd_addr.eq(0), ch.i_bd_wdata.eq(0)]
        ar = AxiChannel(s.arvalid, s.arready, s.arid, s.araddr, s.arlen, s.arsize, s.arburst,
                        s.aruser)
        aw = AxiChannel(s.awvalid, s.awready, s.awid, s.awaddr, s.awlen, s.awsize, s.awburst,
                        s.awuser)
        w = AxiChannel(s.wvalid, s.wready, s.wdata, s.wstrb, s.wlast)
        for tag, chan in (("ar", ar), ("aw", aw), ("w", w)):
            legal_stream_in(m, p, chan, f"axi_{tag}")
        p.assume("env.short_bursts", (s.arlen <= MAX_LEN) & (s.awlen <= MAX_LEN))
        stable_stream_out(m, p, s.rvalid, s.rready, Cat(s.rid, s.rdata, s.rresp, s.rlast),
                          "hbm.r")
        stable_stream_out(m, p, s.bvalid, s.bready, Cat(s.bid, s.bresp), "hbm.b")
        depth = c.max_outstanding + 1
        shadow_bursts(m, p, "hbm.r", c.id_bits, depth, s.arvalid & s.arready, s.arid, s.arlen,
                      s.rvalid & s.rready, s.rlast, s.rid, s.rvalid)
        aws = Queue(data.StructLayout({"id": c.id_bits, "len": LEN_BITS}), depth)
        m.submodules.shadow_aw = aws
        wbeat = Signal(LEN_BITS, name="w_beat")
        w_fire = s.wvalid & s.wready
        w_done = w_fire & (wbeat == aws.o.payload.len)
        m.d.comb += [aws.i.valid.eq(s.awvalid & s.awready), aws.i.payload.id.eq(s.awid),
                     aws.i.payload.len.eq(s.awlen), aws.o.ready.eq(w_done)]
        with m.If(w_fire):
            m.d.sync += wbeat.eq(wbeat + 1)
            with m.If(w_done):
                m.d.sync += wbeat.eq(0)
        p.check("hbm.w.accepted_only_after_its_aw", ~w_fire | aws.o.valid)
        p.check("hbm.aw.shadow_never_full", ~aws.i.valid | aws.i.ready)
        shadow_bursts(m, p, "hbm.b", c.id_bits, depth, w_done, aws.o.payload.id, 0,
                      s.bvalid & s.bready, None, s.bid, s.bvalid)
        p.cover("hbm.cover.read_burst_done", s.rvalid & s.rready & s.rlast)
        p.cover("hbm.cover.write_response", s.bvalid & s.bready)


PROOFS = [
    Proof("hbm_axi", "rtl/mem/hbm.py::HbmChannel (AXI subordinate)",
          "HBM channel AXI rules", HbmHarness, "bmc", 10, map_memory=False,
          why="bounded: 10 steps take a read and a write burst from address to the last "
              "response beat (latency 2) with back-pressure on every channel"),
    Proof("hbm_cover", "rtl/mem/hbm.py::HbmChannel (AXI subordinate)",
          "HBM: the bounded run is not vacuous", HbmHarness, "cover", 10, map_memory=False,
          why="a read burst's last beat and a write response within the depth"),
]
