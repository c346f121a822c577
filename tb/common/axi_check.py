"""AXI4 protocol checkers (agents ticked by :class:`tb.common.clocked.ClockedTB`), both
sides of a link, sharing one rule implementation.

* :class:`StableRule`: VALID held and payload stable until READY (any channel).
* :class:`AxiSlaveChecker`: the subordinate's side (R/B): RLAST on the last beat of its
  burst, RID/BID equal to an outstanding ARID/AWID and in per-ID order, no response
  without a request (B only after the burst's last W beat), VALID held and R/B payload
  stable until READY; optionally every RRESP/BRESP equals a golden ``verdict``.
* :class:`AxiProtocolChecker`: the DMA engine's manager side (AW/W/AR against the
  burst plan of :mod:`models.dma`; R/B counted per burst).

Both checkers split into a signal reader (:meth:`sample`) and a pure-Python rule step
(``step(cycle, values)``) so a synthetic trace can be checked without a simulator
(tests/models/test_axi_check.py). Errors are collected; :meth:`finish` asserts none.
"""
from __future__ import annotations

from collections import deque
from typing import Callable

from models import dma as model
from models.axi import BOUNDARY_BYTES, Burst
from models.dma import DmaDir
from tb.common.stream import signal_int

__all__ = ["StableRule", "AxiSlaveChecker", "AxiProtocolChecker", "BurstInfo", "port_signals"]

_MAX_ERRORS = 20


def port_signals(scope, port: str, names) -> dict:
    """{name: handle} of AXI member ``port`` of ``scope`` (Verilog ``<port>__<name>``)."""
    return {n: getattr(scope, f"{port}__{n}") for n in names}


class _Values(dict):
    """Signal values read on first use: payloads are read only under VALID (a manager
    may leave them X otherwise)."""

    def __init__(self, sig, defaults=None):
        super().__init__()
        self.sig, self.defaults = sig, defaults or {}

    def __missing__(self, name):
        sig = self.sig.get(name)
        self[name] = value = self.defaults[name] if sig is None else signal_int(sig)
        return value


class StableRule:
    """VALID, once high, stays high until READY, and the payload does not change.

    ``check(ch, valid, ready, payload)`` returns an error message or None; call once per
    cycle with the values sampled at the clock edge.
    """

    def __init__(self):
        self._hold: dict = {}

    def clear(self):
        self._hold.clear()

    def check(self, ch: str, valid: int, ready: int, payload: tuple) -> str | None:
        err = None
        if ch in self._hold:
            if not valid:
                err = f"{ch}VALID dropped before {ch}READY"
            elif payload != self._hold[ch]:
                err = f"{ch} payload changed while stalled ({self._hold[ch]} -> {payload})"
            del self._hold[ch]
        if valid and not ready:
            self._hold[ch] = payload
        return err


class BurstInfo:
    """One accepted AR/AW: ``write``, ``id``, ``addr``, ``beats``, ``size``, ``burst``,
    ``expect`` (golden response or None), ``index`` (order of AW acceptance)."""

    __slots__ = ("write", "id", "addr", "beats", "size", "burst", "expect", "index", "left")

    def __init__(self, write, id, addr, beats, size, burst, expect=None, index=0):
        self.write, self.id, self.addr, self.beats = write, id, addr, beats
        self.size, self.burst, self.expect, self.index = size, burst, expect, index
        self.left = beats

    def __repr__(self):
        return (f"{'AW' if self.write else 'AR'}(id={self.id}, addr={self.addr:#x}, "
                f"beats={self.beats}, size={self.size}, burst={self.burst})")


