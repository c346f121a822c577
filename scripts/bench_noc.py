"""NoC bench: zero-load latency and accepted vs offered throughput, measured on the RTL.

For the meshes of the presets asked for (tiny 3x3, default 4x4; the 8x8 of the
jalapeno preset is added whenever the default preset is benched), sweeps the offered
load on the synthesizable traffic wrapper (4-flit packets, both VCs, a source queue per
VC) and writes build/bench/noc.json (records: preset, mesh, traffic, offered, accepted,
avg_latency, zero_load_latency, zero_load_model, bound, bound_4_over_k,
accepted_vs_bound, accepted_vs_4_over_k, packet_flits, queues, buffer_depth, tag, ...),
a table, and build/bench/noc_latency.png (latency vs accepted throughput).

* tiny 3x3: uniform and hotspot, the preset as it is.
* default 4x4: uniform, hotspot, transpose and neighbour with ``buffer_depth`` =
  ``BENCH_DEPTH`` (8; the preset has 4: see docs/noc.md, "Throughput"), plus ablation
  points at saturation (tag ``ablation``): one blocking source queue, 1/2/8-flit
  packets, and the preset's own buffer depth.
* jalapeno 8x8: uniform, with the preset's buffers (8) but a 32-bit payload: the
  256-bit payload makes the Verilator model ~4x slower, and no router decision depends
  on the payload (the 4x4 gives identical counters at 32 and 64 bits).

The bound of a pattern is :func:`models.noc.pattern_bound` (most loaded link or
ejection port under XY routing, every node injecting the same rate); for uniform
traffic it is the 4/k bisection bound. Accepted throughput is the network-wide average
of ejected flits per node per cycle, so beyond saturation a non-uniform pattern can
average above its bound (flows that avoid the bottleneck keep their rate); the table
therefore also gives the highest offered load the network still keeps up with.

    python scripts/bench.py --only noc [--presets tiny,default]
"""
from __future__ import annotations

import dataclasses
import json
import time

from models.config import get_preset
from scripts.benchlib import BENCH, print_table, run_records

LOADS = [0.02, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 1.0]
HOT_LOADS = [0.02, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 1.0]
TRANSPOSE_LOADS = [0.02, 0.1, 0.2, 0.3, 0.35, 0.4, 0.6, 1.0]
NEIGHBOUR_LOADS = [0.02, 0.3, 0.6, 0.8, 0.9, 1.0]
LOADS_8X8 = [0.02, 0.2, 0.3, 0.4, 0.45, 0.5, 0.7, 1.0]
WINDOW = {"tiny": (1000, 4000), "default": (1000, 4000), "jalapeno": (1000, 3000)}
BENCH_DEPTH = 8          # buffer_depth the 4x4 is measured with (recommended preset value)
KEEPS_UP = 0.97          # "the network keeps up": accepted >= 97% of offered


def sweep(pattern, loads, **opts):
    return [[pattern, x, opts] if opts else [pattern, x] for x in loads]


def runs(preset: str):
    """(config, points, note) per simulator build for one preset's mesh."""
    base = get_preset(preset)
    noc = base.noc
    if preset == "tiny":
        return [(base, sweep("uniform", LOADS) + sweep("hotspot", HOT_LOADS), "")]
    if preset == "jalapeno":
        narrow = dataclasses.replace(noc, data_bits=32, addr_bits=16, len_bits=4, id_bits=4)
        return [(dataclasses.replace(base, noc=narrow), sweep("uniform", LOADS_8X8),
                 f"payload {noc.data_bits} -> 32 bits (timing does not depend on it)")]
    deep = dataclasses.replace(base, noc=dataclasses.replace(noc, buffer_depth=BENCH_DEPTH))
    main = (sweep("uniform", LOADS) + sweep("hotspot", HOT_LOADS)
            + sweep("transpose", TRANSPOSE_LOADS) + sweep("neighbour", NEIGHBOUR_LOADS))
    abl = (sweep("uniform", [1.0], queues="one", tag="ablation")
           + [p for n in (1, 2, 8) for p in sweep("uniform", [1.0], length=n, tag="ablation")])
    out = [(deep, main + abl, f"buffer_depth {noc.buffer_depth} -> {BENCH_DEPTH}"
            if noc.buffer_depth != BENCH_DEPTH else "")]
    if noc.buffer_depth != BENCH_DEPTH:
        # neighbour at full load: one flow per link and VC mix, so it shows whether the
        # preset's buffers cover the credit round trip
        out.append((base, sweep("uniform", [1.0], tag="ablation")
                    + sweep("uniform", [1.0], queues="one", tag="ablation")
                    + sweep("neighbour", [1.0], tag="ablation"), "preset as is"))
    return out


