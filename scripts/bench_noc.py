"""NoC bench: zero-load latency and accepted vs offered throughput, measured on the RTL.

For each preset's mesh (tiny 3x3, default 4x4, jalapeno 8x8) under uniform-random and
hotspot traffic (4-flit packets, both VCs), sweeps the offered load, and writes
build/bench/noc.json (records: preset, mesh, traffic, offered, accepted, avg_latency,
zero_load_latency, zero_load_model, bound, bound_4_over_k, accepted_vs_4_over_k, ...),
a table, and build/bench/noc_latency.png (latency vs offered load).

    python scripts/bench.py --only noc [--presets default,jalapeno]
"""
from __future__ import annotations

import json
import time

from scripts.benchlib import BENCH, print_table, run_records

LOADS = [0.02, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
WINDOW = {"tiny": (1000, 4000), "default": (1000, 4000), "jalapeno": (1000, 3000)}


def run_noc_sweep(preset: str, points, *, sim: str = "verilator", seed: int = 1) -> list[dict]:
    from tb.noc.traffic import noc_traffic
    # -O0: at -Os one C++ file of the 4x4 wrapper compiled for > 20 min
    return run_records(f"bench-noc-{preset}-{sim}", "noc_mesh", preset, sim, "tb.noc.bench_noc",
                       {"JALAPENO_BENCH_POINTS": json.dumps(points),
                        "JALAPENO_BENCH_WINDOW": json.dumps(WINDOW.get(preset, (1000, 4000)))},
                       factory=noc_traffic, variant="traffic", seed=seed, verilator_opt="-O0")


def plot(records, path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench noc: matplotlib not installed, no plot")
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key in sorted({(r["mesh"], r["traffic"]) for r in records}):
        rs = [r for r in records if (r["mesh"], r["traffic"]) == key]
        ax.plot([r["accepted"] for r in rs], [r["avg_latency"] for r in rs], "o-",
                label=f"{key[0]} {key[1]}")
    for mesh in sorted({r["mesh"] for r in records}):
        b = next(r["bound_4_over_k"] for r in records if r["mesh"] == mesh)
        if b <= 1:
            ax.axvline(b, ls=":", color="gray")
            ax.text(b, ax.get_ylim()[1] * 0.95, f" 4/k {mesh}", fontsize=8, color="gray")
    ax.set_xlabel("accepted throughput (flits / node / cycle)")
    ax.set_ylabel("average packet latency (cycles)")
    ax.set_title("jalapeno NoC: latency vs load (4-flit packets, XY, 2 VCs)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def bench(presets, sim) -> list[dict]:
    records = []
    for preset in presets:
        t0 = time.monotonic()
        points = [[t, x] for t in ("uniform", "hotspot") for x in LOADS]
        print(f"noc: {preset} preset on {sim}: {len(points)} load points ...", flush=True)
        records += run_noc_sweep(preset, points, sim=sim)
        print(f"noc: {preset} done in {time.monotonic() - t0:.0f} s", flush=True)
    (BENCH / "noc.json").write_text(json.dumps(records, indent=1))
    print_table(records, ["mesh", "traffic", "offered", "accepted", "avg_latency", "max_latency",
                          "zero_load_latency", "zero_load_model", "bound", "bound_4_over_k",
                          "accepted_vs_4_over_k", "sim_cycles_per_s"],
                "NoC: accepted throughput and latency vs offered load (flits/node/cycle; "
                "latency = head offered .. tail ejected)")
    for mesh in sorted({r["mesh"] for r in records}):
        for traffic in ("uniform", "hotspot"):
            rs = [r for r in records if r["mesh"] == mesh and r["traffic"] == traffic]
            if rs:
                sat = max(r["accepted"] for r in rs)
                print(f"{mesh} {traffic}: saturation throughput {sat:.3f} flits/node/cycle = "
                      f"{sat / rs[0]['bound_4_over_k']:.1%} of 4/k, {sat / rs[0]['bound']:.1%} "
                      f"of its bound {rs[0]['bound']:.3f}")
    png = BENCH / "noc_latency.png"
    if plot(records, png):
        print(f"-> {png}")
    print(f"-> {BENCH / 'noc.json'}")
    return records
