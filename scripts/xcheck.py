"""Icarus X check: no signal of a block is X or Z at time 0 or after reset.

    python scripts/xcheck.py --config tiny [--blocks noc_fabric,...]

For each block, a generated testbench instantiates the block's Verilog
(build/verilog/<config>/<block>.v from ``make verilog``; ``make lint`` checks its own
copy in build/lint/), compiled as cocotb compiles it (``iverilog -g2012``), drives
every input to 0 from time 0 (``rst`` high), and takes three snapshots of *every* net
and register of the hierarchy (``$dumpvars``/``$dumpall`` into a VCD):

``t0``
    at 1 ns, before the first clock edge: combinational logic has settled from the
    initial values. A combinational ``always @*`` process that Icarus never runs (no
    variable in its sensitivity, e.g. ``always @* x[2] = 1'h0;``, Verilator's
    ALWNEVER) leaves its bits X here and for ever; under -g2012 so does one whose inputs
    do not change after time 0, until they do (docs/lint.md, class B).
``reset``
    after two clock cycles with ``rst`` high.
``run``
    after ``--cycles`` more cycles with ``rst`` low and the inputs still 0.

Any bit that is X or Z in a snapshot is a failure: the design has no X source (Amaranth
gives every register and memory an initial value, and ``rtl.lib.verilog.time0_fix``
makes Icarus start every ``always @*`` process at time 0; docs/lint.md tells the two
classes of X it removed). Exit status 1 if a block fails; the report lists the X
signals by hierarchical name.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from rtl.blocks import BLOCKS
from tb.runner import BUILD

SNAPSHOTS = ("t0", "reset", "run")
_PORT = re.compile(r"^\s*(input|output|inout)\s+(?:\[(\d+):(\d+)\]\s+)?(\\?\S+)\s*;", re.M)


def top_ports(text: str, top: str) -> list[tuple[str, str, int]]:
    """``(direction, name, width)`` of the ports of module ``top`` in ``text``."""
    m = re.search(rf"^module {re.escape(top)}\s*\(", text, re.M)
    if not m:
        raise ValueError(f"module {top} not found")
    end = text.index("\nendmodule", m.end())
    ports = []
    for d, hi, lo, name in _PORT.findall(text[m.end():end]):
        ports.append((d, name, abs(int(hi) - int(lo)) + 1 if hi else 1))
    if not ports:
        raise ValueError(f"module {top}: no `input`/`output` declarations (non-ANSI ports "
                         "as Amaranth writes them are expected)")
    return ports


def testbench(top: str, ports: list[tuple[str, str, int]], cycles: int, vcd: Path) -> str:
    """The Verilog testbench of :mod:`scripts.xcheck` for module ``top``."""
    decl, conn, init = [], [], []
    names = {n for _, n, _ in ports}
    for d, n, w in ports:
        rng = f"[{w - 1}:0] " if w > 1 else ""
        kind = "reg" if d == "input" else "wire"
        decl.append(f"  {kind} {rng}{n};")
        conn.append(f"    .{n}({n})")
        if d == "input" and n not in ("clk", "rst"):
            init.append(f"    {n} = 0;")
    if not {"clk", "rst"} <= names:
        clock = ["    #1;", '    $dumpvars(0, dut); $display("XCHECK-SNAP t0 %0t", $time);',
                 "    #10 $dumpall;", '    $display("XCHECK-SNAP reset %0t", $time);',
                 "    #10 $dumpall;", '    $display("XCHECK-SNAP run %0t", $time);']
    else:
        clock = ["    clk = 0; rst = 1;", "    #1;",
                 '    $dumpvars(0, dut); $display("XCHECK-SNAP t0 %0t", $time);',
                 "    repeat (2) begin #4 clk = 1; #5 clk = 0; end",
                 "    #1 $dumpall;", '    $display("XCHECK-SNAP reset %0t", $time);',
                 "    rst = 0;",
                 f"    repeat ({cycles}) begin #4 clk = 1; #5 clk = 0; end",
                 "    #1 $dumpall;", '    $display("XCHECK-SNAP run %0t", $time);']
    return "\n".join([
        "`timescale 1ns/1ps",
        "module xcheck_tb;",
        *decl,
        f"  {top} dut (",
        ",\n".join(conn),
        "  );",
        "  initial begin",
        *init,
        f'    $dumpfile("{vcd}");',
        *clock,
        "    $finish;",
        "  end",
        "endmodule",
        "",
    ])


def vcd_x(vcd: Path) -> dict[str, list[str]]:
    """``{snapshot: [hierarchical names with an X/Z bit]}`` from the VCD: values are
    tracked through the file and the snapshots are the ``$dumpvars``/``$dumpall``
    sections, in order."""
    names: dict[str, list[str]] = {}
    scope: list[str] = []
    val: dict[str, str] = {}
    out: dict[str, list[str]] = {"signals": ["0"]}
    snap = 0
    section = None
    with open(vcd) as f:
        for line in f:
            tok = line.split()
            if not tok:
                continue
            t = tok[0]
            if t == "$scope":
                scope.append(tok[2])
            elif t == "$upscope":
                scope.pop()
            elif t == "$var":
                names.setdefault(tok[3], []).append(".".join(scope[1:] + [tok[4]]))
            elif t in ("$dumpvars", "$dumpall"):
                section = t
            elif t == "$enddefinitions":
                out["signals"] = [str(sum(len(v) for v in names.values()))]
            elif t == "$end" and section:
                bad = sorted({n for i, v in val.items() if ("x" in v or "z" in v)
                              for n in names.get(i, [i])})
                out[SNAPSHOTS[min(snap, len(SNAPSHOTS) - 1)]] = bad
                snap += 1
                section = None
            elif t[0] in "bBrR":
                val[tok[1]] = tok[0][1:].lower()
            elif t[0] in "01xXzZ" and len(t) > 1:
                val[t[1:]] = t[0].lower()
    return out


#: cocotb's Icarus flow compiles with -g2012 (cocotb_tools.runner): the check does too
ICARUS_FLAGS = ("-g2012",)


def check_file(top: str, src: Path, work: Path, cycles: int = 8, transform=None) -> dict:
    """Run the check on module ``top`` of Verilog file ``src`` (scratch files in ``work``);
    ``transform(text)``, if given, rewrites the Verilog first.

    Returns ``{"block", "error", "x": {snapshot: [X/Z signal names]}, "signals", "seconds"}``.
    """
    t0 = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    tb, vcd, vvp = (work / f"{top}{ext}" for ext in ("_tb.v", ".vcd", ".vvp"))
    text = src.read_text()
    tb.write_text(testbench(top, top_ports(text, top), cycles, vcd))
    if transform is not None:
        src = work / f"{top}_transformed.v"
        src.write_text(transform(text))
    comp = subprocess.run(["iverilog", *ICARUS_FLAGS, "-o", str(vvp), "-s", "xcheck_tb",
                           str(tb), str(src)], capture_output=True, text=True)
    res = {"block": top, "error": "", "x": {}, "signals": 0}
    if comp.returncode:
        res["error"] = "iverilog: " + comp.stderr.strip()[-2000:]
    else:
        run = subprocess.run(["vvp", "-n", str(vvp)], capture_output=True, text=True)
        snaps = re.findall(r"XCHECK-SNAP (\w+)", run.stdout)
        if run.returncode or snaps != list(SNAPSHOTS):
            res["error"] = f"vvp exited {run.returncode}: {run.stdout[-1000:]}{run.stderr[-1000:]}"
        elif not vcd.exists():
            res["error"] = f"vvp wrote no {vcd}"
        else:
            x = vcd_x(vcd)
            res["signals"] = int(x.pop("signals")[0])
            res["x"] = x
        vcd.unlink(missing_ok=True)
    res["seconds"] = round(time.monotonic() - t0, 1)
    return res


def xcheck(config: str, blocks: list[str], cycles: int = 8, quiet: bool = False,
           vdir: Path | None = None) -> dict:
    """Run the check on ``blocks``; their Verilog must exist in ``vdir`` (default
    build/verilog/<config>). Returns ``{block: result}`` (:func:`check_file`)."""
    vdir = vdir or BUILD / "verilog" / config
    work = BUILD / "xcheck" / f"{config}-{os.getpid()}"     # private: runs may overlap
    results = {}
    for b in blocks:
        res = results[b] = check_file(b, vdir / f"{b}.v", work, cycles)
        if not quiet:
            counts = " ".join(f"{s}={len(res['x'].get(s, []))}" for s in SNAPSHOTS)
            print(f"xcheck {b:22s} {'ERROR' if res['error'] else counts:22s} "
                  f"of {res['signals']:6d} signals {res['seconds']:5.1f} s")
            if res["error"]:
                print("   " + res["error"].replace("\n", "\n   "))
            for s in SNAPSHOTS:
                for n in res["x"].get(s, [])[:10]:
                    print(f"   X at {s}: {n}")
    shutil.rmtree(work, ignore_errors=True)
    return results


def failed(results: dict) -> list[str]:
    """Blocks with an error or an X/Z bit in a snapshot."""
    return [b for b, r in results.items()
            if r["error"] or any(r["x"].get(s) for s in SNAPSHOTS)]


def summary(results: dict, bad: list[str]) -> str:
    return (f"xcheck: {len(results) - len(bad)}/{len(results)} blocks without any X/Z"
            + (f"; FAILING: {', '.join(bad)}" if bad else ""))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--blocks", default=",".join(BLOCKS))
    ap.add_argument("--cycles", type=int, default=8)
    ap.add_argument("--generate", action="store_true", help="write the Verilog first")
    args = ap.parse_args(argv)
    blocks = [b for b in args.blocks.split(",") if b]
    if args.generate:
        from scripts.gen_verilog import generate
        generate(args.config, blocks)
    results = xcheck(args.config, blocks, args.cycles)
    bad = failed(results)
    print(summary(results, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
