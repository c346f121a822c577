"""Driver of the synthesizable traffic wrapper (:mod:`tb.noc.traffic`) from cocotb.

Python only sets the generator controls and reads the network counters at window
boundaries (``ClockCycles`` awaits in between), so long runs cost no Python per cycle.
"""
from __future__ import annotations

from dataclasses import dataclass

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

from tb.common.clocked import CLOCK_NS, run_config
from tb.common.stream import signal_int
from tb.noc.traffic import PATTERNS

__all__ = ["TrafficTB", "Point"]

COUNTERS = ["cycle", "generated", "refused", "injected_pkts", "injected_flits", "ejected_pkts",
            "ejected_flits", "lat_sum", "lat_max", "errors", "bad_sent", "dropped",
            "id_sum_inj", "id_sum_ej"]


@dataclass
class Point:
    """One measured operating point (flits per node per cycle)."""

    pattern: str
    length: int
    offered: float          # generated flits / node / cycle in the window
    accepted: float         # ejected flits / node / cycle in the window
    avg_latency: float      # head offered .. tail ejected, cycles, packets ending in window
    max_latency: int        # the largest of those
    packets: int
    drain_cycles: int
    refused: int


class TrafficTB:
    """Clock, reset and measurement windows of the ``NocTraffic`` wrapper."""

    def __init__(self, dut):
        self.dut = dut
        self.log = dut._log
        self.config = run_config()
        self.cfg = self.config.noc
        self.seed = cocotb.RANDOM_SEED
        Clock(dut.clk, CLOCK_NS, unit="ns").start()

    async def reset(self):
        d = self.dut
        for name in ("i_enable", "i_rate", "i_pattern", "i_hot_x", "i_hot_y", "i_hot_frac",
                     "i_bad_frac", "i_vc_mode", "i_eject_stall", "i_load", "i_clear_max"):
            getattr(d, name).value = 0
        d.i_queues.value = 1
        d.i_len.value = 4
        d.i_seed.value = self.seed & 0xFFFF
        d.rst.value = 1
        await ClockCycles(d.clk, 3)
        await FallingEdge(d.clk)
        d.rst.value = 0
        d.i_load.value = 1
        await FallingEdge(d.clk)
        d.i_load.value = 0

    async def counters(self) -> dict:
        await ReadOnly()
        c = {k: signal_int(getattr(self.dut, f"o_{k}")) for k in COUNTERS}
        c["overflow"] = signal_int(self.dut.o_overflow)
        c["busy"] = signal_int(self.dut.o_busy)
        await FallingEdge(self.dut.clk)
        return c

    def configure(self, *, pattern="uniform", offered=0.1, length=4, hot=(0, 0),
                  hot_frac=0.25, bad_frac=0.0, vc_mode=2, eject_stall=0.0, queues="per_vc"):
        """Offered load in flits/node/cycle (packets of ``length`` flits); ``queues``:
        ``"per_vc"`` (a source queue per VC) or ``"one"`` (one blocking source queue)."""
        d = self.dut
        if pattern not in PATTERNS:
            raise ValueError(f"unknown pattern {pattern!r}; known: {list(PATTERNS)}")
        d.i_pattern.value = PATTERNS[pattern]
        d.i_len.value = length
        d.i_rate.value = min(65536, round(offered / length * 65536))
        d.i_hot_x.value, d.i_hot_y.value = hot
        d.i_hot_frac.value = round(hot_frac * 256)
        d.i_bad_frac.value = round(bad_frac * 256)
        d.i_vc_mode.value = vc_mode
        d.i_eject_stall.value = round(eject_stall * 256)
        if queues not in ("per_vc", "one"):
            raise ValueError(f"queues must be 'per_vc' or 'one', got {queues!r}")
        d.i_queues.value = queues == "per_vc"

    async def run_point(self, *, warmup: int, measure: int, drain_bound: int,
                        label: str = "", **kw) -> Point:
        """Inject for ``warmup + measure`` cycles, stop, drain, check, return the figures."""
        self.configure(**kw)
        d = self.dut
        d.i_enable.value = 1
        await ClockCycles(d.clk, warmup)
        c0 = await self.counters()
        d.i_clear_max.value = 1          # max latency of this window only
        await ClockCycles(d.clk, 1)
        d.i_clear_max.value = 0
        await ClockCycles(d.clk, measure - 2)
        c1 = await self.counters()
        d.i_enable.value = 0
        drain = await self.drain(drain_bound, label)
        n = self.cfg.nodes
        cyc = c1["cycle"] - c0["cycle"]
        pk = c1["ejected_pkts"] - c0["ejected_pkts"]
        length = kw.get("length", 4)
        p = Point(kw.get("pattern", "uniform"), length,
                  offered=(c1["generated"] - c0["generated"]) * length / (n * cyc),
                  accepted=(c1["ejected_flits"] - c0["ejected_flits"]) / (n * cyc),
                  avg_latency=(c1["lat_sum"] - c0["lat_sum"]) / pk if pk else float("nan"),
                  max_latency=c1["lat_max"], packets=pk, drain_cycles=drain,
                  refused=c1["refused"] - c0["refused"])
        self.log.info("%s %s", label, p)
        return p

    async def drain(self, bound: int, label: str = "") -> int:
        """Wait (polling every 16 cycles) until every generated packet is delivered or
        dropped; then check exactly-once delivery, integrity and the drop count."""
        waited = 0
        while True:
            c = await self.counters()
            if not c["busy"] and c["injected_pkts"] == c["ejected_pkts"]:
                break
            if waited > bound:
                raise AssertionError(
                    f"{label}: network did not drain within {bound} cycles after injection "
                    f"stopped (injected {c['injected_pkts']}, ejected {c['ejected_pkts']}, "
                    f"generators busy {c['busy']}; seed {self.seed}): deadlock or livelock")
            await ClockCycles(self.dut.clk, 15)
            waited += 16
        await ClockCycles(self.dut.clk, 8)
        c = await self.counters()
        self.check(c, label)
        return waited

    def check(self, c, label=""):
        assert c["errors"] == 0, f"{label}: {c['errors']} checker errors (seed {self.seed})"
        assert c["overflow"] == 0, f"{label}: an input buffer overflowed (credit bug)"
        assert c["injected_pkts"] == c["ejected_pkts"], \
            f"{label}: injected {c['injected_pkts']} packets, ejected {c['ejected_pkts']}"
        assert c["id_sum_inj"] == c["id_sum_ej"], \
            f"{label}: packet ids differ (a packet lost and another duplicated)"
        assert c["dropped"] == c["bad_sent"], \
            f"{label}: {c['bad_sent']} bad-destination packets sent, {c['dropped']} dropped"
        assert c["generated"] == c["injected_pkts"] + c["bad_sent"] + c["refused"], \
            f"{label}: generated {c['generated']} != injected + bad + refused"
