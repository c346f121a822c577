"""cocotb tests of :class:`rtl.noc.fabric.NocMemFabric`: memory reads and writes through
the packetizing / depacketizing network interfaces (tests/sim/test_noc_sim.py).

Every node is an initiator and a Python memory target. Initiator ``n`` only touches
addresses of its own region, so the expected read data follows from its own program
order; responses from one target to one initiator arrive in order (same source,
destination and VC), which the checker relies on and therefore checks.

Error responses (``FabricTB(dut, faults=True)``): a target answers a request whose
start address has the :data:`UNMAPPED` bit set with DECERR (no memory decodes it) and one
whose start address ends in :data:`SLVERR_OFFSET` with SLVERR (an injected memory
error); it writes nothing for an erroneous write and returns poison beats for an
erroneous read (AXI: every beat still comes). The initiator side checks the status of
every response, per requester, and counts them (``tb.status_counts``).
"""
from __future__ import annotations

from collections import defaultdict, deque

import cocotb

import copy

from cocotb.triggers import ClockCycles

from models.axi import Resp
from models.noc import MemOp, has_data, status
from rtl.noc.ni import beat_layout, ni_header_layout
from tb.common.clocked import ClockedTB, trials
from tb.common.stream import Pacer, StreamSink, StreamSource, signal_int


#: Start-address offset (low 4 bits) at which a faulty target answers SLVERR.
SLVERR_OFFSET = 0xD
#: Poison data of the beats of an erroneous read (its data is not checked).
POISON = 0xBAD0_BAD0


class FabricTB(ClockedTB):
    """Agents at every NI port of the fabric, Python memory targets and the checker.

    Parameters
    ----------
    dut : cocotb handle of ``noc_fabric``
    faults : bool
        Targets answer SLVERR / DECERR for the addresses described in the module doc.
    """

    def __init__(self, dut, *, faults: bool = False):
        super().__init__(dut)
        self.faults = faults
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
        #: (op name, Resp) -> responses checked at their requester
        self.status_counts: dict[tuple[str, Resp], int] = defaultdict(int)
        #: called with (initiator, target, op name, Resp) for every checked response
        self.on_response = None
        self.aborting = False

    @property
    def unmapped(self) -> int:
        """Address bit that no target decodes (the top half of each initiator's region)."""
        return 1 << (self.cfg.addr_bits - 5)

    def fault(self, addr: int) -> Resp:
        """The status a target answers for a request starting at ``addr``."""
        if not self.faults:
            return Resp.OKAY
        if addr & self.unmapped:
            return Resp.DECERR
        return Resp.SLVERR if addr & 0xF == SLVERR_OFFSET else Resp.OKAY

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
        st = self.fault(addr)
        if op == MemOp.WRITE:
            if st == Resp.OKAY:
                for i, d in enumerate(data):
                    self.model[t][(addr + i) & mask] = d
            self.expected[n, t].append((MemOp.WRITE_RESP, rid, length, st, None))
        else:
            exp = [None if st != Resp.OKAY else
                   self.model[t].get((addr + i) & mask, self._init(t, (addr + i) & mask))
                   for i in range(length)]
            self.expected[n, t].append((MemOp.READ_RESP, rid, length, st, exp))

    def _init(self, t, a):
        return (t * 0x9E37 + a * 0x79B9) & ((1 << self.cfg.data_bits) - 1)

    def _on_resp_hdr(self, n, h):
        if self.aborting:
            return
        t = h["node_y"] * self.cfg.cols + h["node_x"]
        q = self.expected.get((n, t))
        if not q:
            self.err(f"initiator {n}: unexpected response from {t}: {h}")
            return
        op, rid, length, st, data = q.popleft()
        got = (h["op"], h["id"], h["len"] + 1, status(h["addr"]))
        if got != (op, rid, length, st):
            self.err(f"initiator {n}: response from {t} is (op, id, len, status) = {got}, "
                     f"expected {(int(op), rid, length, st)}")
        else:
            self.status_counts[op.name, st] += 1
            if self.on_response is not None:
                self.on_response(n, t, op.name, st)
        if has_data(h["op"]):
            self._resp_wait[n].append(list(data or []))
        else:
            self.done += 1

    def _on_resp_data(self, n, beat):
        if self.aborting:
            return
        if not self._resp_wait[n] or not self._resp_wait[n][0]:
            self.err(f"initiator {n}: read data without a response header")
            return
        exp = self._resp_wait[n][0].pop(0)
        if exp is not None and beat["data"] != exp:      # None: an error response's beat
            self.err(f"initiator {n}: read data {beat['data']:#x}, expected {exp:#x}")
        if bool(beat["last"]) != (not self._resp_wait[n][0]):
            self.err(f"initiator {n}: last flag {beat['last']} at the wrong beat")
        if not self._resp_wait[n][0]:
            self._resp_wait[n].popleft()
            self.done += 1

    # --- target (a Python memory) --------------------------------------------------------
    def _on_mreq_hdr(self, t, h):
        if self.aborting:
            return
        if h["op"] == MemOp.WRITE:
            self._mreq_wait[t].append(h)
        else:
            self._answer(t, h, [])

    def _on_mreq_data(self, t, beat):
        if self.aborting:
            return
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
        st = self.fault(h["addr"])
        resp = {"addr": int(st), "len": h["len"], "id": h["id"], "node_x": h["node_x"],
                "node_y": h["node_y"]}
        if h["op"] == MemOp.WRITE:
            if st == Resp.OKAY:
                for i, d in enumerate(beats):
                    self.mem[t][(h["addr"] + i) & mask] = d
            self.mresp_h[t].send({**resp, "op": MemOp.WRITE_RESP})
        else:
            self.mresp_h[t].send({**resp, "op": MemOp.READ_RESP})
            for i in range(h["len"] + 1):
                a = (h["addr"] + i) & mask
                data = self.mem[t].get(a, self._init(t, a)) if st == Resp.OKAY else POISON
                self.mresp_d[t].send({"data": data & ((1 << self.cfg.data_bits) - 1),
                                      "last": int(i == h["len"])})

    async def abort(self, cycles: int = 3) -> None:
        """Reset in the middle of traffic: queued requests and answers are forgotten,
        what comes out while ``rst`` is high is ignored (the reset legally drops a
        pending valid); afterwards every response must again be a predicted one."""
        self.aborting = True
        for a in self.agents:
            if isinstance(a, StreamSource):
                a.clear()
        n_proto = [len(s.protocol_errors) for s in self.sinks]
        await self.reset(cycles)
        for s, k in zip(self.sinks, n_proto):
            s._pending = None
            del s.protocol_errors[k:]
        for q in (*self._mreq_wait, *self._resp_wait):
            q.clear()
        self._mreq_beats = [[] for _ in range(self.N)]
        self.expected.clear()
        self.dropped_expected = 0
        self.model = copy.deepcopy(self.mem)      # aborted writes may or may not have landed
        self.aborting = False

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


