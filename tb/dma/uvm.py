"""pyuvm environment for the DMA engine (``dma_engine`` against cocotbext-axi's AxiRam).

Components
----------
DmaDescItem       sequence item: a descriptor, the AXI window, the stall mode, an
                  optional injected AXI fault (SLVERR or DECERR on one of its bursts)
DirectedSeq       one descriptor per completion code, 4 KiB crossings (1D/2D/3D, both
                  directions), a repeated-row (stride 0) load
RandomDescSeq     coverage-driven random descriptors (``tb.dma.seq.random_descriptor``),
                  steered toward empty bins; stops once the covergroup is closed
DmaDriver         pushes each descriptor through the DmaTB bus models (descriptor source,
                  AxiRam stalls, window, fault injection); one descriptor in flight
HeavyStallDriver  DmaDriver with heavy bursty stalls on every AXI channel and both streams
                  (selected by factory override in DmaHeavyStallTest)
CompletionMonitor publishes each ``{tag, err}`` completion with both memory images
DmaScoreboard     completion code, destination bytes and every untouched byte of both
                  memories against models.dma
DmaCoverage       cocotb-coverage covergroup (see ``DmaCoverage.POINTS``)
DmaEnv            wires them; DmaRandomTest / DmaHeavyStallTest run it

Error codes: AxiRam answers OKAY only, so SLVERR and DECERR are injected here: the
RAM's read/write hooks fail on the address range of one planned burst (cocotbext-axi
then answers SLVERR for those beats; for DECERR the R/B sources rewrite that SLVERR to
DECERR). Failing write beats do not land; other beats of that burst do (AxiRam is
per-beat), which the scoreboard allows because the destination of a failed descriptor
may be partially written. The real DECERR/SLVERR paths of the HBM stub are covered by
tests/sim/test_dma_sim.py::test_dma_hbm.

The bus models, SRAM model, clock, reset and AXI protocol checker come from
:class:`tb.dma.tb.DmaTB`, so the plain cocotb tests and this environment drive the DUT
identically.
"""
from __future__ import annotations

import logging

import cocotb
import pyuvm
from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db
from cocotbext.axi.constants import AxiResp
from pyuvm import (ConfigDB, uvm_analysis_port, uvm_component, uvm_driver, uvm_env,
                   uvm_factory, uvm_root, uvm_sequence, uvm_sequence_item, uvm_sequencer,
                   uvm_subscriber, uvm_test, uvm_tlm_analysis_fifo)

from models import dma as model
from models.dma import Descriptor, DmaDir, DmaError
from tb.common.clocked import trials
from tb.dma.seq import random_descriptor
from tb.dma.tb import AXI_PREFIX, DmaTB

STALLS = {"none": (0.0, 1), "random": (0.3, 1), "bursty": (0.2, 6)}
HEAVY_STALL = (0.5, 6)
FAULT_CODES = {"slverr": DmaError.SLVERR, "decerr": DmaError.DECERR}
CODE_NAMES = [e.name for e in DmaError]


# --- classification shared by the coverage model and the steering of the random sequence --
def size_class(d: Descriptor, W: int, cfg) -> str:
    t = d.total
    if t == 0:
        return "zero"
    if t > cfg.max_bytes:
        return "oversize"
    if t == 1:
        return "1B"
    if t < W:
        return "sub-word"
    if t <= cfg.max_burst_beats * W:
        return "<=1 burst"
    return "multi-burst" if t < 1024 else ">=1KiB"


def dims_class(d: Descriptor) -> str:
    return "3D" if d.planes > 1 else "2D" if d.rows > 1 else "1D"


def stride_class(d: Descriptor) -> str | None:
    """AXI-side row stride (None for 1D, which the dims point covers)."""
    if d.rows <= 1:
        return None
    ys = d.axi[1]
    if ys < d.row_bytes:
        return "repeat/overlap"
    return "packed" if ys == d.row_bytes else "gapped" if ys < 1024 else ">=1KiB"


def align_class(addr: int, W: int) -> str:
    return "aligned" if addr % W == 0 else "unaligned"


