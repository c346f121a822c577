"""Packet-level testbench of :class:`rtl.noc.mesh.NocMesh` (Python agents at every port).

Every node has one :class:`FlitSource` and one ``StreamSink`` per virtual channel. The
:class:`PacketScoreboard` rebuilds packets from the flits on each ejection stream and
checks, per (source, destination, VC), that every packet arrives exactly once, intact
(every flit's kind, addresses and payload) and in order. Bad-destination packets are
expected to be counted by the mesh's ``o_dropped`` instead of delivered.
"""
from __future__ import annotations

from collections import defaultdict, deque

from models.noc import hops
from rtl.noc.flit import FlitKind, flit_layout
from tb.common.clocked import ClockedTB
from tb.common.stream import Pacer, StreamSink, StreamSource, signal_int

__all__ = ["FlitSource", "PacketScoreboard", "NocTB", "make_packet", "noc_mesh_shared"]


class FlitSource(StreamSource):
    """A ``StreamSource`` that reports each accepted flit to ``on_fire(item, cycle)``."""

    on_fire = None

    def sample(self, cycle: int) -> None:
        offer = self._offer
        super().sample(cycle)
        if offer is not None and self._offer is None and self.on_fire is not None:
            self.on_fire(offer, cycle)


def make_packet(src, dst, vc, payloads) -> list[dict]:
    """Flits of one packet from ``src`` = (x, y) to ``dst`` = (x, y) on ``vc``."""
    n = len(payloads)
    flits = []
    for i, p in enumerate(payloads):
        kind = FlitKind.SINGLE if n == 1 else FlitKind.HEAD if i == 0 else \
            FlitKind.TAIL if i == n - 1 else FlitKind.BODY
        flits.append({"kind": int(kind), "vc": vc, "dst_x": dst[0], "dst_y": dst[1],
                      "src_x": src[0], "src_y": src[1], "payload": p})
    return flits


class PacketScoreboard:
    """Exactly once, intact, in order per (src, dst, vc); see the module docstring."""

    def __init__(self, cfg, log):
        self.cfg, self.log = cfg, log
        self.expected: dict[tuple, deque] = defaultdict(deque)
        self.partial: dict[tuple, list] = defaultdict(list)
        self.errors: list[str] = []
        self.delivered = 0
        self.latencies: list[tuple] = []     # (hops, length, head latency, packet latency)
        self.inject_cycle: dict[int, int] = {}

    def error(self, msg):
        if len(self.errors) < 5:
            self.log.error(msg)
        self.errors.append(msg)

    def expect(self, src_node, dst_node, vc, flits):
        self.expected[src_node, dst_node, vc].append(flits)

    def eject(self, node, vc, flit, cycle):
        x, y = node % self.cfg.cols, node // self.cfg.cols
        part = self.partial[node, vc]
        if not part and not flit["kind"] & FlitKind.HEAD:
            self.error(f"cycle {cycle}: node {node} vc {vc}: {FlitKind(flit['kind']).name} "
                       f"flit without a head: {flit}")
            return
        if part and flit["kind"] & FlitKind.HEAD:
            self.error(f"cycle {cycle}: node {node} vc {vc}: head inside a packet: {flit}")
        if (flit["dst_x"], flit["dst_y"]) != (x, y) or flit["vc"] != vc:
            self.error(f"cycle {cycle}: node {node} vc {vc} got a flit for "
                       f"({flit['dst_x']}, {flit['dst_y']}) vc {flit['vc']}")
        part.append((flit, cycle))
        if flit["kind"] & FlitKind.TAIL:
            self.partial[node, vc] = []
            self._packet(node, vc, part)

    def _packet(self, node, vc, part):
        flits = [f for f, _ in part]
        src = flits[0]["src_y"] * self.cfg.cols + flits[0]["src_x"]
        q = self.expected.get((src, node, vc))
        key = f"{src}->{node} vc {vc}"
        if not q:
            self.error(f"unexpected packet {key} (duplicate or never sent): {flits}")
            return
        if q[0] == flits:
            q.popleft()
            self.delivered += 1
            uid = flits[0]["payload"]
            t0 = self.inject_cycle.pop(uid, None)
            if t0 is not None:
                h = hops(self.cfg, src, node)
                self.latencies.append((h, len(flits), part[0][1] - t0, part[-1][1] - t0))
        elif flits in q:
            self.error(f"packet {key} out of order: got #{list(q).index(flits)} of {len(q)} "
                       f"pending, payload {flits[0]['payload']:#x}")
            q.remove(flits)
        else:
            self.error(f"packet {key} corrupted: got {flits}, expected {q[0]}")
            q.popleft()

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self.expected.values())

    def check(self):
        problems = list(self.errors[:1])
        if self.errors:
            problems = [f"{len(self.errors)} errors (first: {self.errors[0]})"]
        if self.pending:
            lost = [k for k, q in self.expected.items() if q][:5]
            problems.append(f"{self.pending} packets never arrived (e.g. src, dst, vc = {lost})")
        partial = [k for k, p in self.partial.items() if p]
        if partial:
            problems.append(f"incomplete packets at ejection ports {partial}")
        if problems:
            raise AssertionError("noc scoreboard: " + "; ".join(problems))
        self.log.info("noc scoreboard: %d packets delivered exactly once, intact, in order",
                      self.delivered)


