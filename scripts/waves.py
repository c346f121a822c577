"""`make waves TEST=<cocotb test>`: run one cocotb test with FST dumping and a GTKWave file.

    python scripts/waves.py --test test_directed [--sim icarus] [--config tiny] [--seed 1]

The test runs through the same tests/sim entries as ``make sim TEST=...`` (so the DUT is
the one the regression builds: harnesses, fault-injected variants, shared routers,
custom configs), with waves on, at the smoke tier. Each run leaves an FST and, next to
it, a ``.gtkw`` save file written by the runner from the DUT's own signature
(``tb.common.gtkw``: ports grouped, struct fields and enum names decoded). The paths are
printed at the end; a run that wrote no FST fails.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

from tb.common import discover
from tb.runner import BUILD, ROOT

NO_TESTS_RAN = 5                     # pytest.ExitCode.NO_TESTS_COLLECTED


def fst_files(since: float) -> list:
    """FST files under build/sim written after ``since`` (one per run)."""
    return sorted(p for p in (BUILD / "sim").rglob("*.fst") if p.stat().st_mtime >= since)


def check_fst(fst) -> str | None:
    """An error message if GTKWave's own reader (fst2vcd) cannot read ``fst``."""
    if not shutil.which("fst2vcd"):
        return None
    p = subprocess.run(["fst2vcd", "-f", str(fst)], capture_output=True, text=True)
    if p.returncode != 0 or "$enddefinitions" not in p.stdout:
        return f"GTKWave's fst2vcd cannot read {fst}: {p.stderr.strip()}"
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--test", required=True,
                    help="cocotb test function or pyuvm test class, optionally <module>::<test>")
    ap.add_argument("--sim", default="icarus", choices=["icarus", "verilator"])
    ap.add_argument("--config", default="tiny", help="preset (entries of other presets are skipped)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    try:
        module, test = discover.find_test(a.test)
    except discover.TestLookupError as e:
        raise SystemExit(f"waves: {e}") from None
    entries = [f"{p}::{f}" for p, f in discover.entries_running(module)]
    if not entries:
        raise SystemExit(f"waves: no tests/sim entry runs {module} (bench modules run with make bench)")
    print(f"waves: {module}::{test} on {a.sim}, preset {a.config}, seed {a.seed}, via "
          + ", ".join(entries))
    start = time.time()
    cmd = [sys.executable, "-m", "pytest", "tests/sim", "-p", "no:cacheprovider", "-n", "0",
           "-q", "-rs", "--sim", a.sim, "--preset", a.config, "--seed", str(a.seed),
           "--tier", "smoke", "--waves", "--test", f"{module}::{test}"]
    # the regression's own summary (make testplan reads it) stays as it was
    env = {**os.environ, "JALAPENO_SUMMARY": str(BUILD / "reports" / "waves_summary.json")}
    rc = subprocess.run(cmd + ["-m", "sim and not nightly"], cwd=ROOT, env=env).returncode
    if rc == NO_TESTS_RAN:           # run only by a nightly entry on this simulator
        rc = subprocess.run(cmd + ["-m", "sim"], cwd=ROOT, env=env).returncode
    found = fst_files(start)
    if not found:
        print("waves: no FST was written (see the pytest output above)", file=sys.stderr)
        return rc or 1
    for fst in found:
        err = check_fst(fst)
        if err:
            print(f"waves: {err}", file=sys.stderr)
            return 1
        save = fst.with_suffix(".gtkw")
        print(f"FST:      {fst.relative_to(ROOT)}")
        print(f"GTKWave:  gtkwave {save.relative_to(ROOT)}" if save.exists() else
              f"waves: no save file next to {fst}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
