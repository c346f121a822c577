"""Roofline model of the chip: the cycles a command stream or a GEMM cannot beat.

Three resources, each with a peak the config fixes:

* **compute**: each tile's array takes one activation row per cycle and a new weight
  tile at most every R cycles (``models.tensor_core.matmul_cycles``), so a tile's MATMULs
  occupy it ``sum(max(count, R))`` cycles; a vector command occupies the same tile (the
  vector unit shares the accumulator) one row per cycle plus its pipeline,
  ``count + models.vector.vector_latency(C)`` (one vector command at a time: the next
  waits for ``o_idle``). Peak: tiles x R x C MACs
  per cycle.
* **HBM**: every burst occupies its channel (``models.hbm.route``) ``beats * data_bytes /
  bytes_per_cycle`` cycles; the busiest channel bounds the stream. Peak: channels x
  bytes_per_cycle.
* **NoC**: a tile's network interface ejects (loads: read responses) and injects
  (stores: write requests) one flit per cycle; a burst is a head flit plus one flit per
  beat (``models.noc``: one beat per body flit). The busiest port bounds the stream.
  Peak: ``noc.data_bits / 8`` bytes per cycle per port.

``bound_cycles`` is the largest of the three, ``limiter`` names it. The bench divides
measured cycles by it; :func:`gemm_roofline` is the bound of a GEMM shape whatever the
blocking (perfect packing, every operand byte moved once).

Checked in tests/models/test_chip_perf.py against hand-counted streams.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from models.config import JalapenoConfig
from models.dma import plan_bursts
from models.vector import vector_latency
from models.hbm import route
from models.isa import Opcode
from models.tensor_cmd import Unit

__all__ = ["Peaks", "Roofline", "peaks", "port_flits", "stream_roofline", "gemm_roofline"]


@dataclass(frozen=True)
class Peaks:
    """Peak rates of a configuration."""

    macs_per_cycle: int         # tiles x R x C
    hbm_bytes_per_cycle: int    # channels x bytes_per_cycle
    link_bytes_per_cycle: int   # flit payload into (or out of) one tile


def peaks(config: JalapenoConfig) -> Peaks:
    return Peaks(config.soc.tiles * config.systolic.peak_macs_per_cycle,
                 config.hbm.channels * config.hbm.bytes_per_cycle, config.noc.data_bits // 8)


@dataclass(frozen=True)
class Roofline:
    """Lower bounds on the cycles of a workload, per resource.

    Attributes
    ----------
    macs : int
        Multiply-accumulates counted as useful (a stream: R x C per activation row fed;
        a GEMM shape: M x K x N).
    compute_cycles, hbm_cycles, noc_cycles : float
        Cycles the busiest tile array / HBM channel / NI port needs.
    hbm_bytes : int
        Bytes moved to and from HBM.
    """

    macs: int
    compute_cycles: float
    hbm_cycles: float
    noc_cycles: float
    hbm_bytes: int

    @property
    def bound_cycles(self) -> float:
        return max(self.compute_cycles, self.hbm_cycles, self.noc_cycles)

    @property
    def limiter(self) -> str:
        """``"compute"``, ``"hbm"`` or ``"noc"`` (the first of the largest)."""
        return max((self.compute_cycles, "compute"), (self.hbm_cycles, "hbm"),
                   (self.noc_cycles, "noc"), key=lambda x: x[0])[1]

    def utilization(self, config: JalapenoConfig, cycles: float) -> float:
        """``macs / (tiles x R x C x cycles)``: array utilization of a run of ``cycles``."""
        return self.macs / (peaks(config).macs_per_cycle * cycles)

    def as_dict(self) -> dict:
        return {"macs": self.macs, "compute_cycles": self.compute_cycles,
                "hbm_cycles": self.hbm_cycles, "noc_cycles": self.noc_cycles,
                "hbm_bytes": self.hbm_bytes, "bound_cycles": self.bound_cycles,
                "limiter": self.limiter}


def port_flits(config: JalapenoConfig, cmds) -> tuple[Counter, Counter]:
    """Flits each tile's network interface ejects (loads: read responses) and injects
    (stores: write requests) for a command stream: a head flit plus one per beat of every
    burst (``models.dma.plan_bursts``). Two Counters keyed by tile."""
    W, T = config.hbm.data_bytes, config.soc.tiles
    inflits, outflits = Counter(), Counter()
    for c in cmds:
        if c.opcode in (Opcode.DMA_LOAD, Opcode.DMA_STORE) and c.tile < T:
            ports = inflits if c.opcode == Opcode.DMA_LOAD else outflits
            for b in plan_bursts(config.dma, W, c.desc):
                ports[c.tile] += b.beats + 1
    return inflits, outflits


def stream_roofline(config: JalapenoConfig, cmds) -> Roofline:
    """Roofline of a command stream (``models.isa.Command`` list; illegal or
    non-queue commands add nothing)."""
    sa, hbm = config.systolic, config.hbm
    W, T = hbm.data_bytes, config.soc.tiles
    array = Counter()           # tile -> cycles
    channel = Counter()         # channel -> beats
    macs = hbm_bytes = 0
    for c in cmds:
        if c.opcode == Opcode.TENSOR and c.tile < T:
            tc = c.tensor
            if tc.unit == Unit.MATMUL:
                array[c.tile] += max(tc.count, sa.rows)
                macs += tc.count * sa.rows * sa.cols
            else:
                array[c.tile] += tc.count + vector_latency(sa.cols)
        elif c.opcode in (Opcode.DMA_LOAD, Opcode.DMA_STORE) and c.tile < T:
            hbm_bytes += c.desc.total
            for b in plan_bursts(config.dma, W, c.desc):
                channel[route(hbm, b.addr)[0]] += b.beats
    inflits, outflits = port_flits(config, cmds)
    noc = max([*inflits.values(), *outflits.values(), 0])
    return Roofline(macs, float(max(array.values(), default=0)),
                    max(channel.values(), default=0) * W / hbm.bytes_per_cycle,
                    float(noc), hbm_bytes)


def gemm_roofline(config: JalapenoConfig, m: int, k: int, n: int, *,
                  out_bytes: int = 4) -> Roofline:
    """Bound of an ``m x k x n`` GEMM with 1-byte operands and ``out_bytes`` results:
    perfect packing on all arrays, A, B read and C written once, spread evenly over HBM
    channels and tile ports (no flit headers)."""
    p = peaks(config)
    t = config.soc.tiles
    ins, out = m * k + k * n, out_bytes * m * n
    return Roofline(m * k * n, m * k * n / p.macs_per_cycle,
                    (ins + out) / p.hbm_bytes_per_cycle,
                    max(ins, out) / (t * p.link_bytes_per_cycle), ins + out)
