"""``make coverage``: Verilator line + toggle coverage and merged functional coverage.

For each block (``--blocks``, default every block with a tests/sim entry that builds it
unchanged, i.e. without a test-only ``factory``), for each of ``--seeds`` seeds:

1. run those pytest entries on Verilator, ``--preset`` (tiny), ``--coverage``, one at a
   time (``-n 0``): each run leaves ``coverage-<module>-<seed>.dat`` in its run folder
   of the ``...-cov`` build, and the pyuvm tests their ``coverage-<Test>.yml``, copied
   to ``build/coverage/func/`` per seed (the next run overwrites them);
2. merge the block's coverage.dat files (tb.common.coverage), map holes to Amaranth
   source lines, merge the functional YAML of these runs and of the latest Icarus and
   Verilator runs of the same block and preset found under build/sim/;
3. write build/reports/coverage.json and coverage.md and print the table.

``--report`` skips step 1 and merges what is there. Usage::

    python scripts/coverage.py [--blocks a,b] [--seeds N] [--preset tiny] [--tier full]
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tb.common.coverage import (SourceMap, functional_summary, merge,  # noqa: E402
                                merge_functional, read_dat, read_functional, summarize)

BUILD = ROOT / "build"
SIM_DIR = BUILD / "sim"
FUNC_DIR = BUILD / "coverage" / "func"
REPORTS = BUILD / "reports"
SEED0 = 20261124
MD_HOLES = 60          # hole groups per block in coverage.md (coverage.json has all)


# ----------------------------------------------------------------------------- entries
def block_entries(block: str) -> list[tuple[str, str]]:
    """``(file, function)`` of the non-nightly tests/sim entries that simulate ``block``
    as rtl.blocks builds it (no ``factory=`` variant)."""
    out = []
    for path in sorted((ROOT / "tests" / "sim").glob("test_*.py")):
        tree = ast.parse(path.read_text())
        for fn in tree.body:
            if not isinstance(fn, ast.FunctionDef) or _nightly(fn):
                continue
            for call in ast.walk(fn):
                if (isinstance(call, ast.Call) and getattr(call.func, "id", "") == "sim_run"
                        and call.args and isinstance(call.args[0], ast.Constant)
                        and call.args[0].value == block
                        and not any(k.arg in ("factory", "variant") for k in call.keywords)):
                    out.append((path.relative_to(ROOT).as_posix(), fn.name))
                    break
    return out


def _nightly(fn: ast.FunctionDef) -> bool:
    return any("nightly" in ast.unparse(d) for d in fn.decorator_list)


def k_expression(funcs: list[str], every: list[str]) -> str:
    """pytest ``-k`` selecting exactly ``funcs`` among ``every`` function name."""
    parts = []
    for f in funcs:
        longer = sorted({g for g in every if g != f and f in g})
        parts.append("(" + " and ".join([f] + [f"not {g}" for g in longer]) + ")")
    return " or ".join(parts)


def all_entry_names() -> list[str]:
    names = []
    for path in (ROOT / "tests" / "sim").glob("test_*.py"):
        names += [n.name for n in ast.parse(path.read_text()).body
                  if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    return names


def default_blocks() -> list[str]:
    from rtl.blocks import BLOCKS
    return [b for b in BLOCKS if block_entries(b)]


# ----------------------------------------------------------------------------- running
def cov_dirs(block: str, preset: str) -> list[Path]:
    """The block's coverage build folders (a custom config adds a hash suffix)."""
    return sorted(d for d in SIM_DIR.glob(f"{block}-{preset}-verilator-*cov*") if d.is_dir())


def run_block(block: str, preset: str, seeds: list[int], tier: str, every: list[str],
              log: Path) -> list[dict]:
    """Run the block's entries once per seed; one row per pytest invocation."""
    entries = block_entries(block)
    expr = k_expression([f for _, f in entries], every)
    files = sorted({f for f, _ in entries})
    for d in cov_dirs(block, preset):          # stale counts of an older Verilog
        for f in d.glob("*/coverage-*.dat"):
            f.unlink()
    shutil.rmtree(FUNC_DIR / block, ignore_errors=True)
    rows = []
    for i, seed in enumerate(seeds, 1):
        cmd = [sys.executable, "-m", "pytest", *files, "-m", "not nightly", "-n", "0", "-q",
               "-p", "no:cacheprovider", "--sim", "verilator", "--preset", preset,
               "--coverage", "--seed", str(seed), "--tier", tier, "-k", expr]
        print(f"  seed {seed} ({i}/{len(seeds)}): {len(entries)} entries "
              f"({', '.join(f for _, f in entries)}) ...", flush=True)
        t0 = time.monotonic()
        with open(log, "a") as out:
            out.write(f"\n$ {' '.join(cmd)}\n")
            out.flush()
            rc = subprocess.call(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})
        wall = time.monotonic() - t0
        print(f"    {'passed' if rc == 0 else f'FAILED (rc {rc}, see {log})'} in {wall:.0f} s",
              flush=True)
        rows.append(dict(block=block, seed=seed, rc=rc, wall_s=round(wall, 1)))
        _archive_functional(block, preset, seed)
    return rows


