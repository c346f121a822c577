"""DMA + HBM bench: load throughput (bytes/cycle) vs the configured peak of the channels.

Runs the ``dma_hbm`` RTL (default preset's DMA/HBM, HBM latency 20/100/200 cycles,
an aliased 16 KiB-per-channel backing store so that a 1 MiB address space simulates
quickly) for contiguous loads of 64 B .. 1 MiB and 2D tiles with rows of 16 B .. 4 KiB
(32 KiB per tile, source stride 4 x row, packed destination). Each case is measured
isolated (one descriptor: latency-bound) and as a stream of ``stream_n`` back-to-back
descriptors (first accepted .. last completion: throughput); ``efficiency`` is the
streamed bytes/cycle over the peak. Writes build/bench/dma.json, prints a table and plots
build/bench/dma.png (if matplotlib is installed).
"""
from __future__ import annotations

import dataclasses
import json
import time

from models.config import get_preset
from scripts.benchlib import BENCH, print_table, run_records

LATENCIES = (20, 100, 200)
CONTIG = [64, 256, 1024, 4096, 16384, 65536, 262144, 1 << 20]
TILE_ROWS = [16, 64, 256, 1024, 4096]
TILE_BYTES = 32 * 1024
STREAM_BYTES = 64 * 1024        # a stream carries this much (one descriptor if larger)


def bench_config(latency: int, preset: str = "default"):
    base = get_preset(preset)
    hbm = dataclasses.replace(base.hbm, read_latency=latency, write_latency=latency,
                              channel_bytes=max(base.hbm.channel_bytes, (1 << 20) // base.hbm.channels),
                              store_bytes=16 * 1024)
    dma = dataclasses.replace(base.dma, sram_bytes=1 << 20, max_bytes=1 << 22)
    return dataclasses.replace(base, hbm=hbm, dma=dma)


def stream_n(total: int) -> int:
    """Descriptors per stream: STREAM_BYTES worth, so the one ramp-up latency a stream
    includes costs at most ~5% (200 cycles in >= 4096 data cycles)."""
    return max(1, STREAM_BYTES // total)


def cases():
    out = [["1d", n, 1, 0, stream_n(n)] for n in CONTIG]
    out += [["2d", r, TILE_BYTES // r, 4 * r, stream_n(TILE_BYTES)] for r in TILE_ROWS]
    return out


def bench(presets, sim) -> list[dict]:
    records = []
    BENCH.mkdir(parents=True, exist_ok=True)
    for lat in LATENCIES:
        t0 = time.monotonic()
        cfg = bench_config(lat)
        print(f"dma: HBM latency {lat} on {sim} ...", flush=True)
        records += run_records(f"bench-dma-{lat}-{sim}", "dma_hbm", cfg, sim, "tb.dma.bench_dma",
                               {"JALAPENO_BENCH_CASES": json.dumps(cases())}, seed=1)
        print(f"dma: latency {lat} done in {time.monotonic() - t0:.0f} s", flush=True)
    (BENCH / "dma.json").write_text(json.dumps(records, indent=1))
    print_table(records, ["kind", "bytes", "row_bytes", "latency", "cycles", "model_cycles",
                          "isolated_efficiency", "stream_n", "stream_cycles",
                          "stream_model_cycles", "bytes_per_cycle", "peak_bytes_per_cycle",
                          "efficiency", "sim_cycles_per_s"],
                "DMA load HBM -> SRAM (cycles: descriptor accepted .. completion; stream: "
                "first accepted .. last completion)")
    print(f"-> {BENCH / 'dma.json'}")
    plot(records)
    return records


def plot(records) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("dma: matplotlib not installed, no plot")
        return
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for lat in sorted({r["latency"] for r in records}):
        c = [r for r in records if r["kind"] == "1d" and r["latency"] == lat]
        t = [r for r in records if r["kind"] == "2d" and r["latency"] == lat]
        color = None            # one colour per latency, streamed solid, isolated dotted
        for key, style, what in (("efficiency", "o-", "stream"),
                                 ("isolated_efficiency", "x:", "isolated")):
            line, = a1.semilogx([r["bytes"] for r in c], [r[key] for r in c], style,
                                color=color, label=f"latency {lat}, {what}")
            color = line.get_color()
            a2.semilogx([r["row_bytes"] for r in t], [r[key] for r in t], style,
                        color=color, label=f"latency {lat}, {what}")
    a1.set(xlabel="transfer bytes (contiguous)", ylabel="bytes/cycle / peak",
           title="DMA load, contiguous", ylim=(0, 1.05))
    a2.set(xlabel="row bytes (2D tile, 32 KiB)", ylabel="bytes/cycle / peak",
           title="DMA load, 2D tiles", ylim=(0, 1.05))
    for a in (a1, a2):
        a.axhline(0.9, ls=":", c="grey")
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(BENCH / "dma.png", dpi=110)
    print(f"-> {BENCH / 'dma.png'}")
