"""cocotb tests of the host register block (tests/sim/test_regs_sim.py).

Every test takes its registers, fields, access types and reset values from the
register map compiled from rtl/regs/jalapeno.rdl (the DUT's own source), and the
cycle-accurate model (tb/regs/model.py) checks every output port, R and B beat on
every cycle. Tests that use cocotbext-axi run under each of STALL_MODES (random and
bursty pauses on AW, W, B, AR and R). Seeds come from COCOTB_RANDOM_SEED (logged).
"""
import zlib

import cocotb
from cocotb.triggers import Combine

from models.axi import Resp
from tb.common.clocked import run_seed, trials
from tb.regs.tb import STALL_MODES, RegsTB

OKAY, SLVERR = int(Resp.OKAY), int(Resp.SLVERR)


def _rw_mask(r) -> int:
    """Bits that read back what software wrote (rw storage, not pulses)."""
    return sum(f.mask for f in r.fields if f.kind in ("control", "scratch") and not f.singlepulse)


def _writable(tb):
    """Registers with a software-writable field that is not an interrupt or pulse."""
    return [r for r in tb.regs if any(f.kind in ("control", "scratch") and not f.singlepulse
                                      for f in r.fields)]


async def _read_all(tb, what: str):
    """Read every register; the model checks each value, this checks the response."""
    for r in tb.regs:
        value, resp = await tb.read(r.address)
        assert resp == OKAY, f"{what}: read {r.path} @ {r.address:#x}: resp {resp}"


@cocotb.test()
async def test_reset_values(dut):
    """Every register reads its RDL reset value after reset (inputs 0); the identity
    registers match the config directly (not through the RDL)."""
    tb = RegsTB(dut)
    await tb.reset()
    cfg = tb.config
    for r in tb.regs:
        value, resp = await tb.read(r.address)
        assert resp == OKAY, f"{r.path}: resp {resp}"
        assert value == r.reset, f"{r.path} @ {r.address:#x}: {value:#x}, reset {r.reset:#x}"
    ident = {r.path: (await tb.read(r.address))[0] for r in tb.regs if "[" not in r.path}
    assert ident["ID"].to_bytes(4, "big") == b"JLPN", hex(ident["ID"])
    assert ident["CONFIG_HASH"] == zlib.crc32(cfg.to_json().encode())
    assert ident["ARRAY_SHAPE"] == cfg.systolic.rows | cfg.systolic.cols << 16
    cap = ident["CAPABILITY"]
    assert cap & 1 == int(cfg.systolic.fp8) and cap >> 1 & 1 == 1
    assert cap >> 16 & 0xFF == cfg.hbm.channels
    assert cap >> 8 & 0xFF == sum(1 for r in tb.regs if r.key == "tile_status")
    tb.finish()


@cocotb.test()
async def test_rw_random(dut):
    """Random values into every rw field (each stall mode), read back; the outputs
    follow (checked by the model every cycle)."""
    tb = RegsTB(dut)
    await tb.reset()
    rng = tb.rng
    regs = _writable(tb)
    for mode, stall, burst in STALL_MODES:
        tb.set_stalls(stall, burst)
        for _ in range(trials(3)):
            for r in rng.sample(regs, len(regs)):
                v = rng.getrandbits(32) & ~sum(f.mask for f in r.fields if f.singlepulse)
                assert await tb.write(r.address, v) == OKAY, f"{r.path} [{mode}]"
                got, resp = await tb.read(r.address)
                exp = tb.model.value(r)
                assert (got, resp) == (exp, OKAY), f"{r.path} [{mode}]: {got:#x} != {exp:#x}"
                assert got & r.sw_mask == v & r.sw_mask, f"{r.path} [{mode}]: wrote {v:#x}"
    tb.finish()


