"""Formal harness of :class:`rtl.lib.stream.Queue` (docs/formal.md).

Free producer and consumer (no assumption on either: the queue must be correct for any
input). A shadow counter of entries checks occupancy, ``level``, ``valid``/``ready``;
one entry, picked nondeterministically as it enters (``pick``), is tracked with the
number of entries ahead of it: it must be at the head, with its data, exactly when those
have left, and leave once. Because any entry may be the picked one, this proves no
loss, no duplication and order for every entry.
"""
from __future__ import annotations

from amaranth import Signal
from amaranth.hdl import Fragment

from rtl.lib.harness_formal import (AnySeq, FormalHarness, Proof, fifo_invariant, internal, past,
                                    stable_stream_out)
from rtl.lib.stream import Queue

__all__ = ["QueueHarness", "PROOFS"]


class QueueHarness(FormalHarness):
    """A queue of ``depth`` entries of ``width`` bits between free streams.

    Parameters
    ----------
    depth, width : int
    queue_cls : type
        The queue under test (``Queue`` or, in tests, a deliberately broken variant with
        the same interface).
    """

    def __init__(self, depth: int, width: int = 4, queue_cls=Queue, data: bool = True):
        super().__init__()
        self.depth, self.width, self.queue_cls, self.data = depth, width, queue_cls, data

    def build(self, m, p):
        D = self.depth
        q = self.queue_cls(self.width, D)
        m.submodules.dut = frag = Fragment.get(q, None)
        m.d.comb += [q.i.valid.eq(AnySeq(1)), q.i.payload.eq(AnySeq(self.width)),
                     q.o.ready.eq(AnySeq(1))]
        fin = q.i.valid & q.i.ready
        fout = q.o.valid & q.o.ready
        cnt = Signal(range(D + 2), name="shadow_count")
        m.d.sync += cnt.eq(cnt + fin - fout)
        p.check("queue.level_is_count", q.level == cnt)
        p.check("queue.occupancy_le_depth", cnt <= D)
        p.check("queue.valid_iff_nonempty", q.o.valid == (cnt != 0))
        p.check("queue.ready_iff_not_full", q.i.ready == (cnt != D))
        stable_stream_out(m, p, q.o.valid, q.o.ready, q.o.payload, "queue.o")
        p.check("queue.i.ready_drops_only_on_push",
                ~past(m, q.i.ready & ~fin, "rdy_idle") | q.i.ready)
        if self.data:
            self._track(m, p, q, cnt, fin, fout)
        if self.queue_cls is Queue:
            if D == 1:
                if self.data:      # one register: visible, so the data is inductive too
                    self._entry_invariant(m, p, frag)
            else:
                fifo_invariant(p, frag, (), D, "queue")

    def _track(self, m, p, q, cnt, fin, fout):
        """The tagged entry: data, position (entries ahead), leaves exactly once."""
        D = self.depth
        pick = AnySeq(1)
        self.tracking = tracking = Signal(name="tracking")
        self.tdata = tdata = Signal(self.width, name="tagged_data")
        ahead = Signal(range(D + 1), name="ahead")
        with m.If(~tracking & fin & pick):
            m.d.sync += [tracking.eq(1), tdata.eq(q.i.payload), ahead.eq(cnt - fout)]
        with m.Elif(tracking & fout):
            with m.If(ahead == 0):
                m.d.sync += tracking.eq(0)
            with m.Else():
                m.d.sync += ahead.eq(ahead - 1)
        at_head = tracking & (ahead == 0)
        p.check("queue.tagged_inside", ~tracking | (ahead < cnt))
        p.check("queue.tagged_at_head_in_order", ~at_head | q.o.valid)
        p.check("queue.tagged_data_intact", ~at_head | (q.o.payload == tdata))
        deep = Signal(name="tagged_behind_full")     # entered with depth - 1 ahead
        with m.If(~tracking & fin & pick):
            m.d.sync += deep.eq(cnt - fout == D - 1)
        p.cover("queue.cover.tagged_leaves_behind_others", at_head & fout & deep)

    def _entry_invariant(self, m, p, frag):
        """Depth 1: the stored entry is the tagged one while it is inside."""
        entry, full = internal(frag, "entry"), internal(frag, "full")
        p.check("queue.entry_register_holds_tag",
                ~self.tracking | (full & (entry == self.tdata)))


PROOFS = [
    Proof("queue_d1", "rtl/lib/stream.py::Queue", "stream queue (depth 1, register)",
          lambda: QueueHarness(1), "prove", 4,
          why="k-induction closes: the entry register and the tag state are the whole state"),
    Proof("queue_d4", "rtl/lib/stream.py::Queue", "stream queue (depth 4, SyncFIFO)",
          lambda: QueueHarness(4, data=False), "prove", 4,
          why="k-induction of the counting and handshake properties (level, valid, ready, "
              "stability) closes"),
    Proof("queue_d4_data", "rtl/lib/stream.py::Queue", "stream queue (depth 4): order, "
          "no loss, no duplication", lambda: QueueHarness(4, width=2), "bmc", 16,
          why="the entries' data sits in the FIFO memory, which an induction trace starts "
              "unconstrained, so bounded: 20 steps fill and drain the 4-entry queue with "
              "the tag at every position and the pointers wrapped"),
    Proof("queue_d4_cover", "rtl/lib/stream.py::Queue", "stream queue (depth 4): the "
          "bounded run is not vacuous", lambda: QueueHarness(4, width=2), "cover", 16,
          why="a tagged entry enters a full queue behind 3 others and leaves"),
]