def run_noc_sweep(cfg, points, *, sim: str = "verilator", seed: int = 1,
                  window=(1000, 4000)) -> list[dict]:
    from tb.noc.traffic import noc_traffic
    # -O0: the C++ compile dominates (the wide flits make the model slow at -O0, but a
    # 4x4 sweep still runs in minutes)
    noc = cfg.noc
    return run_records(f"bench-noc-{cfg.name}-{noc.cols}x{noc.rows}-d{noc.buffer_depth}-{sim}",
                       "noc_mesh", cfg, sim, "tb.noc.bench_noc",
                       {"JALAPENO_BENCH_POINTS": json.dumps(points),
                        "JALAPENO_BENCH_WINDOW": json.dumps(window)},
                       factory=noc_traffic, variant="traffic", seed=seed, verilator_opt="-O0")


def plot(records, path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench noc: matplotlib not installed, no plot")
        return False
    main = [r for r in records if not r["tag"]]
    fig, ax = plt.subplots(figsize=(8, 5))
    for key in sorted({(r["mesh"], r["traffic"]) for r in main}):
        rs = [r for r in main if (r["mesh"], r["traffic"]) == key]
        ax.plot([r["accepted"] for r in rs], [r["avg_latency"] for r in rs], "o-", ms=3,
                label=f"{key[0]} {key[1]} (d={rs[0]['buffer_depth']})")
    ax.set_ylim(0, min(250, ax.get_ylim()[1]))
    for mesh in sorted({r["mesh"] for r in main}):
        b = next(r["bound_4_over_k"] for r in main if r["mesh"] == mesh)
        if b <= 1:
            ax.axvline(b, ls=":", color="gray")
            ax.text(b, ax.get_ylim()[1] * 0.95, f" 4/k {mesh}", fontsize=8, color="gray")
    ax.set_xlabel("accepted throughput (flits / node / cycle)")
    ax.set_ylabel("average packet latency (cycles)")
    ax.set_title("jalapeno NoC: latency vs load (4-flit packets, XY, 2 VCs)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def summary(records) -> list[str]:
    lines = []
    for mesh in sorted({r["mesh"] for r in records}, key=lambda m: int(m.split("x")[0])):
        for traffic in ("uniform", "hotspot", "transpose", "neighbour"):
            rs = [r for r in records if (r["mesh"], r["traffic"], r["tag"]) == (mesh, traffic, "")]
            if not rs:
                continue
            sat = max(r["accepted"] for r in rs)
            keeps = max((r["offered"] for r in rs if r["accepted"] >= KEEPS_UP * r["offered"]),
                        default=0.0)
            lines.append(f"{mesh} {traffic} (buffer_depth {rs[0]['buffer_depth']}): saturation "
                         f"throughput {sat:.3f} flits/node/cycle = "
                         f"{sat / rs[0]['bound_4_over_k']:.1%}"
                         f" of 4/k, {sat / rs[0]['bound']:.1%} of its bound {rs[0]['bound']:.3f}; "
                         f"keeps up with offered loads up to {keeps:.2f}; zero-load latency "
                         f"{rs[0]['zero_load_latency']} (model {rs[0]['zero_load_model']:.2f})")
    return lines


def bench(presets, sim) -> list[dict]:
    meshes = list(presets) + (["jalapeno"] if "default" in presets and "jalapeno" not in presets
                              else [])
    records = []
    for preset in meshes:
        for cfg, points, note in runs(preset):
            t0 = time.monotonic()
            print(f"noc: {preset} {cfg.noc.cols}x{cfg.noc.rows} buffer_depth "
                  f"{cfg.noc.buffer_depth} on {sim}: {len(points)} points ...", flush=True)
            recs = run_noc_sweep(cfg, points, sim=sim, window=WINDOW.get(preset, (1000, 4000)))
            for r in recs:
                r["config_note"] = note
            records += recs
            print(f"noc: done in {time.monotonic() - t0:.0f} s", flush=True)
    (BENCH / "noc.json").write_text(json.dumps(records, indent=1))
    print_table(records, ["mesh", "traffic", "packet_flits", "queues", "buffer_depth", "tag",
                          "offered", "accepted", "avg_latency", "max_latency", "zero_load_latency",
                          "zero_load_model", "bound", "accepted_vs_bound", "accepted_vs_4_over_k",
                          "sim_cycles_per_s"],
                "NoC: accepted throughput and latency vs offered load (flits/node/cycle; "
                "latency = head offered .. tail ejected)")
    for line in summary(records):
        print(line)
    png = BENCH / "noc_latency.png"
    if plot(records, png):
        print(f"-> {png}")
    print(f"-> {BENCH / 'noc.json'}")
    return records
