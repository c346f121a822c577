"""The ``"stream"`` schedule of ``models.compiler_attention`` (its module docstring has
the tokens and the HBM layout; ``models.attention_stream`` the per-tile program)."""
from __future__ import annotations

from dataclasses import replace

from models import attention_stream as ast
from models.compiler import IRQ_DONE, FitError, _row_align
from models.compiler_attention import (AttentionJob, StreamedHead, _align, _chunks,
                                       _round_robin)
from models.config import JalapenoConfig
from models.dma import Descriptor, DmaDir
from models.isa import Command, Queue, Sram

__all__ = ["plan_streamed", "estimate"]


#: Cycles the estimate charges per command beyond the tensor core's own timing (ring
#: fetch, dispatch, queues): measured on the SoC RTL, seq 1024 d 64 on default took
#: 230,783 cycles where the tensor-core cycle model of its busiest tile gives 189,214
#: (~23 cycles more per command of that tile).
_CMD_CYCLES = 20


def _unit_cycles(config: JalapenoConfig, sp: ast.StreamPlan, head, unit, cache) -> tuple:
    """``(cycles, tensor commands)`` of a unit on its tensor core by the golden cycle model
    (``models.tensor_core.program_cycles``: fences, ``indep`` overlap, bank waits),
    extrapolated from the same unit over 1 and 2 key blocks (the cost per key block is
    constant: exact for 8 key blocks on default; a causal unit's later block runs its
    last key blocks alone)."""
    ks = [sp.key_blocks(qb) for qb in unit]
    lo, hi = min(ks), max(ks)
    a, b = _per_key_block(config, sp, head, unit, cache)
    cyc = a + b * lo
    if hi > lo:
        a1, b1 = _per_key_block(config, sp, head, unit[-1:], cache)
        cyc += b1 * (hi - lo)
    n = sum(k * (3 * sp.nd + 2) + sp.nd + 1 for k in ks)
    return cyc, n


def _per_key_block(config, sp: ast.StreamPlan, head, unit, cache) -> tuple[float, float]:
    """``(a, b)``: cycles of ``unit`` over k key blocks (every block seeing all) = a + b k."""
    from dataclasses import replace
    from models.tensor_core import program_cycles
    rows = tuple(sp.block(qb)[1] for qb in unit)
    key = (sp.mq, sp.nd, sp.indep, rows)
    if key not in cache:
        c = []
        for k in (1, 2):
            prob = replace(sp.problem, seq_k=k * sp.tile, causal=False, kv_len=None)
            sk = replace(sp, problem=prob, nkb=k, g=k)
            c.append(program_cycles(config, [x for x, _, _ in
                                             ast.unit_commands(sk, head, unit, 0)]))
        cache[key] = (2 * c[0] - c[1], c[1] - c[0])
    return cache[key]


def estimate(config: JalapenoConfig, plans, heads, cache=None) -> tuple[float, int]:
    """``(cycles, commands)`` of a set of head plans, for choosing the blocking: per tile
    the sum of its units' tensor-core cycles (:func:`_unit_cycles`) plus
    :data:`_CMD_CYCLES` per command, the busiest tile's; loads are assumed hidden by the
    double buffering. Commands counted exactly."""
    cache = {} if cache is None else cache
    tiles = _assign(config.soc.tiles, plans)
    busy = [0.0] * config.soc.tiles
    ncmd = 0
    for sp, head, ut in zip(plans, heads, tiles):
        for u, t in zip(sp.units, ut):
            cyc, n = _unit_cycles(config, sp, head, u, cache)
            n += sp.unit_groups(u) + 2 * len(u) + len(u) * -(-sp.o_block_bytes //
                                                              config.dma.max_bytes)
            busy[t] += cyc + _CMD_CYCLES * n
            ncmd += n
    return max(busy), ncmd


def _commands(config: JalapenoConfig, sp: ast.StreamPlan) -> int:
    """Commands of a head's units (tensor, loads, stores; not SYNC / IRQ)."""
    n = 0
    for u in sp.units:
        n += sum(sp.key_blocks(qb) * (3 * sp.nd + 2) + sp.nd + 1 for qb in u)
        n += sp.unit_groups(u) + 2 * len(u) + len(u) * -(-sp.o_block_bytes //
                                                         config.dma.max_bytes)
    return n


