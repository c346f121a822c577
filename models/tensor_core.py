"""Golden and cycle models of the tensor core (``rtl.tensor.core.TensorCore``).

State: the three SRAMs as numpy arrays (the RTL's words, bit for bit) and the vector
unit's per-row softmax state (``models.vector.VectorState``):

* ``act``  uint8  [act_rows, R]: INT8 values (two's complement) or FP8 codes;
* ``wgt``  uint8  [weight_rows, C];
* ``acc``  uint32 [acc_rows, C]: INT32 (two's complement) or binary32 bits.

Commands (:class:`models.tensor_cmd.TensorCmd`) execute in order. Each is first checked
with :func:`models.tensor_cmd.check`; the first illegal one sets the sticky error code
and it, and every later command, is discarded until :meth:`TensorCoreModel.clear_err`
(what the RTL does; see docs/tensor_core.md).

MATMUL ``acc[dst + i] (+)= act[src + i] @ W``, W = ``wgt[src2 : src2 + R]``, i < count:

* INT8: exact int64 products and sums, wrapped to int32; accumulate is a wrapping
  int32 add (``models.systolic.wrap_int32``).
* FP8: the tile partial is ``models.fp8.gemm_fp8(acts, fmt_a, W, fmt_w, tile_k=R)``
  (exact products, summed over k = 0..R-1 from +0, one binary32 rounding per add: the
  array's order); accumulate is ``models.fp32.fp32_add(acc_old, partial)``. A GEMM
  whose K tiles are issued in increasing k0, the first overwriting and the rest
  accumulating, therefore equals ``gemm_fp8(x, fmt_a, w, fmt_w, tile_k=R)``.
* overwrite: ``acc = partial``.

VECTOR commands run ``models.vector.vector_execute`` on the same arrays.

Cycle model (:func:`matmul_cycles`): exact for legal MATMUL sequences sent with no gaps
(checked by ``tb/tensor/test_tensor_core.py::test_back_to_back_cycles``).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from models.config import JalapenoConfig
from models.fp32 import fp32_add
from models.fp8 import E4M3, E5M2, gemm_fp8
from models.systolic import wrap_int32
from models.tensor_cmd import ErrCode, TensorCmd, Unit, check

__all__ = ["MEM_ACT", "MEM_WEIGHT", "MEM_ACC", "TensorCoreModel", "matmul_bound_cycles",
           "matmul_cycles", "PIPELINE_CYCLES", "ACC_ADD_STAGES", "acc_add_stages",
           "GemmLayout", "gemm_layout", "gemm_commands",
           "gemm_images", "gemm_result", "useful_macs", "OverlapIssue", "acc_bank",
           "acc_ranges", "acc_banks", "overlap_pairs", "overlap_errors", "CmdTiming",
           "program_schedule", "program_cycles", "MM_START_CYCLES", "FEEDER_QUEUE_DEPTH"]

MEM_ACT, MEM_WEIGHT, MEM_ACC = 0, 1, 2
_FMT = (E4M3, E5M2)


class TensorCoreModel:
    """Bit-exact model of one tensor core's SRAMs, error status and vector state.

    Parameters
    ----------
    config : JalapenoConfig
        The config the RTL was built from (array shape and FP8 option, SRAM depths).

    Attributes
    ----------
    act, wgt, acc : numpy.ndarray
        SRAM contents (module docstring).
    vec : models.vector.VectorState or None
        Softmax state of the vector unit (None if ``models.vector`` is not available).
    error : ErrCode
        Sticky error code (``ErrCode.NONE`` when clear).
    stats : dict
        ``matmul``, ``vector`` (commands executed), ``discarded``, ``act`` (activation
        vectors fed to the array): what the RTL's perf counters count.
    """

    def __init__(self, config: JalapenoConfig):
        self.config = config
        sa, tc = config.systolic, config.tensor
        self.act = np.zeros((tc.act_rows, sa.rows), np.uint8)
        self.wgt = np.zeros((tc.weight_rows, sa.cols), np.uint8)
        self.acc = np.zeros((tc.acc_rows, sa.cols), np.uint32)
        try:
            from models.vector import VectorState
        except ModuleNotFoundError:
            self.vec = None
        else:
            self.vec = VectorState.new(config)
        self.error = ErrCode.NONE
        self.stats = {"matmul": 0, "vector": 0, "discarded": 0, "act": 0}

    # --- host port -----------------------------------------------------------------------
    def _mem(self, mem: int) -> np.ndarray:
        if mem == MEM_ACT:
            return self.act
        if mem == MEM_WEIGHT:
            return self.wgt
        if mem == MEM_ACC:
            return self.acc
        raise ValueError(f"mem must be 0 (act), 1 (weight) or 2 (acc), got {mem!r}")

    def write(self, mem: int, addr: int, rows) -> None:
        """Store ``rows`` (2-D, one SRAM word per row) from word ``addr``.

        Activation/weight rows may be int8 or uint8 (stored as bytes); accumulator rows
        int32, uint32 or float32 (stored as their 32-bit patterns).
        """
        dst = self._mem(mem)
        rows = np.asarray(rows)
        if rows.ndim != 2 or rows.shape[1] != dst.shape[1]:
            raise ValueError(f"rows for mem {mem} must have shape (n, {dst.shape[1]}), "
                             f"got {rows.shape}")
        if not (0 <= addr and addr + rows.shape[0] <= dst.shape[0]):
            raise ValueError(f"rows {addr}..{addr + rows.shape[0] - 1} are outside mem {mem} "
                             f"({dst.shape[0]} words)")
        if rows.dtype.itemsize != dst.dtype.itemsize or rows.dtype.kind not in "iuf":
            raise TypeError(f"rows for mem {mem} must be {dst.dtype.itemsize * 8}-bit, "
                            f"got dtype {rows.dtype}")
        dst[addr:addr + rows.shape[0]] = rows.view(dst.dtype)

    def read(self, mem: int, addr: int, n: int) -> np.ndarray:
        """A copy of ``n`` words from ``addr`` (uint8 or uint32 rows)."""
        src = self._mem(mem)
        if not (0 <= addr and addr + n <= src.shape[0]):
            raise ValueError(f"rows {addr}..{addr + n - 1} are outside mem {mem}")
        return src[addr:addr + n].copy()

    # --- commands ------------------------------------------------------------------------
    def clear_err(self) -> None:
        """What an ``i_clear_err`` pulse does: later commands execute again."""
        self.error = ErrCode.NONE

    def execute(self, cmds: Iterable[TensorCmd] | TensorCmd) -> ErrCode:
        """Run ``cmds`` in order; return the (sticky) error code afterwards."""
        if isinstance(cmds, TensorCmd):
            cmds = [cmds]
        for cmd in cmds:
            if self.error != ErrCode.NONE:
                self.stats["discarded"] += 1
                continue
            code = check(cmd, self.config)
            if code != ErrCode.NONE:
                self.error = code
                self.stats["discarded"] += 1
                continue
            if cmd.unit == Unit.MATMUL:
                self._matmul(cmd)
                self.stats["matmul"] += 1
                self.stats["act"] += cmd.count
            else:
                if self.vec is None:
                    raise NotImplementedError("VECTOR commands need models.vector")
                from models.vector import vector_execute
                vector_execute(self.config, cmd, self.acc, self.act, self.vec)
                self.stats["vector"] += 1
        return self.error

    def _matmul(self, cmd: TensorCmd) -> None:
        R = self.config.systolic.rows
        a = self.act[cmd.src:cmd.src + cmd.count]
        w = self.wgt[cmd.src2:cmd.src2 + R]
        rows = slice(cmd.dst, cmd.dst + cmd.count)
        if cmd.fp8:
            part = gemm_fp8(a, _FMT[cmd.fmt_a], w, _FMT[cmd.fmt_w], tile_k=R)
            if cmd.accumulate:
                part = fp32_add(self.acc[rows].view(np.float32), part)
            self.acc[rows] = part.view(np.uint32)
        else:
            part = a.view(np.int8).astype(np.int64) @ w.view(np.int8).astype(np.int64)
            if cmd.accumulate:
                part = part + self.acc[rows].view(np.int32)
            self.acc[rows] = wrap_int32(part).view(np.uint32)


# --- cycle models --------------------------------------------------------------------------
#: Cycles of the core's pipeline outside the array (command queue, dispatch, feeder
#: read, result write, idle): fixed by the RTL, measured by the cycle-model test.
PIPELINE_CYCLES = 4

#: Pipeline registers of the result writer's binary32 accumulate add
#: (``rtl.fp.fp32_add.FP32Adder`` stages) in builds with the FP8 datapath: a result
#: row is written 1 + ACC_ADD_STAGES cycles after its accumulator row is read.
ACC_ADD_STAGES = 2


def acc_add_stages(config: JalapenoConfig) -> int:
    """The result writer's add pipeline: :data:`ACC_ADD_STAGES` with FP8, else 0."""
    return ACC_ADD_STAGES if config.systolic.fp8 else 0