class NocTB(ClockedTB):
    """Clock, reset, per-node per-VC sources and sinks, the packet scoreboard.

    Parameters
    ----------
    dut : cocotb handle of ``noc_mesh``
    """

    def __init__(self, dut):
        super().__init__(dut)
        self.cfg = cfg = self.config.noc
        fl = flit_layout(cfg)
        self.sb = PacketScoreboard(cfg, self.log)
        self.src, self.sink = {}, {}
        self._uid = 0
        self.expected_drops = 0
        for n in range(cfg.nodes):
            for v in range(cfg.vcs):
                s = self.add(FlitSource(dut, f"i_inject__{n}__{v}", fl))
                s.on_fire = self._on_inject
                self.src[n, v] = s
                self.sink[n, v] = self.add(StreamSink(
                    dut, f"o_eject__{n}__{v}", fl,
                    on_item=lambda item, cycle, n=n, v=v: self.sb.eject(n, v, item, cycle)))

    def coords(self, node):
        return node % self.cfg.cols, node // self.cfg.cols

    def _on_inject(self, flit, cycle):
        if flit["kind"] & FlitKind.HEAD:
            self.sb.inject_cycle[flit["payload"]] = cycle

    def set_stalls(self, inject: float = 0.0, eject: float = 0.0, burst: int = 1) -> None:
        """Idle cycles at every injection port, backpressure at every ejection port."""
        for s in self.src.values():
            s.pacer = Pacer(inject, burst=burst, rng=self.rng)
        for s in self.sink.values():
            s.pacer = Pacer(eject, burst=burst, rng=self.rng)

    def send(self, src, dst, vc, length=1, *, payloads=None, expect=True) -> list[dict]:
        """Queue a packet of ``length`` flits from node ``src`` to ``dst`` (node index, or
        (x, y) which may lie outside the mesh). The head payload is a unique id."""
        self._uid += 1
        dxy = dst if isinstance(dst, tuple) else self.coords(dst)
        if payloads is None:
            mask = (1 << self.cfg.data_bits) - 1
            payloads = [self._uid] + [self.rng.getrandbits(self.cfg.data_bits) & mask
                                      for _ in range(length - 1)]
        flits = make_packet(self.coords(src), dxy, vc, payloads)
        inside = dxy[0] < self.cfg.cols and dxy[1] < self.cfg.rows
        if expect and inside:
            self.sb.expect(src, dxy[1] * self.cfg.cols + dxy[0], vc, flits)
        elif expect:
            self.expected_drops += 1
        for f in flits:
            self.src[src, vc].send(f)
        return flits

    @property
    def dropped(self) -> int:
        return signal_int(self.dut.o_dropped)

    def idle(self) -> bool:
        return all(s.idle for s in self.src.values()) and self.sb.pending == 0

    async def drain(self, timeout: int, what: str = "all packets to drain") -> int:
        start = self.cycle
        await self.wait_until(self.idle, timeout=timeout, what=f"{what} ({self.sb.pending} pending)")
        return self.cycle - start

    def finish(self) -> None:
        self.sb.check()
        for s in self.sink.values():
            assert not s.protocol_errors, s.protocol_errors[:5]
        assert signal_int(self.dut.o_overflow) == 0, "an input buffer overflowed (credit bug)"
        assert self.dropped == self.expected_drops, \
            f"o_dropped = {self.dropped}, expected {self.expected_drops} bad-destination drops"


def noc_mesh_shared(cfg):
    """Runner factory: the mesh with one shared router module (``NocMesh(shared=True)``,
    as the traffic wrapper and the bench use it), for the same cocotb tests."""
    from rtl.noc.mesh import NocMesh
    return NocMesh(cfg.noc, shared=True)
