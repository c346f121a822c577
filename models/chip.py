"""Golden model of the chip: a command stream (``models.isa``) run on an HBM image.

State: the HBM image (numpy uint8, ``hbm.total_bytes`` long), one
:class:`models.tensor_core.TensorCoreModel` per tile (its SRAMs), four token counters per
tile (:class:`models.isa.Token`), and the command processor: an in-order dispatcher
and, per tile, the load / compute / store queues of ``soc`` depths.

Semantics (the RTL follows them; docs/chip.md):

* **Dispatch** is in stream order. Each command is checked (:func:`models.isa.check`)
  when the dispatcher reaches it. NOP retires at once; a queue command enters its
  queue (a full queue stalls the dispatcher); BARRIER puts a marker in the three
  queues of every tile of its mask (it needs room in all of them); FENCE, IRQ, HALT
  and DISPATCH wait until every queue is empty, then retire (IRQ records its value,
  HALT stops dispatching, DISPATCH first runs the MoE dispatch unit on the HBM image:
  ``models.moe_dispatch.execute``; a failure of the unit is the error DISPATCH with the
  unit's detail, the command does not retire).
* **Queues** run their head when its ``wait_*`` tokens are available: the waits take one
  token each, the work runs (DMA copy with ``models.dma.apply``, tensor command with
  ``TensorCoreModel.execute``, nothing for SYNC), then ``signal_*`` add one token each
  (both counters are checked first: a full one raises TOKEN_OVERFLOW and neither is
  signalled; the command does not count as completed). A barrier completes when every
  queue it marked has its marker at the head.
* **Completion count**: commands retired (every opcode; a barrier once).
* **Errors**: the first error stops dispatch (the failing command does not run); the
  queues then run what is still ready and discard the rest, and the chip is idle with
  the error code, its detail and the failing command's address. When nothing can make
  progress and commands are left, the watchdog fires: WATCHDOG, at the address of the
  oldest waiting queue head (detail: its queue).

Any order of ready actions is a legal execution; the model picks the oldest ready one
(``policy="oldest"``, close to stream order) or a random one (``policy="random"``): a
program whose tokens order every conflicting access gives the same final image under
every policy, which is how tests check that a compiler placed enough tokens.

numpy only; reads the same config object as the RTL (it must pass ``check_chip``).
"""
from __future__ import annotations

import random
import sys
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from models import dma as _dma
from models import moe_dispatch as _md
from models.config import JalapenoConfig
from models.dma import DmaDir, DmaError
from models.isa import (CMD_BYTES, Command, Fault, IsaError, Opcode, Queue, Sram, Token,
                        check)
from models.tensor_core import TensorCoreModel
from models.tensor_cmd import ErrCode, Unit

__all__ = ["ChipModel", "ChipResult", "write_ring", "TOKEN_OF"]

#: Token counter a flag of a queue uses: (queue, flag) -> Token.
TOKEN_OF = {
    (Queue.LOAD, "wait_next"): Token.C2L, (Queue.LOAD, "signal_next"): Token.L2C,
    (Queue.COMPUTE, "wait_prev"): Token.L2C, (Queue.COMPUTE, "signal_prev"): Token.C2L,
    (Queue.COMPUTE, "wait_next"): Token.S2C, (Queue.COMPUTE, "signal_next"): Token.C2S,
    (Queue.STORE, "wait_prev"): Token.C2S, (Queue.STORE, "signal_prev"): Token.S2C,
}


@dataclass
class ChipResult:
    """Outcome of a run.

    Attributes
    ----------
    hbm : numpy.ndarray
        The final HBM image (the model's own array).
    completed : int
        Commands retired (COMPLETIONS register).
    error : models.isa.Fault
        First error (``Fault(NONE, 0)`` if none); ERROR_CODE = ``models.isa.error_word``.
    error_addr : int or None
        HBM address of the command that raised it (ERROR_ADDR).
    halted : bool
        A HALT retired.
    irqs : list of int
        ``arg`` of every IRQ retired, in order.
    head : int
        Stream index of the next command the dispatcher would take (RING_HEAD offset).
    discarded : int
        Commands (and barrier markers) dropped from the queues after an error.
    trace : list of tuple
        ``(stream index, tile, queue)`` of every queue command, in execution order
        (tile and queue are None for dispatcher commands and barriers).
    tokens : numpy.ndarray
        Final token counters, ``[tiles, 4]`` indexed by :class:`models.isa.Token`.
    stats : dict
        ``load_bytes``, ``store_bytes`` (per tile lists), ``matmul_rows`` (per tile),
        ``waits`` (tokens taken, per tile), ``dispatch`` (the ``models.moe.Dispatch`` of
        every DISPATCH that completed, in order: DISPATCH_KEPT / DISPATCH_DROPPED are the
        last one's ``slot_token.size`` / ``dropped``).
    """

    hbm: np.ndarray
    completed: int = 0
    error: Fault = Fault(IsaError.NONE, 0)
    error_addr: int | None = None
    halted: bool = False
    irqs: list = field(default_factory=list)
    head: int = 0
    discarded: int = 0
    trace: list = field(default_factory=list)
    tokens: np.ndarray | None = None
    stats: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error.code == IsaError.NONE