def _hazard_cycles(config: JalapenoConfig, cmds: list[TensorCmd]) -> int:
    """Stall cycles of the result writer's read-after-write hazard.

    An accumulating result row whose accumulator row is still in the add pipeline
    (read 1 .. P cycles earlier, P = :func:`acc_add_stages`) is refused until that
    row is written; the array holds it in its output skid register and restarts one
    cycle after it is taken, so every later row is delayed by as many cycles.
    """
    P = acc_add_stages(config)
    if P == 0:
        return 0
    R = config.systolic.rows
    rows, t0 = [], 0
    for c in cmds:
        rows += [(t0 + i, c.dst + i, c.accumulate) for i in range(c.count)]
        t0 += max(c.count, R)
    shift, last_read = 0, {}
    for t_nom, addr, acc in rows:
        t = t_nom + shift
        u = t
        if acc and addr in last_read and u - last_read[addr] <= P:
            u = max(t + 1, last_read[addr] + P + 1)
        shift += u - t
        last_read[addr] = u
    return shift


def matmul_bound_cycles(cmds: Iterable[TensorCmd]) -> int:
    """Compute bound: one activation vector per cycle (sum of ``count`` of MATMULs)."""
    return sum(c.count for c in cmds if c.unit == Unit.MATMUL)


def useful_macs(config: JalapenoConfig, cmds: Iterable[TensorCmd]) -> int:
    """R x C multiply-accumulates per activation vector (padding counts as useful)."""
    return matmul_bound_cycles(cmds) * config.systolic.peak_macs_per_cycle


