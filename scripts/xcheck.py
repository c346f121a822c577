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

Any bit that is X or Z in a snapshot is a failure (the design has no X sources:
Amaranth gives every register and memory an initial value), except in the blocks of
constraints/xcheck_known.txt, whose X all come from two known classes of the Verilog
emission: those are checked on the Verilog with the fix proposed for it
(:func:`proposed_fix`), where no X may be left. Exit status 1 if a block fails; the
report lists the X signals by hierarchical name. ``--classify`` counts a failing
block's X per class.
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
from tb.runner import BUILD, ROOT

SNAPSHOTS = ("t0", "reset", "run")
KNOWN = ROOT / "constraints" / "xcheck_known.txt"
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
        clock = ["    #1;", f'    $dumpvars(0, dut); $display("XCHECK-SNAP t0 %0t", $time);',
                 "    #10 $dumpall;", '    $display("XCHECK-SNAP reset %0t", $time);',
                 "    #10 $dumpall;", '    $display("XCHECK-SNAP run %0t", $time);']
    else:
        clock = ["    clk = 0; rst = 1;", "    #1;",
                 f'    $dumpvars(0, dut); $display("XCHECK-SNAP t0 %0t", $time);',
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
#: a synchronous memory read port's data register, as yosys writes it: no initial value
_READ_PORT_REG = re.compile(r"^(  reg (?:\[\d+:0\] )?_\d+_);$", re.M)
#: yosys's time-0 trigger of `always @*` processes: a reg read by every process,
#: initialised in its declaration, which is no event under Icarus -g2012
_START = re.compile(r"^(  )reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+) +=\s*0;$", re.M)


_CONN = re.compile(r"^  always @\*\n    ([^\n]*;)$", re.M)


def _start_fix(text: str) -> str:
    """Every ``always @*`` reads a trigger reg that gets an X -> 0 event at time 0: yosys's
    declaration-initialised trigger becomes an ``initial`` assignment, and the one-line
    ``always @* lhs = rhs;`` connections (a reg partly driven by a process) read it too."""
    out = []
    for i, mod in enumerate(text.split("\nmodule ")):
        m = _START.search(mod)
        if m:
            name = m[2]
            mod = _START.sub(lambda m: f"{m[1]}reg {m[2]} ;\n{m[1]}initial {m[2]}  = 1'h0;", mod)
        elif _CONN.search(mod):
            name = "\\$xcheck_start"
            head = mod.index(";\n") + 2          # after the port list
            mod = f"{mod[:head]}  reg {name} ;\n  initial {name}  = 1'h0;\n{mod[head:]}"
        else:
            out.append(mod)
            continue
        out.append(_CONN.sub(lambda c: f"  always @* begin\n    if ({name} ) begin end\n"
                                       f"    {c[1]}\n  end", mod))
    return "\nmodule ".join(out)


def proposed_fix(text: str) -> str:
    """The Verilog with the two changes docs/lint.md proposes for rtl/lib/verilog.py:
    :func:`_start_fix`, and read-port registers start at 0 (as in Amaranth's simulator)."""
    return _READ_PORT_REG.sub(r"\1 = 0;", _start_fix(text))


def check_file(top: str, src: Path, work: Path, cycles: int = 8, variant: str = "") -> dict:
    """Run the check on module ``top`` of Verilog file ``src`` (scratch files in ``work``).

    ``variant``: ``""`` compiles the file as cocotb does; ``"start"`` applies only the
    first change of :func:`proposed_fix`; ``"fixed"`` applies both.

    Returns ``{"block", "error", "x": {snapshot: [X/Z signal names]}, "signals", "seconds"}``.
    """
    t0 = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    tb, vcd, vvp = (work / f"{top}{ext}" for ext in ("_tb.v", ".vcd", ".vvp"))
    text = src.read_text()
    tb.write_text(testbench(top, top_ports(text, top), cycles, vcd))
    flags = list(ICARUS_FLAGS)
    if variant:
        src = work / f"{top}_{variant}.v"
        src.write_text(proposed_fix(text) if variant == "fixed" else _start_fix(text))
    comp = subprocess.run(["iverilog", *flags, "-o", str(vvp), "-s", "xcheck_tb",
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


def known_x(path: Path = KNOWN) -> dict[str, str]:
    """``{block: reason}`` from constraints/xcheck_known.txt (``block  reason`` lines)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, why = line.partition(" ")
            out[name] = why.strip()
    return out


def xcheck(config: str, blocks: list[str], cycles: int = 8, quiet: bool = False,
           vdir: Path | None = None) -> dict:
    """Run the check on ``blocks``; their Verilog must exist in ``vdir`` (default
    build/verilog/<config>). Returns ``{block: result}`` (:func:`check_file`; a block of
    constraints/xcheck_known.txt with X also gets ``fixed``: the X of :func:`proposed_fix`)."""
    vdir = vdir or BUILD / "verilog" / config
    known = known_x()
    results = {}
    work = BUILD / "xcheck" / f"{config}-{os.getpid()}"     # private: runs may overlap
    for b in blocks:
        res = results[b] = check_file(b, vdir / f"{b}.v", work, cycles)
        res["known"] = b in known
        if res["known"] and any(res["x"].get(s) for s in SNAPSHOTS):
            res["fixed"] = check_file(b, vdir / f"{b}.v", work, cycles, "fixed")["x"]
        if not quiet:
            counts = " ".join(f"{s}={len(res['x'].get(s, []))}" for s in SNAPSHOTS)
            note = ""
            if "fixed" in res:
                note = " known; with the proposed fix: " + " ".join(
                    f"{s}={len(res['fixed'].get(s, []))}" for s in SNAPSHOTS)
            print(f"xcheck {b:22s} {'ERROR' if res['error'] else counts:22s} "
                  f"of {res['signals']:6d} signals {res['seconds']:5.1f} s{note}")
            if res["error"]:
                print("   " + res["error"].replace("\n", "\n   "))
            shown = res.get("fixed", res["x"])
            for s in SNAPSHOTS:
                for n in shown.get(s, [])[:10]:
                    print(f"   X at {s}: {n}")
    shutil.rmtree(work, ignore_errors=True)
    return results


def classify(src: Path, top: str, work: Path, cycles: int = 8) -> dict:
    """X/Z counts per snapshot as the tests compile the block (``as_tested``), with the
    time-0 trigger fixed (``start``) and with both changes of :func:`proposed_fix`
    (``fixed``); ``left`` lists what the fix does not explain."""
    out = {}
    for v in ("", "start", "fixed"):
        r = check_file(top, src, work, cycles, v)
        out[v or "as_tested"] = {s: len(r["x"].get(s, [])) for s in SNAPSHOTS}
        if v == "fixed":
            out["left"] = sorted(set(sum((r["x"].get(s, []) for s in SNAPSHOTS), [])))[:20]
    return out


def failed(results: dict) -> list[str]:
    """Blocks that fail: an error, an X/Z bit as tested (blocks not in
    constraints/xcheck_known.txt) or left by the proposed fix (blocks in it)."""
    return [b for b, r in results.items()
            if r["error"] or any(r.get("fixed", {} if r["known"] else r["x"]).get(s)
                                 for s in SNAPSHOTS)]


def summary(results: dict, bad: list[str]) -> str:
    clean = [b for b, r in results.items() if not r["error"] and not any(r["x"].values())]
    stale = [b for b in clean if results[b]["known"]]
    return (f"xcheck: {len(results) - len(bad)}/{len(results)} blocks pass "
            f"({len(clean)} without any X as tested, {len(results) - len(clean) - len(bad)} "
            "with known X that the proposed fix removes)"
            + (f"; FAILING: {', '.join(bad)}" if bad else "")
            + (f"; no X any more, delete from {KNOWN.name}: {', '.join(stale)}" if stale else ""))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--blocks", default=",".join(BLOCKS))
    ap.add_argument("--cycles", type=int, default=8)
    ap.add_argument("--generate", action="store_true", help="write the Verilog first")
    ap.add_argument("--classify", action="store_true",
                    help="for failing blocks, count the X per known cause (docs/lint.md)")
    args = ap.parse_args(argv)
    blocks = [b for b in args.blocks.split(",") if b]
    if args.generate:
        from scripts.gen_verilog import generate
        generate(args.config, blocks)
    results = xcheck(args.config, blocks, args.cycles)
    bad = failed(results)
    if args.classify:
        for b in bad:
            c = classify(BUILD / "verilog" / args.config / f"{b}.v", b,
                         BUILD / "xcheck" / f"{args.config}-{os.getpid()}", args.cycles)
            print(f"classify {b}: " + "; ".join(f"{k} {v}" for k, v in c.items() if k != "left"))
            for n in c["left"]:
                print(f"   left: {n}")
    print(summary(results, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
