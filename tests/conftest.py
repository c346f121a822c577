"""pytest options and the regression summary for simulation runs.

Options (the Makefile maps SIM, SEED, WAVES and TIER onto them):

--sim {icarus,verilator,all}   simulators to run (default: all)
--seed N                       fixed random seed (default: a fresh seed per run, logged)
--waves                        dump FST waveforms into each run's build folder
--tier {smoke,full,nightly}    number of random trials inside each cocotb test

Icarus budget: Icarus simulates the 16x16 and larger presets 10-30x slower than Verilator
(it is event-driven over every PE), so on presets other than ``tiny`` it runs one tier
lower (full -> smoke, nightly -> full). Every test still runs on both simulators; the
full random-trial counts of those presets run on Verilator.

Every simulator run appends its per-test rows to build/reports/sim_results.jsonl (works
under pytest-xdist); the controller prints them as a table at the end and writes
build/reports/sim_summary.json.
"""
from __future__ import annotations

import json
import os

import pytest

from tb.runner import BUILD, SIMULATORS, run

REPORTS = BUILD / "reports"
ICARUS_LARGE_PRESET_TIER = {"smoke": "smoke", "full": "smoke", "nightly": "full"}
RESULTS = REPORTS / "sim_results.jsonl"


def pytest_addoption(parser):
    g = parser.getgroup("jalapeno")
    g.addoption("--sim", default=os.environ.get("SIM", "all"),
                choices=["all", *SIMULATORS], help="simulator(s) to run")
    g.addoption("--seed", type=int, default=None, help="random seed for every simulation")
    g.addoption("--waves", action="store_true", help="dump FST waveforms")
    g.addoption("--tier", default="full", choices=["smoke", "full", "nightly"],
                help="random-trial count inside cocotb tests")


def pytest_generate_tests(metafunc):
    if "sim" in metafunc.fixturenames:
        choice = metafunc.config.getoption("--sim")
        sims = SIMULATORS if choice == "all" else (choice,)
        metafunc.parametrize("sim", sims)


def _is_controller(config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_sessionstart(session):
    if _is_controller(session.config):
        REPORTS.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text("")


@pytest.fixture
def sim_run(request):
    """``sim_run(block, preset, sim, module, **kw)``: run, record, assert it passed."""
    opts = request.config

    def _run(block, preset, sim, test_module, **kw):
        kw.setdefault("seed", opts.getoption("--seed"))
        kw.setdefault("waves", opts.getoption("--waves"))
        tier = opts.getoption("--tier")
        if sim == "icarus" and preset != "tiny":
            tier = ICARUS_LARGE_PRESET_TIER[tier]
        kw.setdefault("tier", tier)
        kw.setdefault("verilator_opt", "-O0")     # build time dominates the regression
        res = run(block, preset, sim, test_module, **kw)
        rows = [dict(test=f"{block}{'_' + kw['variant'] if kw.get('variant') else ''}::{c.name}",
                     sim=sim, preset=res.preset, seed=res.seed, tier=kw["tier"],
                     result="PASS" if c.passed else "FAIL", cycles=c.cycles,
                     wall_s=round(c.wall_s, 2)) for c in res.cases]
        if res.error:
            rows.append(dict(test=f"{block}::<run>", sim=sim, preset=res.preset, seed=res.seed,
                             tier=kw["tier"],
                             result="ERROR", cycles=0, wall_s=round(res.wall_s, 2)))
        REPORTS.mkdir(parents=True, exist_ok=True)
        with open(RESULTS, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        print(res.summary())
        if res.wave_file:
            print(f"waves: {res.wave_file}")
        return res

    return _run


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _is_controller(config) or not RESULTS.exists():
        return
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    if not rows:
        return
    rows.sort(key=lambda r: (r["test"], r["preset"], r["sim"]))
    cols = ["test", "sim", "preset", "tier", "seed", "result", "cycles", "wall_s"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    tr = terminalreporter
    tr.section("simulation summary")
    tr.write_line("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        tr.write_line("  ".join(str(r[c]).ljust(widths[c]) for c in cols))
    per_sim = {}
    for r in rows:
        per_sim.setdefault(r["sim"], [0, 0, 0.0])
        per_sim[r["sim"]][0] += 1
        per_sim[r["sim"]][1] += r["result"] == "PASS"
        per_sim[r["sim"]][2] += r["wall_s"]
    for sim, (n, ok, wall) in sorted(per_sim.items()):
        tr.write_line(f"{sim}: {ok}/{n} cocotb tests passed, {wall:.1f} s in tests")
    (REPORTS / "sim_summary.json").write_text(json.dumps(rows, indent=1))
    tr.write_line(f"summary: {REPORTS / 'sim_summary.json'}; JUnit XML: see --junitxml "
                  f"(make sim writes {REPORTS / 'junit.xml'})")


def assert_passed(res) -> None:
    """Fail the pytest item with the run's own summary (failing tests, log path)."""
    assert res.ok, res.summary()