def matmul_cycles(config: JalapenoConfig, cmds: list[TensorCmd]) -> int:
    """Cycles from the first command accepted on ``i_cmd`` to ``o_idle`` seen high, for
    legal MATMUL commands sent back to back (no gaps, no stalls).

    Tile k's first activation enters the array R cycles after the previous tile's did
    at the earliest (its weights load in the shadow registers meanwhile) and after the
    previous tile's last one: tiles start every ``max(count_k, R)`` cycles. Then the last
    tile's ``count`` vectors, the array's latency (``SystolicConfig.latency``: R + C + 2,
    or R + C + 7 with FP8) and the core's pipeline
    (:data:`PIPELINE_CYCLES`, plus R for the first tile's weights), plus the result
    writer's add pipeline (:func:`acc_add_stages`) and its read-after-write stalls
    (an accumulating row whose accumulator row was read 1 .. P cycles earlier waits).
    """
    counts = [c.count for c in cmds]
    if not counts or any(c.unit != Unit.MATMUL for c in cmds):
        raise ValueError("matmul_cycles needs a non-empty list of MATMUL commands")
    R = config.systolic.rows
    return (PIPELINE_CYCLES + acc_add_stages(config) + R + sum(max(n, R) for n in counts[:-1])
            + counts[-1] + config.systolic.latency + _hazard_cycles(config, cmds))


# --- GEMM helpers (tests, benches) ---------------------------------------------------------
@dataclass(frozen=True)
class GemmLayout:
    """Where a GEMM ``Y[M, N] = X[M, K] @ W[K, N]`` lives in the SRAMs.

    X K-tile ``kt`` row ``i`` is activation word ``act + kt * M + i``; the weight tile
    ``(kt, nt)`` is weight words ``wgt + (nt * KT + kt) * R ...``; Y N-tile ``nt`` row ``i``
    is accumulator word ``acc + nt * M + i``. ``r`` is the array's R.
    """

    m: int
    k: int
    n: int
    kt: int
    nt: int
    act: int
    wgt: int
    acc: int
    r: int

    @property
    def act_words(self) -> int:
        return self.kt * self.m

    @property
    def wgt_words(self) -> int:
        return self.kt * self.nt * self.r

    @property
    def acc_words(self) -> int:
        return self.nt * self.m


