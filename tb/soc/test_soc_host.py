"""cocotb tests of the chip top's host AXI4 port into HBM (``soc.s_axi_host``, an
``AxiToNoc`` at ``soc.host_node``): random traffic against a Python model of HBM and the
backdoor, a GEMM loaded and read back only through the port, error responses that never
hang, and reset in the middle of traffic. Random stalls on every channel of both host
ports (``SocTB.set_stalls``); every random test logs its seed."""
from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from models import compiler as _c
from models.axi import Burst, Resp
from models.axi_noc import max_beats
from models.chip import write_ring
from models.isa import CMD_BYTES
from models.runtime import run_gemm
from tb.common.clocked import bounded, trials
from tb.soc.program import load_image, read_region, run_ring
from tb.soc.tb import TXN_CYCLES, SocTB

#: Register values (rtl/regs/jalapeno.rdl).
ID_JLPN = 0x4A4C504E
INTR_DONE = 1
#: Cycle bound of one GEMM program on tiny (8x8x8 takes ~850 cycles without host traffic).
RUN_CYCLES = 50_000
#: Probability of a stall per channel and cycle when a test stalls.
STALL = 0.3


async def start(dut, stall: float) -> SocTB:
    tb = SocTB(dut, stall=stall)
    tb.log.info("seed %d, stall %.2f, host node %d, HBM %d bytes in %d-byte granules",
                tb.seed, stall, tb.config.soc.host_node, tb.config.hbm.total_bytes,
                tb.config.hbm.interleave_bytes)
    await tb.reset()
    return tb


async def fill_random(tb: SocTB) -> bytearray:
    """Backdoor-write random bytes over all of HBM; return the model (a copy)."""
    data = bytes(tb.rng.getrandbits(8) for _ in range(tb.config.hbm.total_bytes))
    await tb.bd_write(0, data)
    return bytearray(data)


async def check_image(tb: SocTB, model: bytearray, what: str, skip=()) -> bytes:
    """The whole HBM image (backdoor) equals ``model`` outside the ``skip`` ranges;
    return the image."""
    img = await tb.bd_read(0, len(model))
    got = np.frombuffer(img, np.uint8).copy()
    ref = np.frombuffer(bytes(model), np.uint8).copy()
    for lo, hi in skip:
        got[lo:hi] = ref[lo:hi]
    diff = np.flatnonzero(got != ref)
    assert diff.size == 0, f"{what}: HBM differs from the model at {diff.size} bytes, " \
        f"first (address, chip, model) " \
        f"{[(hex(int(x)), int(got[x]), int(ref[x])) for x in diff[:8]]} " \
        f"(seed {tb.seed})"
    return img