@cocotb.test()
async def test_ro_ignore_writes(dut):
    """Writes to constants, status wires and counters answer OKAY and change nothing;
    the bits of rw registers outside their fields read 0."""
    tb = RegsTB(dut)
    await tb.reset()
    rng = tb.rng
    for fp, (h, width, f) in tb.model.inputs.items():
        if f.kind == "wire":
            tb.model.set_input(fp, rng.getrandbits(width))
    await tb.idle()
    for mode, stall, burst in STALL_MODES:
        tb.set_stalls(stall, burst)
        for r in tb.regs:
            if r.sw_mask == 0xFFFF_FFFF:
                continue
            before = tb.model.value(r)
            assert await tb.write(r.address, rng.getrandbits(32)) == OKAY, r.path
            got, _ = await tb.read(r.address)
            assert got & ~r.sw_mask == before & ~r.sw_mask, \
                f"{r.path} [{mode}]: read-only bits {before:#x} -> {got:#x}"
    tb.finish()


@cocotb.test()
async def test_w1c_interrupts(dut):
    """Interrupt status bits: a one-cycle hardware pulse sets them (sticky), writing 0
    keeps them, writing 1 clears exactly the written bits; the interrupt output is
    status AND enable; a set held during the clear wins (precedence = hw: the output
    never drops, checked every cycle)."""
    tb = RegsTB(dut)
    await tb.reset()
    m = tb.model
    intr_regs = [r for r in tb.regs if r.has_intr]
    assert intr_regs, "the map has no interrupt register"
    for mode, stall, burst in STALL_MODES:
        tb.set_stalls(stall, burst)
        for r in intr_regs:
            fields = [f for f in r.fields if f.kind == "intr"]
            for f in fields:
                fp = f"{r.path}.{f.name}"
                er, ef = tb.regs.field(f.enable) if f.enable else (None, None)
                m.pulse(fp, [1])
                await tb.idle()
                assert m.state[fp] == 1
                got, _ = await tb.read(r.address)
                assert got >> f.lsb & 1, f"{fp} [{mode}]: not set by a pulse"
                await tb.write(r.address, 0)                       # 0 keeps it
                assert (await tb.read(r.address))[0] >> f.lsb & 1, f"{fp}: cleared by 0"
                others = sum(g.mask for g in fields if g is not f)
                await tb.write(r.address, others)                  # other bits only
                assert (await tb.read(r.address))[0] >> f.lsb & 1, f"{fp}: cleared by others"
                if ef is not None:                                 # output = status & enable
                    await tb.write(er.address, ef.mask)
                    await tb.idle()
                    assert m.intr(r) == 1
                    m.set_input(fp, 1)                             # set held during the clear
                    await tb.write(r.address, f.mask)
                    await tb.idle(3)
                    assert m.state[fp] == 1, f"{fp}: a clear beat a simultaneous set"
                    m.set_input(fp, 0)
                    await tb.idle()
                await tb.write(r.address, f.mask)                  # 1 clears
                got, _ = await tb.read(r.address)
                assert not got >> f.lsb & 1, f"{fp} [{mode}]: not cleared by writing 1"
                if ef is not None:
                    await tb.write(er.address, 0)
    # random hardware pulses against random clears
    tb.set_stalls(0.3, 4)
    for r in intr_regs:
        for _ in range(trials(8)):
            for f in r.fields:
                if f.kind == "intr":
                    m.pulse(f"{r.path}.{f.name}",
                            [tb.rng.random() < 0.3 for _ in range(tb.rng.randint(1, 6))])
            await tb.write(r.address, tb.rng.getrandbits(32))
            await tb.read(r.address)
    tb.finish()


