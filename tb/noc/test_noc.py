"""cocotb tests of the mesh with Python agents at every port (tests/sim/test_noc_sim.py).

Seeded from ``COCOTB_RANDOM_SEED`` (re-run with ``make sim SEED=<n>``); every test ends
with the packet scoreboard's exactly-once / intact / in-order / drop-count check.
"""
import cocotb
from cocotb.triggers import ClockCycles, FallingEdge

from models.noc import hops, zero_load_latency
from rtl.noc.flit import FlitKind
from tb.common.clocked import trials
from tb.noc.tb import NocTB, make_packet

# (name, injection idle probability, ejection backpressure probability, burst)
STALL_MODES = [("no stalls", 0.0, 0.0, 1), ("random backpressure", 0.2, 0.4, 1),
               ("bursty backpressure", 0.1, 0.3, 8)]


@cocotb.test()
async def test_zero_load_latency(dut):
    """Every (src, dst) pair alone in the network: latency = models.noc exactly (2/hop)."""
    tb = NocTB(dut)
    await tb.reset()
    cfg = tb.cfg
    for s in range(cfg.nodes):
        for d in range(cfg.nodes):
            for vc in range(cfg.vcs):
                length = 1 + (s + d + vc) % 4
                tb.send(s, d, vc, length)
                await tb.drain(200, f"packet {s}->{d}")
                await ClockCycles(dut.clk, 2)
                h, n, head_lat, lat = tb.sb.latencies[-1]
                exp = zero_load_latency(cfg, hops(cfg, s, d), length)
                assert (h, n) == (hops(cfg, s, d), length)
                assert lat == exp, f"{s}->{d} vc {vc} len {length}: latency {lat}, model {exp}"
                assert head_lat == zero_load_latency(cfg, h, 1)
    per_hop = [(lat - zero_load_latency(cfg, 0, n)) / h for h, n, _, lat in tb.sb.latencies if h]
    tb.log.info("zero-load latency: %.2f cycles per hop (max %.2f)", sum(per_hop) / len(per_hop),
                max(per_hop))
    assert max(per_hop) <= 2
    tb.finish()


async def _random_traffic(tb, n_packets, max_len, *, vcs=(0, 1)):
    cfg = tb.cfg
    for _ in range(n_packets):
        s = tb.rng.randrange(cfg.nodes)
        tb.send(s, tb.rng.randrange(cfg.nodes), tb.rng.choice(vcs), tb.rng.randint(1, max_len))
    await tb.drain(200 * n_packets + 2000, f"{n_packets} random packets")