def crosses_4k(d: Descriptor) -> bool:
    base, ys, zs = d.axi
    n = d.row_bytes
    return any(a // 4096 != (a + n - 1) // 4096
               for a in (base + z * zs + y * ys for z in range(d.planes) for y in range(d.rows)))


class DmaDescItem(uvm_sequence_item):
    """One descriptor and the conditions it runs under."""

    def __init__(self, name="desc"):
        super().__init__(name)
        self.desc = Descriptor()
        self.window = None            # (base, limit); None: the whole AxiRam
        self.stall = "none"
        self.fault = None             # None, "slverr" or "decerr"
        self.fault_at = 0             # which planned burst fails (index modulo the plan)
        # filled by the driver
        self.win = (0, 0)
        self.code = None              # predicted completion code
        self.hbm_before = self.sram_before = b""

    def randomize_with(self, tb, rng, *, tag, dims=None, dir=None, align=None, max_row=300,
                       fault=None, stall=None):
        """Legal random descriptor from :func:`tb.dma.seq.random_descriptor`."""
        self.desc = random_descriptor(rng, tb.W, tb.hbm_size, len(tb.sram.mem), dims=dims,
                                      max_row=max_row, dir=dir, tag=tag, align=align)
        self.fault = fault
        self.fault_at = rng.randrange(1 << 16)
        self.stall = stall or rng.choice(list(STALLS))

    def predict(self, cfg, W) -> int:
        code = model.check_descriptor(cfg, W, self.desc, *self.win)
        if code == DmaError.OK and self.fault:
            code = FAULT_CODES[self.fault]
        return code

    def __str__(self):
        f = f" fault={self.fault}" if self.fault else ""
        return f"{self.get_name()}: {self.desc} win={self.win} stall={self.stall}{f}"


class DirectedSeq(uvm_sequence):
    """Every completion code at least once per direction, 4 KiB crossings, stride 0."""

    async def body(self):
        tb = ConfigDB().get(None, "", "TB")
        W, H, S = tb.W, tb.hbm_size, len(tb.sram.mem)
        L, ST = DmaDir.LOAD, DmaDir.STORE
        lane = lambda a, lo: lo + (a - lo) % W      # noqa: E731  (same byte lane as a)
        cases = [
            ("OK 1D aligned load", Descriptor(L, 0x100, 0x40, 8 * W), {}),
            ("4K 1D load", Descriptor(L, 0x1000 - 3 * W - 1, lane(0x1000 - 3 * W - 1, 0x80),
                                      7 * W), {}),
            ("4K 1D store", Descriptor(ST, lane(0x2000 - 5, 0x200), 0x2000 - 5, 9 * W + 2), {}),
            ("4K 2D load", Descriptor(L, 0x3000 - 20, lane(0x3000 - 20, 0x400), 3 * W, 3, 1,
                                      0x40, 3 * W + W), {}),
            ("4K 3D store", Descriptor(ST, lane(0x5000 - 0x3B, 0x600), 0x5000 - 0x3B, 2 * W + 1,
                                       2, 2, 3 * W, 0x30, 8 * W, 0x200), {}),
            ("2D repeated row load (src stride 0)", Descriptor(L, 0x500 + 3, 0x900 + 3, 2 * W,
                                                               4, 1, 0, 2 * W), {}),
            ("BAD_LENGTH zero row", Descriptor(L, 0x100, 0, 0), {}),
            ("BAD_LENGTH oversized", Descriptor(ST, 0, 0x100, tb.dcfg.max_bytes + 1), {}),
            ("MISALIGNED dst lane", Descriptor(L, 0x400, 0x3, 2 * W), {}),
            ("MISALIGNED src lane", Descriptor(ST, 0x5, 0x800, 2 * W), {}),
            ("WINDOW below base", Descriptor(L, 0xFF0, 0xFF0 % W, 4 * W),
             {"window": (0x1000, H)}),
            ("WINDOW past AxiRam", Descriptor(ST, 0, H - W, 2 * W), {}),
            ("WINDOW past SRAM", Descriptor(L, 0x200, S - W, 2 * W), {}),
            ("SLVERR 2D load", Descriptor(L, 0x700, 0x100, 5 * W, 3, 1, 0x200, 5 * W),
             {"fault": "slverr", "fault_at": 1}),
            ("SLVERR store", Descriptor(ST, 0x303, 0x1800 + 3, 20 * W), {"fault": "slverr"}),
            ("DECERR 2D store", Descriptor(ST, 0x40, 0x2200, 3 * W, 3, 1, 3 * W, 0x100),
             {"fault": "decerr", "fault_at": 2}),
            ("DECERR load", Descriptor(L, 0x6000 + 1, 0x1 + 4 * W, 30 * W), {"fault": "decerr"}),
            ("OK after errors", Descriptor(L, 0x2400, 0x300, 4 * W + 5), {}),
        ]
        for i, (name, d, extra) in enumerate(cases):
            item = DmaDescItem(name)
            await self.start_item(item)
            d.tag = 0xC0 + i
            item.desc, item.stall = d, "random"
            for k, v in extra.items():
                setattr(item, k, v)
            await self.finish_item(item)