class AxiSlaveChecker:
    """Subordinate-side AXI4 checker.

    Parameters
    ----------
    scope : cocotb handle or None
        Module holding the port (None: drive :meth:`step` by hand).
    port : str
        AXI member name (Verilog ports ``<port>__arvalid`` ...).
    rst : cocotb handle or None
        Active-high reset; while high everything outstanding is forgotten.
    lite : bool
        AXI4-Lite port (no ID, LEN, SIZE, BURST, LAST: every burst is one beat, ID 0).
    verdict : callable or None
        ``verdict(write, addr, beats, size, burst) -> Resp`` called when AR/AW is
        accepted; every R beat / B of that burst must carry it.
    on_response : callable or None
        ``on_response(info, resp)`` once per completed burst (coverage).
    """

    R_PAYLOAD = ("rid", "rdata", "rresp", "rlast")
    B_PAYLOAD = ("bid", "bresp")
    NAMES = ("arvalid", "arready", "araddr", "arlen", "arsize", "arburst", "arid",
             "awvalid", "awready", "awaddr", "awlen", "awsize", "awburst", "awid",
             "wvalid", "wready", "wlast", "rvalid", "rready", *R_PAYLOAD, "bvalid", "bready",
             *B_PAYLOAD)

    #: values of the AXI4 signals an AXI4-Lite port does not have
    LITE_DEFAULTS = {"arid": 0, "awid": 0, "rid": 0, "bid": 0, "arlen": 0, "awlen": 0,
                     "arsize": 2, "awsize": 2, "arburst": Burst.INCR, "awburst": Burst.INCR,
                     "rlast": 1, "wlast": 1}

    def __init__(self, scope=None, port: str = "s_axi", *, rst=None, lite: bool = False,
                 verdict: Callable | None = None, on_response: Callable | None = None):
        self.defaults = self.LITE_DEFAULTS if lite else {}
        names = [n for n in self.NAMES if n not in self.defaults]
        self.sig = port_signals(scope, port, names) if scope is not None else {}
        self.rst = rst
        self.verdict, self.on_response = verdict, on_response
        self.errors: list[str] = []
        self.stable = StableRule()
        self.bursts = {"R": 0, "B": 0}      # completed bursts checked
        self.reset()

    def reset(self):
        self.stable.clear()
        self.ar: dict[int, deque] = {}      # id -> outstanding ARs, oldest first
        self.aw: dict[int, deque] = {}      # id -> outstanding AWs, oldest first
        self.aw_count = 0                   # AWs accepted
        self.wlast_count = 0                # write bursts whose last W beat was accepted

    def _err(self, cycle, msg):
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(f"cycle {cycle}: {msg}")

    def drive(self, cycle):
        pass

    def sample(self, cycle):
        if self.rst is not None and signal_int(self.rst):
            self.reset()
            return
        self.step(cycle, _Values(self.sig, self.defaults))

    # --- rules on one cycle's values (pure Python) ------------------------------------
    def step(self, cycle: int, v: dict):
        for ch, names in (("R", self.R_PAYLOAD), ("B", self.B_PAYLOAD)):
            p = ch.lower()
            valid = v[p + "valid"]
            err = self.stable.check(ch, valid, v[p + "ready"],
                                    tuple(v[n] for n in names) if valid else ())
            if err:
                self._err(cycle, err)
        if v["arvalid"] and v["arready"]:
            self._accept(False, v)
        if v["awvalid"] and v["awready"]:
            self._accept(True, v)
        if v["wvalid"] and v["wready"] and v["wlast"]:
            self.wlast_count += 1
        if v["rvalid"] and v["rready"]:
            self._r_beat(cycle, v)
        if v["bvalid"] and v["bready"]:
            self._b(cycle, v)

    def _accept(self, write: bool, v: dict):
        p = "aw" if write else "ar"
        args = (v[p + "addr"], v[p + "len"] + 1, v[p + "size"], v[p + "burst"])
        expect = self.verdict(write, *args) if self.verdict else None
        info = BurstInfo(write, v[p + "id"], *args, expect=expect, index=self.aw_count)
        if write:
            self.aw_count += 1
        (self.aw if write else self.ar).setdefault(info.id, deque()).append(info)

    def _r_beat(self, cycle, v):
        q = self.ar.get(v["rid"])
        if not q:
            self._err(cycle, f"R beat with RID {v['rid']} and no outstanding AR of that ID")
            return
        b = q[0]
        b.left -= 1
        if bool(v["rlast"]) != (b.left == 0):
            self._err(cycle, f"RLAST={v['rlast']} on beat {b.beats - b.left} of {b}")
        if b.expect is not None and v["rresp"] != b.expect:
            self._err(cycle, f"RRESP {v['rresp']} on {b}, golden model says {int(b.expect)}")
        if b.left == 0 or v["rlast"]:
            q.popleft()
            self.bursts["R"] += 1
            if self.on_response:
                self.on_response(b, v["rresp"])

    def _b(self, cycle, v):
        q = self.aw.get(v["bid"])
        if not q:
            self._err(cycle, f"B with BID {v['bid']} and no outstanding AW of that ID")
            return
        b = q.popleft()
        if b.index >= self.wlast_count:
            self._err(cycle, f"B for {b} before its last W beat")
        if b.expect is not None and v["bresp"] != b.expect:
            self._err(cycle, f"BRESP {v['bresp']} on {b}, golden model says {int(b.expect)}")
        self.bursts["B"] += 1
        if self.on_response:
            self.on_response(b, v["bresp"])

    def outstanding(self) -> int:
        return sum(len(q) for q in (*self.ar.values(), *self.aw.values()))

    def finish(self, *, idle: bool = True):
        """Assert no error (and, with ``idle``, nothing outstanding)."""
        if idle and self.outstanding():
            self._err(-1, f"{self.outstanding()} bursts never answered: "
                      f"{[list(q) for q in (*self.ar.values(), *self.aw.values()) if q][:3]}")
        assert not self.errors, "AXI slave protocol errors:\n  " + "\n  ".join(self.errors)