@dataclass
class _Marker:
    """A barrier's entry in one queue."""

    index: int


def write_ring(hbm: np.ndarray, base: int, cmds) -> int:
    """Write the images of ``cmds`` at ``base`` (entries 0, 1, ...); returns the entries."""
    cmds = list(cmds)
    img = np.frombuffer(b"".join(c.to_bytes() for c in cmds), np.uint8)
    hbm[base:base + img.size] = img
    return len(cmds)


class ChipModel:
    """Bit-exact model of the chip's memories, tokens and command processor.

    Parameters
    ----------
    config : JalapenoConfig
        A chip configuration (``config.check_chip()`` is called).
    hbm : numpy.ndarray, optional
        Initial HBM image (uint8, ``config.hbm.total_bytes`` long; copied). Zeros if None.
    policy : str
        ``"oldest"`` (default) or ``"random"``: which ready action runs next.
    seed : int, optional
        Seed of the ``"random"`` policy.
    win_base, win_limit : int
        HBM window of the tiles' DMA engines (default all of HBM).
    faults : list of (int, int)
        HBM byte ranges ``[base, limit)`` that answer SLVERR (the HBM stub's error
        injection): a DMA touching one raises DMA_FAULT; a store's bursts that touch one
        do not land (its other bursts do), a load's data from one is unspecified.

    Attributes
    ----------
    hbm : numpy.ndarray
    tiles : list of models.tensor_core.TensorCoreModel
    tokens : numpy.ndarray
        ``[tiles, 4]`` token counters.
    """

    def __init__(self, config: JalapenoConfig, hbm=None, *, policy: str = "oldest",
                 seed: int | None = None, win_base: int = 0, win_limit: int | None = None,
                 faults=()):
        if sys.byteorder != "little":
            raise RuntimeError("models.chip views accumulator words as bytes: "
                               "little-endian hosts only")
        self.config = config.check_chip()
        total = config.hbm.total_bytes
        if hbm is None:
            self.hbm = np.zeros(total, np.uint8)
        else:
            hbm = np.asarray(hbm)
            if hbm.dtype != np.uint8 or hbm.shape != (total,):
                raise ValueError(f"hbm must be a uint8 array of hbm.total_bytes = {total}, "
                                 f"got {hbm.dtype} {hbm.shape}")
            self.hbm = hbm.copy()
        if policy not in ("oldest", "random"):
            raise ValueError(f"policy must be 'oldest' or 'random', got {policy!r}")
        self.policy, self.rng = policy, random.Random(seed)
        self.win = (win_base, total if win_limit is None else win_limit)
        self.faults = [tuple(f) for f in faults]
        n = config.soc.tiles
        self.tiles = [TensorCoreModel(config) for _ in range(n)]
        self.tokens = np.zeros((n, len(Token)), np.int64)

    # --- memories ---------------------------------------------------------------------
    def sram(self, tile: int, sram: int) -> np.ndarray:
        """Flat byte view (writes go through) of SRAM ``sram`` of ``tile``."""
        t = self.tiles[tile]
        mem = {Sram.ACT: t.act, Sram.WEIGHT: t.wgt, Sram.ACC: t.acc}[Sram(sram)]
        return mem.view(np.uint8).reshape(-1)

    # --- running ----------------------------------------------------------------------
    def run(self, cmds, *, base: int = 0) -> ChipResult:
        """Run a list of commands as if they were ring entries 0.. at HBM address ``base``
        (which only names the failing command's address)."""
        cmds = list(cmds)
        return self._run(len(cmds), lambda i: (cmds[i], base + i * CMD_BYTES))

    def run_ring(self, base: int, entries: int, head: int, tail: int) -> ChipResult:
        """Fetch and run ring entries ``head .. tail - 1`` (modulo ``entries``) of the ring
        of ``entries`` commands at HBM address ``base``. Entries are read from the HBM
        image when the dispatcher reaches them."""
        if entries < 1 or not (0 <= head < entries and 0 <= tail < entries):
            raise ValueError(f"ring of {entries} entries: head {head} and tail {tail} must be "
                             f"in [0, {entries})")
        if base < 0 or base + entries * CMD_BYTES > self.hbm.size:
            raise ValueError(f"ring {base:#x} + {entries} x {CMD_BYTES} bytes leaves HBM")

        def fetch(i):
            addr = base + (head + i) % entries * CMD_BYTES
            return Command.from_bytes(self.hbm[addr:addr + CMD_BYTES].tobytes()), addr
        res = self._run((tail - head) % entries, fetch)
        res.head = (head + res.head) % entries
        return res

    def _run(self, n: int, fetch) -> ChipResult:
        soc = self.config.soc
        T, depths = soc.tiles, soc.queue_depths
        queues = [[deque() for _ in Queue] for _ in range(T)]
        res = ChipResult(self.hbm, stats={"load_bytes": [0] * T, "store_bytes": [0] * T,
                                           "matmul_rows": [0] * T, "waits": [0] * T,
                                           "dispatch": []})
        barriers: dict[int, list[tuple[int, int]]] = {}
        addr_of: dict[int, int] = {}
        pc, stopped = 0, False
        fetched: tuple[Command, int, Fault] | None = None

        def fail(fault: Fault, addr: int):
            nonlocal stopped
            if res.ok:
                res.error, res.error_addr = fault, addr
            stopped = True

        def empty() -> bool:
            return not any(q for tq in queues for q in tq)

        while True:
            actions: list[tuple[int, object]] = []       # (stream index, action)
            # the dispatcher
            if not stopped and pc < n:
                if fetched is None:
                    cmd, addr = fetch(pc)
                    fetched = cmd, addr, check(cmd, self.config, win_base=self.win[0],
                                               win_limit=self.win[1])
                cmd, addr_of[pc], fault = fetched
                if fault:
                    actions.append((pc, ("fault", fault)))
                elif self._can_dispatch(cmd, queues, depths, empty):
                    actions.append((pc, ("dispatch", cmd)))
            # queue heads
            for t in range(T):
                for q in Queue:
                    if queues[t][q]:
                        idx, entry = queues[t][q][0]
                        if self._ready(t, q, entry, queues, barriers):
                            actions.append((idx, ("head", t, q)))
            if not actions:
                break
            if self.policy == "oldest":
                idx, act = min(actions, key=lambda a: a[0])
            else:
                idx, act = self.rng.choice(actions)
            kind = act[0]
            if kind == "fault":
                fail(act[1], addr_of[idx])
            elif kind == "dispatch":
                fault = self._dispatch(act[1], idx, queues, barriers, res)
                if fault:
                    fail(fault, addr_of[idx])
                    continue
                if act[1].opcode == Opcode.HALT:
                    stopped = True
                pc, fetched = pc + 1, None
            else:
                _, t, q = act
                _, entry = queues[t][q][0]
                if isinstance(entry, _Marker):
                    for bt, bq in barriers.pop(entry.index):
                        queues[bt][bq].popleft()
                    res.completed += 1
                    res.trace.append((entry.index, None, None))
                    continue
                queues[t][q].popleft()
                fault = self._execute(t, q, entry, res)
                res.trace.append((idx, t, q))
                if fault:
                    fail(fault, addr_of[idx])
                else:
                    res.completed += 1
        # nothing can move
        left = [(q[0][0], t, qi) for t, tq in enumerate(queues) for qi, q in enumerate(tq) if q]
        if left and not stopped:
            idx, t, qi = min(left)
            fail(Fault(IsaError.WATCHDOG, int(qi)), addr_of[idx])
        res.discarded = sum(len(q) for tq in queues for q in tq)
        res.head = pc
        res.tokens = self.tokens.copy()
        return res

    # --- dispatcher ---------------------------------------------------------------------
    @staticmethod
    def _can_dispatch(cmd: Command, queues, depths, empty) -> bool:
        op = Opcode(cmd.opcode)
        if op in (Opcode.FENCE, Opcode.IRQ, Opcode.HALT, Opcode.DISPATCH):
            return empty()
        if op == Opcode.BARRIER:
            tiles = [t for t in range(len(queues)) if cmd.arg >> t & 1]
            return all(len(queues[t][q]) < depths[q] for t in tiles for q in Queue)
        if op == Opcode.NOP:
            return True
        return len(queues[cmd.tile][cmd.target]) < depths[cmd.target]

    def _dispatch(self, cmd: Command, idx: int, queues, barriers,
                  res: ChipResult) -> Fault | None:
        op = Opcode(cmd.opcode)
        if op == Opcode.DISPATCH:
            err, disp = _md.execute(cmd.dispatch, self.hbm, self.config)
            if err != _md.DispatchError.OK:
                return Fault(IsaError.DISPATCH, int(err))
            res.stats["dispatch"].append(disp)
        if op == Opcode.BARRIER:
            where = [(t, q) for t in range(len(queues)) if cmd.arg >> t & 1 for q in Queue]
            barriers[idx] = where
            for t, q in where:
                queues[t][q].append((idx, _Marker(idx)))
        elif cmd.target is not None:
            queues[cmd.tile][cmd.target].append((idx, cmd))
        else:
            res.completed += 1
            res.trace.append((idx, None, None))
            if op == Opcode.IRQ:
                res.irqs.append(cmd.arg)
            elif op == Opcode.HALT:
                res.halted = True
        return None

    # --- queues ------------------------------------------------------------------------
    def _ready(self, t, q, entry, queues, barriers) -> bool:
        if isinstance(entry, _Marker):
            return all(queues[bt][bq] and queues[bt][bq][0][0] == entry.index
                       for bt, bq in barriers[entry.index])
        return all(self.tokens[t, TOKEN_OF[q, f]] > 0
                   for f in ("wait_prev", "wait_next") if getattr(entry, f))

    def _execute(self, t: int, q: Queue, cmd: Command, res: ChipResult) -> Fault | None:
        for f in ("wait_prev", "wait_next"):
            if getattr(cmd, f):
                self.tokens[t, TOKEN_OF[q, f]] -= 1
                res.stats["waits"][t] += 1
        fault = None
        if cmd.opcode in (Opcode.DMA_LOAD, Opcode.DMA_STORE):
            fault = self._dma(t, cmd, res)
        elif cmd.opcode == Opcode.TENSOR:
            err = self.tiles[t].execute(cmd.tensor)
            assert err == ErrCode.NONE, "isa.check passed a command the tensor core rejects"
            if cmd.tensor.unit == Unit.MATMUL:
                res.stats["matmul_rows"][t] += cmd.tensor.count
        if fault:
            return fault
        sig = [TOKEN_OF[q, f] for f in ("signal_prev", "signal_next") if getattr(cmd, f)]
        for k in sig:
            if self.tokens[t, k] >= self.config.soc.token_max:
                return Fault(IsaError.TOKEN_OVERFLOW, int(k))
        for k in sig:
            self.tokens[t, k] += 1
        return None

    def _dma(self, t: int, cmd: Command, res: ChipResult) -> Fault | None:
        d = cmd.desc
        sram = self.sram(t, cmd.sram)
        bad = self._faulted_bursts(d)
        win = {"win_base": self.win[0], "win_limit": self.win[1]}
        if d.dir == DmaDir.LOAD:
            code = _dma.apply(d, self.hbm, sram, **win)
            res.stats["load_bytes"][t] += d.total
        else:
            keep = [(lo, hi, self.hbm[lo:hi].copy()) for lo, hi in bad]
            code = _dma.apply(d, self.hbm, sram, **win)
            for lo, hi, old in keep:        # bursts answered SLVERR do not land
                self.hbm[lo:hi] = old
            res.stats["store_bytes"][t] += d.total
        if bad:
            return Fault(IsaError.DMA_FAULT, int(DmaError.SLVERR))
        if code != DmaError.OK:             # an indexed plane outside the window
            return Fault(IsaError.DMA_FAULT, int(code))
        return None

    def _faulted_bursts(self, d) -> list[tuple[int, int]]:
        """HBM byte ranges of the descriptor's bursts that touch a fault range."""
        if not self.faults:
            return []
        W = self.config.hbm.data_bytes
        out = []
        idx = _dma.index_list(d, self.hbm) if d.index else None
        for b in _dma.plan_bursts(self.config.dma, W, d, indices=idx, win=self.win):
            lo = b.addr
            hi = (b.addr // W + b.beats) * W
            if any(lo < fl and hi > fb for fb, fl in self.faults):
                # only the strobed bytes of the burst are the copy's
                first = b.addr // W * W
                lanes = [first + i * W + j for i, s in enumerate(b.strobes)
                         for j in range(W) if s >> j & 1]
                out.append((min(lanes), max(lanes) + 1))
        return out
