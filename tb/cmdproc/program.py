"""Command programs for the command-processor tests and the schedule checker.

:func:`random_program` places legal dependency tokens (double-buffered load -> compute
-> store per tile, every wait satisfied by an earlier command of the stream, leftover
tokens taken by SYNCs at the end); :class:`ScheduleChecker` replays what the RTL
dispatched and completed against the token and barrier rules of ``models.chip``.
"""
from __future__ import annotations

from collections import deque

from models.chip import TOKEN_OF
from models.dma import Descriptor, DmaDir
from models.isa import Command, Opcode, Queue, Token, check
from models.tensor_cmd import TensorCmd, Unit
from rtl.soc.cmdproc_queues import inflight_limit

__all__ = ["random_load", "random_store", "random_compute", "random_program",
           "ScheduleChecker", "work_payload"]


def random_load(rng, config, tile, **tok) -> Command:
    W = config.hbm.data_bytes
    n = rng.choice([W, 2 * W, 3 * W])
    d = Descriptor(dir=DmaDir.LOAD, src=rng.randrange(0, 0x4000, W), dst=rng.randrange(0, 256, W),
                   row_bytes=n, rows=rng.randint(1, 2), src_ystride=64, dst_ystride=64,
                   tag=rng.randrange(256))
    return Command.load(tile, rng.randrange(2), d, **tok)


def random_store(rng, config, tile, **tok) -> Command:
    W = config.hbm.data_bytes
    d = Descriptor(dir=DmaDir.STORE, src=rng.randrange(0, 256, W),
                   dst=rng.randrange(0x4000, 0x5000, W), row_bytes=W, tag=rng.randrange(256))
    return Command.store(tile, 2, d, **tok)


def random_compute(rng, config, tile, **tok) -> Command:
    tc = TensorCmd(unit=Unit.MATMUL, src=rng.randrange(64), src2=rng.randrange(64),
                   dst=rng.randrange(64), count=rng.randint(1, 32), accumulate=rng.randrange(2),
                   imm=rng.randrange(1 << 32))
    return Command.compute(tile, tc, **tok)


def random_program(rng, config, steps: int, *, irq: int | None = 0x1234, extras=True):
    """A legal program: ``steps`` load/compute/store rounds (1 to 3 MATMULs each) spread
    over the tiles, plus
    NOPs, barriers and fences at random places; ends with SYNCs that take the leftover
    tokens and an IRQ (value ``irq``) unless None."""
    T = config.soc.tiles
    cmds: list[Command] = []
    n = [0] * T
    pending = []                    # (tile, round) whose compute/store are not emitted
    for _ in range(steps):
        t = rng.randrange(T)
        i = n[t]
        n[t] += 1
        cmds.append(random_load(rng, config, t, wait_next=int(i >= 2), signal_next=1))
        k = rng.choice([1, 1, 2, 3])    # several MATMULs per round overlap at the unit
        for j in range(k):
            first, last = j == 0, j == k - 1
            cmds.append(random_compute(rng, config, t, wait_prev=int(first),
                                       wait_next=int(first and i >= 2),
                                       signal_prev=int(last), signal_next=int(last)))
        cmds.append(random_store(rng, config, t, wait_prev=1, signal_prev=1))
        if extras:
            x = rng.random()
            if x < 0.08:
                cmds.append(Command.barrier(rng.sample(range(T), rng.randint(1, T))))
            elif x < 0.12:
                cmds.append(Command.fence())
            elif x < 0.2:
                cmds.append(Command.nop())
    for t in range(T):
        for _ in range(min(n[t], 2)):
            cmds.append(Command.sync(t, Queue.LOAD, wait_next=1))
            cmds.append(Command.sync(t, Queue.COMPUTE, wait_next=1))
    if irq is not None:
        cmds.append(Command.irq(irq))
    for c in cmds:
        assert not check(c, config), (c, check(c, config))
    return cmds


def work_payload(cmd: Command) -> dict:
    """The dispatched payload of a queue command (rtl.soc.cmdproc_check layouts)."""
    if cmd.opcode == Opcode.TENSOR:
        return cmd.tensor.as_dict()
    return {"sram": cmd.sram, "desc": cmd.desc.to_payload()}


