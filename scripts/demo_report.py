"""The `make demo` report: figures of the GEMM, attention and decode runs on the SoC RTL.

Every cycle count and busy count is measured on the RTL (doorbell -> interrupt; the
perf counters of docs/registers.md and the HBM ports); bounds come from
``models.chip_perf`` (``stream_roofline``: the command stream's compute, HBM and NoC-port
bounds; ``port_flits``: flits through each tile's network interface, which the program
fixes, divided by the measured cycles).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from models.chip_perf import peaks, port_flits
from models.config import JalapenoConfig
from models.isa import Opcode
from models.tensor_cmd import Unit

__all__ = ["summarize", "summarize_program", "matmul_bound", "write_report", "plot_timeline"]


def matmul_bound(cfg: JalapenoConfig, cmds) -> int:
    """Cycles the busiest tile's array needs for the MATMULs alone (one activation row
    per cycle, at least R cycles per weight tile)."""
    per_tile = Counter()
    for c in cmds:
        if c.opcode == Opcode.TENSOR and c.tensor.unit == Unit.MATMUL:
            per_tile[c.tile] += max(c.tensor.count, cfg.systolic.rows)
    return max(per_tile.values(), default=0)


def summarize_program(cfg: JalapenoConfig, run, cmds, useful_macs: int) -> dict:
    """Figures of one RTL run (``GemmRun`` / ``AttentionRun`` with ``rtl``): cycles,
    array utilization, stream roofline, HBM bandwidth and per-tile ``units`` (busy
    shares from the perf counters, NoC-port load from the program's flits)."""
    T, cyc = cfg.soc.tiles, run.cycles
    cnt, rl, pk = run.rtl.counters, run.roofline, peaks(cfg)
    fin, fout = port_flits(cfg, cmds)
    hbm_bytes = cnt["BYTES_READ"] + cnt["BYTES_WRITTEN"]
    units = [{
        "tile": t,
        "array_busy": round(cnt[f"TILE[{t}].COMPUTE_BUSY"] / cyc, 3),
        "dma_load_busy": round(cnt[f"TILE[{t}].LOAD_BUSY"] / cyc, 3),
        "dma_store_busy": round(cnt[f"TILE[{t}].STORE_BUSY"] / cyc, 3),
        "tokens_waited": cnt[f"TILE[{t}].TOKENS_WAITED"],
        "noc_port_in": round(fin[t] / cyc, 3), "noc_port_out": round(fout[t] / cyc, 3),
    } for t in range(T)]
    return {
        "cycles": cyc, "commands": len(cmds),
        "array_util": round(useful_macs / (pk.macs_per_cycle * cyc), 4),
        "bound_cycles": rl.bound_cycles, "limiter": rl.limiter,
        "ratio_to_bound": round(rl.bound_cycles / cyc, 4),
        "compute_cycles": rl.compute_cycles, "hbm_cycles": rl.hbm_cycles,
        "noc_cycles": rl.noc_cycles,
        "hbm_bytes": hbm_bytes,
        "hbm_bw_util": round(hbm_bytes / (pk.hbm_bytes_per_cycle * cyc), 4),
        "hbm_port_busy": round(cnt["HBM_BUSY"] / (cfg.hbm.channels * cyc), 4),
        "units": units,
        "sim_cycles_per_s": run.sim_cycles_per_s,
    }


def summarize(cfg: JalapenoConfig, programs, checks, *, wall: float, sim: str) -> dict:
    """The report of one demo run. ``programs``: ``(key, title, kind, run)`` per program
    (kind ``"gemm"`` or ``"attention"``); each becomes ``report[key]`` with its title."""
    sa = cfg.systolic
    out = {"preset": cfg.name, "tiles": cfg.soc.tiles, "array": f"{sa.rows}x{sa.cols}",
           "hbm_channels": cfg.hbm.channels, "sim": sim, "wall_s": round(wall, 1),
           "programs": [key for key, *_ in programs]}
    for key, title, kind, run in programs:
        figs = {"gemm": _gemm_figures, "attention": _attention_figures,
                "decode": _decode_figures}[kind]
        out[key] = {"title": title, "kind": kind} | figs(cfg, run)
    return out | {"checks": checks}


def _gemm_figures(cfg: JalapenoConfig, run) -> dict:
    p = run.plan
    return summarize_program(cfg, run, run.commands, p.m * p.k * p.n) | {
        "M": p.m, "K": p.k, "N": p.n}


def _attention_figures(cfg: JalapenoConfig, run) -> dict:
    cmds = run.job.commands
    hp = run.heads[0].problem
    mb = matmul_bound(cfg, cmds)
    return summarize_program(cfg, run, cmds, run.roofline.macs) | {
        "heads": len(run.heads), "seq": hp.seq_q, "head_dim": hp.head_dim,
        "matmul_bound_cycles": mb, "cycles_over_matmul_bound": round(run.cycles / mb, 3)}


def _decode_figures(cfg: JalapenoConfig, run) -> dict:
    """A decode step: the program's figures plus kv_bytes (K/V bytes it loads) and the
    memory-bandwidth utilization ``mbu = kv_bytes / (cycles x HBM peak)``."""
    from models.compiler_decode import kv_bytes
    p, cmds = run.plan, run.plan.commands
    kvb, mb = kv_bytes(p), matmul_bound(cfg, cmds)
    return summarize_program(cfg, run, cmds, run.roofline.macs) | {
        "batch": p.batch, "context": [n - 1 for n in p.kv_len], "head_dim": p.d,
        "splits": len(p.splits), "kv_bytes": kvb,
        "mbu": round(kvb / (peaks(cfg).hbm_bytes_per_cycle * run.cycles), 4),
        "matmul_bound_cycles": mb, "cycles_over_matmul_bound": round(run.cycles / mb, 3)}


def _extra(prog: dict) -> list[str]:
    if prog["kind"] == "attention":
        return [f"- matmul bound (busiest tile, MATMULs only) {prog['matmul_bound_cycles']} "
                f"cycles: measured = {prog['cycles_over_matmul_bound']:.2f}x (the vector unit's "
                f"softmax commands, each paying the unit's latency beyond its rows, set "
                f"the pace; docs/performance.md)"]
    if prog["kind"] == "decode":
        return [f"- KV bytes read {prog['kv_bytes']} ({prog['splits']} splits over the "
                f"tiles): memory-bandwidth utilization **{prog['mbu']:.1%}**; matmul bound "
                f"{prog['matmul_bound_cycles']} cycles (measured = "
                f"{prog['cycles_over_matmul_bound']:.2f}x)"]
    return []


def _unit_table(prog: dict) -> list[str]:
    rows = ["| tile | array busy | DMA load busy | DMA store busy | NoC port in / out "
            "| token-wait cycles |", "|---|---|---|---|---|---|"]
    for t in prog["units"]:
        rows.append(f"| {t['tile']} | {t['array_busy']:.1%} | {t['dma_load_busy']:.1%} | "
                    f"{t['dma_store_busy']:.1%} | {t['noc_port_in']:.1%} / "
                    f"{t['noc_port_out']:.1%} | {t['tokens_waited']} |")
    return rows


def _program_text(title: str, prog: dict, extra: list[str]) -> list[str]:
    return [
        f"## {title}", "",
        f"- cycles (doorbell -> interrupt): **{prog['cycles']}** for {prog['commands']} "
        f"commands",
        f"- array utilization (useful MACs / (tiles x R x C x cycles)): "
        f"**{prog['array_util']:.1%}**",
        f"- roofline bound {prog['bound_cycles']:.0f} cycles, limited by "
        f"**{prog['limiter']}** (compute {prog['compute_cycles']:.0f}, HBM "
        f"{prog['hbm_cycles']:.0f}, NoC port {prog['noc_cycles']:.0f}); measured = "
        f"{1 / prog['ratio_to_bound']:.2f}x the bound",
        f"- HBM: {prog['hbm_bytes']} bytes moved, {prog['hbm_bw_util']:.1%} of peak "
        f"bandwidth; channel ports busy {prog['hbm_port_busy']:.1%}",
        *extra,
        f"- simulator: {prog['sim_cycles_per_s']} cycles/s while the host waited", "",
        *_unit_table(prog), "",
    ]


def write_report(r: dict, path: Path) -> str:
    lines = [
        f"# jalapeno demo: {r['preset']} preset", "",
        f"{r['tiles']} tiles of {r['array']}, {r['hbm_channels']} HBM channels; RTL on "
        f"{r['sim']} ({r['wall_s']} s wall for all programs, build included)", "",
    ]
    for key in r["programs"]:
        prog = r[key]
        lines += _program_text(prog["title"], prog, _extra(prog))
    lines += ["## Checks", "",
              *(f"- {'PASS' if c['ok'] else 'FAIL'}: {c['what']}"
                + (f" ({c['detail']})" if c["detail"] else "") for c in r["checks"]), ""]
    text = "\n".join(lines)
    path.write_text(text)
    return text


def _rates(cfg: JalapenoConfig, trace: list, start: int):
    """Per sample interval: x (cycles since the doorbell) and busy fractions."""
    T, pk = cfg.soc.tiles, peaks(cfg)
    xs, out = [], {"array (mean of tiles)": [], "DMA load (mean)": [],
                   "DMA store (mean)": [], "HBM bandwidth": []}
    for r0, r1 in zip(trace, trace[1:]):
        dt = r1["cycle"] - r0["cycle"]
        if dt <= 0:
            continue
        xs.append((r0["cycle"] + r1["cycle"]) / 2 - start)

        def d(k):
            return (r1[k] - r0[k]) % (1 << 32)
        out["array (mean of tiles)"].append(
            sum(d(f"TILE[{t}].COMPUTE_BUSY") for t in range(T)) / (T * dt))
        out["DMA load (mean)"].append(sum(d(f"TILE[{t}].LOAD_BUSY") for t in range(T)) / (T * dt))
        out["DMA store (mean)"].append(
            sum(d(f"TILE[{t}].STORE_BUSY") for t in range(T)) / (T * dt))
        out["HBM bandwidth"].append((d("BYTES_READ") + d("BYTES_WRITTEN"))
                                    / (pk.hbm_bytes_per_cycle * dt))
    return xs, out


def plot_timeline(cfg: JalapenoConfig, runs, path: Path) -> None:
    """One panel per program: unit activity (fraction of each sample interval)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(runs), 1, figsize=(10, 3.2 * len(runs)), squeeze=False)
    for ax, (title, run) in zip(axes[:, 0], runs):
        xs, series = _rates(cfg, run.rtl.trace, run.rtl.start)
        for name, ys in series.items():
            ax.plot(xs, ys, label=name, drawstyle="steps-mid")
        ax.axvline(run.cycles, color="k", lw=0.8, ls="--", label="interrupt")
        ax.set_ylim(0, 1.05)
        ax.set_xlim(left=0)
        ax.set_title(f"{title}: {run.cycles} cycles on {cfg.name}")
        ax.set_ylabel("busy fraction")
        ax.legend(loc="lower right", fontsize=7)
    axes[-1, 0].set_xlabel("cycles since the doorbell")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
