"""pyuvm environment for the tensor core (run by tests/sim/test_tensor_core_sim.py).

Components
----------
ProgramItem        sequence item: host writes, a command program, the SRAM regions to
                   check afterwards, the stall setting, the error it must raise
GemmItem/...       builders (functions) for GEMM, vector-op and illegal-command items
DirectedSeq        every error code and one GEMM -> vector -> GEMM program
CoverageSeq        items steered at the coverage bins still empty, until closed
GapsSeq            CoverageSeq with i_cmd gaps and o_rd backpressure on every item
                   (selected by factory override in TensorCoreStallTest)
ProgramDriver      runs an item through TensorCoreTB (writes, commands, idle, reads)
                   and publishes what the DUT left in the checked regions
CoreScoreboard     its own TensorCoreModel executes every item; SRAM words and the
                   error code must match bit for bit
CoreCoverage       cocotb-coverage: matmul count class x accumulate x mode, vector op,
                   output format, destination SRAM, error code, unit switches, stalls,
                   both units busy in one cycle (indep overlap, perf counter)

The bus models, clock and reset come from :class:`tb.tensor.tb.TensorCoreTB`, so the
plain cocotb tests and this environment drive the DUT identically.
"""
from __future__ import annotations

import cocotb
import numpy as np
import pyuvm
from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db
from pyuvm import (ConfigDB, uvm_analysis_port, uvm_driver, uvm_env,
                   uvm_factory, uvm_root, uvm_sequence, uvm_sequence_item, uvm_sequencer,
                   uvm_subscriber, uvm_test)

from models.tensor_cmd import (VECTOR_USES_STATE, VECTOR_WRITES, ErrCode, OutFmt, TensorCmd,
                               Unit, VecOp, f32_bits)
from models.tensor_core import (MEM_ACC, MEM_ACT, MEM_WEIGHT, TensorCoreModel, acc_bank,
                                gemm_commands, gemm_images, gemm_layout)
from tb.common.clocked import trials
from tb.tensor.programs import fp8_codes, illegal_cases
from tb.tensor.tb import TensorCoreTB

STALLS = {"none": (0.0, 0.0, 1), "gaps": (0.3, 0.3, 4)}
COUNT_BINS = ["1", "<R", "=R", ">R"]
EIGHT_BIT = (OutFmt.INT8, OutFmt.E4M3, OutFmt.E5M2)
# vector working regions (accumulator words; activation words for dst_act)
_A, _B, _D, _E = 600, 640, 680, 720
_S = 0                       # softmax state entries (the vector unit's own memory)
_ACT, _WGT = 900, 900        # activation / weight words of the closing MATMUL


class ProgramItem(uvm_sequence_item):
    """Writes, commands, regions to check; ``expect`` is the error the program raises."""

    def __init__(self, name: str = "program", *, expect: ErrCode = ErrCode.NONE):
        super().__init__(name)
        self.writes: list = []       # (mem, addr, rows)
        self.cmds: list = []
        self.checks: list = []       # (mem, addr, n)
        self.stall = "none"
        self.expect = expect
        self.overlap = 0             # cycles both units were busy (set by the driver)

    def __str__(self):
        return (f"{self.get_name()}: {len(self.cmds)} cmds, stall={self.stall}, "
                f"expect={self.expect.name}")


def count_class(n: int, R: int) -> str:
    return "1" if n == 1 else "<R" if n < R else "=R" if n == R else ">R"


