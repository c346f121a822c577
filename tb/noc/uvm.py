"""pyuvm environment for the NoC memory fabric (:class:`rtl.noc.fabric.NocMemFabric`).

Components
----------
MemReqItem      sequence item: one read or write from an initiator to a target
RandomReqSeq    coverage-driven random requests until every bin is hit
LocalityReqSeq  variant: targets near the initiator only (factory override)
ReqDriver       hands items to the FabricTB agents (which predict the response)
RespCoverage    cocotb-coverage covergroup: op x length, hop distance, stall mode
FabricEnv       wires them; FabricRandomTest runs it

The bus models, Python memories and the response checker come from
:class:`tb.noc.test_fabric.FabricTB`, so the plain cocotb tests and this environment
drive the DUT identically.
"""
from __future__ import annotations

import cocotb
import pyuvm
from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db
from pyuvm import (ConfigDB, uvm_analysis_port, uvm_driver, uvm_env, uvm_factory,
                   uvm_sequence, uvm_sequence_item, uvm_sequencer, uvm_subscriber, uvm_test)

from models.noc import MemOp
from tb.common.clocked import trials
from tb.noc.test_fabric import FabricTB

STALLS = {"none": 0.0, "some": 0.3}


class MemReqItem(uvm_sequence_item):
    def __init__(self, name="req"):
        super().__init__(name)
        self.src = self.dst = 0
        self.op, self.length, self.offset, self.rid = MemOp.READ, 1, 0, 0
        self.stall = "none"

    def __str__(self):
        return f"{self.op.name} {self.src}->{self.dst} len {self.length} stall {self.stall}"


class RandomReqSeq(uvm_sequence):
    """Random requests, steered toward empty coverage bins."""

    local_only = False

    async def body(self):
        tb = ConfigDB().get(None, "", "TB")
        cov = ConfigDB().get(None, "", "COVERAGE")
        rng, N = tb.rng, tb.N
        max_len = min(4, 1 << tb.cfg.len_bits)
        for i in range(trials(40) * 4):
            if cov.closed() and i >= trials(20):
                break
            item = MemReqItem(f"req{i}")
            await self.start_item(item)
            item.src = rng.randrange(N)
            near = [d for d in range(N) if cov.hops(item.src, d) <= 1]
            item.dst = rng.choice(near if self.local_only else range(N))
            item.op = rng.choice([MemOp.READ, MemOp.WRITE])
            item.length = rng.randint(1, max_len)
            item.offset, item.rid = rng.randrange(16), rng.randrange(1 << tb.cfg.id_bits)
            item.stall = "some" if (i // 10) % 2 else "none"
            await self.finish_item(item)


class LocalityReqSeq(RandomReqSeq):
    local_only = True


class ReqDriver(uvm_driver):
    def build_phase(self):
        self.ap = uvm_analysis_port("ap", self)

    def start_of_simulation_phase(self):
        self.tb = ConfigDB().get(self, "", "TB")

    async def run_phase(self):
        tb = self.tb
        region = tb.cfg.addr_bits - 4
        while True:
            item = await self.seq_item_port.get_next_item()
            tb.set_stalls(STALLS[item.stall])
            tb.request(item.src, item.dst, item.op, (item.src << region) | item.offset,
                       item.length, item.rid)
            self.ap.write(item)
            await tb.wait_until(lambda: tb.pending < 8, timeout=5000, what="responses")
            self.seq_item_port.item_done()


class RespCoverage(uvm_subscriber):
    def build_phase(self):
        self.tag = tag = self.get_full_name()
        points = [
            CoverPoint(f"{tag}.op", xf=lambda it: it.op.name, bins=["READ", "WRITE"]),
            CoverPoint(f"{tag}.len", xf=lambda it: it.length, bins=[1, 2, 3, 4]),
            CoverPoint(f"{tag}.hops", xf=lambda it: min(2, self.hops(it.src, it.dst)),
                       bins=[0, 1, 2]),
            CoverPoint(f"{tag}.stall", xf=lambda it: it.stall, bins=list(STALLS)),
        ]
        cross = CoverCross(f"{tag}.op_x_len", items=[f"{tag}.op", f"{tag}.len"])
        sample = cross(lambda it: None)
        for p in points:
            sample = p(sample)
        self._sample = sample

    def start_of_simulation_phase(self):
        self.cols = ConfigDB().get(self, "", "TB").cfg.cols

    def hops(self, s, d):
        return abs(s % self.cols - d % self.cols) + abs(s // self.cols - d // self.cols)

    def write(self, item):
        self._sample(item)

    def closed(self):
        return all(coverage_db[f"{self.tag}.{n}"].cover_percentage >= 100
                   for n in ("op", "len", "hops", "stall", "op_x_len"))

    def report_phase(self):
        coverage_db.report_coverage(self.logger.info, bins=False)
        if ConfigDB().get(self, "", "REQUIRE_COVERAGE"):
            assert self.closed(), f"coverage not closed (seed {cocotb.RANDOM_SEED})"


class FabricEnv(uvm_env):
    def build_phase(self):
        self.seqr = uvm_sequencer("seqr", self)
        self.driver = ReqDriver("driver", self)
        self.coverage = RespCoverage("coverage", self)
        ConfigDB().set(None, "*", "COVERAGE", self.coverage)

    def connect_phase(self):
        self.driver.seq_item_port.connect(self.seqr.seq_item_export)
        self.driver.ap.connect(self.coverage.analysis_export)


@pyuvm.test()
class FabricRandomTest(uvm_test):
    """Coverage-driven random reads/writes; every response checked; coverage must close."""

    require_coverage = True

    def build_phase(self):
        self.tb = FabricTB(cocotb.top)
        ConfigDB().set(None, "*", "TB", self.tb)
        ConfigDB().set(None, "*", "REQUIRE_COVERAGE", self.require_coverage)
        self.env = FabricEnv("env", self)

    async def run_phase(self):
        self.raise_objection()
        await self.tb.reset()
        await RandomReqSeq.create("random").start(self.env.seqr)
        await self.tb.wait_until(lambda: self.tb.pending == 0, timeout=20_000,
                                 what="the last responses")
        self.tb.finish()
        self.drop_objection()


@pyuvm.test()
class FabricLocalityTest(FabricRandomTest):
    """Same environment, nearby targets only: a factory override, not a copied test."""

    require_coverage = False          # the 2-hop bin stays empty by construction

    def build_phase(self):
        uvm_factory().set_type_override_by_type(RandomReqSeq, LocalityReqSeq)
        super().build_phase()
