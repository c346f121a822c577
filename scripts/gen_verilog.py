"""Write the Verilog of every top-level block, plus SDC timing constraints.

    python scripts/gen_verilog.py --config default [--blocks systolic_array,...] [--out DIR]
        [--set systolic.rows=128 --set systolic.cols=128 --set name=big]

Output: build/verilog/<config>/<block>.v, <block>.sdc, and manifest.json, rewritten
after every block (so an interrupted run still says what it finished): per block
``block, file, modules, bytes, lines, emit_seconds`` (wall clock; ``seconds`` is the same
figure, kept for older readers), ``cpu_seconds`` (CPU time of this process and of yosys:
about the wall time on an idle machine) and ``rss_mb`` (the process's peak so far), and the run's
``peak_rss_mb``. One line of progress per block. Shared modules (rtl.lib.shared) are
elaborated once per run, whichever block reaches them first. docs/verilog.md.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import gc
import json
import os
import resource
import sys
import time
from pathlib import Path

from models.config import JalapenoConfig, get_preset
from rtl.blocks import BLOCKS, get_block
from rtl.lib.verilog import convert
from tb.runner import BUILD

SDC = """# Timing constraints for {block} ({config} preset), written by scripts/gen_verilog.py.
# Amaranth's sync domain: one clock `clk`, synchronous active-high reset `rst`.
create_clock -name clk -period {period_ns:.3f} [get_ports clk]
set_input_delay  -clock clk {io_ns:.3f} [remove_from_collection [all_inputs] [get_ports clk]]
set_output_delay -clock clk {io_ns:.3f} [all_outputs]
"""


def peak_rss_mb() -> float:
    """Peak resident set of this process or of its largest child (yosys), in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, kids) / 1024, 1)


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (yosys runs as one)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def count_modules(text: str) -> int:
    """Modules in a Verilog text (shared ones and Amaranth's per-instance ones)."""
    return text.count("\nmodule ") + text.startswith("module ")


def with_settings(cfg: JalapenoConfig, settings: list[str]) -> JalapenoConfig:
    """``cfg`` with ``section.field=value`` (or ``field=value``) settings applied; values
    are Python literals (``128``, ``False``, ``'x'``) or bare words (a new ``name``)."""
    for s in settings:
        path, _, text = s.partition("=")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        parts = path.split(".")
        if len(parts) == 1:
            cfg = dataclasses.replace(cfg, **{parts[0]: value})
        elif len(parts) == 2:
            section = dataclasses.replace(getattr(cfg, parts[0]), **{parts[1]: value})
            cfg = dataclasses.replace(cfg, **{parts[0]: section})
        else:
            raise ValueError(f"--set {s!r}: expected section.field=value")
    return cfg


def generate(config: str | JalapenoConfig, blocks: list[str],
             out_root: Path = BUILD / "verilog", *, out_dir: Path | None = None,
             quiet: bool = False) -> list[dict]:
    """Emit ``blocks`` of ``config`` (a preset name or a config) into ``out_dir``
    (default ``out_root/<config name>``); returns the manifest's block records."""
    cfg = get_preset(config) if isinstance(config, str) else config
    for name in blocks:
        get_block(name)                      # unknown names fail before any work
    out = Path(out_dir) if out_dir is not None else Path(out_root) / cfg.name
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.json"
    records: list[dict] = []
    cache: dict = {}                         # shared modules, across blocks
    t_run = time.monotonic()
    period = 1000.0 / cfg.clock_mhz
    for k, name in enumerate(blocks, 1):
        if not quiet:
            print(f"[{k}/{len(blocks)}] {name} ...", flush=True)
        t0, c0 = time.monotonic(), cpu_seconds()
        path = out / f"{name}.v"
        block = get_block(name)
        key = {} if block.shared_key is None else {"key": block.shared_key(cfg)}
        text = convert(block.factory(cfg), name, cache=cache, **key)
        if not (path.exists() and path.read_text() == text):   # keep the time stamp
            path.write_text(text)
        dt = time.monotonic() - t0
        (out / f"{name}.sdc").write_text(SDC.format(block=name, config=cfg.name,
                                                     period_ns=period, io_ns=0.2 * period))
        rec = {"block": name, "config": cfg.name, "file": str(path),
               "modules": count_modules(text), "bytes": len(text.encode()),
               "lines": text.count("\n"), "emit_seconds": round(dt, 2),
               "seconds": round(dt, 2), "cpu_seconds": round(cpu_seconds() - c0, 2),
               "rss_mb": peak_rss_mb()}
        del text
        gc.collect()
        records.append(rec)
        manifest.write_text(json.dumps({
            "config": cfg.to_dict(), "blocks": records, "peak_rss_mb": peak_rss_mb(),
            "total_seconds": round(time.monotonic() - t_run, 2),
            "complete": k == len(blocks)}, indent=1))
        if not quiet:
            print(f"[{k}/{len(blocks)}] {name:20s} {rec['bytes'] / 1e6:8.2f} MB "
                  f"{rec['modules']:5d} modules {dt:7.1f} s  peak {rec['rss_mb']:7.0f} MB"
                  f"  -> {path}", flush=True)
    if not quiet:
        print(f"{len(blocks)} blocks in {time.monotonic() - t_run:.1f} s, peak "
              f"{peak_rss_mb():.0f} MB; manifest {manifest}")
    return records


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="default", help="preset name")
    ap.add_argument("--blocks", default="", help="comma-separated block names (default: all: "
                    + ", ".join(BLOCKS) + ")")
    ap.add_argument("--out", default=None, help="output folder (default build/verilog/<config>)")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                    help="change one config field (ad-hoc scales: systolic.rows=128); "
                    "also set name=<new> so that the output does not overwrite the preset's")
    args = ap.parse_args(argv)
    blocks = [b for b in args.blocks.replace(" ", ",").split(",") if b] or list(BLOCKS)
    try:
        generate(with_settings(get_preset(args.config), args.set), blocks, out_dir=args.out)
    except (KeyError, ValueError, TypeError) as e:
        print(f"gen_verilog: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
