"""Cycle-accurate reference of the host register block, as an agent (drives + checks).

The register model is the :class:`rtl.regs.description.RegMap` compiled from
``rtl/regs/jalapeno.rdl`` (name, address, fields, access, reset). This agent keeps one
value per stored field and applies the access semantics of the SystemRDL properties
(rw, singlepulse, swmod, woclr + sticky intr with precedence, counter, wire, constant)
on every clock edge, from what it sees on the bus and what it drives on the hardware
inputs. It never looks inside the DUT: a write commits on the edge where ``bvalid``
rises (the block's documented timing), pairing the oldest AW with the oldest W.

Checked every cycle: every ``o_*`` port; every R beat (data and response of the value
at its AR handshake) and B beat (SLVERR iff unmapped); the AXI4-Lite rules of the
subordinate (``bvalid``/``rvalid`` and payloads held until ready, no response without a
request) and the latencies of the docstring of :class:`rtl.regs.block.HostRegs`.
Mismatches are collected; :meth:`check` raises with the first ones.
"""
from __future__ import annotations

from collections import deque

from models.axi import Resp
from rtl.regs.description import Field, RegMap, Register, port_names
from tb.common.stream import signal_int

__all__ = ["RegsModel"]

_SIGNALS = ("awvalid", "awready", "awaddr", "wvalid", "wready", "wdata", "wstrb", "bvalid",
            "bready", "bresp", "arvalid", "arready", "araddr", "rvalid", "rready", "rdata",
            "rresp")
#: payloads read only while their channel is valid (the host may leave them X otherwise)
_PAYLOAD = {"awaddr": "awvalid", "wdata": "wvalid", "wstrb": "wvalid", "araddr": "arvalid"}


def _handle(dut, name: str, index: tuple[int, ...]):
    return getattr(dut, name + "".join(f"__{i}" for i in index))


