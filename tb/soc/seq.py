"""Random command streams for the chip top (``soc``) whose result does not depend on the
schedule, so that ``models.chip.ChipModel`` decides the final HBM image bit for bit.

Pure Python (no cocotb): :mod:`tb.soc.uvm` drives them, and they can be checked alone
(``ChipModel`` under ``policy="random"`` gives the image of ``policy="oldest"``).

Why the streams are race free
-----------------------------
* **One dependency chain per tile.** Every queue command of a tile waits for the tile's
  previous queue command on another queue (its token flag towards that queue; that
  command gets the matching signal flag). Load and store are not neighbours: a chain step
  between them goes through a compute-queue SYNC (wait from one, signal to the other).
  Commands in the same queue are ordered by the queue. So a tile's SRAM accesses run in
  stream order and each counter holds at most one token: no overflow, every wait is
  satisfied by an earlier command (the in-order dispatcher cannot deadlock), and every
  counter is 0 when the chain ends.
* **HBM:** loads read the input region (never written by a store) or the tile's own store
  region; tile ``t`` stores only into its own store region. No two tiles touch the same
  byte that one of them writes.
* **SRAM windows:** DMA and MATMULs use only the first bytes of each SRAM
  (:class:`Layout`); :func:`scrub_program` loads all of them from the input region, so
  the model and the RTL agree on every byte a later program reads, whatever ran before
  (a reset in the middle of a program leaves them unknown).

Barriers over random tile masks, FENCEs and NOPs are sprinkled in (they only add
ordering); every program ends with an IRQ.
"""
from __future__ import annotations

from dataclasses import dataclass

from models.dma import Descriptor, DmaDir
from models.isa import CMD_BYTES, Command, Opcode, Queue, Sram, check
from models.tensor_cmd import TensorCmd, Unit

__all__ = ["Layout", "random_program", "random_matmul", "scrub_program", "dep_label"]


@dataclass(frozen=True)
class Layout:
    """HBM regions and SRAM windows of the generated programs for a chip config.

    tiny (32 KiB of HBM): input 0x0000-0x3FFF, store regions 0x4000 + t * 0x800,
    ring 0x6000 (128 entries, up to the end of HBM).
    """

    input_bytes: int
    store_base: int
    store_bytes: int            # per tile
    ring_addr: int
    ring_entries: int
    act_rows: int               # rows of each SRAM the programs use
    weight_rows: int
    acc_rows: int
    R: int
    C: int

    @classmethod
    def of(cls, cfg) -> "Layout":
        total, T = cfg.hbm.total_bytes, cfg.soc.tiles
        ring_entries = 128
        ring_addr = total - ring_entries * CMD_BYTES
        input_bytes = total // 2
        store_bytes = (ring_addr - input_bytes) // T // 64 * 64
        assert store_bytes >= 256, f"{cfg.name}: no room for store regions"
        R, C = cfg.systolic.rows, cfg.systolic.cols
        return cls(input_bytes, input_bytes, store_bytes, ring_addr, ring_entries,
                   act_rows=96, weight_rows=64 + R, acc_rows=96, R=R, C=C)

    def window(self, sram: int) -> int:
        """Bytes of SRAM ``sram`` the programs use (from its first byte)."""
        return {Sram.ACT: self.act_rows * self.R, Sram.WEIGHT: self.weight_rows * self.C,
                Sram.ACC: self.acc_rows * self.C * 4}[Sram(sram)]

    def store_region(self, t: int) -> tuple[int, int]:
        lo = self.store_base + t * self.store_bytes
        return lo, lo + self.store_bytes


def dep_label(cmd: Command) -> str:
    """Token flags of a command as a coverage bin: ``w<prev|next|->/s<prev|next|->``."""
    def two(a, b):
        return "both" if a and b else "prev" if a else "next" if b else "-"
    return f"w{two(cmd.wait_prev, cmd.wait_next)}/s{two(cmd.signal_prev, cmd.signal_next)}"


