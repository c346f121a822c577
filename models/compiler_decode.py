"""Host compiler: one decode step (``models.decode``) as a chip command stream.

**Append.** The host writes each sequence's new K and V codes into a staging area in
HBM, already placed as they sit in their page (a K column image of ``d`` rows of ``T``
bytes with the token in column ``slot % T``, a V image of ``d * T`` bytes with it in
row ``slot % T``), so every copy keeps ``src - dst`` a multiple of the HBM beat. Tile
``b % tiles`` loads sequence ``b``'s staging into its accumulator SRAM; after a BARRIER
it stores the K column (``d`` rows of 1 byte, stride ``T``) and the V row (``d / T``
rows of ``T`` bytes, stride ``T * T``) into the sequence's last page; a second BARRIER
orders those stores before every page load.

**Flash-decoding.** Each sequence's key blocks (``T`` keys; the last may be partial)
are cut into *splits* of whole pages, at most ``nmax`` blocks each, spread over the
tiles in a balanced contiguous walk (a sequence may span tiles; a tile may run several
splits). A split on its tile:

* S: per key block ``j`` and d chunk ``c`` one MATMUL of ``count = nd`` (the query's
  chunk ``c`` repeated ``nd`` times in the activation SRAM) into accumulator rows
  ``j*nd .. j*nd+nd-1``: every block's score row appears ``nd`` times, one per d chunk,
  at no array cost (``max(count, R)`` cycles);
* one ROWMAX and one EXP (``bscale``) over all those rows, each row with its own state
  (the last block of the sequence, if partial, in its own pair with ``pad``/``kv_len``);
  P goes to the activation SRAM;
* PV: per block and chunk one MATMUL of count 1 (P row ``j*nd + c``, V tile
  ``(j, c)``) into row ``j*nd + c``: row ``j*nd + c`` holds chunk ``c`` of block ``j``'s
  unnormalized output and its state row holds block ``j``'s ``(m, l)``;
* the merge tree: while ``n > 1`` blocks remain, block ``i`` absorbs block ``i + h``
  (``h = ceil(n/2)``) for ``i < n - h``: STATE_STORE of the upper states, STATE_MERGE of
  them into the lower ones, RESCALE (``bscale``) of the upper output rows into the
  lower, each one command of ``(n - h) * nd`` rows (the first level converts PV with
  ``s_v``, a COPY of the lower half first); then STATE_STORE of ``[m, l]`` (``nd``
  copies) and a store of them and of the ``nd`` output rows to the split's partial.

Loads of K and V pages go through a ring of ``ns`` weight-SRAM slots (a page's needed
blocks, one contiguous copy): load ``u`` signals L2C and waits C2L when ``u >= ns``; the
first MATMUL of a page use waits L2C and its last signals C2L. Splits alternate between
two output slots (C2S to the store, S2C back when a slot is reused).

**Combine** (tile 0, after a BARRIER): the partials ``[c][b]`` of split index ``s``
(``nd * batch`` rows of ``[m, l]`` and of output) are loaded; STATE_INIT, then for each
``s`` STATE_MERGE and COPY (``s = 0``) or RESCALE with ``bscale``, then NORM, all of
``nd * batch`` rows; O is stored. Sequences with fewer splits meet host-written empty
partials (``m = -inf``, ``l = 0``, O = 0), which merge as no-ops.

**Overlap** (``overlap=True``): a tile's splits alternate between the two accumulator
banks (``models.tensor_core.acc_bank``; ``nmax`` then fits half the accumulator), each
split's STATE_INIT moves after its S matmuls, and those carry ``indep``: the array
computes the next split's scores while the vector unit still merges the previous split
(different banks; no activation row written by one is read by the other). EXP (not
``indep``) fences, so P is never read early. Results are those of in-order execution.

HBM layout: K pool, V pool (``num_pages`` pages of ``P * d`` bytes), the repeated query
rows, staging, partials, O (``[c][b]`` rows of ``T`` binary32), then the ring. Every
token a command waits for comes from an earlier command of the same tile; tiles'
commands are merged by an estimate of when each tile reaches them.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field, replace

import numpy as np

from models import decode as dec
from models.attention import P_SCALE
from models.compiler import IRQ_DONE, FitError
from models.config import JalapenoConfig
from models.dma import Descriptor, DmaDir
from models.isa import CMD_BYTES, Command, Opcode, Queue, Sram
from models.tensor_cmd import OutFmt, TensorCmd, VecOp
from models.vector import vector_latency

__all__ = ["Split", "DecodePlan", "plan_decode", "decode_program", "pack_hbm",
           "read_output", "read_pools", "kv_bytes"]

_ALIGN = 256
_NEG_INF = 0xFF80_0000
_MAX_SLOTS = 14                 # L2C counts the query load + ns pages: 4-bit counters


def _align(x: int) -> int:
    return -(-x // _ALIGN) * _ALIGN


@dataclass(frozen=True)
class Split:
    """Key blocks ``first .. first + blocks - 1`` of sequence ``seq`` on ``tile``; the
    sequence's ``index``-th partial."""

    seq: int
    tile: int
    index: int
    first: int
    blocks: int