class RegsModel:
    """Parameters: ``dut`` (a ``host_regs``), ``regs`` its map, ``rng`` for random
    hardware activity (:meth:`set_activity`), ``log``."""

    def __init__(self, dut, regs: RegMap, rng, log):
        self.dut, self.regs, self.rng, self.log = dut, regs, rng, log
        self.bus = {n: getattr(dut, f"s_axil__{n}") for n in _SIGNALS}
        self.state: dict[str, int] = {}          # "REG.field" -> stored value
        self.strobe: dict[str, int] = {}         # swmod strobes of this cycle
        self.inputs: dict[str, tuple] = {}       # "REG.field" -> (handle, width, field)
        self.outputs: list[tuple] = []           # (handle, name, expected() -> int)
        for r in regs:
            for f in r.fields:
                fp = f"{r.path}.{f.name}"
                if f.stored:
                    self.state[fp] = f.reset_value or 0
                for name, direction, width in port_names(r, f):
                    h = _handle(dut, name, r.index)
                    if direction == "i":
                        self.inputs[fp] = (h, width, f)
                    elif name.endswith("_wr"):
                        self.outputs.append((h, name, r.index, lambda fp=fp: self.strobe.get(fp, 0)))
                    else:
                        self.outputs.append((h, name, r.index, lambda fp=fp: self.state[fp]))
            if r.has_intr:
                self.outputs.append((_handle(dut, f"o_{r.key}_intr", r.index), f"o_{r.key}_intr",
                                     r.index, lambda r=r: self.intr(r)))
        self.level = {fp: 0 for fp in self.inputs}           # persistent input values
        self.sched: dict[str, deque] = {fp: deque() for fp in self.inputs}
        self.cur = {fp: 0 for fp in self.inputs}             # driven this cycle
        self.prev: dict[str, int] | None = None              # driven last cycle
        self.activity = 0.0
        self.aw_q: deque = deque()
        self.w_q: deque = deque()
        self.exp_b: deque = deque()
        self.exp_r: deque = deque()
        self.prev_bus: dict[str, int] | None = None
        self.ar_last = -10
        self.write_ready_since: int | None = None
        self.errors: list[str] = []
        self.n_err = 0
        self.commits = 0
        self.reads = 0
        self.strobes_seen: dict[str, int] = {}
        for h, _, _ in self.inputs.values():
            h.value = 0

    # --- what tests use -----------------------------------------------------------------
    def set_input(self, fpath: str, value: int) -> None:
        """Drive input of field ``fpath`` ("REG.field") to ``value`` from now on."""
        h, width, _ = self._input(fpath)
        self.level[fpath] = value & ((1 << width) - 1)

    def pulse(self, fpath: str, values) -> None:
        """Drive ``values`` (one per cycle) on the input of ``fpath``, then its level."""
        h, width, _ = self._input(fpath)
        self.sched[fpath].extend(v & ((1 << width) - 1) for v in values)

    def set_activity(self, p: float) -> None:
        """Each cycle, each input takes a random value with probability ``p`` (0: off)."""
        self.activity = p

    def quiet(self) -> None:
        """All inputs back to 0, schedules dropped, activity off."""
        self.activity = 0.0
        for fp in self.inputs:
            self.level[fp] = 0
            self.sched[fp].clear()

    def value(self, reg: Register) -> int:
        """Read value of ``reg`` now (hardware inputs as driven this cycle)."""
        v = 0
        for f in reg.fields:
            fp = f"{reg.path}.{f.name}"
            if f.kind == "const":
                x = f.reset_value
            elif f.kind == "wire":
                x = self.cur[fp]
            else:
                x = self.state[fp]
            v |= x << f.lsb
        return v

    def intr(self, reg: Register) -> int:
        on = 0
        for f in reg.fields:
            if f.kind == "intr":
                s = self.state[f"{reg.path}.{f.name}"]
                on |= bool(s & self.state[f.enable]) if f.enable else bool(s)
        return int(on)

    def check(self) -> None:
        if self.n_err:
            raise AssertionError(f"register model: {self.n_err} mismatches; first: "
                                 + " | ".join(self.errors[:3]))

    # --- agent ----------------------------------------------------------------------------
    def _input(self, fpath):
        try:
            return self.inputs[fpath]
        except KeyError:
            raise KeyError(f"{fpath} has no hardware input; inputs: {', '.join(self.inputs)}") \
                from None

    def _err(self, cycle, msg):
        self.n_err += 1
        if len(self.errors) < 20:
            self.errors.append(f"cycle {cycle}: {msg}")
            self.log.error("cycle %d: %s", cycle, msg)

    def drive(self, cycle):
        rng, act = self.rng, self.activity
        for fp, (h, width, f) in self.inputs.items():
            if self.sched[fp]:
                v = self.sched[fp].popleft()
            elif act and rng.random() < act:
                v = rng.getrandbits(width)
                if f.kind == "wire":
                    self.level[fp] = v
            else:
                v = self.level[fp]
            if v != self.cur[fp]:
                h.value = v
            self.cur[fp] = v

    def sample(self, cycle):
        bus = {n: signal_int(h) for n, h in self.bus.items() if n not in _PAYLOAD}
        for n, valid in _PAYLOAD.items():
            bus[n] = signal_int(self.bus[n]) if bus[valid] else 0
        if self.prev is not None:
            self._edge(cycle, bus)
        self._handshakes(cycle, bus)
        for h, name, index, expected in self.outputs:
            got, exp = signal_int(h), expected()
            if got != exp:
                self._err(cycle, f"{name}{list(index) if index else ''} = {got:#x}, model {exp:#x}")
            if name.endswith("_wr") and got:
                self.strobes_seen[name] = self.strobes_seen.get(name, 0) + 1
        self.prev = dict(self.cur)
        self.prev_bus = bus

    def _edge(self, cycle, bus):
        """The clock edge between the previous cycle and this one."""
        pb = self.prev_bus
        write = None
        if bus["bvalid"] and not pb["bvalid"]:
            if not self.aw_q or not self.w_q:
                self._err(cycle, "bvalid rose without a held AW and W")
            else:
                write = (self.aw_q.popleft(), *self.w_q.popleft())
                self.commits += 1
        self.strobe = {}
        hit = None
        if write is not None:
            addr, data, strb = write
            hit = self.regs.at(addr)
            self.exp_b.append(Resp.OKAY if hit else Resp.SLVERR)
        for r in self.regs:
            written = write is not None and hit is r
            for f in r.fields:
                if f.stored:
                    self._step(r, f, written and write, self.prev.get(f"{r.path}.{f.name}", 0))

    def _step(self, r: Register, f: Field, write, hw_in: int):
        fp = f"{r.path}.{f.name}"
        mask = (1 << f.width) - 1
        en = wd = 0
        if write:
            _, data, strb = write
            wd = data >> f.lsb & mask
            en = sum(((strb >> ((f.lsb + b) // 8)) & 1) << b for b in range(f.width))
        s = self.state[fp]
        if f.kind in ("control", "scratch"):
            if f.singlepulse:
                s = wd & en
            else:
                s = (s & ~en) | (wd & en)
            if f.swmod:
                self.strobe[fp] = int(en != 0)
        elif f.kind == "intr":
            clear = wd & en
            s = ((s & ~clear) | hw_in) if f.precedence == "hw" else ((s | hw_in) & ~clear)
        elif f.kind == "counter":
            s = (s + hw_in) & mask
        self.state[fp] = s

    def _handshakes(self, cycle, bus):
        pb = self.prev_bus
        # the subordinate holds B and R until accepted, payload stable
        if pb is not None:
            for ch, payload in (("b", ("bresp",)), ("r", ("rdata", "rresp"))):
                if pb[f"{ch}valid"] and not pb[f"{ch}ready"]:
                    if not bus[f"{ch}valid"]:
                        self._err(cycle, f"{ch}valid dropped before {ch}ready")
                    elif any(bus[p] != pb[p] for p in payload):
                        self._err(cycle, f"{ch} payload changed while waiting for {ch}ready")
            if cycle - self.ar_last == 1 and not bus["rvalid"]:
                self._err(cycle, "rvalid not 1 cycle after the AR handshake")
        if bus["awvalid"] and bus["awready"]:
            self.aw_q.append(bus["awaddr"])
        if bus["wvalid"] and bus["wready"]:
            self.w_q.append((bus["wdata"], bus["wstrb"]))
        if bus["arvalid"] and bus["arready"]:
            if bus["rvalid"]:
                self._err(cycle, "AR accepted while a read response is pending")
            reg = self.regs.at(bus["araddr"])
            self.exp_r.append((self.value(reg), Resp.OKAY) if reg else (0, Resp.SLVERR))
            self.ar_last = cycle
            self.reads += 1
        if bus["bvalid"] and bus["bready"]:
            if not self.exp_b:
                self._err(cycle, "B beat without a write")
            else:
                exp = self.exp_b.popleft()
                if bus["bresp"] != exp:
                    self._err(cycle, f"bresp {bus['bresp']}, expected {exp}")
        if bus["rvalid"] and bus["rready"]:
            if not self.exp_r:
                self._err(cycle, "R beat without a read")
            else:
                data, resp = self.exp_r.popleft()
                if (bus["rdata"], bus["rresp"]) != (data, resp):
                    self._err(cycle, f"R {bus['rdata']:#010x}/{bus['rresp']}, expected "
                                     f"{data:#010x}/{int(resp)}")
        # a held AW + W with no B pending commits on the next edge
        both = len(self.aw_q) > 0 and len(self.w_q) > 0 and not bus["bvalid"]
        if both:
            if self.write_ready_since is not None and cycle - self.write_ready_since >= 2:
                self._err(cycle, "AW and W held, no B pending, but no commit after 2 cycles")
            if self.write_ready_since is None:
                self.write_ready_since = cycle
        else:
            self.write_ready_since = None
