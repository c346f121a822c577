"""Streamed attention: one head's query blocks on any tile, K and V streamed by key group.

The same per-row arithmetic as :func:`models.attention.program` (every query row sees
the same key blocks in the same order, so O is bit-exact to
``models.attention.run_model(config_with_room, head, mq=plan.mq)``), cut so that K
and V never need to be resident:

* **Query blocks** of ``mq`` rows (the same grid as ``models.attention``); a *unit* is
  ``nb`` (1 or 2) query blocks of one head that run together on one tile
  (:attr:`StreamPlan.units`: adjacent blocks, so a causal pair sees nearly the same
  keys). Units go to tiles by the compiler (``models.compiler_attention``).
* **Key groups** of ``g`` key blocks (``g * C`` keys): the K^T and V tiles of a group are
  one contiguous HBM image (:func:`kv_images`) loaded by one DMA into one of two
  weight-SRAM slots (double buffering). A unit loads only the groups its last query
  block sees (causal: later groups are never loaded).
* **Ping-pong** (:func:`unit_commands`): each query block is a chain of phases that
  alternate between the array and the vector unit, ``S(j)`` (MATMUL x nd), ``SM(j)``
  (ROWMAX, EXP), ``PV(j)`` (MATMUL x nd), ``RS(j)`` (COPY/RESCALE x nd); block B runs
  one phase behind block A, so every *slot* pairs a matmul phase of one block with a
  vector phase of the other, and no phase depends on the other phase of its slot.
  Slot k is emitted as its matmul phase then its vector phase; with ``indep`` (one
  switch, :data:`INDEP`) the commands carry the tensor core's ``indep`` flag.

SRAM layout per tile (words; T = R = C, nd = d / T, b = block of the unit, s = slot)::

    act:    Q of block b: b * nd * mq + c * mq + i  | P of block b: (nb * nd + b) * mq
    weight: slot s: K^T tiles (jl * nd + c) * T, then V tiles (g * nd + jl * nd + c) * T
    acc:    block b from b * acc_rows / 2: PV (nd * mq; S is PV chunk 0) | O (nd * mq)

S shares P V's chunk 0: in program order S(j + 1) is written after RS(j) read the P V
rows and P V(j) after SM(j) read S. One Q slot: a unit's Q load waits for the previous
unit's end (``models.compiler_attention``), its K / V loads do not.

numpy only; reads the same config object as the RTL.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from models import attention as att
from models.config import JalapenoConfig
from models.tensor_cmd import OutFmt, TensorCmd, VecOp

__all__ = ["StreamPlan", "stream_plan", "q_images", "kv_images", "unit_commands",
           "block_output", "INDEP", "Phase", "overlap_races"]

#: Whether the ping-pong's commands carry the tensor core's ``indep`` flag.
INDEP = True


@dataclass(frozen=True)
class StreamPlan:
    """Block sizes and per-tile SRAM layout of one streamed head (module docstring)."""

    problem: att.AttentionProblem
    tile: int           # T = R = C
    nd: int             # d / T
    nkb: int            # key blocks
    mq: int             # query block rows
    g: int              # key blocks per key group (one weight slot)
    nb: int             # query blocks per unit (2: ping-pong)
    bank_rows: int      # accumulator rows per bank (block b's rows are in bank b)
    indep: bool = INDEP

    @property
    def nqb(self) -> int:
        return -(-self.problem.seq_q // self.mq)

    @property
    def ngroups(self) -> int:
        return -(-self.nkb // self.g)

    def block(self, qb: int) -> tuple[int, int]:
        """``(q0, rows)`` of query block ``qb``."""
        q0 = qb * self.mq
        return q0, min(self.mq, self.problem.seq_q - q0)

    def key_blocks(self, qb: int) -> int:
        """Key blocks query block ``qb`` sees (``models.attention.program``'s causal
        skip: blocks wholly in the future of every row are left out)."""
        if not self.problem.causal:
            return self.nkb
        q0, rows = self.block(qb)
        return min(self.nkb, (q0 + rows - 1) // self.tile + 1)

    @cached_property
    def units(self) -> tuple[tuple[int, ...], ...]:
        """Query blocks of every unit: ``nb`` adjacent blocks."""
        return tuple(tuple(range(u, min(u + self.nb, self.nqb)))
                     for u in range(0, self.nqb, self.nb))

    def unit_groups(self, unit) -> int:
        """Key groups a unit loads (those its blocks see)."""
        return -(-max(self.key_blocks(qb) for qb in unit) // self.g)

    def unit_work(self, unit) -> int:
        """Array cycles of a unit's matmuls (``max(rows, R)`` per MATMUL)."""
        return sum(2 * self.nd * self.key_blocks(qb) * max(self.block(qb)[1], self.tile)
                   for qb in unit)

    # SRAM word addresses
    def q_act(self, b: int) -> int:
        return b * self.nd * self.mq

    def p_act(self, b: int) -> int:
        return (self.nb * self.nd + b) * self.mq

    def w_slot(self, s: int) -> int:
        return s * 2 * self.g * self.nd * self.tile

    def s_acc(self, b: int) -> int:
        return b * self.bank_rows

    def pv_acc(self, b: int) -> int:
        return self.s_acc(b)            # S shares PV chunk 0 (module docstring)

    def o_acc(self, b: int) -> int:
        return self.s_acc(b) + self.nd * self.mq

    # image sizes (bytes)
    @property
    def q_block_bytes(self) -> int:
        return self.nd * self.mq * self.tile

    @property
    def kv_group_bytes(self) -> int:
        return 2 * self.g * self.nd * self.tile * self.tile

    @property
    def o_block_bytes(self) -> int:
        return self.nd * self.mq * self.tile * 4