@cocotb.test()
async def test_strobes(dut):
    """Doorbell (swmod) and soft reset (singlepulse): one pulse per write, aligned with
    the written value; soft reset reads 0 and leaves the other CONTROL bits as written."""
    tb = RegsTB(dut)
    await tb.reset()
    m = tb.model
    swmod = [(r, f) for r in tb.regs for f in r.fields if f.swmod]
    pulses = [(r, f) for r in tb.regs for f in r.fields if f.singlepulse]
    assert swmod and pulses, "the map has no strobe or pulse field"
    for mode, stall, burst in STALL_MODES:
        tb.set_stalls(stall, burst)
        for r, f in swmod:
            name = f"o_{r.key}_{f.name}_wr"
            n0 = m.strobes_seen.get(name, 0)
            k = tb.rng.randint(2, 5)
            for _ in range(k):
                await tb.write(r.address, tb.rng.getrandbits(32))
            await tb.write(r.address, 0xAB, first=f.lsb // 8, nbytes=1)   # one byte: strobe
            await tb.idle()
            assert m.strobes_seen.get(name, 0) - n0 == k + 1, \
                f"{name} [{mode}]: {m.strobes_seen.get(name, 0) - n0} pulses for {k + 1} writes"
        for r, f in pulses:
            keep = r.sw_mask & ~sum(g.mask for g in r.fields if g.singlepulse)
            v = tb.rng.getrandbits(32) & keep
            await tb.write(r.address, v | f.mask)
            got, _ = await tb.read(r.address)
            assert got == v, f"{r.path}.{f.name} [{mode}]: read {got:#x}, expected {v:#x}"
    tb.finish()


@cocotb.test()
async def test_wstrb(dut):
    """Partial writes (every contiguous byte range, cocotbext sets WSTRB) merge bytes."""
    tb = RegsTB(dut)
    await tb.reset()
    rng = tb.rng
    regs = _writable(tb)
    for mode, stall, burst in STALL_MODES:
        tb.set_stalls(stall, burst)
        for r in regs:
            for first in range(4):
                for nbytes in range(1, 5 - first):
                    old = tb.model.value(r)
                    v = rng.getrandbits(32)
                    assert await tb.write(r.address, v, first=first, nbytes=nbytes) == OKAY
                    lanes = sum(0xFF << 8 * b for b in range(first, first + nbytes)) & _rw_mask(r)
                    exp = (old & ~lanes) | (v & lanes)
                    got, _ = await tb.read(r.address)
                    assert got == exp, f"{r.path} bytes {first}+{nbytes} [{mode}]: " \
                                       f"{got:#x} != {exp:#x}"
    tb.finish()


@cocotb.test()
async def test_unmapped_slverr(dut):
    """Unmapped addresses (gaps and past the map) answer SLVERR, reads return 0, writes
    change no register (all read back afterwards)."""
    tb = RegsTB(dut)
    await tb.reset()
    for r in _writable(tb):
        await tb.write(r.address, tb.rng.getrandbits(32))
    holes = tb.unmapped(trials(6))
    assert holes, "no unmapped address in the address space"
    for mode, stall, burst in STALL_MODES:
        tb.set_stalls(stall, burst)
        for a in holes:
            assert await tb.write(a, tb.rng.getrandbits(32)) == SLVERR, f"write {a:#x} [{mode}]"
            assert await tb.read(a) == (0, SLVERR), f"read {a:#x} [{mode}]"
        await _read_all(tb, mode)
    tb.finish()


@cocotb.test()
async def test_counters(dut):
    """Counters add their increment input every cycle (random values and gaps), read
    while counting; status wires read the inputs as driven."""
    tb = RegsTB(dut)
    await tb.reset()
    m = tb.model
    counters = [(r, f) for r in tb.regs for f in r.fields if f.kind == "counter"]
    for mode, stall, burst in STALL_MODES:
        tb.set_stalls(stall, burst)
        for r, f in counters:
            fp = f"{r.path}.{f.name}"
            m.pulse(fp, [tb.rng.getrandbits(f.incr_width) if tb.rng.random() < 0.7 else 0
                         for _ in range(tb.rng.randint(5, 40))])
        for _ in range(trials(4)):
            r, f = tb.rng.choice(counters)
            await tb.read(r.address)                   # the model checks the value
        await tb.idle(45)
        for r, f in counters:
            got, _ = await tb.read(r.address)
            assert got == m.state[f"{r.path}.{f.name}"], f"{r.path}: {got}"
    assert sum(m.state[f"{r.path}.{f.name}"] for r, f in counters) > 0, "nothing counted"
    tb.finish()


@cocotb.test()
async def test_concurrent_traffic(dut):
    """Reads and writes issued at the same time from several coroutines to random
    addresses (mapped and not), while every hardware input changes at random: the
    model checks every cycle, under each stall mode."""
    tb = RegsTB(dut)
    await tb.reset()
    rng = tb.rng
    tb.model.set_activity(0.2)
    space = 1 << tb.regs.addr_width
    addrs = [r.address for r in tb.regs] + tb.unmapped(4)

    async def writer(n):
        for _ in range(n):
            a = rng.choice(addrs) if rng.random() < 0.9 else rng.randrange(0, space, 4)
            first = rng.randrange(4)
            await tb.write(a, rng.getrandbits(32), first=first, nbytes=rng.randint(1, 4 - first))

    async def reader(n):
        for _ in range(n):
            await tb.read(rng.choice(addrs))

    for mode, stall, burst in STALL_MODES:
        tb.set_stalls(stall, burst)
        n = trials(25)
        await Combine(cocotb.start_soon(writer(n)), cocotb.start_soon(reader(n)),
                      cocotb.start_soon(reader(n)))
    tb.model.quiet()
    tb.finish()
    tb.log.info("run seed %d", run_seed())


@cocotb.test()
async def test_raw_ordering(dut):
    """Hand-driven host: W before AW, AW before W (by up to 20 cycles), both together,
    late BREADY/RREADY, arbitrary WSTRB (non-contiguous, zero) and back-to-back
    transactions: every response correct, never hangs."""
    tb = RegsTB(dut, raw=True)
    await tb.reset()
    rng = tb.rng
    raw = tb.raw
    regs = [r for r in tb.regs]
    holes = tb.unmapped(4)
    for i in range(trials(20)):
        r = rng.choice(regs)
        addr = r.address if rng.random() < 0.85 or not holes else rng.choice(holes)
        order = rng.choice(["aw first", "w first", "together"])
        d = rng.randint(1, 20)
        aw, w = {"aw first": (0, d), "w first": (d, 0), "together": (0, 0)}[order]
        strb = rng.choice([0xF, 0x0, 0x5, 0xA, 0x9, rng.getrandbits(4)])
        resp = await raw.write(addr, rng.getrandbits(32), strb,
                               aw_delay=aw, w_delay=w, b_delay=rng.choice([0, 0, 3, 15]))
        assert resp == (OKAY if tb.regs.at(addr) else SLVERR), f"write #{i} {addr:#x} {order}"
        value, resp = await raw.read(addr, ar_delay=rng.choice([0, 2]),
                                     r_delay=rng.choice([0, 0, 4, 12]))
        assert resp == (OKAY if tb.regs.at(addr) else SLVERR), f"read #{i} {addr:#x}"
    # a zero-strobe write to a doorbell register pulses nothing
    for r in regs:
        for f in r.fields:
            if f.swmod:
                name = f"o_{r.key}_{f.name}_wr"
                n0 = tb.model.strobes_seen.get(name, 0)
                await raw.write(r.address, 0xFFFF_FFFF, 0)
                await tb.idle()
                assert tb.model.strobes_seen.get(name, 0) == n0, f"{name} pulsed on WSTRB 0"
    # write and read channels used at once, back to back
    tasks = []
    for _ in range(trials(4)):
        r = rng.choice(regs)
        tasks.append(cocotb.start_soon(raw.write(r.address, rng.getrandbits(32))))
        tasks.append(cocotb.start_soon(raw.read(rng.choice(regs).address)))
    await Combine(*tasks)
    tb.finish()


@cocotb.test()
async def test_model_catches_bugs(dut):
    """Self-check: a corrupted expectation is reported, both on the field's output port
    (every cycle) and on the R beat of a read (the checker is live)."""
    tb = RegsTB(dut)
    await tb.reset()
    r, f = next((r, f) for r in tb.regs for f in r.fields
                if f.kind == "control" and not f.singlepulse)
    tb.model.state[f"{r.path}.{f.name}"] ^= 1                 # corrupt the model
    await tb.read(r.address)
    await tb.idle()
    try:
        tb.finish()
    except AssertionError as e:
        text = " | ".join(tb.model.errors)
        assert f"o_{r.key}_{f.name}" in text and "R 0x" in text, text
        tb.log.info("reported as expected: %s", str(e)[:160])
    else:
        raise AssertionError("a corrupted register model was not reported")