class RandomDescSeq(uvm_sequence):
    """Random legal descriptors (plus injected faults) until the covergroup is closed."""

    async def body(self):
        tb = ConfigDB().get(None, "", "TB")
        cov = ConfigDB().get(None, "", "COVERAGE")
        rng = tb.rng
        for i in range(trials(60)):
            if cov.closed() and i >= trials(20):
                break
            item = DmaDescItem(f"random_{i}")
            await self.start_item(item)
            item.randomize_with(tb, rng, tag=i & 0xFF, **cov.next_target(rng, tb.W))
            await self.finish_item(item)


class _FaultInjector:
    """Makes the AxiRam fail accesses to ``[lo, hi)``: SLVERR, or DECERR by rewriting."""

    def __init__(self, ram):
        self.range = None
        self.decerr = False
        rd, wr = ram.read_if, ram.write_if
        orig_read, orig_write = rd._read, wr._write
        r_send, b_send = rd.r_channel.send, wr.b_channel.send

        def hit(addr, n):
            return self.range is not None and addr < self.range[1] and addr + n > self.range[0]

        async def _read(addr, n):
            if hit(addr, n):
                raise IOError(f"injected fault at {addr:#x}")
            return await orig_read(addr, n)

        async def _write(addr, data):
            if hit(addr, len(data)):
                raise IOError(f"injected fault at {addr:#x}")
            await orig_write(addr, data)

        async def rsend(r):
            if self.decerr and int(r.rresp) == AxiResp.SLVERR:
                r.rresp = AxiResp.DECERR
            await r_send(r)

        async def bsend(b):
            if self.decerr and int(b.bresp) == AxiResp.SLVERR:
                b.bresp = AxiResp.DECERR
            await b_send(b)

        rd._read, wr._write = _read, _write
        rd.r_channel.send, wr.b_channel.send = rsend, bsend

    def arm(self, lo, hi, decerr):
        self.range, self.decerr = (lo, hi), decerr

    def disarm(self):
        self.range, self.decerr = None, False


class DmaDriver(uvm_driver):
    """Drives one descriptor at a time through the DmaTB bus models."""

    timeout = 30_000

    def build_phase(self):
        self.ap = uvm_analysis_port("ap", self)

    def start_of_simulation_phase(self):
        self.tb = ConfigDB().get(self, "", "TB")
        self.faults = _FaultInjector(self.tb.ram)
        # the injected failures make AxiRam warn on every failing beat
        logging.getLogger(f"cocotb.{self.tb.dut._name}.{AXI_PREFIX}").setLevel(logging.ERROR)

    def stalls(self, item):
        return STALLS[item.stall]

    async def run_phase(self):
        tb = self.tb
        while True:
            item = await self.seq_item_port.get_next_item()
            d = item.desc
            tb.set_stalls(*self.stalls(item))
            tb.set_window(*(item.window or (0, tb.hbm_size)))
            item.win = tb.win
            item.code = item.predict(tb.dcfg, tb.W)
            if item.code in (DmaError.SLVERR, DmaError.DECERR):
                plan = model.plan_bursts(tb.dcfg, tb.W, d)
                b = plan[item.fault_at % len(plan)]
                lo = b.addr // tb.W * tb.W
                self.faults.arm(lo, lo + b.beats * tb.W, item.fault == "decerr")
            accepted = item.code in (DmaError.OK, DmaError.SLVERR, DmaError.DECERR)
            tb.check.expect(d if accepted else None, tb.dcfg, tb.win)
            item.hbm_before = await tb.hbm_read(0, tb.hbm_size)
            item.sram_before = bytes(tb.sram.mem)
            self.ap.write(item)            # scoreboard and coverage see what was sent
            n0 = tb.sink.received
            tb.desc.send(d.to_payload())
            await tb.wait_until(lambda: tb.sink.received > n0, timeout=self.timeout,
                                what=f"completion of {item}")
            self.faults.disarm()
            if item.code in (DmaError.SLVERR, DmaError.DECERR):
                # after an error response the engine issues no further burst: drop the rest
                # of the plan (every issued burst has drained before the completion)
                tb.check.ax_plan.clear()
                tb.check.w_plan.clear()
            self.seq_item_port.item_done()


