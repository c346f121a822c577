"""`make seeds` (and the second half of `make nightly`): every block under many seeds.

    python scripts/seeds.py [--seeds 100] [--sim verilator,icarus] [--preset tiny]
                            [--jobs 2] [--entries dma,noc] [--budget-min 480] [--fresh]

A unit of work is one tests/sim entry (the pytest function that runs a block's cocotb
module, e.g. ``test_dma_engine``) on one simulator with one seed, at the smoke tier (the
trial count per seed is small; the seeds are what vary). ``--jobs`` units run in
parallel, each as its own pytest process with its own summary file. Every finished unit
is appended to ``build/reports/seeds/state.jsonl``: a sweep stopped by ``--budget-min``,
Ctrl-C or a crash resumes where it was (same seeds, finished units skipped) unless
``--fresh``. The seeds are a fixed pseudo-random list drawn from ``--base`` (default
20261124), so two machines sweep the same ones. CI keeps its one fixed seed.

At the end (and after every unit) ``build/reports/seeds.md`` / ``seeds.json`` list per
entry and simulator the seeds run and passed, and every failure with the one ``make sim``
command that reproduces it. Exits non-zero if any unit failed.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from tb.common import discover
from tb.runner import BUILD, ROOT, SIMULATORS

OUT = BUILD / "reports" / "seeds"
EXCLUDED_FILES = {"tests/sim/test_hang_sim.py"}     # entries that expect failures


def seed_list(base: int, n: int) -> list[int]:
    """``n`` distinct seeds, the same for a given ``base`` (a prefix of a longer sweep)."""
    rng = random.Random(base)
    out: list[int] = []
    while len(out) < n:
        s = rng.randrange(1, 2**31)
        if s not in out:
            out.append(s)
    return out


def entries(patterns: list[str], nightly: bool) -> list[str]:
    """pytest node ids of the tests/sim entries that run a cocotb module, optionally
    narrowed to those containing one of ``patterns``."""
    ids = []
    for (path, func), modules in sorted(discover.sim_entries().items()):
        if not modules or path in EXCLUDED_FILES:
            continue
        if not nightly and _is_nightly(path, func):
            continue
        node = f"{path}::{func}"
        if not patterns or any(p in node for p in patterns):
            ids.append(node)
    return ids


def _is_nightly(path: str, func: str) -> bool:
    text = (ROOT / path).read_text()
    head = text[:text.index(f"def {func}(")].rsplit("\n\n", 1)[-1]
    return "mark.nightly" in head


def run_unit(node: str, sim: str, seed: int, preset: str, limit: float) -> dict:
    """One pytest process: ``node`` on ``sim`` with ``seed``; its summary rows."""
    tag = f"{node.rpartition('::')[2]}-{sim}-{seed}"
    summary = OUT / "runs" / f"{tag}.json"
    env = {**os.environ, "JALAPENO_SUMMARY": str(summary)}
    cmd = [sys.executable, "-m", "pytest", node, "-p", "no:cacheprovider", "-n", "0", "-q",
           "--sim", sim, "--preset", preset, "--seed", str(seed), "--tier", "smoke",
           "--wall-limit", str(limit), "--junitxml", str(OUT / "runs" / f"{tag}.xml")]
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    (OUT / "runs" / f"{tag}.log").write_text(p.stdout + p.stderr)
    rows = json.loads(summary.read_text()) if summary.exists() else []
    bad = [dict(test=r["test"], result=r["result"], reproduce=r.get("reproduce", ""))
           for r in rows if r["result"] not in ("PASS", "SKIP")]
    status = "pass" if p.returncode == 0 else "skipped" if p.returncode == 5 else "fail"
    if status == "fail" and not bad:
        bad = [dict(test=node, result="ERROR", reproduce=f"make sim SIM={sim} CONFIG={preset} "
                    f"TIER=smoke SEED={seed} TESTS={node.rpartition('::')[2]}")]
    return dict(entry=node, sim=sim, preset=preset, seed=seed, status=status, cocotb_tests=len(rows),
                failures=bad, wall_s=round(time.monotonic() - t0, 1),
                log=str((OUT / "runs" / f"{tag}.log").relative_to(ROOT)))


def load_state(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summarize(done: list[dict]) -> tuple[list[dict], str]:
    """Per entry x simulator: seeds run / passed and the failures; the markdown report."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for u in done:
        groups.setdefault((u["entry"], u["sim"]), []).append(u)
    recs = []
    for (entry, sim), us in sorted(groups.items()):
        ran = [u for u in us if u["status"] != "skipped"]
        recs.append(dict(entry=entry, sim=sim, seeds=len(ran),
                         passed=sum(u["status"] == "pass" for u in ran),
                         wall_s=round(sum(u["wall_s"] for u in ran), 1),
                         failures=[dict(seed=u["seed"], **f) for u in ran for f in u["failures"]]))
    lines = ["# Seed sweep", "", "| entry | sim | seeds | passed | wall s |", "|---|---|---|---|---|"]
    lines += [f"| {r['entry'].rpartition('::')[2]} | {r['sim']} | {r['seeds']} | {r['passed']} | "
              f"{r['wall_s']} |" for r in recs]
    fails = [(r, f) for r in recs for f in r["failures"]]
    lines += ["", f"## Failures ({len(fails)})", ""]
    lines += [f"- `{f['test']}` {r['sim']} seed {f['seed']} {f['result']}: `{f['reproduce']}`"
              for r, f in fails] or ["none"]
    return recs, "\n".join(lines) + "\n"


