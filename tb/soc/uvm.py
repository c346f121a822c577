"""pyuvm environment of the chip top (``soc``, rtl/soc/top.py): random command streams,
bad inputs and resets, checked against ``models.chip.ChipModel``.

Components
----------
SocUvmTB         :class:`tb.soc.tb.SocTB` (AXI4-Lite master, HBM backdoor, ``wait_irq``)
                 plus the ring layout, an HBM mirror and register helpers
ProgramItem      one stimulus: a command list and how it runs (``kind``: program, soft or
                 hard reset in its middle, a ring whose tail no HBM channel owns)
HostDriver       programs the ring through the backdoor and the doorbell over AXI4-Lite;
                 while the chip runs it only awaits ``o_irq`` (bounded); then reads the
                 registers and the whole HBM image
SocScoreboard    ``ChipModel`` (kept across items: the tiles' SRAMs and tokens persist) run
                 on the same image and ring: HBM bit-exact, COMPLETIONS (delta),
                 RING_HEAD, IRQ_VALUE, ERROR_CODE / ERROR_ADDR, INTR_STATUS; resets: idle,
                 nothing pending, nothing written outside the store regions
SocCoverage      cocotb-coverage: opcode x queue x token flags, opcode x error kind
SocEnv           wires them (the tests are in :mod:`tb.soc.test_soc_uvm`)

Sequences (stimulus; expectations come only from the scoreboard's model):
ScrubSeq, RandomSeq (:func:`tb.soc.seq.random_program`), BadInputSeq (the command
processor's bad-command list, ``tb.cmdproc.test_cmdproc._bad_cases``, plus token overflow
and a wait never signalled), SoftResetSeq, HardResetSeq, RingDecerrSeq.

DECERR at chip level: every address the ISA check lets a DMA command use (``[0,
hbm.total_bytes)``) belongs to a channel, so an unowned address is only reachable by the
ring fetch: RING_BASE just below the end of HBM, the ring's tail past it (AxiToNoc
answers DECERR -> DMA_FAULT, detail DECERR, at that entry). A DMA command past the end
of HBM is the check error DMA / WINDOW (in BadInputSeq).
"""
from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles
from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db
from pyuvm import (ConfigDB, uvm_analysis_port, uvm_driver, uvm_env, uvm_sequence,
                   uvm_sequence_item, uvm_sequencer, uvm_subscriber)

from models import moe_dispatch
from models.chip import ChipModel
from models.dma import DmaError
from models.isa import CMD_BYTES, Command, Fault, IsaError, Opcode, Queue, error_word
from tb.common.clocked import bounded, trials
from tb.common.stream import signal_int
from tb.soc.seq import Layout, dep_label, random_matmul, random_program, scrub_program
from tb.soc.tb import SocTB

INTR_DONE, INTR_ERROR, INTR_HALT = 1, 2, 4
CTRL_ENABLE, CTRL_SOFT_RESET = 1, 2
STATUS_IDLE = 1
REGS = ("INTR_STATUS", "ERROR_CODE", "ERROR_ADDR", "IRQ_VALUE", "COMPLETIONS", "RING_HEAD",
        "STATUS")
#: Cycles allowed per command of a program (tiny: ~60-120 each), on top of the watchdog.
CYCLES_PER_CMD = 1500