class HeavyStallDriver(DmaDriver):
    """Every descriptor under heavy bursty stalls on all AXI channels and both streams."""

    timeout = 200_000

    def stalls(self, item):
        return HEAVY_STALL


class DmaCompletion:
    def __init__(self, tag, err, cycle, hbm, sram):
        self.tag, self.err, self.cycle, self.hbm, self.sram = tag, err, cycle, hbm, sram

    def __str__(self):
        return f"completion tag {self.tag} {model.code_name(self.err)}"


class CompletionMonitor(uvm_component):
    """Publishes each completion with both memory images at the end of its cycle."""

    def build_phase(self):
        self.ap = uvm_analysis_port("ap", self)
        self._pending = []
        self.count = 0

    def start_of_simulation_phase(self):
        self.tb = tb = ConfigDB().get(self, "", "TB")
        tb.sink.on_item = lambda item, cycle: self._pending.append((item, cycle))
        tb.add(self._EndOfCycle(self))     # ticked after the SRAM model's sample

    class _EndOfCycle:
        def __init__(self, mon):
            self.mon = mon

        def drive(self, cycle):
            pass

        def sample(self, cycle):
            mon = self.mon
            while mon._pending:
                item, c = mon._pending.pop(0)
                tb = mon.tb
                mon.count += 1
                mon.ap.write(DmaCompletion(item["tag"], item["err"], c,
                                           bytes(tb.ram.read(0, tb.hbm_size)),
                                           bytes(tb.sram.mem)))


class DmaScoreboard(uvm_component):
    """Completion codes and byte-exact memories against models.dma."""

    def build_phase(self):
        self.items = uvm_tlm_analysis_fifo("items", self)
        self.done = uvm_tlm_analysis_fifo("done", self)
        self.errors: list[str] = []
        self.checked = 0
        self.codes = {}

    def _check(self, tb, item, got):
        d = item.desc
        code = item.predict(tb.dcfg, tb.W)     # recomputed from the model, not the driver
        if (got.tag, got.err) != (d.tag, code):
            self.errors.append(f"{item}: got tag {got.tag} {model.code_name(got.err)}, "
                               f"expected tag {d.tag} {model.code_name(code)}")
            return
        self.codes[code] = self.codes.get(code, 0) + 1
        hbm, sram = bytearray(item.hbm_before), bytearray(item.sram_before)
        try:
            if code == DmaError.OK:
                model.apply(d, hbm, sram)
                tb._compare("HBM", got.hbm, hbm, d)
                tb._compare("SRAM", got.sram, sram, d)
            elif code in (DmaError.SLVERR, DmaError.DECERR):
                # the destination may be partial; nothing else may change
                load = d.dir == DmaDir.LOAD
                tb._compare_outside("SRAM" if load else "HBM", got.sram if load else got.hbm,
                                    sram if load else hbm, d)
                tb._compare("HBM" if load else "SRAM", got.hbm if load else got.sram,
                            hbm if load else sram, d)
            else:                                # rejected up front: nothing written
                tb._compare("HBM", got.hbm, hbm, d)
                tb._compare("SRAM", got.sram, sram, d)
        except AssertionError as e:
            self.errors.append(f"{item.get_name()}: {e}")

    def check_phase(self):
        tb = ConfigDB().get(self, "", "TB")
        while self.items.can_get():
            _, item = self.items.try_get()
            ok, got = self.done.try_get()
            if not ok:
                self.errors.append(f"{item}: no completion")
                break
            self._check(tb, item, got)
            self.checked += 1
        if self.done.can_get():
            self.errors.append("the DUT produced completions nobody asked for")
        for e in self.errors[:5]:
            self.logger.error(e)
        assert not self.errors, f"{len(self.errors)} scoreboard errors (seed {tb.seed})"
        assert self.checked, "scoreboard checked no descriptor"
        self.logger.info(f"{self.checked} descriptors matched models.dma: " + ", ".join(
            f"{model.code_name(c)} {n}" for c, n in sorted(self.codes.items())))


