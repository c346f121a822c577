"""cocotb tests of :class:`rtl.noc.fabric.NocMemFabric`: memory reads and writes through
the packetizing / depacketizing network interfaces (tests/sim/test_noc_sim.py).

Every node is an initiator and a Python memory target. Initiator ``n`` only touches
addresses of its own region, so the expected read data follows from its own program
order; responses from one target to one initiator arrive in order (same source,
destination and VC), which the checker relies on and therefore checks.
"""
from __future__ import annotations

from collections import defaultdict, deque

import cocotb

from models.axi import Resp
from models.noc import MemOp, has_data, status
from rtl.noc.ni import beat_layout, ni_header_layout
from tb.common.clocked import ClockedTB, trials
from tb.common.stream import Pacer, StreamSink, StreamSource, signal_int


class FabricTB(ClockedTB):
    def __init__(self, dut):
        super().__init__(dut)
        self.cfg = cfg = self.config.noc
        hl, bl = ni_header_layout(cfg), beat_layout(cfg)
        self.N = N = cfg.nodes
        self.mem = [dict() for _ in range(N)]           # the targets' storage
        self.model = [dict() for _ in range(N)]         # what initiators expect there
        self.expected = defaultdict(deque)              # (initiator, target) -> responses
        self.errors: list[str] = []
        self.done = 0
        self.dropped_expected = 0
        self.req_h, self.req_d, self.mresp_h, self.mresp_d = {}, {}, {}, {}
        self._mreq_wait = [deque() for _ in range(N)]   # target: headers waiting for beats
        self._mreq_beats = [[] for _ in range(N)]
        self._resp_wait = [deque() for _ in range(N)]   # initiator: read data to check
        for n in range(N):
            self.req_h[n] = self.add(StreamSource(dut, f"i_req_hdr__{n}", hl))
            self.req_d[n] = self.add(StreamSource(dut, f"i_req_data__{n}", bl))
            self.mresp_h[n] = self.add(StreamSource(dut, f"i_mresp_hdr__{n}", hl))
            self.mresp_d[n] = self.add(StreamSource(dut, f"i_mresp_data__{n}", bl))
            self.add(StreamSink(dut, f"o_mreq_hdr__{n}", hl,
                                on_item=lambda it, c, n=n: self._on_mreq_hdr(n, it)))
            self.add(StreamSink(dut, f"o_mreq_data__{n}", bl,
                                on_item=lambda it, c, n=n: self._on_mreq_data(n, it)))
            self.add(StreamSink(dut, f"o_resp_hdr__{n}", hl,
                                on_item=lambda it, c, n=n: self._on_resp_hdr(n, it)))
            self.add(StreamSink(dut, f"o_resp_data__{n}", bl,
                                on_item=lambda it, c, n=n: self._on_resp_data(n, it)))
        self.sinks = [a for a in self.agents if isinstance(a, StreamSink)]

    def set_stalls(self, stall):
        for a in self.agents:
            a.pacer = Pacer(stall, rng=self.rng)
        for n in range(self.N):       # a target takes a request only with room to answer
            sink = next(a for a in self.sinks if a.name == f"o_mreq_hdr__{n}")
            p, src = Pacer(stall, rng=self.rng), self.mresp_h[n]
            sink.pacer = lambda p=p, src=src: len(src.queue) < 3 and p()

    def err(self, msg):
        if len(self.errors) < 5:
            self.log.error(msg)
        self.errors.append(msg)

    def xy(self, n):
        return n % self.cfg.cols, n // self.cfg.cols

    # --- initiator -----------------------------------------------------------------------
    def request(self, n, target, op, addr, length, rid):
        """Queue a request; predict its response from initiator n's program order."""
        tx, ty = target if isinstance(target, tuple) else self.xy(target)
        self.req_h[n].send({"op": op, "addr": addr, "len": length - 1, "id": rid,
                            "node_x": tx, "node_y": ty})
        inside = tx < self.cfg.cols and ty < self.cfg.rows
        t = ty * self.cfg.cols + tx
        data = []
        if op == MemOp.WRITE:
            data = [self.rng.getrandbits(self.cfg.data_bits) for _ in range(length)]
            for d in data:
                self.req_d[n].send({"data": d, "last": 0})
        if not inside:
            self.dropped_expected += 1
            return
        mask = (1 << self.cfg.addr_bits) - 1
        if op == MemOp.WRITE:
            for i, d in enumerate(data):
                self.model[t][(addr + i) & mask] = d
            self.expected[n, t].append((MemOp.WRITE_RESP, rid, length, None))
        else:
            exp = [self.model[t].get((addr + i) & mask, self._init(t, (addr + i) & mask))
                   for i in range(length)]
            self.expected[n, t].append((MemOp.READ_RESP, rid, length, exp))

    def _init(self, t, a):
        return (t * 0x9E37 + a * 0x79B9) & ((1 << self.cfg.data_bits) - 1)

    def _on_resp_hdr(self, n, h):
        t = h["node_y"] * self.cfg.cols + h["node_x"]
        q = self.expected.get((n, t))
        if not q:
            self.err(f"initiator {n}: unexpected response from {t}: {h}")
            return
        op, rid, length, data = q.popleft()
        got = (h["op"], h["id"], h["len"] + 1, status(h["addr"]))
        if got != (op, rid, length, Resp.OKAY):
            self.err(f"initiator {n}: response from {t} is (op, id, len, status) = {got}, "
                     f"expected {(int(op), rid, length, Resp.OKAY)}")
        if has_data(h["op"]):
            self._resp_wait[n].append(list(data or []))
        else:
            self.done += 1

    def _on_resp_data(self, n, beat):
        if not self._resp_wait[n] or not self._resp_wait[n][0]:
            self.err(f"initiator {n}: read data without a response header")
            return
        exp = self._resp_wait[n][0].pop(0)
        if beat["data"] != exp:
            self.err(f"initiator {n}: read data {beat['data']:#x}, expected {exp:#x}")
        if bool(beat["last"]) != (not self._resp_wait[n][0]):
            self.err(f"initiator {n}: last flag {beat['last']} at the wrong beat")
        if not self._resp_wait[n][0]:
            self._resp_wait[n].popleft()
            self.done += 1

    # --- target (a Python memory) --------------------------------------------------------
    def _on_mreq_hdr(self, t, h):
        if h["op"] == MemOp.WRITE:
            self._mreq_wait[t].append(h)
        else:
            self._answer(t, h, [])

    def _on_mreq_data(self, t, beat):
        if not self._mreq_wait[t]:
            self.err(f"target {t}: write data without a request header")
            return
        self._mreq_beats[t].append(beat["data"])
        h = self._mreq_wait[t][0]
        if beat["last"] != (len(self._mreq_beats[t]) == h["len"] + 1):
            self.err(f"target {t}: last flag {beat['last']} at beat {len(self._mreq_beats[t])}")
        if len(self._mreq_beats[t]) == h["len"] + 1:
            self._mreq_wait[t].popleft()
            self._answer(t, h, self._mreq_beats[t])
            self._mreq_beats[t] = []

    def _answer(self, t, h, beats):
        mask = (1 << self.cfg.addr_bits) - 1
        resp = {"addr": int(Resp.OKAY), "len": h["len"], "id": h["id"], "node_x": h["node_x"],
                "node_y": h["node_y"]}
        if h["op"] == MemOp.WRITE:
            for i, d in enumerate(beats):
                self.mem[t][(h["addr"] + i) & mask] = d
            self.mresp_h[t].send({**resp, "op": MemOp.WRITE_RESP})
        else:
            self.mresp_h[t].send({**resp, "op": MemOp.READ_RESP})
            for i in range(h["len"] + 1):
                a = (h["addr"] + i) & mask
                self.mresp_d[t].send({"data": self.mem[t].get(a, self._init(t, a)),
                                      "last": int(i == h["len"])})

    @property
    def pending(self):
        return sum(len(q) for q in self.expected.values())

    def finish(self):
        assert not self.errors, f"{len(self.errors)} errors, first: {self.errors[0]}"
        assert self.pending == 0, f"{self.pending} responses never arrived"
        for s in self.sinks:
            assert not s.protocol_errors, s.protocol_errors[:3]
        got = signal_int(self.dut.o_dropped)
        assert got == self.dropped_expected, f"o_dropped {got}, expected {self.dropped_expected}"
        self.log.info("fabric: %d requests answered correctly, %d dropped", self.done, got)


