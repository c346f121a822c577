"""Testbench for :class:`rtl.mem.hbm.HbmStub`: cocotbext-axi AxiMaster + backdoor + mirror.

The mirror is a plain bytearray of the whole global space that every write updates
(only when the response says OKAY, except poison which writes normally); reads are
checked against it, and backdoor readback proves what AXI wrote and what it did not.
Every AXI call goes through :meth:`HbmTB.axi_call`, bounded in cycles (a stub that never
answers fails the test with the name of the access). A subordinate-side protocol checker
(:class:`tb.common.axi_check.AxiSlaveChecker`) watches ``s_axi`` in every test, with
every response code checked against :func:`models.hbm.burst_verdict` (:func:`hbm_verdict`).
"""
from __future__ import annotations

import logging

from cocotbext.axi import AxiBus, AxiMaster

from models.hbm import burst_verdict, route
from tb.common.axi_check import AxiSlaveChecker
from tb.common.backdoor import backdoor_read, backdoor_write
from tb.common.clocked import ClockedTB, bounded
from tb.common.stream import signal_int

__all__ = ["HbmTB", "AxiHandshakeLog", "pause_gen", "set_pause", "set_master_stalls",
           "AXI_PREFIX", "hbm_verdict", "attach_slave_checker"]

#: cocotbext-axi prefix of the stub's ``s_axi`` port: Amaranth names the Verilog ports
#: ``s_axi__awaddr`` ..., cocotb-bus joins prefix and signal with one more ``_``.
AXI_PREFIX = "s_axi_"


def pause_gen(rng, stall: float, burst: int = 1):
    """cocotbext-axi pause generator: True (pause) with probability ``stall``, bursty."""
    while True:
        if stall and rng.random() < stall:
            for _ in range(rng.randint(1, burst)):
                yield True
        else:
            yield False


def set_pause(channels, rng, stall: float, burst: int = 1):
    """Random stalls on cocotbext-axi channels (``stall`` 0 removes them).

    cocotbext-axi leaves ``pause`` as it was when a generator is replaced, so a channel
    caught paused would stay paused forever: clear it explicitly.
    """
    for ch in channels:
        ch.set_pause_generator(pause_gen(rng, stall, burst) if stall else None)
        if not stall:
            ch.pause = False


def set_master_stalls(master, rng, stall: float, burst: int = 1):
    set_pause((master.write_if.aw_channel, master.write_if.w_channel, master.write_if.b_channel,
               master.read_if.ar_channel, master.read_if.r_channel), rng, stall, burst)


def hbm_verdict(cfg, dut):
    """``verdict(write, addr, beats, size, burst)`` of the stub for the protocol checker:
    :func:`models.hbm.burst_verdict` with the error injection the DUT sees right now
    (``i_err_kind/base/limit``, read when the address is accepted)."""
    def verdict(write, addr, beats, size, burst):
        return burst_verdict(cfg, addr, beats, size, burst, signal_int(dut.i_err_kind),
                             signal_int(dut.i_err_base), signal_int(dut.i_err_limit),
                             write=write)
    return verdict


def attach_slave_checker(tb, scope, cfg, on_response=None) -> AxiSlaveChecker:
    """Add a stub-side :class:`AxiSlaveChecker` on ``scope.s_axi`` to ``tb``'s agents."""
    return tb.add(AxiSlaveChecker(scope, "s_axi", rst=tb.dut.rst,
                                  verdict=hbm_verdict(cfg, tb.dut), on_response=on_response))


class AxiHandshakeLog:
    """Agent: cycle of every AR/AW handshake and R/B beat on AXI member ``port``
    (Verilog ports ``<port>__arvalid`` ...)."""

    def __init__(self, dut, port: str):
        g = lambda n: getattr(dut, f"{port}__{n}")   # noqa: E731
        self.sig = {n: g(n) for n in ("arvalid", "arready", "rvalid", "rready", "rlast",
                                      "awvalid", "awready", "bvalid", "bready")}
        self.ar, self.r, self.aw, self.b = [], [], [], []

    def drive(self, cycle):
        pass

    def sample(self, cycle):
        v = {n: signal_int(s) for n, s in self.sig.items()}
        if v["arvalid"] and v["arready"]:
            self.ar.append(cycle)
        if v["rvalid"] and v["rready"]:
            self.r.append((cycle, v["rlast"]))
        if v["awvalid"] and v["awready"]:
            self.aw.append(cycle)
        if v["bvalid"] and v["bready"]:
            self.b.append(cycle)