class SocUvmTB(SocTB):
    """SocTB + the ring of :class:`tb.soc.seq.Layout`, an HBM mirror and helpers."""

    def __init__(self, dut):
        super().__init__(dut)
        self.lay = Layout.of(self.config)
        self.mirror = None           # what the testbench knows HBM holds
        self.tail = 0                # RING_TAIL written last
        self.irq_count = 0

    async def setup(self, base=None, entries=None) -> None:
        await self.wr("RING_BASE_LO", self.lay.ring_addr if base is None else base)
        await self.wr("RING_BASE_HI", 0)
        await self.wr("RING_SIZE", self.lay.ring_entries if entries is None else entries)
        await self.wr("INTR_ENABLE", INTR_DONE | INTR_ERROR | INTR_HALT)
        await self.wr("CONTROL", CTRL_ENABLE)

    async def hard_reset(self) -> None:
        await self.reset()
        self.tail = 0
        await self.setup()

    async def wait_idle(self, what: str, cycles: int = 20_000) -> int:
        for _ in range(cycles // 50):
            st = await self.rd("STATUS")
            if st & STATUS_IDLE:
                return st
            await ClockCycles(self.dut.clk, 50)
        raise AssertionError(f"not idle {cycles} cycles after {what} (seed {self.seed})")

    async def read_hbm(self, full: bool = True) -> np.ndarray:
        """The HBM image: all of it, or (``full=False``) the tiles' store regions, the only
        bytes a program writes, over the mirror (a whole read costs hbm.total_bytes / W
        cycles, more than a tiny program on Icarus; stray writes elsewhere are caught by
        the next full read, at least at the end of every sequence)."""
        if full:
            return np.frombuffer(await self.bd_read(0, self.config.hbm.total_bytes),
                                 np.uint8).copy()
        img = self.mirror.copy()
        lo, hi = self.lay.store_region(0)[0], self.lay.store_region(self.config.soc.tiles - 1)[1]
        img[lo:hi] = np.frombuffer(await self.bd_read(lo, hi - lo), np.uint8)
        return img

    async def write_ring(self, base: int, entries: int, first: int, cmds) -> int:
        """Write ``cmds`` at ring entries ``first``.. (wrapping) into HBM and the mirror;
        returns the new tail."""
        for i, c in enumerate(cmds):
            a = base + (first + i) % entries * CMD_BYTES
            self.mirror[a:a + CMD_BYTES] = np.frombuffer(c.to_bytes(), np.uint8)
            await self.bd_write(a, c.to_bytes())
        return (first + len(cmds)) % entries

    async def read_regs(self) -> dict:
        return {name: await self.rd(name) for name in REGS}

    async def clear_intr(self) -> None:
        await self.wr("INTR_STATUS", INTR_DONE | INTR_ERROR | INTR_HALT)


class ProgramItem(uvm_sequence_item):
    """One command list and how the driver runs it.

    kind: ``program`` (doorbell, await the interrupt), ``soft_reset`` / ``hard_reset``
    (doorbell, then CONTROL.soft_reset / the rst pin ``stop_after`` cycles later),
    ``ring_decerr`` (a ring at ``ring_base`` whose entry ``len(cmds)`` no channel owns).
    """

    def __init__(self, name="program", cmds=(), kind="program", **kw):
        super().__init__(name)
        self.cmds = list(cmds)
        self.kind = kind
        self.stop_after = kw.get("stop_after", 0)
        self.ring_base = kw.get("ring_base")
        self.full_hbm = kw.get("full_hbm", True)     # compare all of HBM, else store regions
        # filled by the driver
        self.ring = None             # (base, entries, head, tail)
        self.hbm_before = self.hbm_after = None
        self.c0 = 0                  # COMPLETIONS before
        self.obs: dict = {}
        self.cycles = 0
        # filled by the scoreboard
        self.expected = None

    def __str__(self):
        return f"{self.get_name()} ({self.kind}, {len(self.cmds)} commands)"


class HostDriver(uvm_driver):
    """Runs ProgramItems on the chip through SocTB; publishes them with what it saw."""

    def build_phase(self):
        self.ap = uvm_analysis_port("ap", self)

    def start_of_simulation_phase(self):
        self.tb = ConfigDB().get(self, "", "TB")

    async def run_phase(self):
        while True:
            item = await self.seq_item_port.get_next_item()
            await getattr(self, f"_{item.kind}")(item)
            self.ap.write(item)
            self.seq_item_port.item_done()

    def _bound(self, n: int) -> int:
        return 5000 + CYCLES_PER_CMD * n + 2 * self.tb.config.soc.watchdog_cycles

    async def _doorbell(self, item, base, entries, head):
        tb = self.tb
        tail = await tb.write_ring(base, entries, head, item.cmds)
        item.ring = (base, entries, head, tail)
        item.hbm_before = tb.mirror.copy()
        item.c0 = await tb.rd("COMPLETIONS")
        await tb.wr("RING_TAIL", tail)
        tb.tail = tail
        return tb.now()

    async def _finish(self, item, t0):
        tb = self.tb
        await tb.wait_irq(cycles=self._bound(len(item.cmds)), what=f"the interrupt of {item}")
        item.cycles = tb.now() - t0
        await tb.wait_idle(str(item))
        item.obs = await tb.read_regs()
        await tb.clear_intr()
        if item.obs["INTR_STATUS"] & INTR_ERROR:
            await tb.wr("CONTROL", CTRL_ENABLE | CTRL_SOFT_RESET)     # clear the error
        item.hbm_after = tb.mirror = await tb.read_hbm(item.full_hbm)

    async def _program(self, item):
        lay = self.tb.lay
        t0 = await self._doorbell(item, lay.ring_addr, lay.ring_entries, self.tb.tail)
        await self._finish(item, t0)

    async def _stop_mid(self, item, stop):
        tb, lay = self.tb, self.tb.lay
        await self._doorbell(item, lay.ring_addr, lay.ring_entries, tb.tail)
        await bounded(ClockCycles(tb.dut.clk, item.stop_after), cycles=item.stop_after + 10,
                      what="the cycles before the reset")
        item.obs["irq_before"] = signal_int(tb.dut.o_irq)
        await stop()
        item.obs.update(await tb.read_regs())
        item.obs["idle"] = (await tb.wait_idle(f"the reset in {item}")) & STATUS_IDLE
        # in-flight DMA bursts finish after a soft reset; late completions must not show
        await bounded(ClockCycles(tb.dut.clk, 1000), cycles=1010, what="the settling cycles")
        item.obs["INTR_STATUS_late"] = await tb.rd("INTR_STATUS")
        item.obs["irq_late"] = signal_int(tb.dut.o_irq)
        item.obs["RING_HEAD_late"] = await tb.rd("RING_HEAD")
        item.hbm_after = tb.mirror = await tb.read_hbm()

    async def _soft_reset(self, item):
        await self._stop_mid(item, lambda: self.tb.wr("CONTROL", CTRL_ENABLE | CTRL_SOFT_RESET))

    async def _hard_reset(self, item):
        await self._stop_mid(item, self.tb.hard_reset)

    async def _ring_decerr(self, item):
        tb = self.tb
        n = len(item.cmds)
        await tb.reset()                       # RING_HEAD 0 for the short ring
        await tb.setup(item.ring_base, n + 4)
        await tb.write_ring(item.ring_base, n + 4, 0, item.cmds)
        item.ring = (item.ring_base, n + 4, 0, n + 1)
        item.hbm_before = tb.mirror.copy()
        item.c0 = await tb.rd("COMPLETIONS")
        t0 = tb.now()
        await tb.wr("RING_TAIL", n + 1)        # entry n is fetched from an unowned address
        await self._finish(item, t0)
        await tb.hard_reset()                  # back to the main ring


class SocScoreboard(uvm_subscriber):
    """Every item against ChipModel (one model across items: SRAMs and tokens persist)."""

    def build_phase(self):
        self.ap = uvm_analysis_port("ap", self)
        self.errors: list[str] = []
        self.checked = 0
        self.model = None

    def start_of_simulation_phase(self):
        self.tb = ConfigDB().get(self, "", "TB")
        self.model = ChipModel(self.tb.config)

    def _eq(self, item, what, got, exp):
        if got != exp:
            self.errors.append(f"{item}: {what} {got:#x}, model {exp:#x} (seed {self.tb.seed})")

    def _hbm(self, item, exp, where=None):
        got = item.hbm_after
        diff = np.flatnonzero(got != exp) if where is None else \
            np.flatnonzero((got != exp) & where)
        if diff.size:
            self.errors.append(f"{item}: HBM differs from the model at {diff.size} bytes, first "
                               f"{[hex(int(x)) for x in diff[:8]]} (seed {self.tb.seed})")

    def write(self, item):
        self.checked += 1
        getattr(self, f"_{'reset' if item.kind.endswith('reset') else 'run'}")(item)
        self.ap.write(item)
        for e in self.errors[-5:]:
            self.logger.error(e)

    def _run(self, item):
        m, (base, entries, head, tail) = self.model, item.ring
        m.hbm = item.hbm_before.copy()
        if item.kind == "ring_decerr":            # entries run until the unowned fetch
            res = m.run(item.cmds, base=base)
            assert res.ok, res.error
            res.error = Fault(IsaError.DMA_FAULT, int(DmaError.DECERR))
            res.error_addr, res.head = base + len(item.cmds) * CMD_BYTES, len(item.cmds)
        else:
            res = m.run_ring(base, entries, head, tail)
        item.expected = res
        o = item.obs
        intr = (INTR_DONE if res.irqs else 0) | (0 if res.ok else INTR_ERROR) | \
            (INTR_HALT if res.halted else 0)
        self._eq(item, "INTR_STATUS", o["INTR_STATUS"], intr)
        self._eq(item, "ERROR_CODE", o["ERROR_CODE"], error_word(res.error))
        if not res.ok:
            self._eq(item, "ERROR_ADDR", o["ERROR_ADDR"], res.error_addr & 0xFFFF_FFFF)
        if res.irqs:
            self._eq(item, "IRQ_VALUE", o["IRQ_VALUE"], res.irqs[-1])
        self._eq(item, "COMPLETIONS delta", (o["COMPLETIONS"] - item.c0) & 0xFFFF_FFFF,
                 res.completed)
        self._eq(item, "RING_HEAD", o["RING_HEAD"], res.head)
        self._hbm(item, res.hbm)
        if not res.ok or item.kind == "ring_decerr":
            m.tokens[:] = 0                       # the driver's soft / hard reset
        item.tb_log = f"{item}: {res.error.code.name}, {item.cycles} cycles"
        self.logger.info(item.tb_log)

    def _reset(self, item):
        o, tail = item.obs, item.ring[3]
        soft = item.kind == "soft_reset"
        for k, v in (("INTR_STATUS", 0), ("ERROR_CODE", 0), ("INTR_STATUS_late", 0),
                     ("irq_late", 0), ("idle", 1),
                     ("RING_HEAD", tail if soft else 0), ("RING_HEAD_late", tail if soft else 0)):
            self._eq(item, k, o[k], v)
        if not soft:
            self._eq(item, "COMPLETIONS", o["COMPLETIONS"], 0)
        # the program ran partly: only the tiles' store regions may have changed
        outside = np.ones(item.hbm_after.size, bool)
        for t in range(self.tb.config.soc.tiles):
            lo, hi = self.tb.lay.store_region(t)
            outside[lo:hi] = False
        self._hbm(item, item.hbm_before, outside)
        self.model.tokens[:] = 0
        item.expected = None
        self.logger.info(f"{item}: stopped after {item.stop_after} cycles, irq before "
                         f"{o['irq_before']}, idle, head {o['RING_HEAD']}")

    def check_phase(self):
        assert not self.errors, f"{len(self.errors)} scoreboard errors, first: " \
                                f"{self.errors[0]}"
        assert self.checked, "the scoreboard checked nothing"
        self.logger.info(f"{self.checked} items matched models.chip (seed {self.tb.seed})")


QUEUE_BINS = ["LOAD", "COMPUTE", "STORE", "-"]
DEP_BINS = [f"w{w}/s{s}" for w in ("-", "prev", "next", "both") for s in ("-", "prev", "next",
                                                                          "both")]
OP_BINS = [o.name for o in Opcode] + ["ILLEGAL", "RING_FETCH"]
ERR_BINS = [e.name for e in IsaError]


def op_name(cmd: Command) -> str:
    return Opcode(cmd.opcode).name if cmd.opcode in Opcode._value2member_map_ else "ILLEGAL"


def queue_name(cmd: Command) -> str:
    try:
        q = cmd.target
    except ValueError:               # SYNC with queue 3
        return "-"
    return "-" if q is None else Queue(q).name


class SocCoverage(uvm_subscriber):
    """Every dispatched command: opcode x queue x token flags, and opcode x error kind.

    The chain generator reaches 38 of the opcode x queue x flags bins (4 loads, 4 stores,
    9 TENSOR, 17 SYNC, NOP/BARRIER/FENCE/IRQ); a test states how many it must hit
    (``min_cross``) and which error kinds (``need_errors``).
    """

    def build_phase(self):
        self.tag = tag = f"{type(self.get_parent().get_parent()).__name__}.soc"
        points = [CoverPoint(f"{tag}.opcode", xf=lambda s: s[0], bins=OP_BINS),
                  CoverPoint(f"{tag}.queue", xf=lambda s: s[1], bins=QUEUE_BINS),
                  CoverPoint(f"{tag}.deps", xf=lambda s: s[2], bins=DEP_BINS),
                  CoverPoint(f"{tag}.error", xf=lambda s: s[3], bins=ERR_BINS)]
        sample = lambda s: None                  # noqa: E731
        sample = CoverCross(f"{tag}.op_x_queue_x_deps",
                            items=[f"{tag}.opcode", f"{tag}.queue", f"{tag}.deps"])(sample)
        sample = CoverCross(f"{tag}.op_x_error", items=[f"{tag}.opcode", f"{tag}.error"])(sample)
        for p in points:
            sample = p(sample)
        self._sample = sample

    def write(self, item):
        res = item.expected
        if res is None:                        # a reset item: the commands ran partly
            return
        base, entries, head, _ = item.ring
        fail = None
        if not res.ok:
            fail = ((res.error_addr - base) // CMD_BYTES - head) % entries
        for i, c in enumerate(item.cmds):
            if fail is not None and i > fail:
                break
            err = res.error.code.name if i == fail else "NONE"
            self._sample((op_name(c), queue_name(c), dep_label(c), err))
        if fail is not None and fail == len(item.cmds):
            self._sample(("RING_FETCH", "-", "w-/s-", res.error.code.name))

    def hits(self, name):
        return [b for b, n in coverage_db[f"{self.tag}.{name}"].detailed_coverage.items() if n]

    def report_phase(self):
        coverage_db.report_coverage(self.logger.info, bins=False)
        cross = self.hits("op_x_queue_x_deps")
        errs = self.hits("error")
        self.logger.info(f"coverage: {len(cross)} opcode x queue x flags bins (the generator "
                         f"reaches 38, bad inputs add more), error kinds {sorted(errs)}, "
                         f"{len(self.hits('op_x_error'))} opcode x error bins")
        test = self.get_parent().get_parent()
        need = getattr(test, "min_cross", 0)
        assert len(cross) >= need, f"only {len(cross)} opcode x queue x flags bins, need " \
                                   f"{need} (seed {cocotb.RANDOM_SEED})"
        missing = set(getattr(test, "need_errors", ())) - set(errs)
        assert not missing, f"error kinds never raised: {sorted(missing)} " \
                            f"(seed {cocotb.RANDOM_SEED})"


class SocEnv(uvm_env):
    def build_phase(self):
        self.seqr = uvm_sequencer("seqr", self)
        self.driver = HostDriver("driver", self)
        self.scoreboard = SocScoreboard("scoreboard", self)
        self.coverage = SocCoverage("coverage", self)

    def connect_phase(self):
        self.driver.seq_item_port.connect(self.seqr.seq_item_export)
        self.driver.ap.connect(self.scoreboard.analysis_export)
        self.scoreboard.ap.connect(self.coverage.analysis_export)


# --- sequences ---------------------------------------------------------------------------
class _Seq(uvm_sequence):
    async def send(self, item):
        await self.start_item(item)
        await self.finish_item(item)

    @property
    def tb(self):
        return ConfigDB().get(None, "", "TB")

    def irq(self):
        self.tb.irq_count += 1
        return 0x5000 + self.tb.irq_count


class ScrubSeq(_Seq):
    """Load every SRAM window of every tile (the model then knows what later reads see)."""

    async def body(self):
        await self.send(ProgramItem("scrub", scrub_program(self.tb.config, irq=self.irq()),
                                    full_hbm=False))


class RandomSeq(_Seq):
    """``n`` random race-free programs (tb.soc.seq.random_program)."""

    def __init__(self, name="random", n=1, size=(10, 40)):
        super().__init__(name)
        self.n, self.size = n, size

    async def body(self):
        tb = self.tb
        for k in range(self.n):
            n = tb.rng.randint(*self.size)
            cmds = random_program(tb.rng, tb.config, n, irq=self.irq())
            await self.send(ProgramItem(f"random_{k}", cmds, full_hbm=k == self.n - 1))


class BadInputSeq(_Seq):
    """Each bad command after a random legal prefix: the error, its interrupt, no hang."""

    async def body(self):
        from tb.cmdproc.test_cmdproc import _bad_cases   # the command processor's list
        tb = self.tb
        cfg = tb.config
        cases = _bad_cases(tb)
        t = tb.rng.randrange(cfg.soc.tiles)
        # a DISPATCH the unit rejects before it reads anything (capacity 0): IsaError.DISPATCH
        cases.append(("dispatch descriptor rejected",
                      Command.moe_dispatch(moe_dispatch.Descriptor(capacity=0))))
        cases.append(("wait never signalled",
                      Command.compute(t, random_matmul(tb.rng, cfg), wait_prev=1)))
        for name, bad in cases:
            prefix = random_program(tb.rng, cfg, tb.rng.randint(3, 10), irq=0)[:-1]
            if bad is None:        # token_max signals to tile 0's L2C, the next overflows
                prefix += [Command.fence()] + \
                    [Command.sync(0, Queue.LOAD, signal_next=1)] * cfg.soc.token_max
                bad = Command.sync(0, Queue.LOAD, signal_next=1)
            cmds = prefix + [bad, Command.fence(), Command.nop(), Command.irq(self.irq())]
            await self.send(ProgramItem(f"bad: {name}", cmds, full_hbm=bad is cases[-1][1]))


class _MidProgramResetSeq(_Seq):
    """A reset (``kind``) while a long program runs, then scrub + a checked program."""

    kind, what = "", ""

    async def body(self):
        tb = self.tb
        cmds = random_program(tb.rng, tb.config, 60, irq=self.irq())
        await self.send(ProgramItem(self.what, cmds, self.kind,
                                    stop_after=tb.rng.randint(200, 1500)))
        await ScrubSeq("scrub").start(self.sequencer)
        await RandomSeq(f"after {self.kind.replace('_', ' ')}", 1).start(self.sequencer)


class SoftResetSeq(_MidProgramResetSeq):
    """CONTROL.soft_reset while a long program runs, then scrub + a checked program."""

    kind, what = "soft_reset", "soft reset mid-program"


class HardResetSeq(_MidProgramResetSeq):
    """The rst pin while DMA traffic runs, then scrub + a checked program."""

    kind, what = "hard_reset", "hard reset mid-traffic"


class RingDecerrSeq(_Seq):
    """A legal prefix, then the ring continues past the end of HBM: DMA_FAULT / DECERR."""

    async def body(self):
        tb = self.tb
        prefix = random_program(tb.rng, tb.config, tb.rng.randint(3, 8), irq=0)[:-1]
        base = tb.config.hbm.total_bytes - len(prefix) * CMD_BYTES
        await self.send(ProgramItem("ring fetch DECERR", prefix, "ring_decerr", ring_base=base))
        await RandomSeq("after DECERR", 1).start(self.sequencer)


__all__ = ["SocUvmTB", "ProgramItem", "HostDriver", "SocScoreboard", "SocCoverage", "SocEnv",
           "ScrubSeq", "RandomSeq", "BadInputSeq", "SoftResetSeq", "HardResetSeq",
           "RingDecerrSeq", "trials"]