def gemm_item(tb, rng, *, count=None, fp8=False, accumulate=None, name="gemm") -> ProgramItem:
    """A random GEMM split into commands whose counts include ``count`` (a class)."""
    cfg, R, C = tb.config, tb.R, tb.C
    m, k, n = rng.randint(1, 3 * R), rng.randint(1, 3 * R), rng.randint(1, 2 * C)
    target = {"1": 1, "<R": max(1, rng.randint(1, R - 1)), "=R": R,
              ">R": rng.randint(R + 1, 2 * R)}.get(count)
    if target is not None:
        m = max(m, target)
    lay = gemm_layout(cfg, m, k, n, act=rng.randrange(64), wgt=rng.randrange(64),
                      acc=rng.randrange(2, 300))
    if fp8:
        x, w = fp8_codes(rng, (m, k)), fp8_codes(rng, (k, n))
    else:
        x = np.array([[rng.randint(-128, 127) for _ in range(k)] for _ in range(m)], np.int8)
        w = np.array([[rng.randint(-128, 127) for _ in range(n)] for _ in range(k)], np.int8)
    rest, parts = m - (target or 0), [target] if target else []
    while rest:
        parts.append(min(rest, rng.choice([1, R - 1 or 1, R, R + 1, 2 * R])))
        rest -= parts[-1]
    rng.shuffle(parts)
    into = accumulate if accumulate is not None else rng.random() < 0.5
    acc0 = np.array([[rng.getrandbits(32) for _ in range(C)] for _ in range(lay.acc_words + 4)],
                    np.uint32)
    if fp8:   # finite binary32 start values
        acc0 = np.array(rng.choices(range(-1000, 1000), k=acc0.size), np.float32).reshape(acc0.shape)
    item = ProgramItem(name)
    item.writes = gemm_images(cfg, lay, x, w) + [(MEM_ACC, lay.acc - 2, acc0)]
    item.cmds = gemm_commands(cfg, lay, chunks=parts, fp8=fp8, accumulate_into=into,
                              order=rng.choice(["nkm", "nmk"]))
    item.checks = [(MEM_ACC, lay.acc - 2, lay.acc_words + 4)]
    return item


def _rand_f32_rows(rng, n, C, *, ints=False):
    if ints:
        return np.array([[rng.randint(-2**20, 2**20) for _ in range(C)] for _ in range(n)], np.int32)
    vals = [rng.choice([rng.uniform(-50, 50), rng.uniform(-1, 1), 0.0, -0.0])
            for _ in range(n * C)]
    return np.array(vals, np.float32).reshape(n, C)