def _archive_functional(block: str, preset: str, seed: int) -> None:
    for d in cov_dirs(block, preset):
        for y in d.glob("*/coverage-*.yml"):
            dst = FUNC_DIR / block / d.name / y.parent.name / f"seed{seed}" / y.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(y, dst)


# ----------------------------------------------------------------------------- merging
def source_map(block: str, build_dir: Path, plain: str) -> SourceMap | None:
    """The build's Verilog re-emitted with src attributes (None if it does not match)."""
    import rtl.lib.verilog as rv
    from models.config import JalapenoConfig, get_preset
    from rtl.blocks import get_block
    cfg_file = build_dir / "config.json"
    cfg = (JalapenoConfig.from_json(cfg_file.read_text()) if cfg_file.exists()
           else get_preset(build_dir.name.split("-")[1]))
    original = rv.verilog.convert

    def with_src(*a, **k):
        return original(*a, **{**k, "emit_src": True})
    try:
        with mock.patch.object(rv.verilog, "convert", with_src):
            text = rv.convert(get_block(block).factory(cfg), block)
        return SourceMap(text, plain, ROOT)
    except Exception as e:        # report Verilog lines rather than fail the report
        print(f"  {block}: no source mapping ({type(e).__name__}: {e})")
        return None


def code_record(block: str, build_dir: Path) -> dict | None:
    """Merged line/toggle coverage of one coverage build folder."""
    vfile = build_dir / f"{block}.v"
    dats = sorted(f for f in build_dir.glob("*/coverage-*.dat")
                  if vfile.exists() and f.stat().st_mtime >= vfile.stat().st_mtime)
    if not dats:
        return None
    plain = vfile.read_text()
    cov = summarize(merge(read_dat(f) for f in dats), plain, source_map(block, build_dir, plain))
    return dict(build=build_dir.name, line=cov.line, toggle=cov.toggle,
                toggle_all=cov.toggle_all,
                counts=dict(line=[cov.line_hit, cov.line_total],
                            toggle=[cov.toggle_hit, cov.toggle_total],
                            toggle_all=[cov.toggle_all_hit, cov.toggle_all_total],
                            excluded_time0=cov.excluded),
                mapped_to_python=cov.mapped, line_holes=cov.line_holes,
                toggle_holes=cov.toggle_holes,
                dat_files=[f.relative_to(ROOT).as_posix() for f in dats])


def functional_files(block: str, preset: str) -> list[Path]:
    """This block's archived coverage-run YAML plus the latest YAML of its other builds
    (Icarus and Verilator, same preset; test-only variants excluded)."""
    files = sorted((FUNC_DIR / block).rglob("coverage-*.yml"))
    for d in sorted(SIM_DIR.glob(f"{block}-{preset}-*")):
        if d.is_dir() and "cov" not in d.name.split("-")[3:]:
            files += sorted(d.glob("*/coverage-*.yml"))
    return files


def functional_record(block: str, preset: str) -> dict | None:
    files = functional_files(block, preset)
    if not files:
        return None
    s = functional_summary(merge_functional(read_functional(f) for f in files))
    s["files"] = [f.relative_to(ROOT).as_posix() for f in files]
    return s


def block_record(block: str, preset: str, runs: list[dict]) -> dict:
    codes = [c for c in (code_record(block, d) for d in cov_dirs(block, preset)) if c]
    code = codes[0] if codes else {}
    func = functional_record(block, preset)
    return dict(block=block, preset=preset, line=code.get("line"), toggle=code.get("toggle"),
                functional=func["fraction"] if func else None,
                holes=dict(line=code.get("line_holes", []),
                           toggle=code.get("toggle_holes", []),
                           functional=func["missed"] if func else {}),
                runs=dict(pytest=runs, dat_files=code.get("dat_files", []),
                          functional_files=func["files"] if func else []),
                detail=dict(build=code.get("build"), toggle_all=code.get("toggle_all"),
                            counts=code.get("counts"),
                            mapped_to_python=code.get("mapped_to_python"),
                            error_bins=func["error_crosses"] if func else {},
                            functional_bins=[func["hit"], func["total"]] if func else None,
                            other_builds=[c["build"] for c in codes[1:]]))


