# amaranth: UnusedElaboratable=no
"""`make waves TEST=<cocotb test>`: run one test with FST dumping, write a GTKWave save file.

    python scripts/waves.py --test test_directed [--sim icarus] [--config tiny] [--seed 1]

The cocotb module holding TEST is found under tb/; the block it runs on is read from the
pytest entry in tests/sim/ that runs that module (or given with --block). The save file
groups the block's interface signals by port (from the component's signature), with
clk/rst on top, and points at the FST.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

from amaranth.hdl import Shape

from models.config import get_preset
from rtl.blocks import get_block
from tb.common import discover
from tb.runner import ROOT, run


def find_test(test: str) -> tuple[str, str]:
    """(dotted module under tb/, test name) for ``test`` or ``<module>::<test>``."""
    try:
        return discover.find_test(test)
    except discover.TestLookupError as e:
        raise SystemExit(f"waves: {e}") from None


def find_block(module: str) -> str:
    """The block that tests/sim/ runs ``module`` on."""
    pat = re.compile(r'sim_run\(\s*"(\w+)"')
    for path, func in discover.entries_running(module):
        src = (ROOT / path).read_text()
        body = src[src.index(f"def {func}("):]
        m = pat.search(body)
        if m:
            return m.group(1)
    raise SystemExit(f"waves: no tests/sim entry runs {module}; pass --block")


def gtkw(block: str, component, fst: Path, sim: str) -> str:
    """GTKWave save file: clk/rst, then one group per top-level port of the signature."""
    scope = block      # both simulators put the design under its module name
    groups: dict[str, list[tuple[str, int]]] = {}
    for path, member in component.signature.members.flatten():
        if not member.is_port:
            continue
        name = "__".join(str(p) for p in path)
        width = Shape.cast(member.shape).width
        groups.setdefault(str(path[0]), []).append((name, width))
    lines = [f'[dumpfile] "{fst}"', "[timestart] 0", "[sst_expanded] 1", "@28",
             f"{scope}.clk", f"{scope}.rst"]
    for group, sigs in groups.items():
        lines += ["@800200", f"-{group}"]
        # handshake first, then data
        for name, width in sorted(sigs, key=lambda s: (s[1] > 1, s[0])):
            lines.append("@28" if width == 1 else "@22")
            lines.append(f"{scope}.{name}" if width == 1 else f"{scope}.{name}[{width - 1}:0]")
        lines += ["@1000200", f"-{group}"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--test", required=True,
                    help="cocotb test function or pyuvm test class, optionally <module>::<test>")
    ap.add_argument("--sim", default="icarus", choices=["icarus", "verilator"])
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--block", default=None)
    args = ap.parse_args(argv)
    module, test = find_test(args.test)
    block = args.block or find_block(module)
    print(f"waves: {test} from {module} on {block} ({args.config}, {args.sim}, seed {args.seed})")
    res = run(block, args.config, args.sim, module, testcase=test, seed=args.seed,
              waves=True, tier="smoke")
    print(res.summary())
    if res.wave_file is None:
        print(f"waves: no FST written; see {res.log_file}", file=sys.stderr)
        return 1
    save = res.wave_file.with_suffix(".gtkw")
    component = get_block(block).factory(get_preset(args.config))
    save.write_text(gtkw(block, component, res.wave_file, args.sim))
    if shutil.which("fst2vcd"):      # proves the FST parses with GTKWave's own reader
        p = subprocess.run(["fst2vcd", "-f", str(res.wave_file)], capture_output=True, text=True)
        if p.returncode != 0 or "$enddefinitions" not in p.stdout:
            print(f"waves: GTKWave's fst2vcd cannot read {res.wave_file}: {p.stderr}", file=sys.stderr)
            return 1
    print(f"FST:      {res.wave_file}")
    print(f"GTKWave:  {save}")
    print(f"open with: gtkwave {save}")
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