def gemm_layout(config: JalapenoConfig, m: int, k: int, n: int, *, act: int = 0, wgt: int = 0,
                acc: int = 0) -> GemmLayout:
    """Lay out an M x K x N GEMM from the given base words; raises if it does not fit."""
    R, C = config.systolic.rows, config.systolic.cols
    tc = config.tensor
    if min(m, k, n) < 1:
        raise ValueError(f"GEMM dimensions must be >= 1, got M={m} K={k} N={n}")
    lay = GemmLayout(m, k, n, math.ceil(k / R), math.ceil(n / C), act, wgt, acc, R)
    for name, base, words, depth in (("activation", act, lay.act_words, tc.act_rows),
                                     ("weight", wgt, lay.wgt_words, tc.weight_rows),
                                     ("accumulator", acc, lay.acc_words, tc.acc_rows)):
        if base < 0 or base + words > depth:
            raise ValueError(f"{m}x{k}x{n} GEMM needs {name} words {base}..{base + words - 1}, "
                             f"the SRAM has {depth}")
    return lay


def gemm_images(config: JalapenoConfig, lay: GemmLayout, x, w) -> list[tuple[int, int, np.ndarray]]:
    """``(mem, addr, rows)`` writes that load X and W (int8 values or uint8 FP8 codes,
    zero-padded to whole tiles) for :func:`gemm_commands`."""
    R, C = config.systolic.rows, config.systolic.cols
    x, w = np.asarray(x), np.asarray(w)
    if x.shape != (lay.m, lay.k) or w.shape != (lay.k, lay.n):
        raise ValueError(f"x, w must be {lay.m}x{lay.k} and {lay.k}x{lay.n}, got {x.shape}, {w.shape}")
    xp = np.zeros((lay.m, lay.kt * R), np.uint8)
    xp[:, :lay.k] = x.view(np.uint8) if x.dtype.itemsize == 1 else x.astype(np.uint8)
    wp = np.zeros((lay.kt * R, lay.nt * C), np.uint8)
    wp[:lay.k, :lay.n] = w.view(np.uint8) if w.dtype.itemsize == 1 else w.astype(np.uint8)
    acts = xp.reshape(lay.m, lay.kt, R).transpose(1, 0, 2).reshape(lay.kt * lay.m, R)
    wts = wp.reshape(lay.kt, R, lay.nt, C).transpose(2, 0, 1, 3).reshape(-1, C)
    return [(MEM_ACT, lay.act, np.ascontiguousarray(acts)),
            (MEM_WEIGHT, lay.wgt, np.ascontiguousarray(wts))]


def gemm_commands(config: JalapenoConfig, lay: GemmLayout, *, chunks=None, fp8: bool = False,
                  fmt_a: int = 0, fmt_w: int = 0, accumulate_into: bool = False,
                  order: str = "nkm") -> list[TensorCmd]:
    """MATMUL commands of the GEMM: for each N tile, the K tiles in increasing k0 (the
    first overwrites unless ``accumulate_into``, the others accumulate), each split into
    commands over row chunks of M (``chunks``: list of counts summing to M; default one
    command of M rows). ``order`` "nkm" issues chunk-minor, "nmk" runs all K tiles of a
    chunk before the next chunk (both keep k0 increasing per output row)."""
    R = config.systolic.rows
    chunks = list(chunks) if chunks is not None else [lay.m]
    if sum(chunks) != lay.m or min(chunks) < 1:
        raise ValueError(f"chunks must be positive and sum to M={lay.m}, got {chunks}")
    starts = np.cumsum([0] + chunks[:-1]).tolist()
    cmds = []
    for nt in range(lay.nt):
        pairs = ([(kt, i) for kt in range(lay.kt) for i in range(len(chunks))] if order == "nkm"
                 else [(kt, i) for i in range(len(chunks)) for kt in range(lay.kt)])
        for kt, i in pairs:
            m0, cnt = starts[i], chunks[i]
            cmds.append(TensorCmd.matmul(
                src=lay.act + kt * lay.m + m0, w=lay.wgt + (nt * lay.kt + kt) * R,
                dst=lay.acc + nt * lay.m + m0, m=cnt, accumulate=kt > 0 or accumulate_into,
                fp8=fp8, fmt_a=fmt_a, fmt_w=fmt_w))
    return cmds


