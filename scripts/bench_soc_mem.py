"""SoC memory bench: DMA loads through the mesh (``dma_noc_hbm``: AxiToNoc -> NocMemFabric
-> NocToAxi -> HBM channels) vs the DMA driving the HBM stub directly (``dma_hbm``).

Same engine, channels, latency and cocotb module (``tb.dma.bench_dma``: each case once
isolated, then as a stream of back-to-back descriptors, data checked), on the
``default`` preset's DMA/HBM/NoC (``scripts.bench_dma.bench_config``: 1 MiB address space,
aliased 16 KiB stores) at HBM latencies 20 and 100. Records: ``efficiency`` = streamed
bytes/cycle over the channels' peak; ``added_cycles`` = isolated cycles through the NoC
minus direct (the bridges, 2 x the mesh's zero-load latency, the read reorder buffer's
store and forward). Writes build/bench/soc_mem.json.
"""
from __future__ import annotations

import json
import time

from scripts.bench_dma import bench_config
from scripts.benchlib import BENCH, print_table, run_records

LATENCIES = (20, 100)
#: [kind, row_bytes, rows, src_ystride, stream_n]: one burst, streamed 4 KiB, 16 KiB
CASES = [["1d", 64, 1, 0, 16], ["1d", 4096, 1, 0, 16], ["1d", 16384, 1, 0, 4]]
BLOCKS = ("dma_hbm", "dma_noc_hbm")


def bench(presets, sim) -> list[dict]:
    BENCH.mkdir(parents=True, exist_ok=True)
    preset = "default"          # tiny's 16-bit NoC addresses do not reach the 1 MiB space
    records = []
    for lat in LATENCIES:
        cfg = bench_config(lat, preset)
        for block in BLOCKS:
            t0 = time.monotonic()
            print(f"soc_mem: {block}, HBM latency {lat}, {sim} ...", flush=True)
            recs = run_records(f"bench-soc-mem-{block}-{lat}-{sim}", block, cfg, sim,
                               "tb.dma.bench_dma", {"JALAPENO_BENCH_CASES": json.dumps(CASES)},
                               seed=1)
            for r in recs:
                r.update(block=block, preset=preset, path="noc" if "noc" in block else "direct")
            records += recs
            print(f"soc_mem: done in {time.monotonic() - t0:.0f} s", flush=True)
    direct = {(r["latency"], r["bytes"]): r for r in records if r["path"] == "direct"}
    for r in records:
        d = direct[r["latency"], r["bytes"]]
        r["added_cycles"] = r["cycles"] - d["cycles"]
        r["stream_ratio_vs_direct"] = round(r["stream_cycles"] / d["stream_cycles"], 4)
    (BENCH / "soc_mem.json").write_text(json.dumps(records, indent=1))
    print_table(records, ["path", "latency", "bytes", "cycles", "added_cycles", "stream_n",
                          "stream_cycles", "bytes_per_cycle", "peak_bytes_per_cycle",
                          "efficiency", "stream_ratio_vs_direct", "sim_cycles_per_s"],
                "DMA load HBM -> SRAM through the NoC vs direct (cycles: descriptor accepted "
                ".. completion; stream: first accepted .. last completion)")
    print(f"-> {BENCH / 'soc_mem.json'}")
    return records


if __name__ == "__main__":
    import sys
    bench(["default"], sys.argv[1] if len(sys.argv) > 1 else "verilator")