class DmaCoverage(uvm_subscriber):
    """Functional coverage of the descriptors sent (cocotb-coverage covergroup).

    Every declared bin is reachable with AxiRam (SLVERR/DECERR by injection) and must
    be hit when REQUIRE_COVERAGE is set; the bus-response x direction cross (OK, SLVERR,
    DECERR per LOAD / STORE) needs :attr:`ERROR_HITS` hits per bin.
    """

    ERROR_HITS = 3

    POINTS = {
        "size": ["zero", "1B", "sub-word", "<=1 burst", "multi-burst", ">=1KiB", "oversize"],
        "dims": ["1D", "2D", "3D"],
        "stride": ["repeat/overlap", "packed", "gapped", ">=1KiB"],
        "src_align": ["aligned", "unaligned"],
        "dst_align": ["aligned", "unaligned"],
        "cross_4k": ["yes", "no"],
        "dir": ["LOAD", "STORE"],
        "code": CODE_NAMES,
        "bus_resp": ["OK", "SLVERR", "DECERR"],
    }
    CROSSES = {"dir_x_code": ("dir", "code"), "dims_x_cross_4k": ("dims", "cross_4k"),
               "src_x_dst_align": ("src_align", "dst_align"),
               "dir_x_bus_resp": ("dir", "bus_resp")}
    AT_LEAST = {"dir_x_bus_resp": ERROR_HITS}

    def build_phase(self):
        # one covergroup per test: both tests run in the same simulator process
        self.tag = tag = f"{type(self.get_parent().get_parent()).__name__}.dma"
        ok = (DmaError.OK, DmaError.SLVERR, DmaError.DECERR)
        xf = {
            "size": lambda it: size_class(it.desc, self.W, self.cfg),
            "dims": lambda it: dims_class(it.desc),
            "stride": lambda it: stride_class(it.desc),
            "src_align": lambda it: align_class(it.desc.src, self.W),
            "dst_align": lambda it: align_class(it.desc.dst, self.W),
            # only for accepted descriptors (a rejected one may have 2^20 rows)
            "cross_4k": lambda it: (("yes" if crosses_4k(it.desc) else "no")
                                    if it.code in ok else None),
            "dir": lambda it: DmaDir(it.desc.dir).name,
            "code": lambda it: model.code_name(it.code),
            "bus_resp": lambda it: model.code_name(it.code) if it.code in ok else None,
        }
        points = [CoverPoint(f"{tag}.{name}", xf=xf[name], bins=bins)
                  for name, bins in self.POINTS.items()]
        sample = lambda it: None             # noqa: E731
        # cocotb-coverage samples outside-in: crosses wrap the function directly so they
        # see the bins their coverpoints hit in the same call
        for name, (a, b) in self.CROSSES.items():
            sample = CoverCross(f"{tag}.{name}", items=[f"{tag}.{a}", f"{tag}.{b}"],
                                at_least=self.AT_LEAST.get(name, 1))(sample)
        for point in points:
            sample = point(sample)
        self._sample = sample

    def start_of_simulation_phase(self):
        tb = ConfigDB().get(self, "", "TB")
        self.W, self.cfg = tb.W, tb.dcfg

    def write(self, item):
        self._sample(item)

    def _cov(self, name):
        return coverage_db[f"{self.tag}.{name}"]

    def names(self):
        return [*self.POINTS, *self.CROSSES]

    def closed(self) -> bool:
        return all(self._cov(n).cover_percentage >= 100.0 for n in self.names())

    def _missing(self, name):
        need = self.AT_LEAST.get(name, 1)
        return [b for b, n in self._cov(name).detailed_coverage.items() if n < need]

    def next_target(self, rng, W) -> dict:
        """randomize_with() arguments aimed at bins still empty."""
        t = {}
        dc = self._missing("dir_x_bus_resp")
        if dc:
            d, c = rng.choice(dc)
            t["dir"] = DmaDir.LOAD if d == "LOAD" else DmaDir.STORE
            t["fault"] = {"SLVERR": "slverr", "DECERR": "decerr"}.get(c)
        elif rng.random() < 0.1:
            t["fault"] = rng.choice(list(FAULT_CODES))
        x4 = self._missing("dims_x_cross_4k")
        if x4:
            dims, yes = rng.choice(x4)
            t["dims"] = int(dims[0])
            t["align"] = "4k" if yes == "yes" else None
        else:
            t["align"] = rng.choice([None, None, "4k"])
        size = self._missing("size")
        if "1B" in size or "sub-word" in size:
            t["max_row"] = W - 1
            t["dims"] = 1
        elif ">=1KiB" in size:
            t["max_row"] = 1200
        if self._missing("stride") and (t.get("dims") or 1) == 1 and "max_row" not in t:
            t["dims"] = rng.choice([2, 3])
        return t

    def report_phase(self):
        coverage_db.report_coverage(self.logger.info, bins=True)
        coverage_db.export_to_yaml(f"coverage-{type(uvm_root().uvm_test_top).__name__}.yml")
        if not ConfigDB().get(self, "", "REQUIRE_COVERAGE"):
            return
        for n in self.names():
            pct = self._cov(n).cover_percentage
            assert pct >= 100.0, f"coverage {n} only {pct:.0f}%, missing {self._missing(n)} " \
                                 f"(seed {cocotb.RANDOM_SEED})"