class HbmTB(ClockedTB):
    """Parameters: ``dut``; ``master``: an ``AxiMaster`` on ``s_axi`` (False: the test
    drives the port itself, :class:`tb.hbm.raw.RawAxi`); ``coverage``: a
    :class:`tb.hbm.coverage.HbmCoverage` the checker samples every answered burst into."""

    def __init__(self, dut, *, master: bool = True, coverage=None):
        super().__init__(dut)
        self.hcfg = self.config.hbm
        self.W = self.hcfg.data_bytes
        for n in ("i_err_kind", "i_err_base", "i_err_limit", "i_bd_we", "i_bd_addr",
                  "i_bd_wdata"):
            getattr(dut, n).value = 0
        self.axi = None
        if master:
            self.axi = AxiMaster(AxiBus.from_prefix(dut, AXI_PREFIX), dut.clk, dut.rst)
            logging.getLogger(f"cocotb.{dut._name}.{AXI_PREFIX}").setLevel(logging.WARNING)
        self.log_hs = self.add(AxiHandshakeLog(dut, "s_axi"))
        self.coverage = coverage
        self.check = attach_slave_checker(self, dut, self.hcfg, coverage)
        self.mirror = bytearray(self.hcfg.total_bytes)

    def set_stalls(self, stall: float, burst: int = 1):
        set_master_stalls(self.axi, self.rng, stall, burst)

    def axi_cycles(self, nbytes: int, bursts: int = 1) -> int:
        """Generous cycle bound for ``bursts`` AXI bursts moving ``nbytes`` in total, one
        after the other: latency, row misses, bandwidth and heavy stalls included."""
        h = self.hcfg
        per_burst = max(h.read_latency, h.write_latency) + h.row_miss_cycles + 10
        beats = -(-nbytes // h.bytes_per_cycle) + bursts
        return 10 * (bursts * per_burst + beats) + 1000

    async def axi_call(self, call, *, nbytes: int, what: str, bursts: int = 1):
        """Await a cocotbext-axi coroutine ``call`` (e.g. ``self.axi.read(...)``) for at
        most :meth:`axi_cycles` cycles; a timeout fails naming ``what``."""
        return await bounded(call, cycles=self.axi_cycles(nbytes, bursts), what=what)

    def inject(self, kind: int, base: int = 0, limit: int = 0):
        self.dut.i_err_kind.value = kind
        self.dut.i_err_base.value = base
        self.dut.i_err_limit.value = limit

    # --- backdoor (one word per cycle; use while AXI is idle) ----------------------
    async def bd_write(self, addr: int, data: bytes):
        await backdoor_write(self.dut, self.W, addr, data)
        self.mirror[addr:addr + len(data)] = data

    async def bd_read(self, addr: int, n: int) -> bytes:
        return await backdoor_read(self.dut, self.W, addr, n)

    # --- AXI, split so that no burst crosses an interleave granule ----------------
    def pieces(self, addr: int, n: int):
        g = self.hcfg.interleave_bytes
        while n > 0:
            k = min(n, g - addr % g)
            yield addr, k
            addr += k
            n -= k

    async def write(self, addr: int, data: bytes, **kw) -> list[int]:
        resps = []
        off = 0
        for a, k in self.pieces(addr, len(data)):
            r = await self.axi_call(self.axi.write(a, data[off:off + k], **kw), nbytes=k,
                                    what=f"AXI write response of {a:#x}+{k}")
            resps.append(int(r.resp))
            off += k
        return resps

    async def read(self, addr: int, n: int, **kw) -> tuple[bytes, list[int]]:
        out, resps = bytearray(), []
        for a, k in self.pieces(addr, n):
            r = await self.axi_call(self.axi.read(a, k, **kw), nbytes=k,
                                    what=f"AXI read data of {a:#x}+{k}")
            out += r.data
            resps.append(int(r.resp))
        return bytes(out), resps

    def channel_of(self, addr: int) -> int:
        return route(self.hcfg, addr)[0]

    def finish(self, *, idle: bool = True):
        """The protocol checker's verdict (no error; with ``idle`` nothing outstanding)."""
        self.check.finish(idle=idle)
        self.log.info("AXI slave checker: %d read and %d write bursts checked, no error",
                      self.check.bursts["R"], self.check.bursts["B"])
