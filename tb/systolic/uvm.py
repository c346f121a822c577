"""pyuvm environment for the systolic array (TinyALU-style, run by tests/sim/).

Components
----------
GemmItem        sequence item: a GEMM (x, w) plus the stall setting it runs under
DirectedSeq     the corner cases of the test plan
RandomSeq       coverage-driven random GEMMs: runs until every coverage bin is hit
                (or a trial cap is reached, which then fails the coverage check)
StallHeavySeq   RandomSeq variant with heavy bursty stalls (used via factory override)
GemmDriver      drives items onto the array through the SystolicTB bus models
TileMonitor     publishes each tile's result vectors (framed by first/last)
GemmScoreboard  checks every tile against SystolicArrayModel and the whole GEMM
                against gemm_int8
GemmCoverage    cocotb-coverage covergroup on shapes, values and stalls
SystolicEnv     wires them together; SystolicRandomTest / SystolicStallTest run it

The bus models, clock and reset come from :class:`tb.systolic.tb.SystolicTB`, so the
plain cocotb tests and this environment drive the DUT identically.
"""
from __future__ import annotations

import cocotb
import numpy as np
import pyuvm
from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db
from pyuvm import (ConfigDB, uvm_analysis_port, uvm_component, uvm_driver, uvm_env,
                   uvm_factory, uvm_root, uvm_sequence, uvm_sequence_item, uvm_sequencer,
                   uvm_subscriber, uvm_test, uvm_tlm_analysis_fifo)

from models.systolic import SystolicArrayModel, gemm_int8, plan_gemm, wrap_int32
from tb.common.clocked import trials
from tb.systolic.tb import SystolicTB

VALUE_CLASSES = {"full": (-128, 127), "small": (-2, 2), "max": (120, 127), "min": (-128, -120)}
STALLS = {"none": (0.0, 1), "random": (0.3, 1), "bursty": (0.2, 8)}


class GemmItem(uvm_sequence_item):
    """One GEMM and the stall setting it runs under."""

    def __init__(self, name="gemm"):
        super().__init__(name)
        self.x = self.w = None
        self.values = "full"
        self.stall = "none"

    def randomize_with(self, rng, R, C, *, m=None, values=None, stall=None):
        m = m or rng.choice([1, rng.randint(2, R), rng.randint(R + 1, 4 * R), 4 * R])
        k = rng.randint(1, 3 * R)
        n = rng.randint(1, 3 * C)
        self.values = values or rng.choice(list(VALUE_CLASSES))
        self.stall = stall or rng.choice(list(STALLS))
        lo, hi = VALUE_CLASSES[self.values]
        self.x = np.array([[rng.randint(lo, hi) for _ in range(k)] for _ in range(m)], np.int8)
        self.w = np.array([[rng.randint(lo, hi) for _ in range(n)] for _ in range(k)], np.int8)

    def __str__(self):
        return f"{self.get_name()}: {self.x.shape[0]}x{self.x.shape[1]}x{self.w.shape[1]} " \
               f"values={self.values} stall={self.stall}"


class DirectedSeq(uvm_sequence):
    """Extremes, zeros, identity, ragged K/N, M = 1."""

    async def body(self):
        tb = ConfigDB().get(None, "", "TB")
        R, C = tb.acfg.rows, tb.acfg.cols
        cases = [
            ("all -128", np.full((R, 2 * R), -128), np.full((2 * R, C), -128)),
            ("all 127", np.full((R, R), 127), np.full((R, 2 * C), 127)),
            ("zeros", np.zeros((3, R + 1)), np.ones((R + 1, C + 1))),
            ("identity", np.arange(R * R).reshape(R, R) % 256 - 128, np.eye(R, C)),
            ("M = 1, ragged", np.ones((1, R + 3)), np.full((R + 3, C + 2), -3)),
        ]
        for name, x, w in cases:
            item = GemmItem(name)
            await self.start_item(item)
            item.x, item.w = x.astype(np.int8), w.astype(np.int8)
            item.values, item.stall = "full", "random"
            await self.finish_item(item)


class RandomSeq(uvm_sequence):
    """Random GEMMs until the coverage model is closed (or ``trials`` run out)."""

    stall_override = None

    async def body(self):
        tb = ConfigDB().get(None, "", "TB")
        cov = ConfigDB().get(None, "", "COVERAGE")
        R, C = tb.acfg.rows, tb.acfg.cols
        for i in range(trials(12) * 4):
            if cov.closed() and i >= trials(6):
                break
            item = GemmItem(f"random_{i}")
            await self.start_item(item)
            # steer toward bins still empty: pick an M class / value / stall not yet seen
            m, values, stall = cov.next_target(tb.rng, R)
            item.randomize_with(tb.rng, R, C, m=m, values=values,
                                stall=self.stall_override or stall)
            await self.finish_item(item)


