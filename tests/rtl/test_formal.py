"""The formal flow checks what it claims (docs/formal.md): SymbiYosys proves the stream
queue's properties, and a deliberately broken queue (its write pointer skips a slot) is
caught with a counterexample naming the violated property. The full `make formal` run is
a nightly entry."""
from __future__ import annotations

import importlib
import types
from pathlib import Path

import pytest
from amaranth import Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.lib.stream_formal import QueueHarness
from scripts.formal import main, run_harness


class SkippingQueue(wiring.Component):
    """A register FIFO with the Queue's interface whose write pointer skips a slot when
    it writes behind an entry: occupancy stays right, the data order breaks."""

    def __init__(self, shape, depth: int):
        self.depth = depth
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape)),
                          "level": Out(range(depth + 1))})

    def elaborate(self, platform):
        m = Module()
        D, width = self.depth, len(Value.cast(self.i.payload))
        slots = [Signal(width, name=f"slot{k}") for k in range(D)]
        wp, rp = Signal(range(D)), Signal(range(D))
        push = self.i.valid & self.i.ready
        pop = self.o.valid & self.o.ready
        m.d.comb += [self.i.ready.eq(self.level != D), self.o.valid.eq(self.level != 0)]
        for k, s in enumerate(slots):
            with m.If(rp == k):
                m.d.comb += Value.cast(self.o.payload).eq(s)
            with m.If(push & (wp == k)):
                m.d.sync += s.eq(Value.cast(self.i.payload))
        nxt = wp + 1 + (self.level == 1)                # the bug: skip behind an entry
        with m.If(push):
            m.d.sync += wp.eq(Mux(nxt >= D, nxt - D, nxt))
        with m.If(pop):
            m.d.sync += rp.eq(Mux(rp + 1 == D, 0, rp + 1))
        m.d.sync += self.level.eq(self.level + push - pop)
        return m


def test_queue_properties_proved(tmp_path):
    """k-induction closes for the depth-1 queue (data, order, counting) and for the
    counting and handshake properties of a SyncFIFO-backed one."""
    for name, harness in (("q1", QueueHarness(1)), ("q4", QueueHarness(4, data=False))):
        res = run_harness(harness, name, "prove", 4, timeout=120, out=tmp_path)
        assert res["status"] == "PASS", (name, res["log"])
        assert res["asserts"] and all(a["result"] == "pass" for a in res["asserts"])


def test_broken_queue_caught(tmp_path):
    """The skipping write pointer loses an entry's data: BMC fails on the tagged entry."""
    res = run_harness(QueueHarness(3, width=2, queue_cls=SkippingQueue), "skip", "bmc", 8,
                      timeout=120, out=tmp_path)
    assert res["status"] == "FAIL", res["log"]
    failed = {a["name"] for a in res["asserts"] if a["result"] == "fail"}
    # the overwritten entry: wrong data at the head (or the head changing under a stall)
    data_props = {"queue.tagged_data_intact", "queue.tagged_at_head_in_order",
                  "queue.o.payload_stable"}
    assert failed and failed <= data_props, failed
    # the counting properties hold for this bug: they are not blamed
    counting = [a for a in res["asserts"] if a["name"] not in data_props]
    assert counting and all(a["result"] == "unknown" for a in counting)
    assert any(path.endswith(".vcd") for _, path in res["traces"])


@pytest.mark.nightly
def test_make_formal():
    """Every proof of `make formal` passes (or, for a bounded one, finds nothing)."""
    assert main([]) == 0


def _mutant(modname: str, old: str, new: str) -> types.ModuleType:
    """A copy of RTL module ``modname`` with ``old`` (found exactly once) replaced."""
    mod = importlib.import_module(modname)
    src = Path(mod.__file__).read_text()
    assert src.count(old) == 1, (modname, old)
    copy = types.ModuleType(f"{modname}_mutant")
    copy.__file__ = mod.__file__
    exec(compile(src.replace(old, new), mod.__file__, "exec"), copy.__dict__)
    return copy


#: (harness module, block class, RTL module, old, new, harness args, mode, depth, blamed)
MUTANTS = {
    "router_sends_without_credit": (
        "rtl.noc.router_formal", "NocRouter", "rtl.noc.router", "& (credit[o, v] != 0)", "",
        (["credits"],), "bmc", 10, {"credit."}),
    "router_output_vc_not_locked": (
        "rtl.noc.router_formal", "NocRouter", "rtl.noc.router",
        '& (inp["active"] | ~lock[o, v])', "", (["packets"],), "bmc", 10, {"router."}),
    "cmdproc_signals_a_full_counter": (
        "rtl.soc.cmdproc_queues_formal", "TileDispatch", "rtl.soc.cmdproc_queues",
        "ok.eq(sig_v & ~ovf)]", "ok.eq(sig_v)]", (), "prove", 2, None),
    "dma_wlast_on_first_beat": (
        "rtl.dma.engine_formal", "DmaEngine", "rtl.dma.engine",
        "pend_last.eq(x.sbeat == ih.beats_m1)]", "pend_last.eq(x.sbeat == 0)]", (), "bmc", 12,
        {"dma.w.wlast_on_last_beat_of_awlen"}),
    "hbm_rlast_never": (
        "rtl.mem.hbm_formal", "HbmChannel", "rtl.mem.hbm", "r_last.eq(last_beat), ",
        "r_last.eq(0), ", (), "bmc", 10, {"hbm.r.last_on_last_beat"}),
}


@pytest.mark.nightly
@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_caught(name, tmp_path, monkeypatch):
    """Each harness catches a plausible bug in its block (the bounded ones with a
    counterexample naming the right property; the k-induction one because its
    induction no longer closes, which `make formal` reports as a failure)."""
    hmod, cls, rtl_mod, old, new, args, mode, depth, blamed = MUTANTS[name]
    harness_mod = importlib.import_module(hmod)
    monkeypatch.setattr(harness_mod, cls, getattr(_mutant(rtl_mod, old, new), cls))
    harness_cls = next(v for v in vars(harness_mod).values()
                       if isinstance(v, type) and v.__module__ == hmod and
                       v.__name__.endswith("Harness"))
    res = run_harness(harness_cls(*args), name, mode, depth, timeout=300, out=tmp_path,
                      map_memory=name != "hbm_rlast_never")
    if blamed is None:
        assert res["status"] in ("FAIL", "UNKNOWN"), res["log"]
        return
    assert res["status"] == "FAIL", res["log"]
    failed = [a["name"] for a in res["asserts"] if a["result"] == "fail"]
    assert failed and all(any(f.startswith(b) for b in blamed) for f in failed), failed