class AxiProtocolChecker:
    """Manager-side checker of the DMA engine's ``m_axi`` port (an agent).

    Checks, every cycle: VALID held and payload stable until READY on AW/W/AR; every
    AR/AW burst equals the next burst of the golden plan (address, length, INCR, full
    size), stays inside the engine's window and never crosses 4 KiB or exceeds the
    maximum burst length; every W beat carries the planned WSTRB and WLAST; R and B are
    counted per burst so no beat is lost or duplicated (the engine uses one ID, so
    responses are in order). :meth:`finish` checks that nothing planned is missing.

    Parameters: ``dut``; ``port``, the engine's AXI member; ``W`` data bytes;
    ``max_burst`` beats.
    """

    def __init__(self, dut, port: str, W: int, max_burst: int):
        self.rst = dut.rst
        self.s = port_signals(dut, port, (
            "awvalid", "awready", "awaddr", "awlen", "awsize", "awburst", "awid",
            "wvalid", "wready", "wdata", "wstrb", "wlast",
            "arvalid", "arready", "araddr", "arlen", "arsize", "arburst", "arid",
            "rvalid", "rready", "rlast", "bvalid", "bready"))
        self.W, self.max_burst = W, max_burst
        self.errors: list[str] = []
        self.ax_plan: deque = deque()        # (is_write, addr, beats, window)
        self.w_plan: deque = deque()         # (strobe, last)
        self.r_left: deque = deque()         # beats per accepted AR
        self.b_left = 0
        self.stable = StableRule()

    def expect(self, d, cfg, win, indices=None):
        """Queue the bursts of descriptor ``d`` (None: the engine must issue nothing);
        ``indices``: an indexed descriptor's index list (``models.dma.index_list``)."""
        if d is None:
            return
        for b in model.plan_bursts(cfg, self.W, d, indices=indices, win=win):
            self.ax_plan.append((d.dir == DmaDir.STORE and not b.index, b.addr, b.beats, win))
            if d.dir == DmaDir.STORE and not b.index:
                for i, s in enumerate(b.strobes):
                    self.w_plan.append((s, int(i == b.beats - 1)))

    def reset(self):
        self.ax_plan.clear()
        self.w_plan.clear()
        self.r_left.clear()
        self.b_left = 0
        self.stable.clear()

    def _err(self, cycle, msg):
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(f"cycle {cycle}: {msg}")

    def _stable(self, cycle, ch, names, valid, ready):
        err = self.stable.check(ch, valid, ready, tuple(signal_int(self.s[n]) for n in names))
        if err:
            self._err(cycle, err)

    def _addr(self, cycle, write: bool):
        p = "aw" if write else "ar"
        addr = signal_int(self.s[p + "addr"])
        beats = signal_int(self.s[p + "len"]) + 1
        size, burst = signal_int(self.s[p + "size"]), signal_int(self.s[p + "burst"])
        W = self.W
        if 1 << size != W or burst != Burst.INCR:
            self._err(cycle, f"{p}: size {size} burst {burst} (expected full-width INCR)")
        first_word = addr // W
        if (first_word + beats - 1) * W // BOUNDARY_BYTES != addr // BOUNDARY_BYTES:
            self._err(cycle, f"{p}: burst {addr:#x} x {beats} beats crosses 4 KiB")
        if beats > self.max_burst:
            self._err(cycle, f"{p}: {beats} beats > max {self.max_burst}")
        if not self.ax_plan:
            self._err(cycle, f"{p}: unexpected burst at {addr:#x}")
            return beats
        is_w, eaddr, ebeats, (wb, wl) = self.ax_plan.popleft()
        if (is_w, eaddr, ebeats) != (write, addr, beats):
            self._err(cycle, f"{p}: burst {addr:#x} x {beats}, expected "
                      f"{'aw' if is_w else 'ar'} {eaddr:#x} x {ebeats}")
        if addr < wb or (first_word + beats) * W > -(-wl // W) * W:
            self._err(cycle, f"{p}: burst {addr:#x} x {beats} outside window [{wb:#x}, {wl:#x})")
        return beats

    def drive(self, cycle):
        pass

    def sample(self, cycle):
        if signal_int(self.rst):        # a reset aborts everything in flight
            self.reset()
            return
        s = self.s
        v = lambda n: signal_int(s[n])   # noqa: E731
        awv, awr = v("awvalid"), v("awready")
        self._stable(cycle, "AW", ("awaddr", "awlen"), awv, awr)
        if awv and awr:
            self._addr(cycle, True)
            self.b_left += 1
        arv, arr = v("arvalid"), v("arready")
        self._stable(cycle, "AR", ("araddr", "arlen"), arv, arr)
        if arv and arr:
            self.r_left.append(self._addr(cycle, False))
        wv, wr = v("wvalid"), v("wready")
        self._stable(cycle, "W", ("wdata", "wstrb", "wlast"), wv, wr)
        if wv and wr:
            self._w_beat(cycle, v("wstrb"), v("wlast"))
        if v("rvalid") and v("rready"):
            self._r_beat(cycle, v("rlast"))
        if v("bvalid") and v("bready"):
            if self.b_left <= 0:
                self._err(cycle, "B without an outstanding AW")
            self.b_left -= 1

    def _w_beat(self, cycle, strb, last):
        if not self.w_plan:
            self._err(cycle, "unexpected W beat")
            return
        es, el = self.w_plan.popleft()
        if (strb, last) != (es, el):
            self._err(cycle, f"W beat strobe {strb:#x} last {last}, expected {es:#x} last {el}")

    def _r_beat(self, cycle, rlast):
        if not self.r_left:
            self._err(cycle, "R beat without an outstanding AR")
            return
        self.r_left[0] -= 1
        if bool(rlast) != (self.r_left[0] == 0):
            self._err(cycle, "RLAST on the wrong beat")
        if self.r_left[0] == 0:
            self.r_left.popleft()

    def finish(self):
        if self.ax_plan:
            self._err(-1, f"{len(self.ax_plan)} planned bursts never issued")
        if self.w_plan:
            self._err(-1, f"{len(self.w_plan)} planned W beats never sent")
        if self.r_left or self.b_left:
            self._err(-1, f"responses outstanding: R {list(self.r_left)}, B {self.b_left}")
        assert not self.errors, "AXI protocol errors:\n  " + "\n  ".join(self.errors)