def _descriptor(rng, cfg, lay: Layout, tile: int, direction: DmaDir, sram: int) -> Descriptor:
    """A small legal 1D/2D copy between the SRAM window and the tile's HBM regions (both
    sides in the same byte lane, row strides a multiple of W apart: models.dma rules)."""
    W = cfg.hbm.data_bytes
    win = lay.window(sram)
    row = rng.choice([1, max(1, W // 2), W, 2 * W, 3 * W, rng.randint(1, 6 * W)])
    rows = rng.choice([1, 1, 2, 3])
    ys_s = row + rng.randrange(3) * W + rng.randrange(W)
    ys_h = ys_s + rng.randrange(4) * W
    ext_s, ext_h = (rows - 1) * ys_s + row, (rows - 1) * ys_h + row
    lane = rng.randrange(W)
    s_lo = lane + rng.randrange((win - ext_s - lane) // W + 1) * W
    if direction == DmaDir.STORE or rng.random() < 0.3:
        lo, hi = lay.store_region(tile)
    else:
        lo, hi = 0, lay.input_bytes
    h = lo + lane + rng.randrange((hi - lo - ext_h - lane) // W + 1) * W
    if direction == DmaDir.LOAD:
        return Descriptor(DmaDir.LOAD, src=h, dst=s_lo, row_bytes=row, rows=rows,
                          src_ystride=ys_h, dst_ystride=ys_s, tag=rng.randrange(256))
    return Descriptor(DmaDir.STORE, src=s_lo, dst=h, row_bytes=row, rows=rows,
                      src_ystride=ys_s, dst_ystride=ys_h, tag=rng.randrange(256))


def random_matmul(rng, cfg, lay: Layout | None = None) -> TensorCmd:
    """A MATMUL inside the SRAM windows (what models.compiler emits, random rows)."""
    lay = lay or Layout.of(cfg)
    count = rng.randint(1, 32)
    return TensorCmd(unit=Unit.MATMUL, src=rng.randrange(lay.act_rows - count + 1),
                     src2=rng.randrange(lay.weight_rows - lay.R + 1),
                     dst=rng.randrange(lay.acc_rows - count + 1), count=count,
                     accumulate=rng.randrange(2),
                     fp8=int(cfg.systolic.fp8 and rng.random() < 0.2))


# flag a command of queue q uses to reach queue p (p = q - 1: prev, p = q + 1: next)
def _towards(q: int, p: int) -> str:
    return "prev" if p < q else "next"


class _Chain:
    """Builds one tile's dependency chain (see the module docstring)."""

    def __init__(self, tile: int):
        self.tile = tile
        self.last: dict | None = None       # the previous queue command (mutable spec)

    def link(self, spec: dict, q: int, out: list) -> None:
        """Append ``spec`` (a Command kwargs dict, queue ``q``) chained after the last."""
        p = None if self.last is None else self.last["_q"]
        if p is not None and abs(p - q) == 2:           # load <-> store: relay via compute
            relay = {"opcode": Opcode.SYNC, "tile": self.tile, "queue": Queue.COMPUTE}
            self.link(relay, Queue.COMPUTE, out)
            p = Queue.COMPUTE
        if p is not None and p != q:
            self.last["signal_" + _towards(p, q)] = 1
            spec["wait_" + _towards(q, p)] = 1
        spec["_q"] = q
        out.append(spec)
        self.last = spec


def _build(specs) -> list[Command]:
    return [s if isinstance(s, Command) else
            Command(**{k: v for k, v in s.items() if not k.startswith("_")}) for s in specs]


def random_program(rng, cfg, n: int, *, irq: int, extras: bool = True) -> list[Command]:
    """About ``n`` commands on random tiles (loads, stores, MATMULs, SYNCs as chain links)
    plus barriers over random masks, FENCEs and NOPs; ends with ``IRQ(irq)``."""
    lay = Layout.of(cfg)
    T = cfg.soc.tiles
    chains = [_Chain(t) for t in range(T)]
    out: list = []
    while len(out) < n:
        t = rng.randrange(T)
        x = rng.random()
        if extras and x < 0.05:
            out.append(Command.barrier(rng.sample(range(T), rng.randint(1, T))))
            continue
        if extras and x < 0.08:
            out.append(Command.fence())
            continue
        if extras and x < 0.13:
            out.append(Command.nop())
            continue
        kind = rng.choices(["load", "store", "tensor", "sync"], [4, 3, 3, 1.5])[0]
        if kind == "load":
            s = rng.choice(list(Sram))
            spec = {"opcode": Opcode.DMA_LOAD, "tile": t, "sram": s,
                    "desc": _descriptor(rng, cfg, lay, t, DmaDir.LOAD, s)}
            chains[t].link(spec, Queue.LOAD, out)
        elif kind == "store":
            s = rng.choice(list(Sram))
            spec = {"opcode": Opcode.DMA_STORE, "tile": t, "sram": s,
                    "desc": _descriptor(rng, cfg, lay, t, DmaDir.STORE, s)}
            chains[t].link(spec, Queue.STORE, out)
        elif kind == "tensor":
            spec = {"opcode": Opcode.TENSOR, "tile": t, "tensor": random_matmul(rng, cfg, lay)}
            chains[t].link(spec, Queue.COMPUTE, out)
        else:
            q = rng.choice(list(Queue))
            chains[t].link({"opcode": Opcode.SYNC, "tile": t, "queue": q}, q, out)
    cmds = _build(out) + [Command.irq(irq)]
    for c in cmds:
        assert not check(c, cfg), (c, check(c, cfg))
    return cmds


def scrub_program(cfg, *, irq: int) -> list[Command]:
    """Load every SRAM window of every tile from the input region (one copy each), so the
    next programs read only bytes the model knows. Ends with ``IRQ(irq)``."""
    lay = Layout.of(cfg)
    out = []
    for t in range(cfg.soc.tiles):
        for s in Sram:
            n = lay.window(s)
            src = (t * 3 + s) * 0x400 % (lay.input_bytes - n)
            src -= src % cfg.hbm.data_bytes
            out.append(Command.load(t, s, Descriptor(DmaDir.LOAD, src=src, dst=0, row_bytes=n)))
    cmds = out + [Command.irq(irq)]
    for c in cmds:
        assert not check(c, cfg), (c, check(c, cfg))
    return cmds