@cocotb.test()
async def test_random_traffic(dut):
    """Random src/dst/vc/length, with and without ejection backpressure and idle sources."""
    tb = NocTB(dut)
    await tb.reset()
    for mode, inj, ej, burst in STALL_MODES:
        tb.set_stalls(inj, ej, burst)
        await _random_traffic(tb, trials(40) * tb.cfg.nodes // 4, 6)
        tb.log.info("%s: %d packets delivered so far", mode, tb.sb.delivered)
    tb.finish()


@cocotb.test()
async def test_same_flow_in_order(dut):
    """Many packets of one (src, dst, vc) flow while other traffic crosses its path."""
    tb = NocTB(dut)
    await tb.reset()
    cfg = tb.cfg
    tb.set_stalls(0.0, 0.3, 4)
    far = cfg.nodes - 1
    for i in range(trials(10)):
        for vc in range(cfg.vcs):
            tb.send(0, far, vc, 1 + i % 5)
        tb.send(tb.rng.randrange(cfg.nodes), tb.rng.randrange(cfg.nodes), i % 2, 3)
    await tb.drain(20_000)
    tb.finish()


@cocotb.test()
async def test_bad_destination(dut):
    """Packets to nodes outside the mesh and orphan body flits are dropped and counted;
    the network keeps delivering everything else, before, between and after them."""
    tb = NocTB(dut)
    await tb.reset()
    cfg = tb.cfg
    top = (1 << cfg.coord_bits) - 1
    bad = [(cfg.cols, 0), (0, cfg.rows), (top, top), (cfg.cols, cfg.rows - 1)]
    tb.set_stalls(0.1, 0.3, 2)
    for i in range(trials(8)):
        s = tb.rng.randrange(cfg.nodes)
        vc = tb.rng.randrange(cfg.vcs)
        tb.send(s, tb.rng.randrange(cfg.nodes), vc, tb.rng.randint(1, 4))
        tb.send(s, bad[i % len(bad)], vc, tb.rng.randint(1, 5))
        tb.send(s, tb.rng.randrange(cfg.nodes), vc, tb.rng.randint(1, 4))
    # an orphan body + tail (no head): each flit is dropped and counted
    for f in make_packet(tb.coords(0), (0, 0), 0, [1, 2, 3])[1:]:
        tb.src[0, 0].send(f)
    tb.expected_drops += 2
    await tb.drain(20_000)
    await ClockCycles(dut.clk, 20)
    tb.log.info("o_dropped = %d", tb.dropped)
    await _random_traffic(tb, 4 * cfg.nodes, 4)
    tb.finish()


@cocotb.test()
async def test_request_response_no_deadlock(dut):
    """Every node is a memory server: a request ejects only while the server can queue
    its response (as a real memory does), responses are always consumed. All nodes
    flood requests; with requests on VC 0 and responses on VC 1 everything completes."""
    tb = NocTB(dut)
    await tb.reset()
    cfg = tb.cfg
    tb.set_stalls(0.0, 0.2, 2)
    served = [0]

    def serve(n):
        resp = tb.src[n, 1]
        orig = tb.sink[n, 0].on_item

        def on_item(item, cycle):
            orig(item, cycle)
            if item["kind"] & FlitKind.TAIL:      # whole request received: answer it
                src = item["src_y"] * cfg.cols + item["src_x"]
                tb.send(n, src, 1, 1 + (item["payload"] & 3))
                served[0] += 1
        tb.sink[n, 0].on_item = on_item
        tb.sink[n, 0].pacer = lambda: len(resp.queue) < 4      # bounded response queue

    for n in range(cfg.nodes):
        serve(n)
    n_req = trials(12) * cfg.nodes
    for i in range(n_req):
        s = tb.rng.randrange(cfg.nodes)
        tb.send(s, tb.rng.randrange(cfg.nodes), 0, tb.rng.randint(1, 4))
    await tb.drain(200 * n_req + 5000, "requests and their responses")
    assert served[0] == n_req
    tb.finish()


@cocotb.test()
async def test_saturation_drain(dut):
    """Every source injects back to back with ejection backpressure; after injection
    stops, everything drains within a bound (no deadlock)."""
    tb = NocTB(dut)
    await tb.reset()
    cfg = tb.cfg
    tb.set_stalls(0.0, 0.5, 3)
    per_node = trials(10)
    flits = 0
    for s in range(cfg.nodes):
        for _ in range(per_node):
            length = tb.rng.randint(1, 5)
            flits += length
            tb.send(s, tb.rng.randrange(cfg.nodes), tb.rng.randrange(cfg.vcs), length)
    await ClockCycles(dut.clk, 4 * per_node)
    bound = 20 * flits + 500
    waited = await tb.drain(bound, "saturated network to drain")
    tb.log.info("%d flits drained %d cycles after the first %d", flits, waited, 4 * per_node)
    tb.finish()


@cocotb.test()
async def test_reset_mid_traffic(dut):
    """A reset in the middle of traffic empties the network; it then works normally."""
    tb = NocTB(dut)
    await tb.reset()
    tb.set_stalls(0.0, 0.3)
    for _ in range(4 * tb.cfg.nodes):
        tb.send(tb.rng.randrange(tb.cfg.nodes), tb.rng.randrange(tb.cfg.nodes),
                tb.rng.randrange(2), 4)
    await ClockCycles(dut.clk, 15)
    await FallingEdge(dut.clk)
    for s in tb.src.values():
        s.clear()
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    for s in tb.sink.values():      # the reset legally dropped a pending valid
        s._pending = None
        s.protocol_errors.clear()
    for q in tb.sb.expected.values():
        q.clear()
    for k in tb.sb.partial:
        tb.sb.partial[k] = []
    tb.sb.errors.clear()
    await ClockCycles(dut.clk, 50)
    assert not tb.sb.errors, f"flits came out after reset: {tb.sb.errors[:2]}"
    await _random_traffic(tb, 3 * tb.cfg.nodes, 4)
    tb.finish()


@cocotb.test()
async def test_selfcheck_corrupted_expectation(dut):
    """The scoreboard works: a flipped payload bit and a missing packet are reported."""
    tb = NocTB(dut)
    await tb.reset()
    flits = tb.send(0, tb.cfg.nodes - 1, 0, 3)
    tb.sb.expected[0, tb.cfg.nodes - 1, 0][0] = [dict(f) for f in flits]
    tb.sb.expected[0, tb.cfg.nodes - 1, 0][0][1]["payload"] ^= 1
    tb.sb.expect(1, 2, 1, make_packet((1, 0), (2, 0), 1, [7]))     # never sent
    await ClockCycles(dut.clk, 100)
    try:
        tb.sb.check()
    except AssertionError as e:
        tb.log.info("scoreboard reported as it must: %s", e)
        assert "corrupted" in str(e) and "never arrived" in str(e), str(e)
    else:
        raise AssertionError("scoreboard passed a corrupted and a missing packet")
