"""Command processor (rtl/soc/cmdproc.py) on both simulators, tiny preset."""
import pytest

from tests.conftest import assert_passed

pytestmark = pytest.mark.sim


@pytest.mark.smoke
def test_cmd_processor(sim, sim_run):
    """Ring fetch over AXI (stalls), ISA checks, per-tile queues with tokens checked
    against models.chip's rules, barrier/fence/IRQ/HALT, errors, watchdog, soft reset;
    DISPATCH with a fake dispatch unit."""
    assert_passed(sim_run("cmd_processor", "tiny", sim, "tb.cmdproc.test_cmdproc"))


@pytest.mark.smoke
def test_isa_check_matches_model():
    """rtl.soc.cmdproc_check.IsaCheck == models.isa.check on legal, mutated and random
    command images (Amaranth simulator; every rule and detail code is reached)."""
    import random

    from amaranth.sim import Simulator

    from models.config import get_preset
    from models.isa import CMD_BYTES, Command, IsaError, check
    from rtl.soc.cmdproc_check import IsaCheck
    from tb.cmdproc.program import random_program

    cfg = get_preset("tiny")
    rng = random.Random(11)
    images = []
    for c in random_program(rng, cfg, 12) + [Command.barrier([0, 1])]:
        img = bytearray(c.to_bytes())
        images.append(bytes(img))
        for _ in range(6):
            m = bytearray(img)
            for _ in range(rng.randint(1, 2)):
                byte = rng.choice([0, 1, 2, 3, 4, 7] + list(range(16, 56)))
                m[byte] ^= 1 << rng.randrange(8)
            images.append(bytes(m))
    images += [bytes(rng.randrange(4) and rng.randrange(256) for _ in range(CMD_BYTES))
               for _ in range(40)]
    want = [check(Command.from_bytes(i), cfg) for i in images]
    codes = {f.code for f in want}
    assert {IsaError.NONE, IsaError.BAD_OPCODE, IsaError.BAD_FIELD, IsaError.BAD_TILE,
            IsaError.DMA, IsaError.TENSOR} <= codes, codes
    dut = IsaCheck(cfg)
    got = []

    async def bench(ctx):
        for img in images:
            ctx.set(dut.i_cmd, int.from_bytes(img, "little"))
            got.append((ctx.get(dut.o_code), ctx.get(dut.o_detail)))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    assert len(got) == len(images)
    bad = [(i, w, g) for i, (w, g) in enumerate(zip(want, got)) if (int(w.code), w.detail) != g]
    assert not bad, bad[:5]


def test_schedule_checker_catches_bad_schedules():
    """The testbench's schedule checker reports a start without its token, a wrong
    payload and a start ahead of queue order (it is what the RTL tests rely on)."""
    import random

    from models.config import get_preset
    from models.isa import Command, Queue
    from tb.cmdproc.program import ScheduleChecker, random_compute, random_load, work_payload

    cfg = get_preset("tiny")
    rng = random.Random(3)
    ld = random_load(rng, cfg, 0, signal_next=1)
    mm = random_compute(rng, cfg, 0, wait_prev=1)
    ok = ScheduleChecker(cfg, [ld, mm])
    ok.start(0, Queue.LOAD, work_payload(ld), 1)
    ok.done(0, Queue.LOAD, 5)
    ok.start(0, Queue.COMPUTE, work_payload(mm), 7)
    ok.done(0, Queue.COMPUTE, 9)
    assert not ok.errors and ok.left() == 0 and ok.completed == 2
    early = ScheduleChecker(cfg, [ld, mm])
    early.start(0, Queue.LOAD, work_payload(ld), 1)
    early.start(0, Queue.COMPUTE, work_payload(mm), 2)       # before the load completed
    assert any("without its tokens" in e for e in early.errors)
    wrong = ScheduleChecker(cfg, [ld])
    wrong.start(0, Queue.LOAD, work_payload(random_load(rng, cfg, 0)), 1)
    assert any("expected" in e for e in wrong.errors)
    order = ScheduleChecker(cfg, [Command.sync(0, Queue.LOAD, wait_next=1), ld])
    order.start(0, Queue.LOAD, work_payload(ld), 1)          # the SYNC cannot have run
    assert order.errors
