"""Host compiler: attention heads (``models.attention``) as a chip command stream.

Two schedules (``plan_attention(..., schedule=)``):

``"stream"`` (default; ``models.attention_stream``): every head's query blocks, in units
of one or two blocks (ping-pong), are spread over all tiles (largest unit first to the
least loaded tile, so causal heads' long and short units balance out). A tile streams
the key groups a unit needs from HBM into two weight-SRAM slots; per tile the key groups
of all its units form one sequence of *steps*: the K/V load of step s waits C2L when
s >= 2 (its slot's previous group was read) and signals L2C, except at a unit's first
step, where the unit's Q load follows it and signals L2C; the Q load of every unit but
the tile's first waits, through a load-queue SYNC, the extra C2L the previous unit's
last command signals (one Q slot). The first tensor command reading group s waits L2C,
the last one signals C2L. Each load is emitted as soon as the token it waits for has
been (K/V two steps ahead). The first command writing a unit's O waits S2C (the
previous unit's O was stored), the unit's last NORM signals C2S, its O stores (one per
query block) wait C2S / signal S2C. Tiles' streams are merged command by command. HBM:
per head Q blocks then K/V groups, then every head's O blocks (``nd x mq x T`` binary32
words each), then the ring.

``"whole"``: each head runs whole on one tile, as below.

Each head runs whole on one tile: its Q, K^T and V SRAM images
(``models.attention.sram_images``) are packed into HBM and DMA-loaded into the tile's
activation / weight SRAMs, the head's tensor-core program (``models.attention.program``)
runs on the compute queue, and O (``models.attention.output_rows``: binary32
accumulator rows) is stored back. Heads go to tiles round robin; a tile's next head
reuses its SRAMs, so its first load waits C2L (the previous head's program finished)
and its first tensor command waits S2C (the previous O was stored). SYNCs at the end
take the leftover tokens, and an IRQ ends the program (``models.compiler`` does the
same for GEMM).

HBM layout: per head, its images back to back (each :data:`_ALIGN`-aligned), then O of
every head (``nd * Sq`` rows of ``T`` binary32 words), then the ring.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models import attention as att
from models import attention_stream as ast
from models.compiler import IRQ_DONE, FitError
from models.config import JalapenoConfig
from models.dma import Descriptor, DmaDir
from models.isa import CMD_BYTES, Command, Queue, Sram

__all__ = ["HeadPlacement", "StreamedHead", "AttentionJob", "plan_attention",
           "attention_program", "pack_heads", "read_outputs", "SCHEDULES"]

SCHEDULES = ("stream", "whole")

_ALIGN = 256


def _align(x: int) -> int:
    return -(-x // _ALIGN) * _ALIGN


@dataclass(frozen=True)
class HeadPlacement:
    """One head: its tile, plan, images and where they live in HBM."""

    tile: int
    plan: att.AttentionPlan
    images: tuple                   # ((mem, sram word, rows uint8 2-D), ...)
    image_addrs: tuple              # HBM byte address of each image
    o_addr: int


@dataclass(frozen=True)
class StreamedHead:
    """One streamed head: its plan, the tile of every unit and where its images live."""

    plan: ast.StreamPlan
    head: att.QuantizedHead
    unit_tiles: tuple               # tile of each of plan.units
    q_addr: int                     # Q blocks, q_block_bytes apart
    kv_addr: int                    # K/V groups, kv_group_bytes apart
    o_addr: int                     # O blocks, o_block_bytes apart


@dataclass(frozen=True)
class AttentionJob:
    heads: tuple
    programs: tuple                 # the tensor commands of each head ("whole")
    ring_addr: int
    commands: list
    schedule: str = "whole"

    @property
    def hbm_bytes(self) -> int:
        return self.ring_addr + (len(self.commands) + 1) * CMD_BYTES


def plan_attention(config: JalapenoConfig, heads, *, schedule: str = "stream",
                   **stream_kw) -> AttentionJob:
    """Place quantized heads (``models.attention.QuantizedHead``) on the chip and emit the
    program; :class:`models.compiler.FitError` names what does not fit. ``stream_kw``
    (``mq``, ``g``, ``nb``, ``indep``) force choices of ``models.attention_stream``."""
    config.check_chip()
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if schedule == "stream":
        from models.compiler_attention_stream import plan_streamed
        return plan_streamed(config, heads, **stream_kw)
    addr, placed, programs = 0, [], []
    for h, head in enumerate(heads):
        try:
            pl = att.plan(config, head.problem)
        except ValueError as e:
            raise FitError(f"attention head {h} does not fit preset {config.name!r}: {e}") \
                from None
        imgs = tuple(att.sram_images(pl, head))
        addrs = []
        for _, _, rows in imgs:
            addrs.append(addr)
            addr = _align(addr + rows.size)
        placed.append((h % config.soc.tiles, pl, imgs, tuple(addrs)))
        programs.append(tuple(att.program(pl, head)))
    hp = []
    for tile, pl, imgs, addrs in placed:
        hp.append(HeadPlacement(tile, pl, imgs, addrs, addr))
        addr = _align(addr + att.output_rows(pl)[1] * pl.tile * 4)
    job = AttentionJob(tuple(hp), tuple(programs), addr, [])
    job.commands.extend(attention_program(config, job))
    if job.hbm_bytes > config.hbm.total_bytes:
        raise FitError(f"{len(hp)} attention heads do not fit preset {config.name!r}: they "
                       f"need {job.hbm_bytes} bytes of HBM (operands, outputs and ring), "
                       f"hbm.total_bytes is {config.hbm.total_bytes}")
    return job


def _chunks(config, total: int):
    """(offset, bytes) pieces of a copy of ``total`` bytes within dma.max_bytes."""
    step = config.dma.max_bytes // config.hbm.data_bytes * config.hbm.data_bytes
    return [(o, min(step, total - o)) for o in range(0, total, step)]


def _head_commands(config, hp: HeadPlacement, prog, again: bool):
    """(loads, computes, stores) of one head on its tile; ``again``: the tile ran a head
    before (its first load waits C2L, its first tensor command S2C)."""
    width = {Sram.ACT: config.systolic.rows, Sram.WEIGHT: config.systolic.cols}
    t = hp.tile
    loads = []
    for (mem, word, rows), src in zip(hp.images, hp.image_addrs):
        for off, n in _chunks(config, rows.size):
            loads.append((mem, Descriptor(DmaDir.LOAD, src + off, word * width[mem] + off, n)))
    lc = [Command.load(t, mem, d, wait_next=int(again and i == 0),
                       signal_next=int(i == len(loads) - 1)) for i, (mem, d) in enumerate(loads)]
    n = len(prog)
    cc = [Command.compute(t, tc, wait_prev=int(i == 0), wait_next=int(again and i == 0),
                          signal_prev=int(i == n - 1), signal_next=int(i == n - 1))
          for i, tc in enumerate(prog)]
    o_word, o_rows = att.output_rows(hp.plan)
    row = hp.plan.tile * 4
    stores = _chunks(config, o_rows * row)
    sc = [Command.store(t, Sram.ACC, Descriptor(DmaDir.STORE, o_word * row + off,
                                                hp.o_addr + off, nb),
                        wait_prev=int(i == 0), signal_prev=int(i == len(stores) - 1))
          for i, (off, nb) in enumerate(stores)]
    return lc, cc, sc


def _round_robin(lists) -> list:
    """The i-th element of every list in turn (lists of unequal length allowed)."""
    out = []
    for i in range(max((len(x) for x in lists), default=0)):
        out += [x[i] for x in lists if i < len(x)]
    return out


def attention_program(config: JalapenoConfig, job: AttentionJob) -> list[Command]:
    """The command stream of a placed job (module docstring).

    Heads run in waves of one head per tile; within a wave the heads' loads, then their
    tensor commands and then their stores are interleaved command by command, so the
    in-order dispatcher feeds every tile at once (a head's whole program in a row would
    fill its tile's compute queue and hold the other tiles' heads behind it). Every
    token a command waits for comes from an earlier command of the stream.
    """
    T = config.soc.tiles
    seen = set()
    cmds: list[Command] = []
    heads = list(zip(job.heads, job.programs))
    for w in range(0, len(heads), T):
        parts = []
        for hp, prog in heads[w:w + T]:
            parts.append(_head_commands(config, hp, prog, hp.tile in seen))
            seen.add(hp.tile)
        for k in range(3):                      # loads, tensor commands, stores
            cmds += _round_robin([p[k] for p in parts])
    for t in sorted(seen):
        cmds += [Command.sync(t, Queue.LOAD, wait_next=1),
                 Command.sync(t, Queue.COMPUTE, wait_next=1)]
    cmds.append(Command.irq(IRQ_DONE))
    return cmds


def pack_heads(job: AttentionJob, hbm: np.ndarray) -> None:
    """Write every head's SRAM images into the HBM image."""
    if job.schedule == "stream":
        for sh in job.heads:
            for addr, img in ((sh.q_addr, ast.q_images(sh.plan, sh.head)),
                              (sh.kv_addr, ast.kv_images(sh.plan, sh.head))):
                hbm[addr:addr + img.size] = img.reshape(-1)
        return
    for hp in job.heads:
        for (_, _, rows), a in zip(hp.images, hp.image_addrs):
            hbm[a:a + rows.size] = rows.reshape(-1)


def read_outputs(job: AttentionJob, hbm: np.ndarray) -> list[np.ndarray]:
    """O (Sq x d float32) of every head out of an HBM image."""
    if job.schedule == "stream":
        return [_streamed_output(sh, hbm) for sh in job.heads]
    out = []
    for hp in job.heads:
        _, n = att.output_rows(hp.plan)
        nb = n * hp.plan.tile * 4
        words = np.ascontiguousarray(hbm[hp.o_addr:hp.o_addr + nb]).view("<u4")
        out.append(att.output(hp.plan, words.reshape(n, hp.plan.tile)))
    return out


def _streamed_output(sh: StreamedHead, hbm: np.ndarray) -> np.ndarray:
    sp = sh.plan
    n = sp.nqb * sp.o_block_bytes
    words = np.ascontiguousarray(hbm[sh.o_addr:sh.o_addr + n]).view("<u4")
    blocks = [ast.block_output(sp, w) for w in words.reshape(sp.nqb, -1)]
    return np.concatenate(blocks)[:sp.problem.seq_q]
