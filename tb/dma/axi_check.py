"""AXI4 master protocol checker for the DMA engine's ``m_axi`` port (an agent).

Checks, every cycle: VALID held and payload stable until READY on AW/W/AR; every
AR/AW burst equals the next burst of the golden plan (address, length, INCR, full
size), stays inside the engine's window and never crosses 4 KiB or exceeds the
maximum burst length; every W beat carries the planned WSTRB and WLAST; R and B are
counted per burst so no beat is lost or duplicated (the engine uses one ID, so
responses are in order). :meth:`finish` checks that nothing planned is missing.
"""
from __future__ import annotations

from collections import deque

from models import dma as model
from models.axi import BOUNDARY_BYTES, Burst
from models.dma import DmaDir
from tb.common.stream import signal_int

__all__ = ["AxiProtocolChecker"]


class AxiProtocolChecker:
    """Parameters: ``dut``; ``port``, the engine's AXI member (Verilog ports
    ``<port>__awvalid`` ...); ``W`` data bytes; ``max_burst`` beats."""

    def __init__(self, dut, port: str, W: int, max_burst: int):
        g = lambda n: getattr(dut, f"{port}__{n}")   # noqa: E731
        self.rst = dut.rst
        self.s = {n: g(n) for n in (
            "awvalid", "awready", "awaddr", "awlen", "awsize", "awburst", "awid",
            "wvalid", "wready", "wdata", "wstrb", "wlast",
            "arvalid", "arready", "araddr", "arlen", "arsize", "arburst", "arid",
            "rvalid", "rready", "rlast", "bvalid", "bready")}
        self.W, self.max_burst = W, max_burst
        self.errors: list[str] = []
        self.ax_plan: deque = deque()        # (is_write, addr, beats, window)
        self.w_plan: deque = deque()         # (strobe, last)
        self.r_left: deque = deque()         # beats per accepted AR
        self.b_left = 0
        self._hold = {}

    def expect(self, d, cfg, win):
        """Queue the bursts of descriptor ``d`` (None: the engine must issue nothing)."""
        if d is None:
            return
        for b in model.plan_bursts(cfg, self.W, d):
            self.ax_plan.append((d.dir == DmaDir.STORE, b.addr, b.beats, win))
            if d.dir == DmaDir.STORE:
                for i, s in enumerate(b.strobes):
                    self.w_plan.append((s, int(i == b.beats - 1)))

    def reset(self):
        self.ax_plan.clear()
        self.w_plan.clear()
        self.r_left.clear()
        self.b_left = 0
        self._hold.clear()

    def _err(self, cycle, msg):
        if len(self.errors) < 20:
            self.errors.append(f"cycle {cycle}: {msg}")

    def _stable(self, cycle, ch, names, valid, ready):
        if ch in self._hold:
            if not valid:
                self._err(cycle, f"{ch}VALID dropped before {ch}READY")
            elif tuple(signal_int(self.s[n]) for n in names) != self._hold[ch]:
                self._err(cycle, f"{ch} payload changed while stalled")
            del self._hold[ch]
        if valid and not ready:
            self._hold[ch] = tuple(signal_int(self.s[n]) for n in names)

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
            strb, last = v("wstrb"), v("wlast")
            if not self.w_plan:
                self._err(cycle, "unexpected W beat")
            else:
                es, el = self.w_plan.popleft()
                if (strb, last) != (es, el):
                    self._err(cycle, f"W beat strobe {strb:#x} last {last}, expected "
                              f"{es:#x} last {el}")
        if v("rvalid") and v("rready"):
            if not self.r_left:
                self._err(cycle, "R beat without an outstanding AR")
            else:
                self.r_left[0] -= 1
                if bool(v("rlast")) != (self.r_left[0] == 0):
                    self._err(cycle, "RLAST on the wrong beat")
                if self.r_left[0] == 0:
                    self.r_left.popleft()
        if v("bvalid") and v("bready"):
            if self.b_left <= 0:
                self._err(cycle, "B without an outstanding AW")
            self.b_left -= 1

    def finish(self):
        if self.ax_plan:
            self._err(-1, f"{len(self.ax_plan)} planned bursts never issued")
        if self.w_plan:
            self._err(-1, f"{len(self.w_plan)} planned W beats never sent")
        if self.r_left or self.b_left:
            self._err(-1, f"responses outstanding: R {list(self.r_left)}, B {self.b_left}")
        assert not self.errors, "AXI protocol errors:\n  " + "\n  ".join(self.errors)