class DmaEnv(uvm_env):
    def build_phase(self):
        self.seqr = uvm_sequencer("seqr", self)
        self.driver = DmaDriver.create("driver", self)
        self.monitor = CompletionMonitor("monitor", self)
        self.scoreboard = DmaScoreboard("scoreboard", self)
        self.coverage = DmaCoverage("coverage", self)
        ConfigDB().set(None, "*", "COVERAGE", self.coverage)

    def connect_phase(self):
        self.driver.seq_item_port.connect(self.seqr.seq_item_export)
        self.driver.ap.connect(self.scoreboard.items.analysis_export)
        self.driver.ap.connect(self.coverage.analysis_export)
        self.monitor.ap.connect(self.scoreboard.done.analysis_export)


@pyuvm.test()
class DmaRandomTest(uvm_test):
    """Directed error/4 KiB cases, then coverage-driven random descriptors; coverage must close."""

    require_coverage = True

    def build_phase(self):
        self.tb = DmaTB(cocotb.top)
        ConfigDB().set(None, "*", "TB", self.tb)
        ConfigDB().set(None, "*", "REQUIRE_COVERAGE", self.require_coverage)
        self.env = DmaEnv("env", self)

    async def run_phase(self):
        self.raise_objection()
        tb = self.tb
        await tb.reset()
        await tb.hbm_write(0, bytes(tb.rng.getrandbits(8) for _ in range(tb.hbm_size)))
        tb.sram.mem[:] = bytes(tb.rng.getrandbits(8) for _ in range(len(tb.sram.mem)))
        await DirectedSeq("directed").start(self.env.seqr)
        await RandomDescSeq.create("random").start(self.env.seqr)
        assert not tb.sink.protocol_errors, tb.sink.protocol_errors[:5]
        tb.check.finish()
        self.drop_objection()


@pyuvm.test()
class DmaHeavyStallTest(DmaRandomTest):
    """Same environment, heavy stalls on all AXI channels: a factory override of the driver."""

    def build_phase(self):
        uvm_factory().set_type_override_by_type(DmaDriver, HeavyStallDriver)
        super().build_phase()