def write_report(done: list[dict]) -> tuple[list[dict], str]:
    recs, text = summarize(done)
    (BUILD / "reports" / "seeds.json").write_text(json.dumps(recs, indent=1))
    (BUILD / "reports" / "seeds.md").write_text(text)
    return recs, text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=100, help="seeds per entry and simulator")
    ap.add_argument("--base", type=int, default=20261124, help="draws the seed list")
    ap.add_argument("--sim", default=",".join(SIMULATORS))
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--entries", default="", help="comma-separated substrings of entry names")
    ap.add_argument("--nightly-entries", action="store_true", help="also the nightly-only entries")
    ap.add_argument("--budget-min", type=float, default=0, help="stop starting units after this")
    ap.add_argument("--wall-limit", type=float, default=900, help="per simulator run, seconds")
    ap.add_argument("--fresh", action="store_true", help="forget the state of earlier sweeps")
    a = ap.parse_args(argv)
    sims = [s for s in a.sim.split(",") if s]
    bad_sims = set(sims) - set(SIMULATORS)
    if bad_sims:
        raise SystemExit(f"seeds: unknown simulator(s) {sorted(bad_sims)}; use {SIMULATORS}")
    nodes = entries([p for p in a.entries.split(",") if p], a.nightly_entries)
    if not nodes:
        raise SystemExit(f"seeds: no tests/sim entry matches {a.entries!r}")
    (OUT / "runs").mkdir(parents=True, exist_ok=True)
    state = OUT / "state.jsonl"
    if a.fresh:
        state.unlink(missing_ok=True)
    done = [u for u in load_state(state) if u.get("preset") == a.preset]
    finished = {(u["entry"], u["sim"], u["seed"]) for u in done}
    todo = [(n, s, seed) for seed in seed_list(a.base, a.seeds) for n in nodes for s in sims
            if (n, s, seed) not in finished]
    total = len(nodes) * len(sims) * a.seeds
    print(f"seeds: {len(nodes)} entries x {len(sims)} simulators x {a.seeds} seeds = {total} "
          f"units; {total - len(todo)} done earlier, {len(todo)} to run, {a.jobs} at a time")
    t0 = time.monotonic()
    deadline = t0 + a.budget_min * 60 if a.budget_min else None
    failed = sum(u["status"] == "fail" for u in done)
    with ThreadPoolExecutor(max_workers=a.jobs) as pool, open(state, "a") as st:
        pending = {}
        it = iter(todo)

        def submit() -> bool:
            if deadline and time.monotonic() > deadline:
                return False
            unit = next(it, None)
            if unit is None:
                return False
            pending[pool.submit(run_unit, *unit, a.preset, a.wall_limit)] = unit
            return True

        for _ in range(a.jobs):
            submit()
        n = 0
        while pending:
            fut = next(as_completed(pending))
            del pending[fut]
            u = fut.result()
            st.write(json.dumps(u) + "\n")
            st.flush()
            done.append(u)
            n += 1
            failed += u["status"] == "fail"
            rate = (time.monotonic() - t0) / n
            print(f"[{total - len(todo) + n}/{total}] {u['entry'].rpartition('::')[2]} {u['sim']} "
                  f"seed {u['seed']}: {u['status'].upper()} ({u['wall_s']} s; {failed} failed; "
                  f"ETA {rate * (len(todo) - n) / 60:.0f} min)", flush=True)
            for f in u["failures"]:
                print(f"    {f['test']} {f['result']}: {f['reproduce']}", flush=True)
            write_report(done)
            submit()
    recs, text = write_report(done)
    left = total - len(done)
    print(text)
    print(f"seeds: report {BUILD / 'reports' / 'seeds.md'}"
          + (f"; {left} units left (budget reached): run again to resume" if left > 0 else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
