"""Host compiler: one MoE layer (``models.moe``) as two chip programs (issue 15).

The layer runs as two command streams with the host in between (docs/moe.md, "On the
chip (built)"): :func:`routing_program` (router GEMM, TOPK, softmax of the k selected
logits, the ranking and weight rows to HBM, then one DISPATCH), the host reads the
counters (:func:`read_counts`) and places the experts on tiles
(:func:`models.moe_perf.place_experts`, :func:`place`), and :func:`experts_program`
(per tile its expert pieces, a BARRIER, then the combine of its tokens).

Token rows. An activation word is one R-byte chunk of a token; a DMA copies whole HBM
beats in lane, so when R is below the beat (``hbm.data_bytes`` W, the ``tiny`` preset)
every token takes ``sp = W / R`` activation rows (``sp = 1`` when R >= W): the matmuls
also run the rows in between (their results are never read). x sits in HBM as
``[T][kt][P]`` with ``P = max(R, W)`` bytes per chunk, so a token's chunks are a plane
of the gather whatever R is.

**Program 1** (per tile, its share of the tokens): the x rows (3D DMA) and the router
(``[kt][R][C]``, columns >= E zero); ``kt`` MATMULs (INT32 logits); TOPK with stage A
``in_int, imm = fmul(s_x, s_r)`` and ``pad, kv_len = E``: lane ids to the activation
SRAM (the ranking rows), and again the sorted binary32 logits to the accumulator;
STATE_INIT, ROWMAX / EXP with ``pad, kv_len = k``, NORM: the softmax weights in lanes
0..k-1 (``models.moe.softmax_k``); stores of the id rows (``rank_stride = sp R``) and
the weight rows (``C`` words per token); DISPATCH (``models.moe_dispatch``), IRQ.

**Program 2**, expert piece ``(e, rows)`` on a tile, in token blocks of at most ``mb``
rows: gather of the block's x rows (indexed DMA over the slot_token list); d_ff in
chunks of ``F = fc C`` columns, each chunk two weight loads (the W1 columns, ``kt x fc``
tiles, and the W2 rows, ``fc x nd`` tiles, equal sizes) through a ring of four weight
slots; W1 chunk MATMULs into one of two a1 slots (one per accumulator bank), GELU
(``in_int, imm = fmul(s_x, s_w1)``, INT8 out with ``imm2 = inv_s_h``) into one of two
h slots, W2 chunk MATMULs accumulating a2 (INT32, wrap). Chunk f+1's W1 MATMULs carry
``indep``: the array runs them while the vector unit runs GELU(f) (other bank, no
activation row in common: ``models.tensor_core.overlap_errors`` finds no race); W2(f)
waits for GELU(f). COPY a2 -> y in place (``in_int, imm = fmul(s_h, s_w2)``) and the
store of the y rows in dispatch order. After a BARRIER, the combine per tile, in blocks
of ``cb`` tokens: out rows zeroed by MATMULs of zero activation rows (INT32 0 is
binary32 +0); per choice j the y rows gathered by slot-table column j (a dropped choice
reads ``drop_slot``, the all-zero y row), STATE_LOAD ``alpha = w lane j``, RESCALE
``out = fadd(fmul(y, alpha), out)`` per d_model chunk; the out rows stored.

Tokens (per tile; :class:`_TileStream`): every load signals L2C and its first consumer
waits for it (extra waits as SYNCs), a command that last reads a slot signals C2L, a
load into a slot waits until the slot's previous load was freed (counted, with SYNCs
for the difference); loads are emitted right after that free (prefetch). Stores wait
C2S from the command that produced their rows and free them with S2C. Leftover tokens
are taken by SYNCs at the end, so every counter ends at 0.

HBM layout (:func:`plan_moe`): x, router, experts (per expert and chunk the W1 then W2
half), ranking rows, weight rows, slot table, slot_token list, counters, y (``T k + 1``
rows of ``d_model`` binary32: the last is ``drop_slot``, all zero), zero rows, out, then
ring 1 and ring 2.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from models import moe as _moe
from models import moe_dispatch as _md
from models.compiler import IRQ_DONE, FitError, ceil_div
from models.config import JalapenoConfig
from models.dma import Descriptor, DmaDir
from models.isa import CMD_BYTES, Command, Opcode, Queue, Sram
from models.moe_perf import place_experts
from models.tensor_cmd import OutFmt, TensorCmd, Unit, VecOp
from models.vector import fmul, vector_latency

__all__ = ["MoePlan", "plan_moe", "pack_hbm", "routing_program", "read_counts", "place",
           "experts_program", "read_results", "MoeChipResult", "scales"]

_ALIGN = 256
_RING_SLOTS = 4                 # weight halves in flight per tile



def _even(n: int, parts: int) -> list[tuple[int, int]]:
    """(first, count) of ``parts`` near-equal consecutive parts of ``n`` (the first
    ``n % parts`` one larger)."""
    out, first = [], 0
    for i in range(parts):
        k = n // parts + (i < n % parts)
        out.append((first, k))
        first += k
    return out


def _align(x: int) -> int:
    return ceil_div(x, _ALIGN) * _ALIGN


def _f32(x) -> float:
    return float(np.float32(x))


def _fmul(a, b) -> float:
    return float(fmul(np.array([a], np.float32), np.array([b], np.float32))[0])


def scales(inputs: _moe.MoeInput, weights: _moe.MoeWeights) -> dict:
    """The binary32 scales the commands carry (``imm`` / ``imm2``), as the model forms
    them: router ``fmul(s_x, s_r)``; per expert ``s1 = fmul(s_x, s_w1)``, ``inv_s_h``,
    ``s2 = fmul(s_h, s_w2)``."""
    E = weights.experts
    return {"router": _fmul(inputs.s_x, weights.s_router),
            "s1": [_fmul(inputs.s_x, weights.s_w1[e]) for e in range(E)],
            "inv_s_h": [_f32(weights.inv_s_h[e]) for e in range(E)],
            "s2": [_fmul(weights.s_h[e], weights.s_w2[e]) for e in range(E)]}


@dataclass
class MoePlan:
    """Sizes, blocking and HBM addresses of one layer (module docstring)."""

    cfg: JalapenoConfig
    problem: _moe.MoeProblem
    fc: int                     # d_ff column tiles per chunk
    mb: int                     # token rows per expert block (at most)
    cb: int                     # tokens per combine block (at most)
    addr: dict = field(default_factory=dict)

    @property
    def R(self) -> int:
        return self.cfg.systolic.rows

    @property
    def C(self) -> int:
        return self.cfg.systolic.cols

    @property
    def W(self) -> int:
        return self.cfg.hbm.data_bytes

    @property
    def sp(self) -> int:
        """Activation rows per token (module docstring)."""
        return max(1, self.W // self.R)

    @property
    def P(self) -> int:
        """HBM bytes of one x chunk."""
        return max(self.R, self.W)

    @property
    def kt(self) -> int:
        return self.problem.d_model // self.R

    @property
    def nd(self) -> int:
        return self.problem.d_model // self.C

    @property
    def nf(self) -> int:
        return self.problem.d_ff // self.C

    @property
    def chunks(self) -> list[tuple[int, int]]:
        """(first column tile, column tiles) of every d_ff chunk."""
        return [(j, min(self.fc, self.nf - j)) for j in range(0, self.nf, self.fc)]

    @property
    def half_rows(self) -> int:
        """Weight rows of one ring slot (a full chunk's W1 or W2 half)."""
        return self.kt * self.fc * self.R

    @property
    def drop_slot(self) -> int:
        return self.problem.tokens * self.problem.top_k

    @property
    def rank_stride(self) -> int:
        return self.sp * self.R

    def token_split(self) -> list[tuple[int, int]]:
        """(first token, tokens) of every tile (routing and combine)."""
        return _even(self.problem.tokens, self.cfg.soc.tiles)

    def expert_addr(self, e: int) -> int:
        return self.addr["w"] + e * 2 * self.problem.d_model * self.problem.d_ff

    @property
    def dispatch_desc(self) -> _md.Descriptor:
        p, a = self.problem, self.addr
        return _md.Descriptor(
            tokens=p.tokens, experts=p.experts, top_k=p.top_k,
            policy=_md.Policy.REROUTE if p.overflow == "reroute" else _md.Policy.DROP,
            capacity=p.capacity, rank_stride=self.rank_stride, rank_addr=a["rank"],
            slot_addr=a["slot"], slot_token_addr=a["slot_token"], counts_addr=a["counts"],
            drop_slot=self.drop_slot)


def _fit(cfg: JalapenoConfig, p: _moe.MoeProblem, fc: int | None, mb: int | None):
    """(fc, mb, cb): the largest chunk, expert block and combine block that fit."""
    sa, tc = cfg.systolic, cfg.tensor
    R, C = sa.rows, sa.cols
    if R != C:
        raise FitError(f"the MoE programs need a square array (TOPK ids and GELU write "
                       f"the activation SRAM), got {R}x{C}")
    if p.d_model % R or p.d_ff % C:
        raise FitError(f"d_model ({p.d_model}) and d_ff ({p.d_ff}) must be multiples of "
                       f"the array size {R}")
    if p.experts > C:
        raise FitError(f"{p.experts} experts do not fit one accumulator row of {C} lanes")
    soc = cfg.soc
    if p.tokens > soc.dispatch_tokens or p.experts > soc.dispatch_experts:
        raise FitError(f"the dispatch unit of preset {cfg.name!r} takes at most "
                       f"{soc.dispatch_tokens} tokens and {soc.dispatch_experts} experts")
    sp = max(1, cfg.hbm.data_bytes // R)
    kt, nd, nf = p.d_model // R, p.d_model // C, p.d_ff // C
    fmax = tc.weight_rows // (_RING_SLOTS * kt * R)
    if fmax < 1:
        raise FitError(f"four W1 column tiles of d_model {p.d_model} need "
                       f"{_RING_SLOTS * kt * R} weight SRAM rows, the limit is "
                       f"{tc.weight_rows}")
    if fc is None:
        fc = max(c for c in range(1, min(fmax, nf) + 1) if nf % c == 0)
    elif not 1 <= fc <= fmax:
        raise FitError(f"chunk of {fc} column tiles: 1 .. {fmax} fit the weight SRAM")
    fc = min(fc, nf)
    mb_fit = min(tc.acc_rows // ((2 * fc + nd) * sp), tc.act_rows // ((kt + 2 * fc) * sp),
                 tc.acc_rows // 2 // (fc * sp), 0xFFFF // (max(nd, kt) * sp))
    mb = mb_fit if mb is None else min(mb, mb_fit)
    cb = tc.acc_rows // (3 * nd + 1)
    ntok = ceil_div(p.tokens, soc.tiles)
    if mb < 1 or cb < 1 or ntok * sp * (kt + 1) > tc.act_rows or \
            2 * ntok * sp > tc.acc_rows or ntok > tc.act_rows:
        raise FitError(f"d_model {p.d_model}, d_ff {p.d_ff}, {p.tokens} tokens do not fit "
                       f"the SRAMs of preset {cfg.name!r} ({tc.act_rows} activation, "
                       f"{tc.acc_rows} accumulator rows)")
    return fc, mb, cb


def plan_moe(cfg: JalapenoConfig, problem: _moe.MoeProblem, *, chunk_tiles: int | None = None,
             block_rows: int | None = None) -> MoePlan:
    """Blocking and HBM layout (module docstring); ``chunk_tiles`` (d_ff column tiles per
    chunk) and ``block_rows`` force a smaller choice. :class:`FitError` names the limit."""
    cfg.check_chip()
    fc, mb, cb = _fit(cfg, problem, chunk_tiles, block_rows)
    plan = MoePlan(cfg, problem, fc, mb, cb)
    p = problem
    T, d, f, E, k = p.tokens, p.d_model, p.d_ff, p.experts, p.top_k
    sizes = [("x", T * plan.kt * plan.P), ("router", plan.kt * plan.R * plan.C),
             ("w", E * 2 * d * f), ("rank", T * plan.rank_stride), ("wts", T * plan.C * 4),
             ("slot", 4 * T * k), ("slot_token", 4 * T * k),
             ("counts", 4 * _md.counts_words(E)), ("y", (T * k + 1) * d * 4),
             ("zeros", max(plan.cb, ceil_div(T, cfg.soc.tiles)) * plan.sp * plan.R),
             ("out", T * d * 4)]
    a = 0
    for name, n in sizes:
        plan.addr[name] = a
        a += _align(n)
    plan.addr["ring1"] = a
    return plan


def hbm_needed(plan: MoePlan, ring2_commands: int) -> int:
    """HBM bytes of the layout with both rings."""
    return plan.addr["ring2"] + (ring2_commands + 1) * CMD_BYTES


# --- data -------------------------------------------------------------------------------
def pack_hbm(plan: MoePlan, inputs: _moe.MoeInput, weights: _moe.MoeWeights,
             hbm: np.ndarray) -> None:
    """Write x, the router and the experts' weights (module docstring's layouts)."""
    R, C, P, kt, a = plan.R, plan.C, plan.P, plan.kt, plan.addr
    T, d = plan.problem.tokens, plan.problem.d_model
    xs = np.zeros((T, kt, P), np.uint8)
    xs[:, :, :R] = inputs.x.view(np.uint8).reshape(T, kt, R)
    hbm[a["x"]:a["x"] + xs.size] = xs.reshape(-1)
    r = np.zeros((kt * R, C), np.uint8)
    r[:d, :plan.problem.experts] = weights.router.view(np.uint8)
    hbm[a["router"]:a["router"] + r.size] = r.reshape(-1)
    for e in range(plan.problem.experts):
        img = _expert_image(plan, weights.w1[e].view(np.uint8), weights.w2[e].view(np.uint8))
        at = plan.expert_addr(e)
        hbm[at:at + img.size] = img


def _expert_image(plan: MoePlan, w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """Per chunk: W1 tiles (column tile j, K tile kc) j-major, then W2 tiles (output
    column tile c, K tile jj) c-major; each tile R rows of C bytes."""
    R, C, kt, nd = plan.R, plan.C, plan.kt, plan.nd
    t1 = w1.reshape(kt, R, plan.nf, C).transpose(2, 0, 1, 3)        # [j][kc][R][C]
    t2 = w2.reshape(plan.nf, R, nd, C).transpose(2, 0, 1, 3)        # [c][jj][R][C]
    parts = []
    for j0, n in plan.chunks:
        parts.append(t1[j0:j0 + n].reshape(-1))
        parts.append(t2[:, j0:j0 + n].reshape(-1))
    return np.concatenate(parts)


# --- token bookkeeping of one tile --------------------------------------------------------
@dataclass
class _Op:
    """A compute or store command of a tile with what it needs and frees."""

    cmd: Command
    needs: tuple = ()           # load ids whose data it reads
    frees: tuple = ()           # load ids it reads last


class _TileStream:
    """One tile's loads (in consumption order) and compute / store ops; :meth:`emit`
    adds the tokens (module docstring) and estimates when the tile reaches each
    command."""

    def __init__(self, plan: MoePlan, t: int):
        self.plan, self.t = plan, t
        self.loads: list[tuple[object, int, Descriptor]] = []   # (slot key, sram, desc)
        self.ops: list[_Op] = []

    def load(self, slot, sram: int, desc: Descriptor) -> int:
        self.loads.append((slot, sram, desc))
        return len(self.loads) - 1

    def compute(self, tc: TensorCmd, needs=(), frees=(), **tokens) -> None:
        self.ops.append(_Op(Command.compute(self.t, tc, **tokens), tuple(needs), tuple(frees)))

    def store(self, desc: Descriptor, sram: int, **tokens) -> None:
        self.ops.append(_Op(Command.store(self.t, sram, desc, **tokens)))

    def barrier_marker(self, cmd: Command) -> None:
        self.ops.append(_Op(cmd))

    def emit(self, start: float = 0.0) -> list[tuple[float, Command]]:
        t, out, time = self.t, [], start
        lat = vector_latency(self.plan.C)
        pred, last = {}, {}
        for u, (slot, _, _) in enumerate(self.loads):
            pred[u] = last.get(slot)
            last[slot] = u
        first_need = {}
        for i, op in enumerate(self.ops):
            for u in op.needs:
                first_need.setdefault(u, i)
        order = sorted(first_need, key=lambda u: (first_need[u], u))
        assert order == list(range(len(self.loads))), "loads not in consumption order"
        freed_at: dict[int, int] = {}       # load id -> free event number (1-based)
        nfree = nwait = 0
        nxt = 0                              # next load to emit

        def flush():
            nonlocal nxt, nwait
            while nxt < len(self.loads):
                p = pred[nxt]
                if p is not None and p not in freed_at:
                    return
                need = freed_at[p] if p is not None else 0
                for _ in range(need - nwait - 1):
                    out.append((time, Command.sync(t, Queue.LOAD, wait_next=1)))
                wait = int(need > nwait)
                nwait = max(nwait, need)
                _, sram, desc = self.loads[nxt]
                out.append((time, Command.load(t, sram, desc, wait_next=wait,
                                               signal_next=1)))
                nxt += 1

        flush()
        seen = set()
        for op in self.ops:
            cmd = op.cmd
            new = [u for u in op.needs if u not in seen]
            seen.update(new)
            if cmd.opcode == Opcode.TENSOR:
                for _ in range(len(new) - 1):
                    out.append((time, Command.sync(t, Queue.COMPUTE, wait_prev=1)))
                fields = dict(cmd.tokens, wait_prev=int(bool(new)),
                              signal_prev=int(bool(op.frees)))
                cmd = Command.compute(t, cmd.tensor, **fields)
                tc = cmd.tensor
                time += (max(tc.count, self.plan.R) if tc.unit == Unit.MATMUL
                         else tc.count + lat)
            out.append((time, cmd))
            if op.frees:
                nfree += 1
                for u in op.frees:
                    freed_at[u] = nfree
                flush()
        assert nxt == len(self.loads)
        out += [(time, Command.sync(t, Queue.LOAD, wait_next=1))] * (nfree - nwait)
        return out


def _merge(streams: list[list[tuple[float, Command]]]) -> list[Command]:
    """Tiles' commands merged by the estimated time each tile reaches them."""
    merged = heapq.merge(*[[(tm, t, i, c) for i, (tm, c) in enumerate(s)]
                           for t, s in enumerate(streams)])
    return [c for *_, c in merged]


def _drain_s2c(t: int, stores: int, waits: int) -> list[tuple[float, Command]]:
    return [(1e18, Command.sync(t, Queue.COMPUTE, wait_next=1))] * (stores - waits)


# --- program 1: routing -----------------------------------------------------------------
def _routing_tile(plan: MoePlan, t: int, t0: int, n: int, s_router: float) -> _TileStream:
    R, C, P, kt, sp, a = plan.R, plan.C, plan.P, plan.kt, plan.sp, plan.addr
    E, k = plan.problem.experts, plan.problem.top_k
    ts = _TileStream(plan, t)
    r = n * sp                      # activation / accumulator rows of the tile's tokens
    xl = ts.load("x", Sram.ACT, Descriptor(
        DmaDir.LOAD, a["x"] + t0 * kt * P, 0, R, rows=kt, planes=n, src_ystride=P,
        dst_ystride=r * R, src_zstride=kt * P, dst_zstride=sp * R))
    rl = ts.load("router", Sram.WEIGHT, Descriptor(DmaDir.LOAD, a["router"], 0, kt * R * C))
    for kc in range(kt):
        ts.compute(TensorCmd.matmul(src=kc * r, w=kc * R, dst=0, m=r, accumulate=kc > 0),
                   needs=(xl, rl) if kc == 0 else (), frees=(xl, rl) if kc == kt - 1 else ())
    V = TensorCmd.vector
    ids = kt * r                    # activation rows of the id rows
    sel = dict(src=0, count=r, in_int=1, imm=s_router, pad=1, kv_len=E)
    ts.compute(V(VecOp.TOPK, dst=ids, dst_act=1, out_fmt=OutFmt.INT8, **sel))
    ts.compute(V(VecOp.TOPK, dst=r, **sel))
    ts.compute(V(VecOp.STATE_INIT, state=0, count=r))
    soft = dict(src=r, state=0, count=r)
    ts.compute(V(VecOp.ROWMAX, pad=1, kv_len=k, **soft))
    ts.compute(V(VecOp.EXP, dst=r, pad=1, kv_len=k, **soft))
    ts.compute(V(VecOp.NORM, dst=r, **soft), signal_next=1)
    ts.store(Descriptor(DmaDir.STORE, ids * R, a["rank"] + t0 * plan.rank_stride, r * R),
             Sram.ACT, wait_prev=1)
    ts.store(Descriptor(DmaDir.STORE, r * C * 4, a["wts"] + t0 * C * 4, C * 4, rows=n,
                        src_ystride=sp * C * 4, dst_ystride=C * 4), Sram.ACC)
    return ts


def routing_program(plan: MoePlan, inputs: _moe.MoeInput,
                    weights: _moe.MoeWeights) -> list[Command]:
    """Program 1 (module docstring): routing on every tile, DISPATCH, IRQ(IRQ_DONE)."""
    s = scales(inputs, weights)["router"]
    streams = [_routing_tile(plan, t, t0, n, s).emit()
               for t, (t0, n) in enumerate(plan.token_split()) if n]
    return _merge(streams) + [Command.moe_dispatch(plan.dispatch_desc), Command.irq(IRQ_DONE)]


def read_counts(plan: MoePlan, hbm: np.ndarray) -> dict:
    """The dispatch unit's counters out of an HBM image (``models.moe_dispatch.counts_table``
    at the plan's counters): ``tokens_per_expert``, ``offsets`` (int64 (E,)), ``dropped``,
    ``dropped_tokens``, ``kept``."""
    return _md.counts_table(hbm, plan.addr["counts"], plan.problem.experts)


def place(plan: MoePlan, counts: dict, *, split: bool = True) -> list[list[tuple[int, int, int]]]:
    """Per tile its expert pieces ``(expert, first dispatch row, rows)``:
    :func:`models.moe_perf.place_experts`'s placement, each expert's rows handed out to
    its pieces in tile order."""
    placed = place_experts(plan.cfg, plan.problem, counts["tokens_per_expert"], split=split)
    cursor = [int(o) for o in counts["offsets"]]
    out = []
    for pieces in placed:
        mine = []
        for e, n in pieces:
            if n:
                mine.append((e, cursor[e], n))
                cursor[e] += n
        out.append(mine)
    return out


# --- program 2: experts and combine ----------------------------------------------------------
def _blocks(n: int, mb: int) -> list[tuple[int, int]]:
    """(first row, rows) of near-equal blocks of at most ``mb`` rows."""
    return _even(n, ceil_div(n, mb))


class _ExpertLayout:
    """SRAM rows of one expert block of ``nb`` tokens (module docstring). The regions
    are placed for the largest block (``plan.mb``), so a block's loads and matmuls never
    touch a region the previous block's stores or matmuls may still read."""

    def __init__(self, plan: MoePlan, nb: int):
        tc = plan.cfg.tensor
        self.rows = nb * plan.sp                 # rows of one chunk of the block
        big = plan.mb * plan.sp
        self.h = [plan.kt * big + s * plan.fc * big for s in range(2)]
        slot = plan.fc * big
        self.a1 = [0, tc.acc_rows - slot]        # one per accumulator bank
        self.a2 = slot


def _expert_block(ts: _TileStream, plan: MoePlan, sc: dict, e: int, s0: int, nb: int,
                  ring: list, first_block: bool) -> None:
    """Gather, chunked W1 -> GELU -> W2, COPY, y store of one block (module docstring)."""
    R, C, P, kt, nd, sp, a = plan.R, plan.C, plan.P, plan.kt, plan.nd, plan.sp, plan.addr
    d = plan.problem.d_model
    lay = _ExpertLayout(plan, nb)
    rows = lay.rows
    x = ts.load("x", Sram.ACT, Descriptor(
        DmaDir.LOAD, a["x"], 0, R, rows=kt, planes=nb, src_ystride=P, dst_ystride=rows * R,
        src_zstride=kt * P, dst_zstride=sp * R, index=1,
        index_addr=a["slot_token"] + 4 * s0))
    chunks = plan.chunks
    half = plan.half_rows

    def wload(f: int, part: int) -> tuple[int, int]:
        j0, n = chunks[f]
        src = plan.expert_addr(e) + 2 * j0 * kt * R * C + part * n * kt * R * C
        u = ring[0]
        ring[0] += 1
        slot = u % _RING_SLOTS
        return ts.load(("w", slot), Sram.WEIGHT, Descriptor(
            DmaDir.LOAD, src, slot * half * C, n * kt * R * C)), slot * half

    # loads in consumption order: x, W1(0), W1(1), W2(0), W1(2), W2(1), ...
    w1, w2 = {}, {}
    w1[0] = wload(0, 0)
    for f in range(len(chunks)):
        if f + 1 < len(chunks):
            w1[f + 1] = wload(f + 1, 0)
        w2[f] = wload(f, 1)
    V = TensorCmd.vector

    def mm_w1(f: int, indep: bool):
        (u, base), (_, n) = w1[f], chunks[f]
        last_x = f == len(chunks) - 1
        cmds = [(j, kc) for j in range(n) for kc in range(kt)]
        for i, (j, kc) in enumerate(cmds):
            tc = TensorCmd.matmul(src=kc * rows, w=base + (j * kt + kc) * R,
                                  dst=lay.a1[f % 2] + j * rows, m=rows, accumulate=kc > 0)
            if indep:
                tc = _with(tc, indep=1)
            needs = (x, u) if f == 0 and i == 0 else ((u,) if i == 0 else ())
            frees = ((u, x) if last_x else (u,)) if i == len(cmds) - 1 else ()
            ts.compute(tc, needs=needs, frees=frees)

    def gelu(f: int):
        n = chunks[f][1]
        ts.compute(V(VecOp.GELU, src=lay.a1[f % 2], dst=lay.h[f % 2], count=n * rows,
                     dst_act=1, out_fmt=OutFmt.INT8, in_int=1, imm=sc["s1"][e],
                     imm2=sc["inv_s_h"][e]))

    def mm_w2(f: int):
        (u, base), (_, n) = w2[f], chunks[f]
        cmds = [(c, jj) for c in range(nd) for jj in range(n)]
        for i, (c, jj) in enumerate(cmds):
            tc = TensorCmd.matmul(src=lay.h[f % 2] + jj * rows, w=base + (c * n + jj) * R,
                                  dst=lay.a2 + c * rows, m=rows,
                                  accumulate=not (f == 0 and jj == 0))
            wait_next = int(f == 0 and i == 0 and not first_block)   # a2 stored
            ts.compute(tc, needs=(u,) if i == 0 else (), frees=(u,) if i == len(cmds) - 1
                       else (), wait_next=wait_next)

    mm_w1(0, False)
    gelu(0)
    for f in range(len(chunks)):
        if f + 1 < len(chunks):
            mm_w1(f + 1, True)
        mm_w2(f)
        if f + 1 < len(chunks):
            gelu(f + 1)
    ts.compute(V(VecOp.COPY, src=lay.a2, dst=lay.a2, count=nd * rows, in_int=1,
                 imm=sc["s2"][e]), signal_next=1)
    ts.store(Descriptor(DmaDir.STORE, lay.a2 * C * 4, a["y"] + s0 * d * 4, C * 4, rows=nd,
                        planes=nb, src_ystride=rows * C * 4, dst_ystride=C * 4,
                        src_zstride=sp * C * 4, dst_zstride=d * 4),
             Sram.ACC, wait_prev=1, signal_prev=1)


def _with(tc: TensorCmd, **kw) -> TensorCmd:
    from dataclasses import replace
    return replace(tc, **kw)


def _combine_tile(ts: _TileStream, plan: MoePlan, t0: int, n: int) -> int:
    """Combine of tokens ``t0 .. t0 + n - 1`` (module docstring); returns its stores."""
    R, C, nd, a = plan.R, plan.C, plan.nd, plan.addr
    T, d, k = plan.problem.tokens, plan.problem.d_model, plan.problem.top_k
    blocks = _blocks(n, plan.cb)
    zr = max(nb for _, nb in blocks)
    z = ts.load("zeros", Sram.ACT, Descriptor(DmaDir.LOAD, a["zeros"], 0, zr * R))
    cb = plan.cb
    W0, O0 = 0, cb
    Y = [cb + nd * cb, cb + 2 * nd * cb]
    V = TensorCmd.vector
    g = 0
    for bi, (b0, nb) in enumerate(blocks):
        tb = t0 + b0
        wl = ts.load("wts", Sram.ACC, Descriptor(DmaDir.LOAD, a["wts"] + tb * C * 4, W0 * C * 4,
                                                  nb * C * 4))
        ys = []
        for j in range(k):
            s = (g + j) % 2
            ys.append((ts.load(("y", s), Sram.ACC, Descriptor(
                DmaDir.LOAD, a["y"], Y[s] * C * 4, C * 4, rows=nd, planes=nb,
                src_ystride=C * 4, dst_ystride=nb * C * 4, src_zstride=d * 4,
                dst_zstride=C * 4, index=1, index_addr=a["slot"] + 4 * (j * T + tb))), Y[s]))
        g += k
        for c in range(nd):
            last = bi == len(blocks) - 1 and c == nd - 1
            ts.compute(TensorCmd.matmul(src=0, w=0, dst=O0 + c * nb, m=nb),
                       needs=(z,) if bi == 0 and c == 0 else (), frees=(z,) if last else (),
                       wait_next=int(bi > 0 and c == 0))
        for j, (yl, ybase) in enumerate(ys):
            ts.compute(V(VecOp.STATE_LOAD, src=W0, state=0, count=nb, k_base=j),
                       needs=(wl,) if j == 0 else (), frees=(wl,) if j == k - 1 else ())
            for c in range(nd):
                ts.compute(V(VecOp.RESCALE, src=O0 + c * nb, src2=ybase + c * nb,
                             dst=O0 + c * nb, state=0, count=nb),
                           needs=(yl,) if c == 0 else (), frees=(yl,) if c == nd - 1 else (),
                           signal_next=int(j == k - 1 and c == nd - 1))
        ts.store(Descriptor(DmaDir.STORE, O0 * C * 4, a["out"] + tb * d * 4, C * 4, rows=nd,
                            planes=nb, src_ystride=nb * C * 4, dst_ystride=C * 4,
                            src_zstride=C * 4, dst_zstride=d * 4),
                 Sram.ACC, wait_prev=1, signal_prev=1)
    return len(blocks)


def experts_program(plan: MoePlan, inputs: _moe.MoeInput, weights: _moe.MoeWeights,
                    placement: list) -> list[Command]:
    """Program 2 (module docstring): every tile's expert pieces (``placement``:
    :func:`place`), a BARRIER, the combine, IRQ(IRQ_DONE)."""
    sc = scales(inputs, weights)
    tiles = plan.cfg.soc.tiles
    parts, combs = [], []
    for t in range(tiles):
        ts, ring, nblk = _TileStream(plan, t), [0], 0
        for e, s0, n in placement[t]:
            for b0, nb in _blocks(n, plan.mb):
                _expert_block(ts, plan, sc, e, s0 + b0, nb, ring, nblk == 0)
                nblk += 1
        em = ts.emit() + _drain_s2c(t, nblk, max(nblk - 1, 0))
        parts.append(em)
        cs = _TileStream(plan, t)
        t0, n = plan.token_split()[t]
        ncb = _combine_tile(cs, plan, t0, n) if n else 0
        combs.append(cs.emit() + _drain_s2c(t, ncb, max(ncb - 1, 0)))
    return (_merge(parts) + [Command.barrier(range(tiles))] + _merge(combs)
            + [Command.irq(IRQ_DONE)])


# --- results ------------------------------------------------------------------------------
@dataclass
class MoeChipResult:
    """What the two programs left in HBM: ``ranking`` int64 (T, E), ``weights`` float32
    (T, k), ``slot`` int64 (T, k) (``drop_slot`` for a dropped choice), ``slot_token``
    int64 (kept,), the counters (:func:`read_counts`), ``y`` float32 (kept, d_model),
    ``out`` float32 (T, d_model)."""

    ranking: np.ndarray
    weights: np.ndarray
    slot: np.ndarray
    slot_token: np.ndarray
    counts: dict
    y: np.ndarray
    out: np.ndarray


def _words(hbm, at: int, n: int, dtype: str) -> np.ndarray:
    return np.ascontiguousarray(hbm[at:at + 4 * n]).view(dtype).copy()


def read_results(plan: MoePlan, hbm: np.ndarray) -> MoeChipResult:
    """:class:`MoeChipResult` out of the HBM image after program 2."""
    p, a = plan.problem, plan.addr
    T, E, k, d, C = p.tokens, p.experts, p.top_k, p.d_model, plan.C
    rank = hbm[a["rank"]:a["rank"] + T * plan.rank_stride].reshape(T, -1)[:, :E]
    wts = _words(hbm, a["wts"], T * C, "<f4").reshape(T, C)[:, :k]
    counts = read_counts(plan, hbm)
    kept = counts["kept"]
    slot = _words(hbm, a["slot"], T * k, "<i4").reshape(k, T).T.astype(np.int64)
    st = _words(hbm, a["slot_token"], kept, "<i4").astype(np.int64)
    y = _words(hbm, a["y"], kept * d, "<f4").reshape(kept, d)
    out = _words(hbm, a["out"], T * d, "<f4").reshape(T, d)
    return MoeChipResult(rank.astype(np.int64), wts.copy(), slot, st, counts, y, out)