def vector_item(tb, rng, *, op: VecOp, out_fmt=None, dst_act=None, name="vector") -> ProgramItem:
    """A legal program around one vector op: data (from a GEMM or the host), the state
    set up the op needs, the op, what makes its state visible, and a MATMUL after."""
    cfg, R, C = tb.config, tb.R, tb.C
    fp8_ok = cfg.systolic.fp8
    n = rng.randint(1, 2 * R)
    item = ProgramItem(name)
    V = TensorCmd.vector
    span = _E + 4 * R - _A       # every accumulator word the program may touch
    item.writes.append((MEM_ACC, _A, _rand_f32_rows(rng, span, C)))
    src = _A
    if rng.random() < 0.5:       # rows from a GEMM: a matmul -> vector switch
        fp8 = fp8_ok and op != VecOp.REQUANT and rng.random() < 0.5
        g = gemm_item(tb, rng, fp8=fp8, accumulate=False)
        src = g.checks[0][1] + 2
        n = min(n, g.checks[0][2] - 4)
        ints = not fp8
        item.writes += g.writes
        item.cmds += g.cmds
        item.checks += g.checks
    else:
        ints = op == VecOp.REQUANT or rng.random() < 0.4
        item.writes.append((MEM_ACC, _A, _rand_f32_rows(rng, n, C, ints=ints)))
    item.writes += [(MEM_ACC, _B, _rand_f32_rows(rng, n, C)),
                    (MEM_ACC, _D, _rand_f32_rows(rng, n, C)),
                    (MEM_ACC, _E, _rand_f32_rows(rng, n, C)),
                    (MEM_ACT, _ACT, np.array([[rng.randint(-128, 127) for _ in range(R)]
                                              for _ in range(n)], np.int8)),
                    (MEM_WEIGHT, _WGT, np.array([[rng.randint(-128, 127) for _ in range(C)]
                                                 for _ in range(R)], np.int8))]
    if dst_act is None:
        dst_act = R == C and op in VECTOR_WRITES and rng.random() < 0.4
    if op == VecOp.STATE_STORE:      # [m, l] rows: binary32 to the accumulator only
        dst_act, out_fmt = False, OutFmt.FP32
    if op == VecOp.REQUANT or (op == VecOp.TOPK and dst_act):     # TOPK ids: bytes
        out_fmt = OutFmt.INT8
    elif out_fmt is None:
        out_fmt = rng.choice(EIGHT_BIT if dst_act else list(OutFmt))
    dst = src if rng.random() < 0.3 and not dst_act else _D
    mask = dict(causal=rng.randint(0, 1), pad=rng.randint(0, 1), q_base=rng.randrange(8),
                k_base=rng.randrange(C if op == VecOp.STATE_LOAD else 8),
                kv_len=rng.randrange(2 * C))
    common = dict(src=src, count=n, state=_S, in_int=int(ints), **mask,
                  imm=f32_bits(rng.choice([1.0, 0.25, 1 / 64, -0.5, 3.0])))
    if op == VecOp.REQUANT:
        common = dict(src=src, count=n, imm=rng.randint(2**30, 2**31 - 1),
                      imm2=rng.randint(-12, 2) & 0xFFFF_FFFF, bias=rng.randint(0, 1), src2=_B)
        item.writes.append((MEM_ACC, _B, _rand_f32_rows(rng, n, C, ints=True)))
    uses_state = op in VECTOR_USES_STATE
    if uses_state or op == VecOp.STATE_INIT:
        item.cmds.append(V(VecOp.STATE_INIT, count=n, state=_S))
    if op in (VecOp.EXP, VecOp.RESCALE, VecOp.ROWSUM, VecOp.ROWMAX, VecOp.STATE_STORE,
              VecOp.STATE_MERGE):
        item.cmds.append(V(VecOp.ROWMAX, **common))
    if op in (VecOp.STATE_STORE, VecOp.STATE_MERGE):
        item.cmds.append(V(VecOp.ROWSUM, **{**common, "src": _B, "in_int": 0}))
    if op == VecOp.STATE_MERGE:     # merge a stored [m, l] row into a fresh state
        item.cmds += [V(VecOp.STATE_STORE, dst=_E + R, count=n, state=_S),
                      V(VecOp.STATE_INIT, count=n, state=_S),
                      V(VecOp.ROWMAX, **{**common, "src": _B, "in_int": 0})]
        common = {**common, "src": _E + R, "in_int": 0}
    if op == VecOp.RESCALE:    # a second max gives alpha != 1
        item.cmds.append(V(VecOp.ROWMAX, **{**common, "src": _B, "in_int": 0}))
    if op == VecOp.NORM:
        item.cmds.append(V(VecOp.ROWSUM, **{**common, "src": _B, "in_int": 0}))
    out = dict(dst=dst, dst_act=int(dst_act), out_fmt=int(out_fmt),
               imm2=common.get("imm2", f32_bits(rng.choice([1.0, 127.0, 0.5]))))
    if op in VECTOR_WRITES:
        kw = {**common, **out}
        if op in (VecOp.RESCALE, VecOp.BIAS):
            kw["src2"] = _B
        item.cmds.append(V(op, **kw))
    elif op != VecOp.STATE_INIT:
        item.cmds.append(V(op, **common))
    # make the state visible: EXP after ROWMAX / STATE_INIT, NORM after ROWSUM
    if op in (VecOp.ROWMAX, VecOp.STATE_INIT):
        item.cmds.append(V(VecOp.EXP, **{**common, "dst": _D}))
    if op in (VecOp.ROWSUM, VecOp.EXP):
        item.cmds.append(V(VecOp.NORM, src=_D, dst=_E, count=n, state=_S))
    if op == VecOp.STATE_MERGE:
        item.cmds.append(V(VecOp.STATE_STORE, dst=_E, count=n, state=_S))
    if op == VecOp.STATE_LOAD:      # alpha scales b in a RESCALE
        item.cmds.append(V(VecOp.RESCALE, src=_D, src2=_E, dst=_E, count=n, state=_S))
    # vector -> matmul switch: a tile reading the rows just written
    item.cmds.append(TensorCmd.matmul(src=dst if dst_act else _ACT, w=_WGT, dst=_E + 2 * R, m=n,
                                      fp8=fp8_ok and dst_act and out_fmt != OutFmt.INT8,
                                      fmt_a=int(out_fmt == OutFmt.E5M2)))
    item.checks += [(MEM_ACC, _A, span)]
    if dst_act:
        item.checks.append((MEM_ACT, dst, n))
    return item