def _issue(tb, n_req, *, bad_every=0, errors=0.0, kinds=None):
    """Queue ``n_req`` random requests (initiator n within its own region); every
    ``bad_every``-th to a node outside the mesh; with probability ``errors`` (or for
    each entry of ``kinds``, a list of (op, Resp)) at an address the target answers
    with an error status. Returns the (target, op, addr, length) of each."""
    cfg = tb.cfg
    region = cfg.addr_bits - 4
    max_len = min(4, 1 << cfg.len_bits)
    kinds = list(kinds or [])
    out = []
    for i in range(n_req + len(kinds)):
        n = tb.rng.randrange(tb.N)
        op = tb.rng.choice([MemOp.READ, MemOp.WRITE])
        target = tb.rng.randrange(tb.N)
        if bad_every and i % bad_every == bad_every - 1:
            target = (cfg.cols, 0)
        off = tb.rng.randrange(16)
        st = None
        if i >= n_req:
            op, st = kinds[i - n_req]
        elif tb.rng.random() < errors:
            st = tb.rng.choice([Resp.SLVERR, Resp.DECERR])
        if st == Resp.SLVERR:
            off = SLVERR_OFFSET
        elif st == Resp.DECERR:
            off = tb.unmapped | tb.rng.randrange(16)
        elif tb.faults:
            off = tb.rng.choice([o for o in range(16) if o != SLVERR_OFFSET])
        addr = (n << region) | off
        length = tb.rng.randint(1, max_len)
        tb.request(n, target, op, addr, length, tb.rng.randrange(1 << cfg.id_bits))
        out.append((target, op, addr, length))
    return out


