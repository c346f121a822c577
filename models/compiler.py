"""Host compiler: a GEMM as a command stream (``models.isa``) for all tiles of the chip.

``C[M, N] = A[M, K] @ B[K, N]`` with INT8 operands (INT32 C, wrapping) or FP8 codes
(binary32 C, K tiles summed in increasing k0 as ``models.fp8.gemm_fp8(tile_k=R)``).

**Blocking** (:class:`GemmPlan`). M is cut into ``nmb`` blocks of ``mb`` rows (padded with
zero rows), N into groups of ``g`` array-width tiles (the last group may be smaller), K
into blocks of ``kb`` array-height tiles (the last may be smaller). A *unit* is one
(M block, N group) output block; units go to tiles round robin (so both M and N are
split across tiles). A tile computes a unit in *steps*, one per K block: load the A
block (``kb * mb`` activation words) and the B block (``kb * g * R`` weight words) into
input slot ``step % ns``, then ``kb * g`` MATMULs into accumulator slot ``unit % na``
(``g * mb`` words); after the last K block the slot is stored to HBM. With ``ns = na =
2`` the next step's operands load and the previous unit's result stores while the
array computes. :func:`plan_gemm` picks the blocking with the smallest estimated time
(:func:`estimate_cycles`) among those that fit the SRAMs, the DMA's ``max_bytes`` and
HBM.

**HBM layout** (host-packed so that every DMA is one contiguous copy): A as
``[mi][kt][mb][R]`` bytes, B as ``[group][kt][j][R][C]`` (j: tile of the group), C as
``[mi][nt][mb][C]`` little-endian 32-bit words, then the command ring.

**Tokens** (per tile; ``models.isa``): the A load of step s waits C2L when s >= ns (its
slot was used by step s - ns) and the B load signals L2C; the first MATMUL of a step
waits L2C (and S2C when its unit reuses an accumulator slot: unit >= na); the last
MATMUL signals C2L (and C2S at the last K block); the store (in pieces of at most
:data:`STORE_PIECE` bytes) waits C2S with its first piece and signals S2C with its last.
Loads are emitted ``ns - 1`` steps ahead of the MATMULs (software pipelining), tiles
interleaved step by step, and every token a command waits for comes from an earlier
command, so the in-order dispatcher cannot deadlock whatever the queue depths. SYNC
commands at the end take the tokens nobody waited for, so every counter ends at 0, and
an IRQ (which implies a fence) ends the program.

numpy only; reads the same config as the RTL.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from models.config import JalapenoConfig
from models.dma import Descriptor, DmaDir
from models.isa import CMD_BYTES, Command, Queue, Sram
from models.tensor_cmd import TensorCmd

__all__ = ["FitError", "ceil_div", "GemmPlan", "plan_gemm", "pack_a", "pack_b", "unpack_c",
           "gemm_program", "estimate_cycles", "IRQ_DONE"]

#: Value of the IRQ that ends a compiled program.
IRQ_DONE = 0x600D
#: Largest store of a C block (bytes): :func:`_store_pieces`.
STORE_PIECE = 32768
_ALIGN = 256                    # HBM regions start on this boundary
_SLACK = 1.25                   # loads take longer than the link rate (NoC/HBM contention)
_HBM_EFFICIENCY = 0.6           # share of the HBM peak a plan may count on (row misses,
                                # read/write turnarounds, uneven channels)


class FitError(ValueError):
    """The problem does not fit the chip; the message names the limit."""


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for ints (b > 0), exact."""
    return -(-a // b)


@dataclass(frozen=True)
class GemmPlan:
    """Blocking, buffers and HBM addresses of one GEMM (module docstring)."""

    m: int
    k: int
    n: int
    r: int
    c: int
    tiles: int
    mb: int
    g: int
    kb: int
    ns: int
    na: int
    fp8: bool = False
    fmt_a: int = 0
    fmt_w: int = 0
    a_addr: int = 0
    b_addr: int = 0
    c_addr: int = 0
    ring_addr: int = 0

    @property
    def kt(self) -> int:
        return ceil_div(self.k, self.r)

    @property
    def nt(self) -> int:
        return ceil_div(self.n, self.c)

    @property
    def nmb(self) -> int:
        return ceil_div(self.m, self.mb)

    @cached_property
    def groups(self) -> list[tuple[int, int]]:
        """(first N tile, tiles) of every N group."""
        return [(t, min(self.g, self.nt - t)) for t in range(0, self.nt, self.g)]

    @cached_property
    def kblocks(self) -> list[tuple[int, int]]:
        """(first K tile, tiles) of every K block."""
        return [(t, min(self.kb, self.kt - t)) for t in range(0, self.kt, self.kb)]

    @cached_property
    def units(self) -> list[tuple[int, int]]:
        """(M block, N group) of every output block, in assignment order."""
        return [(mi, gi) for mi in range(self.nmb) for gi in range(len(self.groups))]

    def tile_units(self, t: int) -> list[tuple[int, int]]:
        return self.units[t::self.tiles]

    @property
    def a_bytes(self) -> int:
        return self.nmb * self.kt * self.mb * self.r

    @property
    def b_bytes(self) -> int:
        return self.nt * self.kt * self.r * self.c

    @property
    def c_bytes(self) -> int:
        return self.nmb * self.nt * self.mb * self.c * 4

    @property
    def commands(self) -> int:
        """Commands of :func:`gemm_program` (the ring holds one more entry)."""
        steps = len(self.units) * len(self.kblocks)
        mms = self.nmb * self.nt * self.kt
        drains = sum(min(len(self.tile_units(t)) * len(self.kblocks), self.ns)
                     + min(len(self.tile_units(t)), self.na) for t in range(self.tiles))
        stores = sum(len(_store_pieces(g * self.mb * self.c * 4)) * self.nmb
                     for _, g in self.groups)
        return 2 * steps + mms + stores + drains + 1

    @property
    def hbm_bytes(self) -> int:
        """End of the ring: HBM the program needs from address 0."""
        return self.ring_addr + (self.commands + 1) * CMD_BYTES

    # SRAM word addresses of the slots
    def act_slot(self, s: int) -> int:
        return s * self.kb * self.mb

    def w_slot(self, s: int) -> int:
        return s * self.kb * self.g * self.r

    def acc_slot(self, s: int) -> int:
        return s * self.g * self.mb


def _align(x: int, a: int = _ALIGN) -> int:
    return ceil_div(x, a) * a


def _row_align(config: JalapenoConfig) -> int:
    """Smallest row count whose activation and accumulator bytes are whole beats."""
    W, R, C = config.hbm.data_bytes, config.systolic.rows, config.systolic.cols
    return next(m for m in range(1, W + 1) if m * R % W == 0 and m * C * 4 % W == 0)


def _placed(p: GemmPlan) -> GemmPlan:
    from dataclasses import replace
    b = _align(p.a_bytes)
    c = b + _align(p.b_bytes)
    ring = c + _align(p.c_bytes)
    return replace(p, a_addr=0, b_addr=b, c_addr=c, ring_addr=ring)


def _sram_limits(config: JalapenoConfig, p: GemmPlan) -> list[str]:
    tc, dma = config.tensor, config.dma
    out = []
    for what, need, have in (
            ("activation SRAM words", p.ns * p.kb * p.mb, tc.act_rows),
            ("weight SRAM words", p.ns * p.kb * p.g * p.r, tc.weight_rows),
            ("accumulator SRAM words", p.na * p.g * p.mb, tc.acc_rows),
            ("bytes of one A load (dma.max_bytes)", p.kb * p.mb * p.r, dma.max_bytes),
            ("bytes of one B load (dma.max_bytes)", p.kb * p.g * p.r * p.c, dma.max_bytes),
            ("bytes of one C store (dma.max_bytes)", p.g * p.mb * p.c * 4, dma.max_bytes),
            ("rows of one MATMUL (16-bit count)", p.mb, 0xFFFF)):
        if need > have:
            out.append(f"{need} {what}, the limit is {have}")
    return out


def _pow2_upto(n: int) -> list[int]:
    return sorted({1 << i for i in range(n.bit_length()) if 1 << i <= n} | {n})


def plan_gemm(config: JalapenoConfig, m: int, k: int, n: int, *, fp8: bool = False,
              fmt_a: int = 0, fmt_w: int = 0, mb: int | None = None, g: int | None = None,
              kb: int | None = None, slots: tuple[int, int] | None = None) -> GemmPlan:
    """The fastest blocking (by :func:`estimate_cycles`; among those within 2 %, the one
    with the fewest commands) that fits; ``mb``, ``g``, ``kb``, ``slots`` = (ns, na) force
    a choice. Raises :class:`FitError` naming the limit."""
    config.check_chip()
    for name, v in (("M", m), ("K", k), ("N", n)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise FitError(f"GEMM dimension {name} must be an int >= 1, got {v!r}")
    sa = config.systolic
    if fp8 and not sa.fp8:
        raise FitError(f"preset {config.name!r} has no FP8 datapath (systolic.fp8=False)")
    W = config.hbm.data_bytes
    if sa.rows * sa.cols % W:
        raise FitError(f"a {sa.rows}x{sa.cols} weight tile ({sa.rows * sa.cols} bytes) is not "
                       f"a whole number of {W}-byte HBM beats")
    ma = _row_align(config)
    kt, nt = ceil_div(k, sa.rows), ceil_div(n, sa.cols)
    base = dict(m=m, k=k, n=n, r=sa.rows, c=sa.cols, tiles=config.soc.tiles, fp8=fp8,
                fmt_a=fmt_a, fmt_w=fmt_w)
    mbs = [mb] if mb else sorted({_align(ceil_div(m, nb), ma) for nb in
                                  (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)})
    gs = [g] if g else _pow2_upto(nt)
    kbs = [kb] if kb else _pow2_upto(kt)
    slot_opts = [slots] if slots else [(2, 2), (2, 1), (1, 2), (1, 1)]
    fits, first_err = [], None
    for mb_ in mbs:
        for g_ in gs:
            for kb_ in kbs:
                for ns, na in slot_opts:
                    p = GemmPlan(mb=mb_, g=g_, kb=kb_, ns=ns, na=na, **base)
                    errs = _sram_limits(config, p)
                    if not errs:
                        p = _placed(p)
                        if p.hbm_bytes > config.hbm.total_bytes:
                            errs = [_hbm_msg(config, p)]
                    if errs:
                        first_err = first_err or errs[0]
                        continue
                    fits.append((estimate_cycles(config, p), p.commands, p))
    if not fits:
        raise FitError(f"{m}x{k}x{n} GEMM does not fit preset {config.name!r}: {first_err}")
    # within 2 % of the fastest estimate, the fewest commands (less dispatch work)
    fastest = min(f[0] for f in fits)
    return min((f for f in fits if f[0] <= fastest * 1.02), key=lambda f: (f[1], f[0]))[2]


def _hbm_msg(config, p: GemmPlan) -> str:
    return (f"needs {p.hbm_bytes} bytes of HBM (A {p.a_bytes}, B {p.b_bytes}, C {p.c_bytes}, "
            f"ring {(p.commands + 1) * CMD_BYTES}), hbm.total_bytes is "
            f"{config.hbm.total_bytes}")


def estimate_cycles(config: JalapenoConfig, p: GemmPlan) -> float:
    """Rough cycles of a plan, for choosing one: per tile, the steps' loads (at the tile's
    NoC link rate, or its share of HBM) and MATMULs (``max(mb, R)`` cycles each) overlap
    when double-buffered and add up otherwise; results store likewise. The HBM traffic
    (A once per N group, B once per M block, C once) counts against 60 % of the peak."""
    B = config.dma.max_burst_beats
    link = config.hbm.data_bytes * B / (B + 1)
    busy = min(config.soc.tiles, len(p.units))
    bw = min(link, config.hbm.channels * config.hbm.bytes_per_cycle / busy)
    lat = config.hbm.read_latency
    worst = 0.0
    for t in range(config.soc.tiles):
        steps = [(p.groups[gi][1], cnt, bi == len(p.kblocks) - 1)
                 for _, gi in p.tile_units(t) for bi, (_, cnt) in enumerate(p.kblocks)]
        loads = [(cnt * p.mb * p.r + cnt * g * p.r * p.c) / bw for g, cnt, _ in steps]
        time, tail = 0.0, 0.0
        for i, (g, cnt, last) in enumerate(steps):
            comp = cnt * g * max(p.mb, p.r)
            if p.ns == 1:
                time += loads[i] + lat + comp
            else:
                time += (loads[0] + lat if i == 0 else 0.0) + max(
                    comp, loads[i + 1] * _SLACK + lat if i + 1 < len(steps) else 0.0)
            if last:
                store = g * p.mb * p.c * 4 / bw + lat
                time, tail = (time + store, 0.0) if p.na == 1 else (time, store)
        worst = max(worst, time + tail)
    hbm = (p.a_bytes * len(p.groups) + p.b_bytes * p.nmb + p.c_bytes) / (
        config.hbm.channels * config.hbm.bytes_per_cycle * _HBM_EFFICIENCY)
    return max(worst, hbm)


# --- data --------------------------------------------------------------------------------
def _codes(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x.view(np.uint8) if x.dtype in (np.int8, np.uint8) else x.astype(np.int8).view(np.uint8)


def pack_a(p: GemmPlan, a) -> np.ndarray:
    """A (M x K int8 values or uint8 FP8 codes) in its HBM layout, ``a_bytes`` long."""
    ap = np.zeros((p.nmb * p.mb, p.kt * p.r), np.uint8)
    ap[:p.m, :p.k] = _codes(a)
    return ap.reshape(p.nmb, p.mb, p.kt, p.r).transpose(0, 2, 1, 3).reshape(-1)


def pack_b(p: GemmPlan, b) -> np.ndarray:
    """B (K x N) in its HBM layout, ``b_bytes`` long."""
    bp = np.zeros((p.kt * p.r, p.nt * p.c), np.uint8)
    bp[:p.k, :p.n] = _codes(b)
    tiles = bp.reshape(p.kt, p.r, p.nt, p.c).transpose(2, 0, 1, 3)     # [nt][kt][R][C]
    return np.concatenate([tiles[t0:t0 + cnt].transpose(1, 0, 2, 3).reshape(-1)
                           for t0, cnt in p.groups])


def unpack_c(p: GemmPlan, hbm: np.ndarray) -> np.ndarray:
    """C (M x N uint32 words: INT32 or binary32 bits) out of an HBM image."""
    raw = np.ascontiguousarray(hbm[p.c_addr:p.c_addr + p.c_bytes]).view("<u4")
    c = raw.reshape(p.nmb, p.nt, p.mb, p.c).transpose(0, 2, 1, 3).reshape(p.nmb * p.mb, -1)
    return c[:p.m, :p.n].astype(np.uint32)


# --- the program ---------------------------------------------------------------------------
def _tile_steps(p: GemmPlan, t: int) -> list[dict]:
    out = []
    for u, (mi, gi) in enumerate(p.tile_units(t)):
        nt0, g = p.groups[gi]
        for bi, (kt0, cnt) in enumerate(p.kblocks):
            out.append(dict(u=u, mi=mi, nt0=nt0, g=g, kt0=kt0, cnt=cnt, s=len(out) % p.ns,
                            first=bi == 0, last=bi == len(p.kblocks) - 1))
    return out


def _loads(p: GemmPlan, t: int, i: int, st: dict) -> list[Command]:
    R, C = p.r, p.c
    a_src = p.a_addr + (st["mi"] * p.kt + st["kt0"]) * p.mb * R
    a = Descriptor(DmaDir.LOAD, a_src, p.act_slot(st["s"]) * R, st["cnt"] * p.mb * R,
                   tag=i & 0xFF)
    b_src = p.b_addr + (st["nt0"] * p.kt + st["kt0"] * st["g"]) * R * C
    b = Descriptor(DmaDir.LOAD, b_src, p.w_slot(st["s"]) * C, st["cnt"] * st["g"] * R * C,
                   tag=i & 0xFF)
    return [Command.load(t, Sram.ACT, a, wait_next=int(i >= p.ns)),
            Command.load(t, Sram.WEIGHT, b, signal_next=1)]


def _computes(p: GemmPlan, t: int, st: dict) -> list[Command]:
    acc = p.acc_slot(st["u"] % p.na)
    out = []
    for j in range(st["g"]):
        for kl in range(st["cnt"]):
            out.append(TensorCmd.matmul(
                src=p.act_slot(st["s"]) + kl * p.mb, w=p.w_slot(st["s"]) + (kl * st["g"] + j) * p.r,
                dst=acc + j * p.mb, m=p.mb, accumulate=not (st["first"] and kl == 0),
                fp8=p.fp8, fmt_a=p.fmt_a, fmt_w=p.fmt_w))
    n = len(out)
    cmds = [Command.compute(t, c, wait_prev=int(i == 0),
                            wait_next=int(i == 0 and st["first"] and st["u"] >= p.na),
                            signal_prev=int(i == n - 1),
                            signal_next=int(i == n - 1 and st["last"]))
            for i, c in enumerate(out)]
    if st["last"]:
        dst = p.c_addr + (st["mi"] * p.nt + st["nt0"]) * p.mb * p.c * 4
        pieces = _store_pieces(st["g"] * p.mb * p.c * 4)
        for k, (off, n) in enumerate(pieces):
            d = Descriptor(DmaDir.STORE, acc * p.c * 4 + off, dst + off, n, tag=st["u"] & 0xFF)
            cmds.append(Command.store(t, Sram.ACC, d, wait_prev=int(k == 0),
                                      signal_prev=int(k == len(pieces) - 1)))
    return cmds


def _store_pieces(total: int) -> list[tuple[int, int]]:
    """(offset, bytes) of the stores of one C block: at most :data:`STORE_PIECE` bytes
    each. The tile's DMA engine drains before it changes direction, so one long store
    would hold the next step's loads (and the array) for its whole length; pieces let the
    load queue take turns (the top's round robin). Not smaller: every piece is a queue
    entry and two direction changes (8 KiB pieces filled the store queue and stalled the
    in-order dispatcher: 512^3 on default fell from 0.77 to 0.67 array_util)."""
    return [(o, min(STORE_PIECE, total - o)) for o in range(0, total, STORE_PIECE)]


def gemm_program(p: GemmPlan) -> list[Command]:
    """The command stream of the plan (module docstring), ending with IRQ(IRQ_DONE)."""
    steps = [_tile_steps(p, t) for t in range(p.tiles)]
    ahead = p.ns - 1
    cmds: list[Command] = []
    for r in range(max(len(s) for s in steps) + ahead):
        for t in range(p.tiles):
            if r < len(steps[t]):
                cmds += _loads(p, t, r, steps[t][r])
            if 0 <= r - ahead < len(steps[t]):
                cmds += _computes(p, t, steps[t][r - ahead])
    for t in range(p.tiles):
        nu = len(p.tile_units(t))
        cmds += [Command.sync(t, Queue.LOAD, wait_next=1)] * min(len(steps[t]), p.ns)
        cmds += [Command.sync(t, Queue.COMPUTE, wait_next=1)] * min(nu, p.na)
    cmds.append(Command.irq(IRQ_DONE))
    assert len(cmds) == p.commands, (len(cmds), p.commands)
    return cmds