def _length(rng, g: int) -> int:
    """Short (sub-word), medium (one burst) and long (several bursts and granules)."""
    kind = rng.random()
    if kind < 0.3:
        return rng.randint(1, 16)
    if kind < 0.7:
        return rng.randint(17, 160)
    return rng.randint(161, g + g // 2)


async def hbm_worker(tb: SocTB, model: bytearray, lo: int, hi: int, ops: int, log: list):
    """Random host writes / reads with random lengths and byte-aligned starts inside the
    worker's own slice [lo, hi) of HBM (slices are disjoint: the model needs no ordering
    between workers); every read is checked against the model."""
    rng, g = tb.rng, tb.config.hbm.interleave_bytes
    for _ in range(ops):
        n = min(_length(rng, g), hi - lo)
        addr = rng.randint(lo, hi - n)
        if rng.random() < 0.5:
            data = bytes(rng.getrandbits(8) for _ in range(n))
            await tb.host_write(addr, data)
            model[addr:addr + n] = data
            log.append(("W", addr, n))
        else:
            got = await tb.host_read(addr, n)
            assert got == bytes(model[addr:addr + n]), \
                f"host read {addr:#x}+{n} differs from the model (seed {tb.seed})"
            log.append(("R", addr, n))


async def reg_worker(tb: SocTB, ops: int) -> None:
    """AXI4-Lite traffic next to the HBM traffic: SCRATCH write / read back, ID."""
    for _ in range(ops):
        v = tb.rng.getrandbits(32)
        await tb.wr("SCRATCH", v)
        assert await tb.rd("SCRATCH") == v, f"SCRATCH (seed {tb.seed})"
        assert await tb.rd("ID") == ID_JLPN


async def join(tasks, cycles: int, what: str):
    return [await bounded(t, cycles=cycles, what=what) for t in tasks]


# --- (a) random traffic ------------------------------------------------------------------
@cocotb.test()
@cocotb.parametrize(stall=[0.0, STALL])
async def test_host_random(dut, stall):
    """Backdoor-filled HBM read through the port; then 4 concurrent host workers (random
    lengths 1..1.5 granules, byte-aligned starts, disjoint slices) and register traffic
    on s_axil; every read vs the model, finally the whole image (backdoor) vs the model
    (and, without stalls, a self-check: one corrupted model byte is reported)."""
    tb = await start(dut, stall)
    cfg = tb.config
    total, g = cfg.hbm.total_bytes, cfg.hbm.interleave_bytes
    model = await fill_random(tb)
    # backdoor -> port: reads spanning channels and the last byte of HBM
    for addr, n in ((0, 2 * g + 24), (total - 37, 37), (g - 3, 6)):
        got = await tb.host_read(addr, n)
        assert got == bytes(model[addr:addr + n]), f"read {addr:#x}+{n} after backdoor fill"

    workers, ops = 4, trials(6)
    s = total // workers
    log: list = []
    tasks = [cocotb.start_soon(hbm_worker(tb, model, k * s, (k + 1) * s, ops, log))
             for k in range(workers)]
    tasks.append(cocotb.start_soon(reg_worker(tb, trials(4))))
    await join(tasks, cycles=200_000, what="the host workers")
    tb.log.info("%d host transfers (%d writes, %d bytes) with stall %.2f in %d cycles",
                len(log), sum(op == "W" for op, _, _ in log), sum(n for _, _, n in log),
                stall, tb.now())
    # port -> backdoor: every write landed where models.hbm.route puts it, nothing else
    await check_image(tb, model, "after random host traffic")
    assert int(dut.o_noc_dropped.value) == 0
    if not stall:        # self-check: one wrong byte in the expectation is reported
        bad = tb.rng.randrange(total)
        model[bad] ^= 0x5A
        try:
            await check_image(tb, model, "self-check")
        except AssertionError as e:
            assert hex(bad) in str(e), str(e)
        else:
            raise AssertionError(f"a corrupted model byte at {bad:#x} was not reported")


# --- (b) a GEMM through the host port only -------------------------------------------
@cocotb.test()
async def test_gemm_via_host_port(dut):
    """8x8x8 INT8 GEMM: A, B and the ring written through s_axi_host (not the backdoor),
    C read back through it while both host ports stall; during the run the host reads A
    and B concurrently with the tiles' DMA. C == run_gemm's C == int64 numpy."""
    tb = await start(dut, STALL)
    cfg = tb.config
    rng = np.random.default_rng(tb.seed)
    m = k = n = 8
    a = rng.integers(-128, 128, (m, k), dtype=np.int64)
    b = rng.integers(-128, 128, (k, n), dtype=np.int64)
    run = run_gemm(a, b, config=cfg)
    plan = run.plan
    hbm = np.zeros(cfg.hbm.total_bytes, np.uint8)
    hbm[plan.a_addr:plan.a_addr + plan.a_bytes] = _c.pack_a(plan, a.astype(np.int8).view(np.uint8))
    hbm[plan.b_addr:plan.b_addr + plan.b_bytes] = _c.pack_b(plan, b.astype(np.int8).view(np.uint8))
    entries = write_ring(hbm, plan.ring_addr, run.commands) + 1   # + a zero entry
    end = plan.ring_addr + entries * CMD_BYTES
    await load_image(tb, hbm, plan.ring_addr, entries, via="axi")
    got = await read_region(tb, 0, end)                       # backdoor: it landed
    assert np.array_equal(got, hbm[:end]), "image written through s_axi_host differs"

    ab_lo, ab_hi = min(plan.a_addr, plan.b_addr), max(plan.a_addr + plan.a_bytes,
                                                       plan.b_addr + plan.b_bytes)
    done, reads = [False], [0]

    async def reader():
        while not done[0]:
            lo = tb.rng.randint(ab_lo, ab_hi - 1)
            cnt = tb.rng.randint(1, ab_hi - lo)
            got = await tb.host_read(lo, cnt)
            assert got == hbm[lo:lo + cnt].tobytes(), f"host read {lo:#x}+{cnt} during the run"
            reads[0] += 1

    rd_task = cocotb.start_soon(reader())
    st = await run_ring(tb, plan.ring_addr, entries, cycles=RUN_CYCLES,
                        what=f"the IRQ of the {m}x{k}x{n} GEMM")
    done[0] = True
    await bounded(rd_task, cycles=TXN_CYCLES * 4, what="the host reader to stop")
    assert st["INTR_STATUS"] == INTR_DONE, f"INTR_STATUS {st['INTR_STATUS']:#x}, ERROR_CODE " \
        f"{st['ERROR_CODE']:#x}, ERROR_ADDR {st['ERROR_ADDR']:#x}"
    assert st["ERROR_CODE"] == 0 and st["IRQ_VALUE"] == _c.IRQ_DONE
    assert st["COMPLETIONS"] == len(run.commands)

    out = np.zeros_like(hbm)
    out[plan.c_addr:plan.c_addr + plan.c_bytes] = await read_region(
        tb, plan.c_addr, plan.c_bytes, via="axi")
    c = _c.unpack_c(plan, out).view(np.int32)
    assert np.array_equal(c, run.c), f"C differs from run_gemm:\n{c}\nvs\n{run.c}"
    assert np.array_equal(c, (a @ b).astype(np.int32)), "C differs from int64 numpy"
    tb.log.info("GEMM %dx%dx%d via s_axi_host: %d commands, %d cycles doorbell->IRQ with "
                "%d concurrent host reads", m, k, n, len(run.commands), st["cycles"], reads[0])


# --- (c) error responses -------------------------------------------------------------------
@cocotb.test()
@cocotb.parametrize(stall=[0.0, STALL])
async def test_host_errors(dut, stall):
    """Bursts the port cannot serve are answered, never hang, and write nothing: past HBM
    (DECERR: at its end, at 0xFFFFFF00), crossing a granule (DECERR); narrow, FIXED or
    longer than max_beats (SLVERR). A transfer straddling the end of HBM is DECERR and
    writes exactly its bursts below the end (cocotbext-axi splits at 4 KiB, and HBM ends
    on a 4 KiB boundary). Then normal traffic still works."""
    tb = await start(dut, stall)
    cfg = tb.config
    W, total, g = tb.W, cfg.hbm.total_bytes, cfg.hbm.interleave_bytes
    model = await fill_random(tb)
    host = tb.host
    cyc = TXN_CYCLES + 64 * max_beats(cfg)

    async def write(addr, n, resp, **kw):
        r = await bounded(host.write(addr, bytes(range(n)), **kw), cycles=cyc,
                          what=f"B of the bad write at {addr:#x}")
        assert int(r.resp) == resp, f"write {addr:#x}+{n} {kw}: resp {r.resp}, want {resp}"

    async def read(addr, n, resp, **kw):
        r = await bounded(host.read(addr, n, **kw), cycles=cyc,
                          what=f"R of the bad read at {addr:#x}")
        assert int(r.resp) == resp, f"read {addr:#x}+{n} {kw}: resp {r.resp}, want {resp}"

    D, S = Resp.DECERR, Resp.SLVERR
    bad = [(total, W), (total, 4 * W), (0xFFFFFF00, W)]
    if g % 4096:           # cocotbext-axi never issues a burst across 4 KiB itself
        bad += [(g - W, 2 * W), (2 * g - 5, 9)]
    for addr, n in bad:
        await write(addr, n, D)
        await read(addr, n, D)
    assert total % 4096 == 0
    for addr, n in ((total - W, 2 * W), (total - 3, 5)):      # straddling the end
        await write(addr, n, D)
        await read(addr, n, D)
        model[addr:total] = bytes(range(n))[:total - addr]
    await write(0x40, W, S, size=0)                          # narrow: W one-byte beats
    await read(0x40, W, S, size=0)
    await write(0x80, 2 * W, S, burst=Burst.FIXED)
    await read(0x80, 2 * W, S, burst=Burst.FIXED)
    long_n = 2 * max_beats(cfg) * W                          # one burst of 2 x max_beats
    assert long_n <= g, "the long burst must stay in one granule"
    for side in (host.write_if, host.read_if):
        side.max_burst_len = 2 * max_beats(cfg)
    await write(0, long_n, S)
    await read(0, long_n, S)
    for side in (host.write_if, host.read_if):
        side.max_burst_len = max_beats(cfg)
    # the host path still works, and no error burst wrote anything
    addr, data = g - 11, bytes(tb.rng.getrandbits(8) for _ in range(3 * W + 5))
    await tb.host_write(addr, data)
    model[addr:addr + len(data)] = data
    n = len(data) + 8
    assert await tb.host_read(addr - 4, n) == bytes(model[addr - 4:addr - 4 + n])
    # a host transfer straddling the end: the in-range granule part is written, the rest
    # (its own bursts) answered DECERR
    worst = await tb.host_write(total - 6, bytes(12), check=False)
    assert worst == D
    model[total - 6:] = bytes(6)
    await check_image(tb, model, "after error bursts")
    assert await tb.rd("ID") == ID_JLPN
    assert int(dut.o_noc_dropped.value) == 0


# --- (d) reset during traffic ---------------------------------------------------------------
@cocotb.test()
async def test_reset_during_host_traffic(dut):
    """Reset at a random cycle while long host writes, reads and register accesses are in
    flight (with stalls): the pending calls are flushed (bounded), memory outside the
    written ranges is intact, registers are back at their reset values, and host traffic
    on both ports then works again (checked against the model and the backdoor)."""
    tb = await start(dut, STALL)
    cfg = tb.config
    total, g = cfg.hbm.total_bytes, cfg.hbm.interleave_bytes
    model = await fill_random(tb)
    for rnd in range(trials(1)):
        await tb.wr("SCRATCH", 0x1234_5678)
        skip = []
        tasks = []
        for _ in range(3):
            n = tb.rng.randint(g // 2, 2 * g)
            addr = tb.rng.randint(0, total - n)
            skip.append((addr, addr + n))
            tasks.append(cocotb.start_soon(tb.host_write(addr, bytes(n), check=False)))
            a2 = tb.rng.randint(0, total - n)
            tasks.append(cocotb.start_soon(tb.host_read_resp(a2, n)))
        tasks.append(cocotb.start_soon(tb.axil.read(tb.regs["ID"].address, 4)))
        wait = tb.rng.randint(5, 300)
        await ClockCycles(dut.clk, wait)
        tb.log.info("round %d: reset %d cycles into the traffic (seed %d)", rnd, wait, tb.seed)
        await tb.reset()
        res = await join(tasks, cycles=TXN_CYCLES, what="the flushed host transfers")
        flushed = sum(r is None or (isinstance(r, tuple) and r[1] is None) for r in res)
        tb.log.info("round %d: %d of %d transfers flushed by the reset", rnd, flushed, len(res))
        # what the writes did is unknown (partly written): take it from the chip
        img = await check_image(tb, model, f"round {rnd}: after reset", skip=skip)
        for lo, hi in skip:
            model[lo:hi] = img[lo:hi]
        assert await tb.rd("SCRATCH") == 0, "SCRATCH survived the reset"
        assert await tb.rd("ID") == ID_JLPN
        # traffic works again
        log: list = []
        s = total // 2
        await join([cocotb.start_soon(hbm_worker(tb, model, k * s, (k + 1) * s, trials(2), log))
                    for k in range(2)], cycles=100_000, what="host traffic after the reset")
        await check_image(tb, model, f"round {rnd}: traffic after reset")
    assert int(dut.o_noc_dropped.value) == 0