class StallHeavySeq(RandomSeq):
    """Every GEMM with bursty stalls (selected by factory override in SystolicStallTest)."""

    stall_override = "bursty"


class GemmDriver(uvm_driver):
    """Pushes each item's tiles into the TB's weight/activation sources."""

    def build_phase(self):
        self.ap = uvm_analysis_port("ap", self)

    def start_of_simulation_phase(self):
        self.tb = ConfigDB().get(self, "", "TB")

    async def run_phase(self):
        while True:
            item = await self.seq_item_port.get_next_item()
            stall, burst = STALLS[item.stall]
            self.tb.set_stalls(stall, burst)
            self.ap.write(item)        # the scoreboard predicts from what was sent
            for t in plan_gemm(self.tb.acfg, item.x, item.w):
                for r in range(self.tb.acfg.rows):
                    self.tb.w_src.send({"data": t.weights[r]})
                M = t.acts.shape[0]
                for i in range(M):
                    self.tb.a_src.send({"data": t.acts[i], "first": int(i == 0),
                                        "last": int(i == M - 1)})
            # one GEMM in flight at a time keeps the stall setting per item exact
            await self.tb.wait_until(lambda: self.tb.a_src.idle and self.tb.w_src.idle,
                                     timeout=100_000, what=f"{item} to be accepted")
            self.seq_item_port.item_done()


class TileMonitor(uvm_component):
    """Collects result vectors from ``first`` to ``last`` and publishes each tile."""

    def build_phase(self):
        self.ap = uvm_analysis_port("ap", self)
        self._rows = []

    def start_of_simulation_phase(self):
        ConfigDB().get(self, "", "TB").r_sink.on_item = self._on_vector

    def _on_vector(self, item, cycle):
        if item["first"]:
            self._rows = []
        self._rows.append(np.asarray(item["data"], np.int32))
        if item["last"]:
            self.ap.write(np.stack(self._rows))


class GemmScoreboard(uvm_component):
    """Expected tiles from the model, actual tiles from the monitor, plus whole GEMMs."""

    def build_phase(self):
        self.items = uvm_tlm_analysis_fifo("items", self)
        self.tiles = uvm_tlm_analysis_fifo("tiles", self)
        self.errors: list[str] = []
        self.gemms = 0

    def check_phase(self):
        tb = ConfigDB().get(self, "", "TB")
        model = SystolicArrayModel(tb.acfg)
        C = tb.acfg.cols
        while self.items.can_get():
            _, item = self.items.try_get()
            M, N = item.x.shape[0], item.w.shape[1]
            y = np.zeros((M, N + C), np.int64)
            for t in plan_gemm(tb.acfg, item.x, item.w):
                ok, got = self.tiles.try_get()
                if not ok:
                    self.errors.append(f"{item}: tile {t.index} never came out")
                    break
                exp = model.tile_output(t.acts, t.weights)
                if not np.array_equal(got, exp):
                    self.errors.append(f"{item}: tile {t.index} differs from the model")
                y[:, t.n0:t.n0 + C] = wrap_int32(y[:, t.n0:t.n0 + C] + got)
            if not np.array_equal(y[:, :N], gemm_int8(item.x, item.w)):
                self.errors.append(f"{item}: GEMM differs from gemm_int8")
            self.gemms += 1
        if self.tiles.can_get():
            self.errors.append("the DUT produced tiles nobody asked for")
        for e in self.errors[:5]:
            self.logger.error(e)
        assert not self.errors, f"{len(self.errors)} scoreboard errors (seed {tb.seed})"
        assert self.gemms, "scoreboard checked no GEMM"
        self.logger.info(f"{self.gemms} GEMMs matched the golden model")