async def _drain(tb, n_req):
    await tb.wait_until(lambda: tb.pending == 0 and all(s.idle for s in tb.req_h.values()),
                        timeout=300 * n_req + 2000, what=f"responses ({tb.pending} pending)")


async def _traffic(tb, n_req, **kw):
    reqs = _issue(tb, n_req, **kw)
    await _drain(tb, len(reqs))


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


ERROR_KINDS = [(op, st) for op in (MemOp.READ, MemOp.WRITE) for st in (Resp.SLVERR, Resp.DECERR)]


@cocotb.test()
async def test_error_responses(dut):
    """Targets answer SLVERR (injected memory error) and DECERR (address no target
    decodes): every status arrives intact at the requester that asked, with the right
    id, length and beat count; an erroneous write changes nothing, later reads see the
    old data; each (direction, error) at least 3 times; a corrupted expected status is
    reported (checker self-check)."""
    tb = FabricTB(dut, faults=True)
    await tb.reset()
    for stall in (0.0, 0.3):
        tb.set_stalls(stall)
        await _traffic(tb, trials(12), errors=0.3, kinds=ERROR_KINDS * 2)
    tb.log.info("responses by (op, status): %s", ", ".join(
        f"{op} {st.name} {k}" for (op, st), k in sorted(tb.status_counts.items())))
    for op, st in ERROR_KINDS:
        name = {MemOp.READ: "READ_RESP", MemOp.WRITE: "WRITE_RESP"}[op]
        k = tb.status_counts[name, st]
        assert k >= 3, f"{name} {st.name} arrived {k} times, expected >= 3 (seed {tb.seed})"
    tb.finish()
    # self-check: a response whose expected status is corrupted must be reported
    _issue(tb, 0, kinds=[(MemOp.READ, Resp.SLVERR)])
    (key, q), = [(k, q) for k, q in tb.expected.items() if q]
    op, rid, length, st, data = q[-1]
    q[-1] = (op, rid, length, Resp.OKAY, data)
    await tb.wait_until(lambda: tb.pending == 0, timeout=2000, what="the corrupted response")
    assert tb.errors and "status" in tb.errors[-1], f"corrupted status not reported: {tb.errors}"
    tb.log.info("corrupted expectation reported as it must: %s", tb.errors[-1][:100])


@cocotb.test()
async def test_reset_mid_traffic(dut):
    """Reset at a random cycle (seeded) while reads, writes and error responses are in
    flight: nothing stale comes out afterwards, o_dropped restarts at 0, memory words no
    aborted write addressed are unchanged, and the next traffic is exact."""
    tb = FabricTB(dut, faults=True)
    await tb.reset()
    tb.set_stalls(0.2)
    await _traffic(tb, trials(6))
    mask = (1 << tb.cfg.addr_bits) - 1
    for trial in range(trials(1)):
        snap = copy.deepcopy(tb.mem)
        reqs = _issue(tb, trials(6), bad_every=5, errors=0.2)
        owned = {(t if isinstance(t, int) else -1, (a + i) & mask)
                 for t, op, a, n in reqs if op == MemOp.WRITE for i in range(n)}
        when = tb.rng.randint(1, 40)
        await ClockCycles(dut.clk, when)
        in_flight = tb.pending
        await tb.abort()
        got = [s.received for s in tb.sinks]
        await ClockCycles(dut.clk, 100)
        stale = [s.name for s, k in zip(tb.sinks, got) if s.received != k]
        assert not stale, f"stale items after reset on {stale} (seed {tb.seed})"
        assert signal_int(dut.o_dropped) == 0, f"o_dropped {signal_int(dut.o_dropped)} after reset"
        kept = 0
        for t in range(tb.N):
            for a in set(snap[t]) | set(tb.mem[t]):
                if (t, a) not in owned:
                    assert snap[t].get(a) == tb.mem[t].get(a), \
                        f"target {t} word {a:#x} changed by a reset-aborted request it was not for"
                    kept += 1
        tb.log.info("reset %d at cycle %d with %d responses outstanding: no stale item, "
                    "%d words not addressed unchanged", trial, when, in_flight, kept)
        await _traffic(tb, trials(6), errors=0.2)
    tb.finish()