class ScheduleChecker:
    """Replays the RTL's unit starts and completions on ``models.chip``'s rules.

    ``cmds`` are the commands the dispatcher accepted, in stream order. Each start must
    be the next WORK command of its queue, with its waited tokens available (from
    completions already seen) and fewer than ``inflight_limit`` of its queue running;
    completions retire the oldest running command; SYNCs and barrier markers (invisible on
    the ports) run as soon as the rules allow and nothing of their queues runs.
    """

    def __init__(self, config, cmds):
        self.config = config
        T = config.soc.tiles
        self.q = [[deque() for _ in Queue] for _ in range(T)]
        self.busy = [[deque() for _ in Queue] for _ in range(T)]     # running, oldest first
        self.peak = {q: 0 for q in Queue}       # most commands of a queue seen running
        self.tokens = [[0] * len(Token) for _ in range(T)]
        self.errors: list[str] = []
        self.started = 0
        self.completed = 0
        for i, c in enumerate(cmds):
            if c.opcode == Opcode.BARRIER:
                for t in range(T):
                    if c.arg >> t & 1:
                        for q in Queue:
                            self.q[t][q].append((i, c))
            elif c.target is not None:
                self.q[c.tile][c.target].append((i, c))
        self._eager()

    def _ok(self, t, q, c):
        return all(self.tokens[t][TOKEN_OF[q, f]] > 0 for f in ("wait_prev", "wait_next")
                   if getattr(c, f))

    def _take(self, t, q, c):
        for f in ("wait_prev", "wait_next"):
            if getattr(c, f):
                self.tokens[t][TOKEN_OF[q, f]] -= 1

    def _signal(self, t, q, c):
        for f in ("signal_prev", "signal_next"):
            if getattr(c, f):
                self.tokens[t][TOKEN_OF[q, f]] += 1
        self.completed += 1

    def _eager(self):
        moved = True
        while moved:
            moved = False
            for t, tq in enumerate(self.q):
                for q in Queue:
                    if not tq[q] or self.busy[t][q]:
                        continue
                    i, c = tq[q][0]
                    if c.opcode == Opcode.SYNC and self._ok(t, q, c):
                        tq[q].popleft()
                        self._take(t, q, c)
                        self._signal(t, q, c)
                        moved = True
                    elif c.opcode == Opcode.BARRIER:
                        where = [(u, p) for u in range(len(self.q)) if c.arg >> u & 1
                                 for p in Queue]
                        if all(self.q[u][p] and self.q[u][p][0][0] == i and
                               not self.busy[u][p] for u, p in where):
                            for u, p in where:
                                self.q[u][p].popleft()
                            self.completed += 1
                            moved = True

    def start(self, t, q, payload, cycle):
        tq = self.q[t][q]
        if len(self.busy[t][q]) >= inflight_limit(self.config, q):
            self.errors.append(f"cycle {cycle}: tile {t} {q.name} started with "
                               f"{len(self.busy[t][q])} commands running")
            return
        if not tq or tq[0][1].opcode in (Opcode.SYNC, Opcode.BARRIER):
            self.errors.append(f"cycle {cycle}: tile {t} {q.name} started {payload} but the "
                               f"next entry is {tq[0] if tq else 'nothing'}")
            return
        i, c = tq[0]
        if payload != work_payload(c):
            self.errors.append(f"cycle {cycle}: tile {t} {q.name} command #{i}: got "
                               f"{payload}, expected {work_payload(c)}")
        if not self._ok(t, q, c):
            self.errors.append(f"cycle {cycle}: tile {t} {q.name} command #{i} started "
                               f"without its tokens {self.tokens[t]}")
        tq.popleft()
        self._take(t, q, c)
        self.busy[t][q].append((i, c))
        self.peak[q] = max(self.peak[q], len(self.busy[t][q]))
        self.started += 1

    def done(self, t, q, cycle, ok=True):
        if not self.busy[t][q]:
            self.errors.append(f"cycle {cycle}: tile {t} {q.name} completion with nothing running")
            return
        i, c = self.busy[t][q].popleft()
        if ok:
            self._signal(t, q, c)
        self._eager()

    def left(self) -> int:
        return sum(len(q) for tq in self.q for q in tq) + sum(
            len(b) for row in self.busy for b in row)