class GemmCoverage(uvm_subscriber):
    """Functional coverage of what the driver sent (cocotb-coverage covergroup)."""

    M_BINS = ["1", "<=R", "(R,4R)", ">=4R"]
    RAGGED = ["K%R==0", "K%R!=0"]

    def build_phase(self):
        tag = self.get_full_name()

        def m_class(item):
            m, R = item.x.shape[0], self.R
            return "1" if m == 1 else "<=R" if m <= R else "(R,4R)" if m < 4 * R else ">=4R"

        points = [CoverPoint(f"{tag}.{name}", xf=xf, bins=bins) for name, xf, bins in [
            ("m", m_class, self.M_BINS),
            ("stall", lambda item: item.stall, list(STALLS)),
            ("values", lambda item: item.values, list(VALUE_CLASSES)),
            ("ragged_k", lambda item: self.RAGGED[item.x.shape[1] % self.R != 0], self.RAGGED),
        ]]
        cross = CoverCross(f"{tag}.m_x_stall", items=[f"{tag}.m", f"{tag}.stall"])
        # cocotb-coverage samples outside-in: the cross must wrap the sampling function
        # directly so that it sees the bins its coverpoints hit in this same call.
        sample = cross(lambda item: None)
        for point in points:
            sample = point(sample)
        self._sample = sample
        self.tag = tag

    def start_of_simulation_phase(self):
        self.R = ConfigDB().get(self, "", "TB").acfg.rows

    def write(self, item):
        self._sample(item)

    def _cov(self, name):
        return coverage_db[f"{self.tag}.{name}"]

    def closed(self) -> bool:
        return all(self._cov(n).cover_percentage >= 100.0
                   for n in ("m", "stall", "values", "ragged_k", "m_x_stall"))

    def next_target(self, rng, R):
        """An (m, values, stall) choice aimed at a cross bin not yet hit."""
        hit = self._cov("m_x_stall").detailed_coverage
        missing = [b for b, n in hit.items() if n == 0]
        m_bin, stall = rng.choice(missing) if missing else (rng.choice(self.M_BINS), None)
        m = {"1": 1, "<=R": rng.randint(2, R) if R > 1 else 1,
             "(R,4R)": rng.randint(R + 1, max(R + 1, 4 * R - 1)), ">=4R": 4 * R}[m_bin]
        vals = [v for v, n in self._cov("values").detailed_coverage.items() if n == 0]
        return m, (rng.choice(vals) if vals else None), stall

    def report_phase(self):
        coverage_db.report_coverage(self.logger.info, bins=False)
        coverage_db.export_to_yaml(f"coverage-{type(uvm_root().uvm_test_top).__name__}.yml")
        if not ConfigDB().get(self, "", "REQUIRE_COVERAGE"):
            return
        for n in ("m", "stall", "values", "ragged_k", "m_x_stall"):
            pct = self._cov(n).cover_percentage
            assert pct >= 100.0, f"coverage {n} only {pct:.0f}% (seed {cocotb.RANDOM_SEED})"


class SystolicEnv(uvm_env):
    def build_phase(self):
        self.seqr = uvm_sequencer("seqr", self)
        self.driver = GemmDriver("driver", self)
        self.monitor = TileMonitor("monitor", self)
        self.scoreboard = GemmScoreboard("scoreboard", self)
        self.coverage = GemmCoverage("coverage", self)
        ConfigDB().set(None, "*", "COVERAGE", self.coverage)

    def connect_phase(self):
        self.driver.seq_item_port.connect(self.seqr.seq_item_export)
        self.driver.ap.connect(self.scoreboard.items.analysis_export)
        self.driver.ap.connect(self.coverage.analysis_export)
        self.monitor.ap.connect(self.scoreboard.tiles.analysis_export)


@pyuvm.test()
class SystolicRandomTest(uvm_test):
    """Directed corners, then coverage-driven random GEMMs; coverage must close."""

    require_coverage = True

    def build_phase(self):
        self.tb = SystolicTB(cocotb.top)
        ConfigDB().set(None, "*", "TB", self.tb)
        ConfigDB().set(None, "*", "REQUIRE_COVERAGE", self.require_coverage)
        self.env = SystolicEnv("env", self)

    async def run_phase(self):
        self.raise_objection()
        await self.tb.reset()
        await DirectedSeq("directed").start(self.env.seqr)
        await RandomSeq.create("random").start(self.env.seqr)
        await self.tb.wait_until(lambda: self.tb.r_sink.received == self.tb.a_src.sent,
                                 timeout=10_000, what="the last results")
        self.drop_objection()


@pyuvm.test()
class SystolicStallTest(SystolicRandomTest):
    """Same environment, heavy bursty stalls: a factory override, not a copied test."""

    def build_phase(self):
        uvm_factory().set_type_override_by_type(RandomSeq, StallHeavySeq)
        super().build_phase()

    # the override pins every random item to "bursty", so the stall bins stay open
    require_coverage = False