@dataclass
class DecodePlan:
    """Sizes, splits, SRAM and HBM addresses of one step (module docstring)."""

    cfg: JalapenoConfig
    fmt: str
    batch: int
    d: int
    page_tokens: int
    num_pages: int
    kv_len: tuple
    tables: tuple
    slots: tuple                 # (page, slot) of each sequence's new token
    nmax: int
    ns: int
    overlap: bool = False
    splits: list = field(default_factory=list)
    addr: dict = field(default_factory=dict)
    commands: list = field(default_factory=list)

    @property
    def T(self) -> int:
        return self.cfg.systolic.rows

    @property
    def nd(self) -> int:
        return self.d // self.T

    @property
    def bpp(self) -> int:
        """Key blocks per page."""
        return self.page_tokens // self.T

    @property
    def page_bytes(self) -> int:
        return self.page_tokens * self.d

    @property
    def n_part(self) -> int:
        return max(s.index for s in self.splits) + 1

    def groups(self) -> list:
        """Per sequence, ``(first, blocks)`` of its splits in partial order."""
        out = [[] for _ in range(self.batch)]
        for s in sorted(self.splits, key=lambda s: (s.seq, s.index)):
            out[s.seq].append((s.first, s.blocks))
        return out

    @property
    def hbm_bytes(self) -> int:
        return self.addr["ring"] + (len(self.commands) + 1) * CMD_BYTES

    # SRAM rows
    @property
    def p_act(self) -> int:
        return self.batch * self.nd * self.nd

    def base(self, k: int) -> int:
        """First accumulator row of the tile's ``k``-th split: with ``overlap`` splits
        alternate between the two accumulator banks."""
        return (k % 2) * (self.cfg.tensor.acc_rows // 2) if self.overlap else 0

    def scratch(self, k: int) -> int:
        return self.base(k) + self.nmax * self.nd

    def out_slot(self, k: int) -> int:
        """[m, l] rows then O rows of split ``k`` (two slots, alternating)."""
        slot = 0 if self.overlap else 2 * (k % 2)
        return self.base(k) + (self.nmax + -(-self.nmax // 2) + slot) * self.nd

    def part_addr(self, s: int) -> int:
        return self.addr["part"] + s * 2 * self.nd * self.batch * self.T * 4


def kv_bytes(plan: DecodePlan) -> int:
    """K and V bytes the program loads (whole key blocks of every sequence)."""
    return 2 * sum(s.blocks for s in plan.splits) * plan.T * plan.d


def _sram_fit(cfg: JalapenoConfig, batch: int, nd: int, T: int, bpp: int,
              overlap: bool = False) -> tuple[int, int]:
    """(nmax, ns): the largest split (whole pages) and weight slots that fit (with
    ``overlap`` a split's accumulator rows fit one bank)."""
    tc = cfg.tensor
    slot_rows = bpp * nd * T
    ns = min(_MAX_SLOTS, tc.weight_rows // slot_rows)
    if ns < 2:
        raise FitError(f"a page needs {slot_rows} weight SRAM rows, two of them do not fit "
                       f"the {tc.weight_rows} of preset {cfg.name!r}")
    acc_fit = (int((tc.acc_rows // 2 / nd - 2) / 1.5) if overlap
               else int((tc.acc_rows / nd - 4) / 1.5))
    act_fit = (tc.act_rows - batch * nd * nd) // nd
    nmax = min(acc_fit, act_fit, 0xFFFF // nd) // bpp * bpp
    if nmax < bpp:
        raise FitError(f"one page of {bpp} key blocks does not fit the accumulator / "
                       f"activation SRAM rows ({tc.acc_rows} / {tc.act_rows}) at batch "
                       f"{batch}, d {nd * T}")
    return nmax, ns


def _make_splits(plan: DecodePlan) -> list[Split]:
    """Balanced contiguous walk over every sequence's pages (module docstring)."""
    T, bpp, tiles = plan.T, plan.bpp, plan.cfg.soc.tiles
    pages = []                                      # (seq, first block, blocks)
    for b, n in enumerate(plan.kv_len):
        nkb = -(-n // T)
        pages += [(b, j, min(bpp, nkb - j)) for j in range(0, nkb, bpp)]
    total = sum(p[2] for p in pages)
    out, cum, cur = [], 0, None
    counts = [0] * plan.batch
    for b, j, nb in pages:
        tile = min(tiles - 1, cum * tiles // total)
        cum += nb
        if cur and cur[0] == b and cur[1] == tile and cur[3] + nb <= plan.nmax:
            cur[3] += nb
            continue
        if cur:
            out.append(Split(cur[0], cur[1], counts[cur[0]], cur[2], cur[3]))
            counts[cur[0]] += 1
        cur = [b, tile, j, nb]
    out.append(Split(cur[0], cur[1], counts[cur[0]], cur[2], cur[3]))
    return out


def plan_decode(cfg: JalapenoConfig, cache: dec.PagedKVCache, slots, *,
                max_blocks: int | None = None, overlap: bool = False) -> DecodePlan:
    """Place a step over ``cache`` (after the host's append bookkeeping: tables and
    lengths include the new token, ``slots`` = ``models.decode.append``'s positions);
    :class:`models.compiler.FitError` names what does not fit. ``overlap``: the S
    matmuls of a tile's next split carry ``indep`` and run while the vector unit merges
    the previous split (module docstring, "Overlap")."""
    cfg.check_chip()
    sa = cfg.systolic
    T = sa.rows
    if sa.rows != sa.cols:
        raise FitError(f"decode needs a square array, got {sa.rows}x{sa.cols}")
    if cache.fmt == "fp8" and not sa.fp8:
        raise FitError(f"preset {cfg.name!r} has no FP8 datapath (systolic.fp8=False)")
    if cache.tile != T or cache.page_tokens % T or cache.head_dim % T:
        raise FitError(f"the cache's tile {cache.tile}, page_tokens {cache.page_tokens} "
                       f"and head_dim {cache.head_dim} must match / be multiples of the "
                       f"array size {T}")
    batch, nd = len(cache.tables), cache.head_dim // T
    nmax, ns = _sram_fit(cfg, batch, nd, T, cache.page_tokens // T, overlap)
    if max_blocks:
        nmax = max(cache.page_tokens // T, min(nmax, max_blocks) // (cache.page_tokens // T)
                   * (cache.page_tokens // T))
    plan = DecodePlan(cfg, cache.fmt, batch, cache.head_dim, cache.page_tokens,
                      cache.num_pages, tuple(cache.lengths),
                      tuple(tuple(t) for t in cache.tables), tuple(slots), nmax, ns, overlap)
    plan.splits = _make_splits(plan)
    _place(plan)
    tc = cfg.tensor
    comb = (2 * plan.n_part + 1) * nd * batch
    if comb > tc.acc_rows or plan.n_part > _MAX_SLOTS:
        raise FitError(f"the combine needs {comb} accumulator rows for {plan.n_part} "
                       f"partials of {batch} sequences, the limit is {tc.acc_rows} "
                       f"(and at most {_MAX_SLOTS} partials)")
    if 2 * cache.head_dim * T * ((batch + cfg.soc.tiles - 1) // cfg.soc.tiles) > \
            tc.acc_rows * T * 4:
        raise FitError("the append's staging does not fit the accumulator SRAM")
    return plan


def _place(plan: DecodePlan) -> None:
    nd, T, b = plan.nd, plan.T, plan.batch
    a = {"k_pool": 0}
    a["v_pool"] = _align(plan.num_pages * plan.page_bytes)
    a["q"] = a["v_pool"] + _align(plan.num_pages * plan.page_bytes)
    a["stage"] = a["q"] + _align(b * nd * nd * T)
    a["part"] = a["stage"] + _align(b * 2 * plan.d * T)
    a["out"] = a["part"] + _align(plan.n_part * 2 * nd * b * T * 4)
    a["ring"] = a["out"] + _align(nd * b * T * 4)
    plan.addr = a


# --- the program --------------------------------------------------------------------------------
class _Tile:
    """One tile's commands with the time it is estimated to reach each (for merging)."""

    def __init__(self, plan: DecodePlan, t: int):
        self.plan, self.t, self.time, self.cmds = plan, t, 0.0, []
        self.lat = vector_latency(plan.cfg.systolic.cols)

    def add(self, cmd: Command) -> None:
        self.cmds.append((self.time, cmd))
        if cmd.opcode == Opcode.TENSOR:
            tc = cmd.tensor
            self.time += (max(tc.count, self.plan.T) if tc.unit == 0
                          else tc.count + self.lat)

    def compute(self, tc: TensorCmd, **tokens) -> None:
        self.add(Command.compute(self.t, tc, **tokens))


def _mm(plan, indep: int = 0, **kw) -> TensorCmd:
    return replace(TensorCmd.matmul(fp8=plan.fmt == "fp8", **kw), indep=indep)


def _split_body(plan: DecodePlan, sp: Split, k: int, imm: float, s_v: float,
                uses: list) -> list:
    """Tensor commands of one split as (TensorCmd, page-use index that this command
    starts (L2C) or None, page-use index it frees (C2L) or None)."""
    nd, T, n, bpp = plan.nd, plan.T, sp.blocks, plan.bpp
    V = TensorCmd.vector
    fp8 = plan.fmt == "fp8"
    kv = plan.kv_len[sp.seq]
    b0 = plan.base(k)
    indep = int(plan.overlap and k > 0)
    init = (V(VecOp.STATE_INIT, count=n * nd, state=0), None, None)
    out = [] if plan.overlap else [init]

    def page_pass(kind):
        for p0 in range(0, n, bpp):
            nb = min(bpp, n - p0)
            u = len(uses)
            page = plan.tables[sp.seq][(sp.first + p0) // bpp]
            uses.append((kind, page, nb))
            slot_w = (u % plan.ns) * bpp * nd * T
            cmds = []
            for jb in range(nb):
                j = p0 + jb
                for c in range(nd):
                    w = slot_w + (jb * nd + c) * T
                    if kind == "k":
                        cmds.append(_mm(plan, src=(sp.seq * nd + c) * nd, w=w,
                                        dst=b0 + j * nd, m=nd, accumulate=c > 0,
                                        indep=indep))
                    else:
                        cmds.append(_mm(plan, src=plan.p_act + j * nd + c, w=w,
                                        dst=b0 + j * nd + c, m=1))
            out.extend((cm, u if i == 0 else None, u if i == len(cmds) - 1 else None)
                       for i, cm in enumerate(cmds))

    page_pass("k")
    if plan.overlap:                    # after the S matmuls: they may overlap the
        out.append(init)                # previous split's merge tree
    last_partial = (sp.first + n) * T > kv
    nfull = n - int(last_partial)
    score = dict(src=b0, state=0, in_int=int(not fp8), imm=imm, bscale=1)
    exp = dict(dst=plan.p_act, dst_act=1, out_fmt=OutFmt.E4M3 if fp8 else OutFmt.INT8,
               imm2=P_SCALE[plan.fmt])
    pad = dict(pad=1, k_base=(sp.first + n - 1) * T, kv_len=kv)
    for op in (VecOp.ROWMAX, VecOp.EXP):
        e = exp if op == VecOp.EXP else {}
        if nfull:
            out.append((V(op, count=nfull * nd, **score, **e), None, None))
        if last_partial:
            r = nfull * nd
            s2 = dict(score, src=b0 + r, state=r)
            e2 = dict(e, dst=plan.p_act + r) if e else {}
            out.append((V(op, count=nd, **s2, **e2, **pad), None, None))
    page_pass("v")
    o_rows = plan.out_slot(k) + nd
    conv = dict(in_int=int(not fp8), imm=s_v)
    if n == 1:
        out.append((V(VecOp.COPY, src=b0, dst=o_rows, count=nd, **conv), None, None))
    else:
        h = -(-n // 2)
        out.append((V(VecOp.COPY, src=b0, dst=b0, count=h * nd, **conv), None, None))
        cur, first = n, True
        while cur > 1:
            h = -(-cur // 2)
            m = cur - h
            sc = plan.scratch(k)
            out.append((V(VecOp.STATE_STORE, dst=sc, state=h * nd, count=m * nd),
                        None, None))
            out.append((V(VecOp.STATE_MERGE, src=sc, state=0, count=m * nd), None, None))
            out.append((V(VecOp.RESCALE, src=b0 + h * nd, src2=b0,
                          dst=o_rows if h == 1 else b0,
                          state=0, count=m * nd, bscale=1,
                          **(conv if first else {})), None, None))
            cur, first = h, False
    out.append((V(VecOp.STATE_STORE, dst=plan.out_slot(k), state=0, count=nd), None, None))
    return out


def _stores(plan: DecodePlan, t: int, sp: Split, k: int) -> list[Command]:
    """ML rows and O rows of a split to its partial ([c][b] rows)."""
    row, nd, b = plan.T * 4, plan.nd, plan.batch
    base = plan.part_addr(sp.index) + sp.seq * row
    src = plan.out_slot(k) * row
    d1 = Descriptor(DmaDir.STORE, src, base, row, rows=nd, src_ystride=row,
                    dst_ystride=b * row)
    d2 = Descriptor(DmaDir.STORE, src + nd * row, base + nd * b * row, row, rows=nd,
                    src_ystride=row, dst_ystride=b * row)
    return [Command.store(t, Sram.ACC, d1, wait_prev=1),
            Command.store(t, Sram.ACC, d2, signal_prev=1)]


def _tile_main(plan: DecodePlan, t: int, imms, s_v: float) -> _Tile:
    """Query load, every split of tile ``t`` with its page loads and stores, drains."""
    tl = _Tile(plan, t)
    mine = [s for s in plan.splits if s.tile == t]
    if not mine:
        return tl
    nd, T = plan.nd, plan.T
    tl.add(Command.load(t, Sram.ACT, Descriptor(DmaDir.LOAD, plan.addr["q"], 0,
                                                plan.batch * nd * nd * T), signal_next=1))
    tl.add(Command.sync(t, Queue.COMPUTE, wait_prev=1))
    uses, body = [], []
    for k, sp in enumerate(mine):
        body.append((k, sp, _split_body(plan, sp, k, imms[sp.seq], s_v, uses)))
    slot_rows = plan.bpp * nd * T

    def load(u):
        kind, page, nb = uses[u]
        src = plan.addr["k_pool" if kind == "k" else "v_pool"] + page * plan.page_bytes
        desc = Descriptor(DmaDir.LOAD, src, (u % plan.ns) * slot_rows * T, nb * nd * T * T)
        tl.add(Command.load(t, Sram.WEIGHT, desc, wait_next=int(u >= plan.ns),
                            signal_next=1))

    for u in range(min(plan.ns, len(uses))):
        load(u)
    for k, sp, cmds in body:
        for i, (tc, start, frees) in enumerate(cmds):
            tl.compute(tc, wait_prev=int(start is not None),
                       wait_next=int(i == 0 and k >= 2), signal_prev=int(frees is not None),
                       signal_next=int(i == len(cmds) - 1))
            if frees is not None and frees + plan.ns < len(uses):
                load(frees + plan.ns)
        for c in _stores(plan, t, sp, k):
            tl.add(c)
    for _ in range(min(len(uses), plan.ns)):
        tl.add(Command.sync(t, Queue.LOAD, wait_next=1))
    for _ in range(min(len(mine), 2)):
        tl.add(Command.sync(t, Queue.COMPUTE, wait_next=1))
    return tl


def _append_cmds(plan: DecodePlan) -> list[Command]:
    """Staging loads, BARRIER, strided stores into the pages, BARRIER."""
    T, d, nd, tiles = plan.T, plan.d, plan.nd, plan.cfg.soc.tiles
    st = 2 * d * T
    loads, stores = [], []
    for b, (page, slot) in enumerate(plan.slots):
        t, i = b % tiles, b // tiles
        loads.append(Command.load(t, Sram.ACC, Descriptor(
            DmaDir.LOAD, plan.addr["stage"] + b * st, i * st, st)))
        blk = (slot // T) * d * T
        k_dst = plan.addr["k_pool"] + page * plan.page_bytes + blk + slot % T
        v_dst = plan.addr["v_pool"] + page * plan.page_bytes + blk + (slot % T) * T
        stores.append(Command.store(t, Sram.ACC, Descriptor(
            DmaDir.STORE, i * st + slot % T, k_dst, 1, rows=d, src_ystride=T,
            dst_ystride=T)))
        stores.append(Command.store(t, Sram.ACC, Descriptor(
            DmaDir.STORE, i * st + d * T + (slot % T) * T, v_dst, T, rows=nd,
            src_ystride=T * T, dst_ystride=T * T)))
    every = range(plan.cfg.soc.tiles)
    return loads + [Command.barrier(every)] + stores + [Command.barrier(every)]


def _combine(plan: DecodePlan) -> list[Command]:
    """Tile 0: load the partials, merge them, normalize, store O (module docstring)."""
    nd, b, T = plan.nd, plan.batch, plan.T
    rows, row = nd * b, T * 4
    fin = 2 * plan.n_part * rows
    V = TensorCmd.vector
    cmds = [Command.barrier(range(plan.cfg.soc.tiles))]
    for s in range(plan.n_part):
        cmds.append(Command.load(0, Sram.ACC, Descriptor(
            DmaDir.LOAD, plan.part_addr(s), 2 * s * rows * row, 2 * rows * row),
            signal_next=1))
    cmds.append(Command.compute(0, V(VecOp.STATE_INIT, count=rows, state=0)))
    for s in range(plan.n_part):
        ml, o = 2 * s * rows, 2 * s * rows + rows
        cmds.append(Command.compute(0, V(VecOp.STATE_MERGE, src=ml, count=rows, state=0),
                                    wait_prev=1))
        tc = (V(VecOp.COPY, src=o, dst=fin, count=rows) if s == 0 else
              V(VecOp.RESCALE, src=o, src2=fin, dst=fin, count=rows, state=0, bscale=1))
        cmds.append(Command.compute(0, tc))
    cmds.append(Command.compute(0, V(VecOp.NORM, src=fin, dst=fin, count=rows, state=0),
                                signal_next=1))
    cmds.append(Command.store(0, Sram.ACC, Descriptor(DmaDir.STORE, fin * row,
                                                      plan.addr["out"], rows * row),
                              wait_prev=1, signal_prev=1))
    cmds.append(Command.sync(0, Queue.COMPUTE, wait_next=1))
    cmds.append(Command.irq(IRQ_DONE))
    return cmds


def decode_program(plan: DecodePlan, imms, s_v: float) -> list[Command]:
    """The whole stream: append, every tile's splits (merged by estimated time), combine,
    IRQ. ``imms``: per sequence the score scale ``s_q * s_k * softmax scale``."""
    tiles = [_tile_main(plan, t, imms, s_v) for t in range(plan.cfg.soc.tiles)]
    merged = heapq.merge(*[[(tm, t, i, c) for i, (tm, c) in enumerate(tl.cmds)]
                           for t, tl in enumerate(tiles)])
    return _append_cmds(plan) + [c for *_, c in merged] + _combine(plan)


# --- data ---------------------------------------------------------------------------------------
def pack_hbm(plan: DecodePlan, cache: dec.PagedKVCache, qc: np.ndarray, kc_new: np.ndarray,
             vc_new: np.ndarray, hbm: np.ndarray) -> None:
    """Write the pools (``cache`` before the append), the repeated query rows, the
    staging images and the empty partials into ``hbm``."""
    a, nd, T, d, b = plan.addr, plan.nd, plan.T, plan.d, plan.batch
    pb = plan.num_pages * plan.page_bytes
    hbm[a["k_pool"]:a["k_pool"] + pb] = cache.k_pages.reshape(-1)
    hbm[a["v_pool"]:a["v_pool"] + pb] = cache.v_pages.reshape(-1)
    q = np.asarray(qc, np.uint8).reshape(b, nd, 1, T)
    hbm[a["q"]:a["q"] + b * nd * nd * T] = np.broadcast_to(q, (b, nd, nd, T)).reshape(-1)
    e = np.arange(d)
    for s, (_, slot) in enumerate(plan.slots):
        base = a["stage"] + s * 2 * d * T
        img = np.zeros(2 * d * T, np.uint8)
        img[e * T + slot % T] = kc_new[s]
        img[d * T + (e // T) * T * T + (slot % T) * T + e % T] = vc_new[s]
        hbm[base:base + img.size] = img
    have = {(sp.seq, sp.index) for sp in plan.splits}
    row = T * 4
    for s in range(plan.n_part):
        for q_ in range(b):
            if (q_, s) not in have:
                for c in range(nd):
                    at = plan.part_addr(s) + (c * b + q_) * row
                    hbm[at:at + 4] = np.array([_NEG_INF], "<u4").view(np.uint8)


def read_output(plan: DecodePlan, hbm: np.ndarray) -> np.ndarray:
    """O (batch x d float32) out of an HBM image."""
    nd, b, T = plan.nd, plan.batch, plan.T
    n = nd * b * T * 4
    w = np.ascontiguousarray(hbm[plan.addr["out"]:plan.addr["out"] + n]).view("<f4")
    return w.reshape(nd, b, T).transpose(1, 0, 2).reshape(b, plan.d).copy()


def read_pools(plan: DecodePlan, hbm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """K and V pools (``num_pages x page_bytes``) out of an HBM image."""
    pb = plan.num_pages * plan.page_bytes
    k = hbm[plan.addr["k_pool"]:plan.addr["k_pool"] + pb]
    v = hbm[plan.addr["v_pool"]:plan.addr["v_pool"] + pb]
    return (k.reshape(plan.num_pages, -1).copy(), v.reshape(plan.num_pages, -1).copy())