# ----------------------------------------------------------------------------- reports
def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def table(records: list[dict]) -> list[str]:
    rows = [("block", "line", "toggle", "functional", "line holes", "runs")]
    for r in records:
        d = r["detail"]["counts"] or {}
        rows.append((r["block"], _pct(r["line"]) + (f" ({d['line'][0]}/{d['line'][1]})" if d else ""),
                     _pct(r["toggle"]), _pct(r["functional"]), str(len(r["holes"]["line"])),
                     str(len(r["runs"]["dat_files"]))))
    w = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [" | ".join(c.ljust(w[i]) for i, c in enumerate(row)) for row in rows]


def markdown(records: list[dict], command: str, wall_s: float) -> str:
    out = ["# Coverage report", "", f"`{command}` ({wall_s:.0f} s wall). Line = Verilator "
           "line + branch points (time-0 trigger arms excluded), toggle = named signals' "
           "bit transitions, functional = cocotb-coverage bins hit in any run.", "",
           "| block | line | toggle | functional | line holes | coverage.dat |",
           "|---|---|---|---|---|---|"]
    for r in records:
        c = r["detail"]["counts"] or {}
        out.append(f"| {r['block']} | {_pct(r['line'])}"
                   + (f" ({c['line'][0]}/{c['line'][1]})" if c else "")
                   + f" | {_pct(r['toggle'])} | {_pct(r['functional'])} | "
                   f"{len(r['holes']['line'])} | {len(r['runs']['dat_files'])} |")
    for r in records:
        out += ["", f"## {r['block']}", ""]
        if not r["detail"]["mapped_to_python"] and r["holes"]["line"]:
            out.append("(holes as Verilog lines: the source mapping failed)")
        holes = r["holes"]["line"]
        if len(holes) > MD_HOLES:
            out.append(f"({len(holes)} hole groups, the first {MD_HOLES} here; all in coverage.json)")
        for h in holes[:MD_HOLES]:
            out.append(f"- `{h['source']}`: {h['points']} point(s) "
                       f"[{', '.join(h['kinds'])}] Verilog {h['verilog_lines']} "
                       f"(`{h['text']}`)")
        tog = r["holes"]["toggle"]
        if tog:
            out.append(f"- toggle: {len(tog)} signals with untoggled bits; most: "
                       + ", ".join(f"`{t['module']}.{t['signal']}` {t['missed']}/{t['points']}"
                                   for t in tog[:8]))
        for item, bins in r["holes"]["functional"].items():
            out.append(f"- functional `{item}`: missed {', '.join(map(str, bins[:10]))}")
        for item, e in r["detail"]["error_bins"].items():
            out.append(f"- error bins `{item}`: least hit {e['min_hits']} (`{e['bin']}`)")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--blocks", default="", help="comma-separated (default: every block "
                    "with an unmodified tests/sim entry)")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--seed0", type=int, default=SEED0, help="first seed (then +1, +2, ...)")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--tier", default="full", choices=["smoke", "full", "nightly"])
    ap.add_argument("--report", action="store_true", help="only merge what is there")
    ap.add_argument("--out", type=Path, default=REPORTS, help="folder of coverage.{json,md}")
    a = ap.parse_args(argv)
    blocks = [b for b in a.blocks.split(",") if b] or default_blocks()
    seeds = [a.seed0 + i for i in range(a.seeds)]
    every = all_entry_names()
    a.out.mkdir(parents=True, exist_ok=True)
    log = a.out / "coverage-runs.log"
    t0 = time.monotonic()
    records = []
    for i, block in enumerate(blocks, 1):
        print(f"[{i}/{len(blocks)}] {block} ({time.monotonic() - t0:.0f} s)", flush=True)
        runs = [] if a.report else run_block(block, a.preset, seeds, a.tier, every, log)
        records.append(block_record(block, a.preset, runs))
    wall = time.monotonic() - t0
    command = "make coverage" + (f" BLOCKS={a.blocks}" if a.blocks else "") + \
        (f" SEEDS={a.seeds}" if a.seeds != 2 else "") + (" (report only)" if a.report else "")
    (a.out / "coverage.json").write_text(json.dumps(records, indent=1, default=str))
    (a.out / "coverage.md").write_text(markdown(records, command, wall))
    print("\n".join(table(records)))
    print(f"{wall:.0f} s; {a.out / 'coverage.json'}, {a.out / 'coverage.md'}")
    failed = [r for rec in records for r in rec["runs"]["pytest"] if r["rc"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