def _row_align(config: JalapenoConfig) -> int:
    from models.compiler import _row_align as ra
    return ra(config)


def stream_plan(config: JalapenoConfig, problem: att.AttentionProblem, *,
                mq: int | None = None, g: int | None = None, nb: int | None = None,
                indep: bool = INDEP) -> StreamPlan:
    """Choose ``mq``, ``g`` and ``nb`` (or check forced ones); ``ValueError`` names the
    SRAM that is too small.

    Defaults: ``nb = 2`` when the head has more than one query block; ``mq`` the largest
    multiple of the DMA row alignment whose unit fits (``2 nd mq`` accumulator rows per
    block in its bank, ``nb (nd + 1) mq`` activation rows); ``g`` the most key blocks two
    weight slots hold (``4 * g * nd * T <= weight_rows``), at most ``nkb``.
    """
    tc = config.tensor
    t, nd, nkb = att.array_shape(config, problem)
    gmax = tc.weight_rows // (4 * nd * t)
    if gmax < 1:
        raise ValueError(f"two key groups of one key block need {4 * nd * t} weight rows, "
                         f"the weight SRAM has {tc.weight_rows} (d {problem.head_dim})")
    g = min(gmax, nkb) if g is None else g
    if not 1 <= g <= gmax:
        raise ValueError(f"key group of {g} blocks: 1 .. {gmax} fit the weight SRAM")
    ra = _row_align(config)

    def most(nb_: int) -> int:
        """Largest aligned mq: a block's PV and O (2 nd mq rows) in its accumulator bank
        (the whole SRAM for one block per unit), Q and P (nb (nd + 1) mq rows) in the
        activation SRAM."""
        return min(tc.acc_rows // nb_ // (2 * nd), tc.act_rows // (nb_ * (nd + 1))) // ra * ra
    if nb is None:
        nb = 2 if problem.seq_q > (mq or most(1)) else 1
    if mq is None:
        mq = min(most(nb), -(-problem.seq_q // ra) * ra)
    if mq < 1 or mq > most(nb) or mq % ra:
        raise ValueError(f"no query block fits: {nb} block(s) of {mq} rows need "
                         f"{2 * nd * mq} accumulator rows each (of {tc.acc_rows // nb} per "
                         f"block) and {nb * (nd + 1) * mq} activation rows (of "
                         f"{tc.act_rows}); rows a multiple of {ra}")
    return StreamPlan(problem, t, nd, nkb, mq, g, nb, tc.acc_rows // 2, indep)


def q_images(sp: StreamPlan, head: att.QuantizedHead) -> np.ndarray:
    """Q per query block (``nqb x q_block_bytes`` uint8): row ``c * mq + i`` of block
    ``qb`` is Q[qb * mq + i, chunk c]; rows past the head are zero."""
    p, t, nd = sp.problem, sp.tile, sp.nd
    q = np.zeros((sp.nqb * sp.mq, p.head_dim), np.uint8)
    q[:p.seq_q] = head.q
    return np.ascontiguousarray(q.reshape(sp.nqb, sp.mq, nd, t).transpose(0, 2, 1, 3)
                                .reshape(sp.nqb, sp.q_block_bytes))


def kv_images(sp: StreamPlan, head: att.QuantizedHead) -> np.ndarray:
    """K^T then V tiles per key group (``ngroups x kv_group_bytes`` uint8), laid out as
    a weight slot; padding keys are zero codes."""
    p, t, nd, g = sp.problem, sp.tile, sp.nd, sp.g
    n = sp.ngroups * g * t
    k = np.zeros((n, p.head_dim), np.uint8)
    v = np.zeros((n, p.head_dim), np.uint8)
    k[:p.seq_k], v[:p.seq_k] = head.k, head.v
    # K^T tile (j, c) row r: K[j*T + col, c*T + r]; V tile (j, c) row r: V[j*T + r, c*T + col]
    kt = k.reshape(sp.ngroups, g, t, nd, t).transpose(0, 1, 3, 4, 2)
    vt = v.reshape(sp.ngroups, g, t, nd, t).transpose(0, 1, 3, 2, 4)
    return np.ascontiguousarray(np.concatenate(
        [kt.reshape(sp.ngroups, -1), vt.reshape(sp.ngroups, -1)], axis=1))


@dataclass(frozen=True)
class Phase:
    """One phase of a query block: its commands, the unit (0 array, 1 vector), the key
    group whose weight slot it reads (-1: none), whether it writes O, whether its
    commands may carry ``indep``."""

    cmds: tuple
    unit: int
    group: int
    writes_o: bool = False
    indep: bool = True


def _block_phases(sp: StreamPlan, head: att.QuantizedHead, qb: int, b: int,
                  g0: int) -> list[Phase]:
    """The phases of query block ``qb`` (block ``b`` of its unit; the unit's first key
    group is the tile's group ``g0``, weight slots alternate by group)."""
    p, t, nd = sp.problem, sp.tile, sp.nd
    fp8 = p.path == "fp8"
    s_score = float(np.float32(head.s_q) * np.float32(head.s_k) * np.float32(p.softmax_scale))
    q0, mq = sp.block(qb)
    masks = dict(causal=int(p.causal), pad=int(p.valid_keys < sp.nkb * t), q_base=q0,
                 kv_len=p.valid_keys)
    V = TensorCmd.vector
    ph = [Phase((V(VecOp.STATE_INIT, count=mq, state=b * sp.mq),), 1, -1)]
    for j in range(sp.key_blocks(qb)):
        gi, jl = divmod(j, sp.g)
        w = sp.w_slot((g0 + gi) % 2)
        kw, vw = w + jl * nd * t, w + (sp.g + jl) * nd * t
        ph.append(Phase(tuple(TensorCmd.matmul(
            src=sp.q_act(b) + c * sp.mq, w=kw + c * t, dst=sp.s_acc(b), m=mq,
            accumulate=c > 0, fp8=fp8) for c in range(nd)), 0, gi))
        score = dict(src=sp.s_acc(b), count=mq, state=b * sp.mq, in_int=int(not fp8),
                     imm=s_score, k_base=j * t, bscale=1, **masks)
        ph.append(Phase((V(VecOp.ROWMAX, **score),
                         V(VecOp.EXP, dst=sp.p_act(b), dst_act=1,
                           out_fmt=OutFmt.E4M3 if fp8 else OutFmt.INT8,
                           imm2=att.P_SCALE[p.path], **score)), 1, -1))
        ph.append(Phase(tuple(TensorCmd.matmul(
            src=sp.p_act(b), w=vw + c * t, dst=sp.pv_acc(b) + c * sp.mq, m=mq, fp8=fp8)
            for c in range(nd)), 0, gi, indep=False))
        rs = []
        for c in range(nd):
            o = sp.o_acc(b) + c * sp.mq
            pv = dict(src=sp.pv_acc(b) + c * sp.mq, dst=o, count=mq, in_int=int(not fp8),
                      imm=head.s_v)
            rs.append(V(VecOp.COPY, **pv) if j == 0 else
                      V(VecOp.RESCALE, src2=o, state=b * sp.mq, bscale=1, **pv))
        ph.append(Phase(tuple(rs), 1, -1, writes_o=True))
    ph.append(Phase(tuple(V(VecOp.NORM, src=sp.o_acc(b) + c * sp.mq,
                            dst=sp.o_acc(b) + c * sp.mq, count=mq, state=b * sp.mq)
                          for c in range(nd)), 1, -1, writes_o=True))
    return ph


def unit_commands(sp: StreamPlan, head: att.QuantizedHead, unit,
                  g0: int) -> list[tuple[TensorCmd, int, bool]]:
    """The ping-pong command list of a unit: ``(command, key group it reads or -1,
    writes O)`` in stream order. Block ``b`` runs ``b`` phases behind block 0; slot k
    emits the array phase, then the vector phase, which overlaps it.

    ``indep`` (docs/tensor_core.md "Overlap") goes on every VECTOR (it overlaps the other
    block's matmuls, which use the other accumulator bank; a matmul of its own block
    makes the hardware wait for the bank) and on the S matmuls (they may start beside the
    last VECTOR before them, which never writes their Q rows). Not on a P V matmul: the
    VECTOR before it is the EXP that wrote its P rows, and the activation SRAM has no
    hazard check, so it waits for the vector unit to be idle; that EXP is short and has
    already run beside the other block's S matmuls."""
    chains = [_block_phases(sp, head, qb, b, g0) for b, qb in enumerate(unit)]
    slots = max(len(ch) + b for b, ch in enumerate(chains))
    out = []
    for k in range(slots):
        here = [ch[k - b] for b, ch in enumerate(chains) if 0 <= k - b < len(ch)]
        for ph in sorted(here, key=lambda ph: ph.unit):
            for c in ph.cmds:
                if sp.indep and len(unit) > 1 and ph.indep:
                    c = replace(c, indep=1)
                out.append((c, ph.group, ph.writes_o))
    return out


def block_output(sp: StreamPlan, words: np.ndarray) -> np.ndarray:
    """O rows of one stored block (uint32 words, ``nd * mq x T``) as ``mq x d`` float32."""
    o = np.ascontiguousarray(words, np.uint32).view(np.float32)
    return o.reshape(sp.nd, sp.mq, sp.tile).transpose(1, 0, 2).reshape(sp.mq, -1)


def overlap_races(config: JalapenoConfig, cmds: list[TensorCmd]) -> list:
    """``models.tensor_core.overlap_errors``' ``"race"`` issues that can happen.

    The checker lists every pair the dispatch rules let overlap; the hardware's bank
    waits order some of them anyway: a MATMUL ``i`` has finished before a later VECTOR
    ``j`` starts when a VECTOR ``k`` (``i < k <= j``, run in order before ``j``) shares an
    accumulator bank with ``i`` or has no ``indep`` (it waited for ``i``), and an ``indep``
    MATMUL does not start beside a VECTOR of its bank. (EXP of a block's key block j
    writes the P rows that the block's previous P V matmul read; its ROWMAX, reading S in
    the same bank, waited for that matmul.)
    """
    from models.tensor_core import acc_banks, overlap_errors
    out = []
    for e in overlap_errors(config, cmds):
        if e.kind != "race":
            continue
        i, j = e.other, e.index
        if cmds[j].unit == 1:
            if any(cmds[k].unit == 1 and (not cmds[k].indep or
                                          acc_banks(config, cmds[k]) & acc_banks(config, cmds[i]))
                   for k in range(i + 1, j + 1)):
                continue
        elif acc_banks(config, cmds[i]) & acc_banks(config, cmds[j]):
            continue
        out.append(e)
    return out