def gemm_result(config: JalapenoConfig, lay: GemmLayout, acc_rows: np.ndarray) -> np.ndarray:
    """Y (M x N, uint32 words) out of the accumulator words ``acc .. acc + NT*M - 1``."""
    C = config.systolic.cols
    rows = np.asarray(acc_rows)[:lay.acc_words]
    y = rows.reshape(lay.nt, lay.m, C).transpose(1, 0, 2).reshape(lay.m, lay.nt * C)
    return y[:, :lay.n].copy()


# --- overlap (indep commands) ---------------------------------------------------------------
@dataclass(frozen=True)
class OverlapIssue:
    """One finding of :func:`overlap_errors`.

    Attributes
    ----------
    index : int
        The later command of the pair (the one with ``indep``, which may be dispatched
        while ``other`` still runs).
    other : int
        The earlier command, of the other unit.
    kind : str
        ``"race"``: activation rows one writes and the other reads (the result may differ
        from in-order execution: the program breaks the overlap rules); ``"wait"``: they
        use common accumulator rows (a data dependency: the hardware waits for ``other``
        to finish before dispatching ``index``, in-order result); ``"bank"``: their
        accumulator rows share a bank but no row (legal, in-order result, but the
        hardware waits as for ``"wait"``: a needless loss of overlap).
    what : str
        Human-readable detail (rows, bank).
    """

    index: int
    other: int
    kind: str
    what: str