async def _traffic(tb, n_req, *, bad_every=0):
    cfg = tb.cfg
    region = cfg.addr_bits - 4
    max_len = min(4, 1 << cfg.len_bits)
    for i in range(n_req):
        n = tb.rng.randrange(tb.N)
        op = tb.rng.choice([MemOp.READ, MemOp.WRITE])
        target = tb.rng.randrange(tb.N)
        if bad_every and i % bad_every == bad_every - 1:
            target = (cfg.cols, 0)
        addr = (n << region) | tb.rng.randrange(16)
        tb.request(n, target, op, addr, tb.rng.randint(1, max_len),
                   tb.rng.randrange(1 << cfg.id_bits))
    await tb.wait_until(lambda: tb.pending == 0 and all(s.idle for s in tb.req_h.values()),
                        timeout=300 * n_req + 2000, what=f"responses ({tb.pending} pending)")


@cocotb.test()
async def test_read_write(dut):
    """Random reads and writes between all nodes, with and without stalls everywhere."""
    tb = FabricTB(dut)
    await tb.reset()
    for stall in (0.0, 0.3):
        tb.set_stalls(stall)
        await _traffic(tb, trials(30))
    tb.finish()


@cocotb.test()
async def test_bad_destination_request(dut):
    """Requests to a node outside the mesh are dropped and counted; nothing hangs and
    every other request is answered."""
    tb = FabricTB(dut)
    await tb.reset()
    tb.set_stalls(0.2)
    await _traffic(tb, trials(24), bad_every=4)
    tb.finish()