def overlap_item(tb, rng, name="overlap") -> ProgramItem:
    """MATMULs into the accumulator bank the vector regions (``_A`` ..) are not in and a
    vector command on those regions, ``indep`` (docs/tensor_core.md "Overlap"): the
    vector unit runs while the array does."""
    R, C = tb.R, tb.C
    base = (1 - acc_bank(tb.config, _A)) * (tb.config.tensor.acc_rows // 2) + 8
    n, m = rng.randint(1, 2 * R), rng.randint(2 * R, 4 * R)
    item = ProgramItem(name)
    item.writes = [(MEM_ACC, _A, _rand_f32_rows(rng, _E + 4 * R - _A, C)),
                   (MEM_ACC, base, np.array([[rng.getrandbits(32) for _ in range(C)]
                                             for _ in range(2 * m)], np.uint32)),
                   (MEM_ACT, _ACT, np.array([[rng.randint(-128, 127) for _ in range(R)]
                                             for _ in range(m)], np.int8)),
                   (MEM_WEIGHT, _WGT, np.array([[rng.randint(-128, 127) for _ in range(C)]
                                                for _ in range(R)], np.int8))]
    mm = [TensorCmd(unit=Unit.MATMUL, src=_ACT, src2=_WGT, dst=base + k * m, count=m,
                    accumulate=rng.randint(0, 1), indep=k) for k in (0, 1)]
    op = rng.choice([VecOp.RELU, VecOp.COPY, VecOp.GELU, VecOp.RECIP])
    item.cmds = [mm[0], TensorCmd.vector(op, src=_A, dst=_D, count=n, indep=1), mm[1]]
    item.checks = [(MEM_ACC, _A, _E + 4 * R - _A), (MEM_ACC, base, 2 * m)]
    return item


def error_item(tb, code: ErrCode, bad: TensorCmd) -> ProgramItem:
    """A legal tile, the illegal command, then legal commands that must be discarded."""
    rng, R, C = tb.rng, tb.R, tb.C
    item = ProgramItem(f"error {code.name}", expect=code)
    item.writes = [
        (MEM_ACC, 498, np.array([[rng.getrandbits(32) for _ in range(C)] for _ in range(14)],
                                np.uint32)),
        (MEM_ACT, 0, np.array([[rng.randint(-128, 127) for _ in range(R)] for _ in range(4)], np.int8)),
        (MEM_WEIGHT, 0, np.array([[rng.randint(-128, 127) for _ in range(C)] for _ in range(R)],
                                 np.int8))]
    item.cmds = [TensorCmd.matmul(src=0, w=0, dst=500, m=2), bad,
                 TensorCmd.matmul(src=2, w=0, dst=504, m=2),
                 TensorCmd.vector(VecOp.RELU, src=500, dst=508, count=2)]
    item.checks = [(MEM_ACC, 498, 14)]
    return item


class DirectedSeq(uvm_sequence):
    """Every error code of the configuration, then a GEMM of each mode."""

    async def body(self):
        tb = ConfigDB().get(None, "", "TB")
        for code, bad in illegal_cases(tb.config):
            item = error_item(tb, code, bad)
            await self.start_item(item)
            await self.finish_item(item)
        for fp8 in ([False, True] if tb.config.systolic.fp8 else [False]):
            item = gemm_item(tb, tb.rng, fp8=fp8, name=f"gemm {'fp8' if fp8 else 'int8'}")
            await self.start_item(item)
            await self.finish_item(item)


class CoverageSeq(uvm_sequence):
    """Items aimed at empty coverage bins until every bin is hit (or a cap)."""

    stall_override = None

    async def body(self):
        tb = ConfigDB().get(None, "", "TB")
        cov = ConfigDB().get(None, "", "COVERAGE")
        rng = tb.rng
        for i in range(trials(30) * 3):
            if cov.closed() and i >= trials(4):
                break
            kind, arg = cov.next_target(rng)
            if kind == "mm":
                cnt, acc, mode = arg
                item = gemm_item(tb, rng, count=cnt, fp8=mode == "fp8", accumulate=acc == "acc",
                                 name=f"gemm_{i}")
            elif kind == "op":
                item = vector_item(tb, rng, op=arg, name=f"vector_{i}_{arg.name}")
            elif kind == "overlap":
                item = overlap_item(tb, rng, name=f"overlap_{i}")
            elif kind == "fmt":
                item = vector_item(tb, rng, op=VecOp.COPY, out_fmt=arg, dst_act=False,
                                   name=f"vector_{i}_fmt{int(arg)}")
            else:
                item = vector_item(tb, rng, op=rng.choice(list(VecOp)), name=f"vector_{i}")
            item.stall = self.stall_override or cov.next_stall(rng)
            await self.start_item(item)
            await self.finish_item(item)


class GapsSeq(CoverageSeq):
    """Every item with i_cmd gaps and o_rd backpressure (factory override)."""

    stall_override = "gaps"


class ProgramDriver(uvm_driver):
    """Runs each item on the DUT; publishes the item and what the DUT holds after it."""

    def build_phase(self):
        self.ap = uvm_analysis_port("ap", self)        # items as sent
        self.obs = uvm_analysis_port("obs", self)      # (item, rows per check, status)

    def start_of_simulation_phase(self):
        self.tb = ConfigDB().get(self, "", "TB")

    async def run_phase(self):
        tb = self.tb
        while True:
            item = await self.seq_item_port.get_next_item()
            tb.set_stalls(*STALLS[item.stall])
            for mem, addr, rows in item.writes:
                await tb.write_rows(mem, addr, rows, model=False)
            before = tb.perf()["overlap"]
            await tb.send(item.cmds, model=False)
            await tb.wait_idle(timeout=100_000)
            item.overlap = tb.perf()["overlap"] - before     # cycles both units busy
            self.ap.write(item)
            status = tb.status()
            rows = [await tb.read_rows(mem, addr, n) for mem, addr, n in item.checks]
            if status["error"]:
                await tb.clear_error()
            self.obs.write((item, rows, status))
            self.seq_item_port.item_done()


class CoreScoreboard(uvm_subscriber):
    """Executes every item on its own golden model and compares bit for bit."""

    def build_phase(self):
        self.errors: list[str] = []
        self.items = 0

    def start_of_simulation_phase(self):
        self.tb = ConfigDB().get(self, "", "TB")
        self.model = TensorCoreModel(self.tb.config)

    def write(self, obs):
        item, rows, status = obs
        model = self.model
        for mem, addr, data in item.writes:
            model.write(mem, addr, data)
        err = model.execute(item.cmds)
        if err != item.expect:
            self.errors.append(f"{item}: the model raised {err.name}, the item expects "
                               f"{item.expect.name} (broken item)")
        if status["err_code"] != err or status["error"] != (err != ErrCode.NONE):
            self.errors.append(f"{item}: DUT status {status}, model {err.name}")
        model.clear_err()
        for (mem, addr, n), got in zip(item.checks, rows):
            want = model.read(mem, addr, n)
            if not np.array_equal(got, want):
                i, j = np.argwhere(got != want)[0]
                self.errors.append(f"{item}: mem {mem} word {addr + i} lane {j}: got "
                                   f"{got[i, j]:#x}, model {want[i, j]:#x}")
        self.items += 1

    def check_phase(self):
        for e in self.errors[:5]:
            self.logger.error(e)
        assert not self.errors, f"{len(self.errors)} scoreboard errors (seed {self.tb.seed})"
        assert self.items, "scoreboard checked no item"
        self.logger.info(f"{self.items} programs matched the golden model")


class CoreCoverage(uvm_subscriber):
    """Functional coverage of the programs the driver ran (cocotb-coverage)."""

    NAMES = ("mm_count", "mm_acc", "mm_mode", "mm_cross", "vec_op", "out_fmt", "vec_dst",
             "err", "switch", "stall", "overlap")

    def build_phase(self):
        self.tag = tag = self.get_full_name()
        tb = ConfigDB().get(None, "", "TB")
        self.R = tb.R
        self.modes = ["int8", "fp8"] if tb.config.systolic.fp8 else ["int8"]
        self.codes = sorted({code for code, _ in illegal_cases(tb.config)})
        dsts = ["acc", "act"] if tb.R == tb.C else ["acc"]
        points = [CoverPoint(f"{tag}.{name}", xf=xf, bins=bins) for name, xf, bins in [
            ("mm_count", lambda c: c.get("count"), COUNT_BINS),
            ("mm_acc", lambda c: c.get("acc"), ["acc", "over"]),
            ("mm_mode", lambda c: c.get("mode"), self.modes),
            ("vec_op", lambda c: c.get("op"), list(VecOp)),
            ("out_fmt", lambda c: c.get("fmt"), list(OutFmt)),
            ("vec_dst", lambda c: c.get("dst"), dsts),
            ("err", lambda c: c.get("err"), self.codes),
            ("switch", lambda c: c.get("switch"), ["mm->vec", "vec->mm"]),
            ("stall", lambda c: c.get("stall"), list(STALLS)),
            ("overlap", lambda c: c.get("overlap"), ["vector and matmul busy"]),
        ]]
        cross = CoverCross(f"{tag}.mm_cross", items=[f"{tag}.mm_count", f"{tag}.mm_acc",
                                                     f"{tag}.mm_mode"])
        sample = cross(lambda c: None)
        for p in points:
            sample = p(sample)
        self._sample = sample

    def write(self, item: ProgramItem):
        R = self.R
        self._sample({"stall": item.stall})
        if item.overlap:
            self._sample({"overlap": "vector and matmul busy"})
        if item.expect != ErrCode.NONE:
            self._sample({"err": item.expect})
        prev = None
        for c in item.cmds:
            if c.unit == Unit.MATMUL:
                self._sample({"count": count_class(c.count, R), "acc": "acc" if c.accumulate
                              else "over", "mode": "fp8" if c.fp8 else "int8"})
            else:
                s = {"op": VecOp(c.op)} if c.op in VecOp._value2member_map_ else {}
                if s and s["op"] in VECTOR_WRITES and c.out_fmt in OutFmt._value2member_map_:
                    s.update(fmt=OutFmt(c.out_fmt), dst="act" if c.dst_act else "acc")
                self._sample(s)
            if prev is not None and prev != c.unit and item.expect == ErrCode.NONE:
                self._sample({"switch": "mm->vec" if prev == Unit.MATMUL else "vec->mm"})
            prev = c.unit

    def _cov(self, name):
        return coverage_db[f"{self.tag}.{name}"]

    def closed(self) -> bool:
        return all(self._cov(n).cover_percentage >= 100.0 for n in self.NAMES)

    @staticmethod
    def _missing(cov):
        return [b for b, n in cov.detailed_coverage.items() if n == 0]

    def next_target(self, rng):
        """(kind, what) of a bin still empty: a matmul cross bin, a vector op, a format."""
        for kind, name in (("mm", "mm_cross"), ("op", "vec_op"), ("fmt", "out_fmt"),
                           ("overlap", "overlap")):
            missing = self._missing(self._cov(name))
            if missing:
                return kind, rng.choice(missing)
        return "random", None

    def next_stall(self, rng):
        missing = self._missing(self._cov("stall"))
        return rng.choice(missing) if missing else rng.choice(list(STALLS))

    def report_phase(self):
        coverage_db.report_coverage(self.logger.info, bins=False)
        coverage_db.export_to_yaml(f"coverage-{type(uvm_root().uvm_test_top).__name__}.yml")
        if not ConfigDB().get(self, "", "REQUIRE_COVERAGE"):
            return
        for n in self.NAMES:
            pct = self._cov(n).cover_percentage
            assert pct >= 100.0, f"coverage {n} only {pct:.0f}% (seed {cocotb.RANDOM_SEED})"


class TensorCoreEnv(uvm_env):
    def build_phase(self):
        self.seqr = uvm_sequencer("seqr", self)
        self.driver = ProgramDriver("driver", self)
        self.scoreboard = CoreScoreboard("scoreboard", self)
        self.coverage = CoreCoverage("coverage", self)
        ConfigDB().set(None, "*", "COVERAGE", self.coverage)

    def connect_phase(self):
        self.driver.seq_item_port.connect(self.seqr.seq_item_export)
        self.driver.ap.connect(self.coverage.analysis_export)
        self.driver.obs.connect(self.scoreboard.analysis_export)


@pyuvm.test()
class TensorCoreRandomTest(uvm_test):
    """Directed error/GEMM items, then coverage-driven programs; coverage must close."""

    require_coverage = True

    def build_phase(self):
        self.tb = TensorCoreTB(cocotb.top)
        ConfigDB().set(None, "*", "TB", self.tb)
        ConfigDB().set(None, "*", "REQUIRE_COVERAGE", self.require_coverage)
        self.env = TensorCoreEnv("env", self)

    async def run_phase(self):
        self.raise_objection()
        await self.tb.reset()
        await DirectedSeq("directed").start(self.env.seqr)
        await CoverageSeq.create("coverage").start(self.env.seqr)
        self.drop_objection()


@pyuvm.test()
class TensorCoreGapsTest(TensorCoreRandomTest):
    """Same environment, every item with i_cmd gaps and o_rd backpressure: a factory
    override, not a copied test (the "none" stall bin then stays empty)."""

    require_coverage = False

    def build_phase(self):
        uvm_factory().set_type_override_by_type(CoverageSeq, GapsSeq)
        super().build_phase()
