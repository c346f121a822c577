"""pyuvm environment for the NoC memory fabric (:class:`rtl.noc.fabric.NocMemFabric`).

Components
----------
MemReqItem      sequence item: one read or write from an initiator to a target
RandomReqSeq    coverage-driven random requests until every bin is hit
LocalityReqSeq  variant: targets near the initiator only (factory override)
ReqDriver       hands items to the FabricTB agents (which predict the response)
RespCoverage    cocotb-coverage covergroups: requests (op x length, hop distance, stall
                mode) and responses as checked at the requester (source x destination x
                read/write x status; direction x error status >= 3 hits each),
                exported as ``coverage-<TestName>.yml`` in the run directory
FabricEnv       wires them; FabricRandomTest runs it

The targets answer SLVERR and DECERR for the addresses :class:`FabricTB` with
``faults=True`` defines; the sequence steers items toward empty response bins.

The bus models, Python memories and the response checker come from
:class:`tb.noc.test_fabric.FabricTB`, so the plain cocotb tests and this environment
drive the DUT identically.
"""
from __future__ import annotations

import cocotb
import pyuvm
from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db
from pyuvm import (ConfigDB, uvm_analysis_port, uvm_driver, uvm_env, uvm_factory, uvm_root,
                   uvm_sequence, uvm_sequence_item, uvm_sequencer, uvm_subscriber, uvm_test)

from models.axi import Resp
from models.noc import MemOp
from tb.common.clocked import trials
from tb.noc.test_fabric import SLVERR_OFFSET, FabricTB

STALLS = {"none": 0.0, "some": 0.3}


class MemReqItem(uvm_sequence_item):
    def __init__(self, name="req"):
        super().__init__(name)
        self.src = self.dst = 0
        self.op, self.length, self.offset, self.rid = MemOp.READ, 1, 0, 0
        self.stall = "none"
        self.fault = Resp.OKAY        # the status the target will answer

    def __str__(self):
        return (f"{self.op.name} {self.src}->{self.dst} len {self.length} stall {self.stall} "
                f"{self.fault.name}")


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
            item.fault = rng.choice([Resp.OKAY, Resp.OKAY, Resp.SLVERR, Resp.DECERR])
            hole = cov.resp_hole(rng)
            if hole is not None and not self.local_only and rng.random() < 0.7:
                item.src, item.dst, item.op, item.fault = hole
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
            off = {Resp.SLVERR: SLVERR_OFFSET, Resp.DECERR: tb.unmapped | item.offset}.get(
                item.fault, item.offset if item.offset != SLVERR_OFFSET else 0)
            tb.request(item.src, item.dst, item.op, (item.src << region) | off,
                       item.length, item.rid)
            self.ap.write(item)
            await tb.wait_until(lambda: tb.pending < 8, timeout=5000, what="responses")
            self.seq_item_port.item_done()


class RespCoverage(uvm_subscriber):
    """Request-side points (sampled from the driver's items) and response-side points
    (sampled by :attr:`FabricTB.on_response` when a response passed its check at the
    requester)."""

    REQ = ("op", "len", "hops", "stall", "op_x_len")
    RESP = ("src", "dst", "dir", "status", "src_x_dst_x_dir_x_status", "dir_x_status")
    STATUSES = ["OKAY", "SLVERR", "DECERR"]
    ERROR_HITS = 3            # each (direction, status) at least this often

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
        tb = ConfigDB().get(self, "", "TB")
        self.cols = tb.cfg.cols
        tag, nodes = self.tag, list(range(tb.N))
        resp = [
            CoverPoint(f"{tag}.src", xf=lambda r: r[0], bins=nodes),
            CoverPoint(f"{tag}.dst", xf=lambda r: r[1], bins=nodes),
            CoverPoint(f"{tag}.dir", xf=lambda r: r[2], bins=["READ", "WRITE"]),
            CoverPoint(f"{tag}.status", xf=lambda r: r[3], bins=self.STATUSES),
        ]
        cross = CoverCross(f"{tag}.src_x_dst_x_dir_x_status",
                           items=[f"{tag}.{n}" for n in ("src", "dst", "dir", "status")])
        errs = CoverCross(f"{tag}.dir_x_status", items=[f"{tag}.dir", f"{tag}.status"],
                          at_least=self.ERROR_HITS)
        sample = errs(cross(lambda r: None))
        for p in resp:
            sample = p(sample)
        self._sample_resp = sample
        tb.on_response = lambda n, t, op, st: self._sample_resp(
            (n, t, op.removesuffix("_RESP"), st.name))

    def hops(self, s, d):
        return abs(s % self.cols - d % self.cols) + abs(s // self.cols - d // self.cols)

    def write(self, item):
        self._sample(item)

    def _cov(self, name):
        return coverage_db[f"{self.tag}.{name}"]

    def resp_hole(self, rng):
        """(src, dst, op, status) of a random empty response bin, or None."""
        holes = [b for b, n in self._cov("src_x_dst_x_dir_x_status").detailed_coverage.items()
                 if n == 0]
        if not holes:
            return None
        src, dst, d, st = rng.choice(holes)
        return src, dst, MemOp[d], Resp[st]

    def closed(self):
        return all(self._cov(n).cover_percentage >= 100 for n in (*self.REQ, *self.RESP))

    def report_phase(self):
        coverage_db.report_coverage(self.logger.info, bins=False)
        coverage_db.export_to_yaml(f"coverage-{type(uvm_root().uvm_test_top).__name__}.yml")
        if ConfigDB().get(self, "", "REQUIRE_COVERAGE"):
            for n in (*self.REQ, *self.RESP):
                pct = self._cov(n).cover_percentage
                assert pct >= 100, f"coverage {n} only {pct:.0f}% (seed {cocotb.RANDOM_SEED})"


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
    """Coverage-driven random reads/writes with SLVERR / DECERR answers; every response
    (status included) checked at its requester; both covergroups must close."""

    require_coverage = True

    def build_phase(self):
        self.tb = FabricTB(cocotb.top, faults=True)
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