def acc_bank(config: JalapenoConfig, row: int) -> int:
    """Accumulator bank of ``row``: its top address bit (rows ``acc_rows / 2 ..`` are
    bank 1)."""
    return int(row >= config.tensor.acc_rows // 2)


def _banks(config: JalapenoConfig, ranges) -> set[int]:
    return {b for lo, n in ranges for b in (acc_bank(config, lo), acc_bank(config, lo + n - 1))}


def acc_ranges(cmd: TensorCmd) -> list[tuple[int, int]]:
    """``(first, count)`` accumulator row ranges ``cmd`` reads or writes: MATMUL its
    ``dst`` rows; VECTOR its ``src`` rows (ops in ``VECTOR_READS_SRC``), ``src2`` rows
    (RESCALE, BIAS, REQUANT with ``bias``) and ``dst`` rows (ops that write, unless
    ``dst_act``). The vector unit's softmax state is a memory of its own."""
    from models.tensor_cmd import VECTOR_READS_SRC, VECTOR_READS_SRC2, VECTOR_WRITES, VecOp
    n = cmd.count
    if cmd.unit == Unit.MATMUL:
        return [(cmd.dst, n)]
    op = VecOp(cmd.op)
    out = []
    if op in VECTOR_READS_SRC:
        out.append((cmd.src, n))
    if op in VECTOR_READS_SRC2 or (op == VecOp.REQUANT and cmd.bias):
        out.append((cmd.src2, n))
    if op in VECTOR_WRITES and not cmd.dst_act:
        out.append((cmd.dst, n))
    return out


def acc_banks(config: JalapenoConfig, cmd: TensorCmd) -> set[int]:
    """Accumulator banks (:func:`acc_bank`) of the rows ``cmd`` touches (:func:`acc_ranges`)."""
    return _banks(config, acc_ranges(cmd))


def _act_rows(cmd: TensorCmd) -> tuple[range, range]:
    """(activation rows read, activation rows written) of a legal command."""
    from models.tensor_cmd import VECTOR_WRITES, VecOp
    if cmd.unit == Unit.MATMUL:
        return range(cmd.src, cmd.src + cmd.count), range(0)
    if cmd.dst_act and VecOp(cmd.op) in VECTOR_WRITES:
        return range(0), range(cmd.dst, cmd.dst + cmd.count)
    return range(0), range(0)


def overlap_pairs(cmds: list[TensorCmd]) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, i < j, of commands of different units that may run at the same
    time (docs/tensor_core.md "Overlap"): ``j`` has ``indep`` and

    * ``j`` VECTOR, ``i`` MATMUL: no VECTOR without ``indep`` lies between them (such a
      VECTOR waits until every earlier MATMUL has finished);
    * ``j`` MATMUL, ``i`` VECTOR: ``i`` is the last VECTOR before ``j`` and every MATMUL
      between them has ``indep`` (one without waits until the vector unit is idle).

    ``cmds`` are the legal commands in program order (illegal ones never run).
    """
    pairs = []
    for j, c in enumerate(cmds):
        if not c.indep:
            continue
        if c.unit == Unit.VECTOR:
            for i in range(j - 1, -1, -1):
                if cmds[i].unit == Unit.VECTOR:
                    if not cmds[i].indep:
                        break
                else:
                    pairs.append((i, j))
        else:
            for i in range(j - 1, -1, -1):
                if cmds[i].unit == Unit.VECTOR:
                    pairs.append((i, j))
                    break
                if not cmds[i].indep:
                    break
    return sorted(pairs, key=lambda p: (p[1], p[0]))


def overlap_errors(config: JalapenoConfig, cmds: list[TensorCmd]) -> list[OverlapIssue]:
    """Check a program's ``indep`` commands against the overlap rules.

    For every pair that may run at the same time (:func:`overlap_pairs`; illegal
    commands, which the core discards, are skipped; so is everything after the first
    one, which the core discards too): ``"race"`` when one writes activation rows the
    other reads (a VECTOR with ``dst_act`` and a MATMUL's ``src`` rows; in-order results
    are not guaranteed), ``"wait"`` when they share accumulator rows (a dependency the
    hardware honours by waiting), ``"bank"`` when their accumulator rows share a bank
    but no row (the hardware waits too: correct, not overlapped). No ``"race"``: the
    results equal in-order execution; no issue at all: every pair overlaps. Issues are
    ordered by the later command, then the earlier.
    """
    legal, index = [], []
    for k, c in enumerate(cmds):
        if check(c, config) != ErrCode.NONE:
            break
        legal.append(c)
        index.append(k)
    out = []
    for i, j in overlap_pairs(legal):
        a, b = legal[i], legal[j]
        ra, wa = _act_rows(a)
        rb, wb = _act_rows(b)
        for (w, r) in ((wa, rb), (wb, ra)):
            hit = range(max(w.start, r.start), min(w.stop, r.stop))
            if len(hit):
                out.append(OverlapIssue(index[j], index[i], "race",
                                        f"activation rows {hit.start}..{hit.stop - 1} written "
                                        f"by one, read by the other"))
                break
        shared = acc_banks(config, a) & acc_banks(config, b)
        rows_a = {r for lo, n in acc_ranges(a) for r in range(lo, lo + n)}
        common = rows_a & {r for lo, n in acc_ranges(b) for r in range(lo, lo + n)}
        if common:
            out.append(OverlapIssue(index[j], index[i], "wait",
                                    f"accumulator rows {min(common)}..{max(common)} used by "
                                    f"both (a dependency: the hardware waits)"))
        elif shared:
            out.append(OverlapIssue(index[j], index[i], "bank",
                                    f"accumulator bank {sorted(shared)} used by both, no "
                                    f"common row (the hardware waits anyway)"))
    return out


# --- cycle model of a program (both units, fences and overlap) ------------------------------
#: Commands the matmul controller's weight and activation feeders queue
#: (``rtl.tensor.matmul.QUEUE_DEPTH``).
FEEDER_QUEUE_DEPTH = 4

#: Cycles from a MATMUL's dispatch to its first activation entering the array, beyond the
#: R cycles of its weight load, when the array is free (the feeders' queue and read stage).
MM_START_CYCLES = 2


@dataclass
class CmdTiming:
    """When :func:`program_schedule` has a command run: ``dispatch`` (the cycle the
    dispatcher hands it to its unit) and ``finish`` (MATMUL: the cycle its last row is
    written; VECTOR: the first cycle the vector unit is idle again)."""

    dispatch: int
    finish: int


class _MatmulTimeline:
    """The matmul controller's timing: tile starts, read-after-write stalls, queue room."""

    def __init__(self, config: JalapenoConfig):
        self.R = config.systolic.rows
        self.L = config.systolic.latency
        self.P = acc_add_stages(config)
        self.start = None           # nominal start of the previous tile
        self.prev_count = 0
        self.shift = 0              # read-after-write stall cycles so far
        self.last_read: dict[int, int] = {}
        self.pops: list[int] = []   # cycle each command left the activation feeder's queue

    def room(self) -> int:
        """First cycle the feeders' queues (QUEUE_DEPTH commands) can take another."""
        q = FEEDER_QUEUE_DEPTH
        return self.pops[-q] + 1 if len(self.pops) >= q else 0

    def issue(self, cmd: TensorCmd, d: int) -> int:
        """Dispatch ``cmd`` in cycle ``d``; returns the cycle its last row is written."""
        R, P = self.R, self.P
        n = d + R + MM_START_CYCLES - self.shift
        first = self.start is None
        if not first:
            n = max(n, self.start + max(self.prev_count, R))
        if cmd.count >= 2:
            self.pops.append(n + self.shift + cmd.count - 2)
        else:                       # the single row is read as soon as the stage is free
            prev_last = (self.start + self.prev_count - 1 + self.shift) if not first else 0
            self.pops.append(max(d + 1, prev_last))
        t = n
        for i in range(cmd.count):
            u = t + i + self.shift
            addr = cmd.dst + i
            if P and cmd.accumulate and addr in self.last_read and u - self.last_read[addr] <= P:
                w = max(u + 1, self.last_read[addr] + P + 1)
                self.shift += w - u
                u = w
            self.last_read[addr] = u
        self.start, self.prev_count = n, cmd.count
        return n + cmd.count - 1 + self.shift + 1 + self.L + P + (2 - MM_START_CYCLES)


def program_schedule(config: JalapenoConfig, cmds: list[TensorCmd]) -> list[CmdTiming]:
    """Dispatch and finish cycles of every command of a legal program sent back to back
    (no gaps on ``i_cmd``; cycle 0 = the first command accepted), as the RTL's dispatcher
    runs it: in order, one command per cycle at most, a command entering the queue in
    cycle t reaching its head in t + 1; the fences of docs/tensor_core.md "Ordering and
    fences" and the ``indep`` rules of "Overlap" (an ``indep`` command waits only for the
    other unit's in-flight commands that share an accumulator bank). VECTOR commands
    occupy the unit ``count + models.vector.vector_latency(C)`` cycles.
    """
    from models.vector import vector_latency
    depth = config.tensor.cmd_depth
    VL = vector_latency(config.systolic.cols)
    mm = _MatmulTimeline(config)
    out: list[CmdTiming] = []
    push: list[int] = []
    vec_idle, vec_banks = 0, set()
    inflight: list[tuple[int, set[int]]] = []       # (finish, banks) of MATMULs
    for i, c in enumerate(cmds):
        if check(c, config) != ErrCode.NONE:
            raise ValueError(f"program_schedule: command {i} is illegal ({check(c, config).name})")
        p = max(push[-1] + 1 if push else 0, out[i - depth].dispatch + 1 if i >= depth else 0)
        push.append(p)
        d = max(p + 1, out[-1].dispatch + 1 if out else 0)
        banks = acc_banks(config, c)
        if c.unit == Unit.MATMUL:
            if not (c.indep and not banks & vec_banks):
                d = max(d, vec_idle)
            d = max(d, mm.room())
            fin = mm.issue(c, d)
            inflight.append((fin, banks))
        else:
            d = max(d, vec_idle)
            for fin_k, b in inflight:
                if not c.indep or b & banks:
                    d = max(d, fin_k + 1)
            fin = d + c.count + VL
            vec_idle, vec_banks = fin, banks
        out.append(CmdTiming(d, fin))
    return out


def program_cycles(config: JalapenoConfig, cmds: list[TensorCmd]) -> int:
    """Cycles from the first command accepted on ``i_cmd`` to ``o_idle`` seen high for a
    legal program of MATMULs and VECTORs sent back to back (:func:`program_schedule`):
    equals :func:`matmul_cycles` for MATMULs only. Exact (the RTL tests compare) when
    no MATMUL with ``count`` 1 is followed by more than ``QUEUE_DEPTH`` queued MATMULs
    before a VECTOR (the weight feeder's queue, not modelled, would then bind)."""
    if not cmds:
        raise ValueError("program_cycles needs at least one command")
    sched = program_schedule(config, cmds)
    end = max(t.finish + (1 if c.unit == Unit.MATMUL else 0) for t, c in zip(sched, cmds))
    return max(end, sched[-1].dispatch + 1)