def _candidates(config: JalapenoConfig, heads, top: int) -> list[int]:
    """Query block rows worth trying: the smallest aligned ``mq`` for each number of query
    blocks of the longest head, from ``top`` down to one array height."""
    ra, t = _row_align(config), config.systolic.rows
    sq = max(h.problem.seq_q for h in heads)
    out = []
    for nqb in range(1, sq + 1):
        mq = -(-(-(-sq // nqb)) // ra) * ra
        if mq <= top and mq not in out:
            out.append(mq)
        if mq <= t:
            break
    return out


def _choose(config: JalapenoConfig, heads, kw) -> list:
    """Plans of the heads: the same (mq, nb) for all, the fastest by :func:`estimate`
    whose HBM image (operands, O, ring) fits."""
    big = [ast.stream_plan(config, h.problem, **kw) for h in heads]
    top = max(ast.stream_plan(config, h.problem, **{**kw, "nb": 1}).mq for h in heads)
    best, least, cache = None, None, {}
    for mq in _candidates(config, heads, top):
        for nb in ((kw["nb"],) if kw["nb"] else (2, 1)):
            try:
                plans = [ast.stream_plan(config, h.problem, **{**kw, "mq": mq, "nb": nb})
                         for h in heads]
            except ValueError:
                continue
            n = sum(_commands(config, sp) for sp in plans)
            data = sum(sp.nqb * (sp.q_block_bytes + sp.o_block_bytes) +
                       sp.ngroups * sp.kv_group_bytes for sp in plans)
            need = data + 64 * (n + 2 * len(heads) + 16) + 256 * 3 * len(heads)
            if least is None or need < least[0]:
                least = (need, n)
            if need > config.hbm.total_bytes:
                continue
            cyc, _ = estimate(config, plans, heads, cache)
            if best is None or cyc < best[0]:
                best = (cyc, plans)
    if best is None and least is not None:
        raise FitError(f"{len(heads)} attention heads do not fit preset {config.name!r}: "
                       f"they need {least[0]} bytes of HBM (operands, outputs and a ring "
                       f"of {least[1]} commands), hbm.total_bytes is "
                       f"{config.hbm.total_bytes}")
    return best[1] if best else big


def plan_streamed(config: JalapenoConfig, heads, *, mq: int | None = None,
                  g: int | None = None, nb: int | None = None,
                  indep: bool | None = None) -> AttentionJob:
    """Plan, place and compile the heads (module docstring); FitError names the limit."""
    kw = dict(g=g, nb=nb, indep=ast.INDEP if indep is None else indep)
    try:
        plans = [ast.stream_plan(config, h.problem, mq=mq, **kw) for h in heads] \
            if mq is not None else _choose(config, heads, kw)
    except FitError:
        raise
    except ValueError as e:
        h = next(i for i, hd in enumerate(heads) if _fails(config, hd.problem, mq, kw))
        raise FitError(f"attention head {h} does not fit preset {config.name!r}: {e}") \
            from None
    tiles = _assign(config.soc.tiles, plans)
    addr, placed = 0, []
    for sp in plans:
        q = addr
        kv = _align(q + sp.nqb * sp.q_block_bytes)
        addr = _align(kv + sp.ngroups * sp.kv_group_bytes)
        placed.append((q, kv))
    heads_out = []
    for sp, head, ut, (q, kv) in zip(plans, heads, tiles, placed):
        heads_out.append(StreamedHead(sp, head, ut, q, kv, addr))
        addr = _align(addr + sp.nqb * sp.o_block_bytes)
    job = AttentionJob(tuple(heads_out), (), addr, [], "stream")
    job.commands.extend(_program(config, job))
    if job.hbm_bytes > config.hbm.total_bytes:
        raise FitError(f"{len(heads)} attention heads do not fit preset {config.name!r}: "
                       f"they need {job.hbm_bytes} bytes of HBM (operands, outputs and a "
                       f"ring of {len(job.commands)} commands), hbm.total_bytes is "
                       f"{config.hbm.total_bytes}")
    return job


def _fails(config, problem, mq, kw) -> bool:
    try:
        ast.stream_plan(config, problem, mq=mq, **kw)
    except ValueError:
        return True
    return False


def _assign(ntiles: int, plans) -> list[tuple[int, ...]]:
    """Tile of every unit of every head: the unit with the most array work first, each to
    the least loaded tile (lowest index on ties)."""
    units = [(sp.unit_work(u), h, i) for h, sp in enumerate(plans)
             for i, u in enumerate(sp.units)]
    load = [0] * ntiles
    where = {}
    for work, h, i in sorted(units, key=lambda x: (-x[0], x[1], x[2])):
        t = min(range(ntiles), key=lambda k: (load[k], k))
        load[t] += work
        where[h, i] = t
    return [tuple(where[h, i] for i in range(len(sp.units))) for h, sp in enumerate(plans)]


def _program(config: JalapenoConfig, job: AttentionJob) -> list[Command]:
    per_tile = {}
    for h, sh in enumerate(job.heads):
        for i, t in enumerate(sh.unit_tiles):
            per_tile.setdefault(t, []).append((sh, i))
    # each tile's units in assignment order (largest first) keep the head order among equals
    streams = [_tile_stream(config, t, units) for t, units in sorted(per_tile.items())]
    cmds = _round_robin(streams)
    for t in sorted(per_tile):
        # C2L left: one per step and one per unit signalled, one per step from the third
        # and one per unit from the second taken
        cmds += [Command.sync(t, Queue.LOAD, wait_next=1)] * (min(2, _steps(per_tile[t])) + 1)
        cmds.append(Command.sync(t, Queue.COMPUTE, wait_next=1))
    cmds.append(Command.irq(IRQ_DONE))
    return cmds


def _steps(units) -> int:
    return sum(sh.plan.unit_groups(sh.plan.units[i]) for sh, i in units)


def _kv_load(config, t: int, sh: StreamedHead, gi: int, step: int) -> list[Command]:
    """K/V group ``gi`` into weight slot ``step % 2``; waits C2L from step 2 on (the
    slot's previous group was read). It signals L2C unless the step also loads Q."""
    sp, C = sh.plan, config.systolic.cols
    src = sh.kv_addr + gi * sp.kv_group_bytes
    pieces = _chunks(config, sp.kv_group_bytes)
    return [Command.load(t, Sram.WEIGHT, Descriptor(DmaDir.LOAD, src + o,
                                                    sp.w_slot(step % 2) * C + o, n),
                         wait_next=int(k == 0 and step >= 2))
            for k, (o, n) in enumerate(pieces)]


def _q_load(config, t: int, sh: StreamedHead, unit, after_unit: bool) -> list[Command]:
    """The unit's Q blocks into the Q slot, after a SYNC that waits the C2L the previous
    unit's last command signals (``after_unit``); the last piece signals L2C."""
    sp, R = sh.plan, config.systolic.rows
    descs = [Descriptor(DmaDir.LOAD, sh.q_addr + qb * sp.q_block_bytes + o,
                        sp.q_act(b) * R + o, n)
             for b, qb in enumerate(unit) for o, n in _chunks(config, sp.q_block_bytes)]
    out = [Command.sync(t, Queue.LOAD, wait_next=1)] if after_unit else []
    return out + [Command.load(t, Sram.ACT, d, signal_next=int(k == len(descs) - 1))
                  for k, d in enumerate(descs)]


def _stores(config, t: int, sh: StreamedHead, unit) -> list[Command]:
    sp = sh.plan
    row = sp.tile * 4
    pieces = [(b, qb, o, n) for b, qb in enumerate(unit)
              for o, n in _chunks(config, sp.o_block_bytes)]
    return [Command.store(t, Sram.ACC, Descriptor(
        DmaDir.STORE, sp.o_acc(b) * row + o, sh.o_addr + qb * sp.o_block_bytes + o, n),
        wait_prev=int(k == 0), signal_prev=int(k == len(pieces) - 1))
        for k, (b, qb, o, n) in enumerate(pieces)]


def _computes(t: int, sh: StreamedHead, unit, ui: int, step: int):
    """The unit's tensor commands with their tokens, the index of the command that
    signals C2L for each of its steps, and the number of steps."""
    tcs = ast.unit_commands(sh.plan, sh.head, unit, step)
    first, last = {}, {}
    for k, (_, grp, _) in enumerate(tcs):
        if grp >= 0:
            first.setdefault(grp, k)
            last[grp] = k
    o_first = next(k for k, (_, _, wo) in enumerate(tcs) if wo)
    n = len(tcs)
    cmds = [Command.compute(
        t, tc, wait_prev=int(grp >= 0 and first[grp] == k),
        signal_prev=int((grp >= 0 and last[grp] == k) or k == n - 1),
        wait_next=int(ui > 0 and k == o_first), signal_next=int(k == n - 1))
        for k, (tc, grp, _) in enumerate(tcs)]
    return cmds, [last[g] for g in sorted(last)], len(first)


def _tile_stream(config, t: int, units) -> list[Command]:
    """One tile's commands in order (module docstring of ``models.compiler_attention``):
    the compute commands of each unit, stores after each unit, and every load part
    emitted, in load order, as soon as the token it waits for has been emitted (K/V of
    step s: the C2L of step s - 2; Q of a unit: the previous unit's last command)."""
    parts, comp, comp_c2l, step = [], [], [], 0     # parts: (emit after index, cmds)
    for ui, (sh, i) in enumerate(units):
        unit = sh.plan.units[i]
        cmds, signals, nsteps = _computes(t, sh, unit, ui, step)
        base = len(comp)
        comp_c2l.extend(base + k for k in signals)
        for gi in range(nsteps):
            s = step + gi
            kv = _kv_load(config, t, sh, gi, s)
            ready = comp_c2l[s - 2] if s >= 2 else -1
            if gi == 0:
                q = _q_load(config, t, sh, unit, ui > 0)
                parts.append((ready, kv))
                parts.append((base - 1 if ui > 0 else -1, q))
            else:
                kv[-1] = replace(kv[-1], signal_next=1)
                parts.append((ready, kv))
        comp += [(c, None) for c in cmds]
        comp.append((None, _stores(config, t, sh, unit)))
        step += nsteps
    out, p = [], 0
    while p < len(parts) and parts[p][0] < 0:
        out += parts[p][1]
        p += 1
    for k, (c, stores) in enumerate(comp):
        out += [c] if c is not None else stores
        while p < len(parts) and parts[p][0] <= k:
            out += parts[p][1]
            p += 1
    assert p == len(parts)
    return out
