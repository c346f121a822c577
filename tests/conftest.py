"""pytest options, test selection, the regression summary and reproduce commands.

Options (the Makefile maps SIM, SEED, WAVES, TIER, TEST, CONFIG and WALL_LIMIT onto them):

--sim {icarus,verilator,all}   simulators to run (default: all)
--seed N                       fixed random seed (default: a fresh seed per run, logged)
--waves                        dump FST waveforms into each run's build folder
--tier {smoke,full,nightly}    number of random trials inside each cocotb test
--test [<module>::]<name>      run only this cocotb test: only the tests/sim entries that
                               run its module are kept, and each runs only that test
--preset NAME                  run only simulations of this config preset
--wall-limit S                 wall-clock limit of each simulator run (default: the tier's,
                               see tb/common/timing.py, or JALAPENO_WALL_LIMIT)
--coverage                     Verilator line/toggle coverage (or JALAPENO_COVERAGE=1;
                               see scripts/coverage.py, ``make coverage``)

Icarus budget: Icarus simulates the 16x16 and larger presets 10-30x slower than Verilator
(it is event-driven over every PE), so on presets other than ``tiny`` it runs one tier
lower (full -> smoke, nightly -> full). Every test still runs on both simulators; the
full random-trial counts of those presets run on Verilator.

Every simulator run appends its per-test rows to build/reports/sim_results-<pid>.jsonl,
private to the session (pytest-xdist workers inherit its path in JALAPENO_RESULTS); the
controller prints them as a table at the end and writes build/reports/sim_summary.json
(``JALAPENO_SUMMARY=<path>`` writes it elsewhere: make waves and the seed sweep keep the
last regression's summary for make testplan). Every failure carries one command that re-runs exactly
it (``make sim SIM=.. CONFIG=.. TIER=.. SEED=.. TEST=..``): in the failure message, in the
JUnit XML (property ``reproduce``) and in the list at the end of the session.
"""
from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest

from tb.common.discover import TestLookupError, base_name, cocotb_tests, entries_running, \
    find_test, qualified_name, sim_entries
from tb.common.report import cocotb_junit
from tb.common.timing import build_limit, wall_limit
from tb.runner import BUILD, ROOT, SIMULATORS, run

REPORTS = BUILD / "reports"
ICARUS_LARGE_PRESET_TIER = {"smoke": "smoke", "full": "smoke", "nightly": "full"}


def _results_file() -> Path:
    """This session's per-run rows (several sessions may share the tree)."""
    return Path(os.environ.get("JALAPENO_RESULTS") or REPORTS / f"sim_results-{os.getpid()}.jsonl")


def pytest_addoption(parser):
    g = parser.getgroup("jalapeno")
    g.addoption("--sim", default=os.environ.get("SIM", "all"),
                choices=["all", *SIMULATORS], help="simulator(s) to run")
    g.addoption("--seed", type=int, default=None, help="random seed for every simulation")
    g.addoption("--waves", action="store_true", help="dump FST waveforms")
    g.addoption("--tier", default="full", choices=["smoke", "full", "nightly"],
                help="random-trial count inside cocotb tests")
    g.addoption("--test", default=None, metavar="[MODULE::]NAME",
                help="run only this cocotb test (and only the entries that run its module)")
    g.addoption("--preset", default=None, help="run only simulations of this config preset")
    g.addoption("--wall-limit", type=float, default=None, metavar="S",
                help="wall-clock limit (s) of each simulator run (default: per tier)")
    g.addoption("--coverage", action="store_true",
                help="Verilator line/toggle coverage into each run's folder (make coverage)")


def _is_controller(config) -> bool:
    return not hasattr(config, "workerinput")


def _wall_limit(config) -> float:
    return config.getoption("--wall-limit") or wall_limit(config.getoption("--tier"))


def pytest_configure(config):
    if _is_controller(config):       # before xdist starts workers: they inherit it
        os.environ["JALAPENO_RESULTS"] = str(REPORTS / f"sim_results-{os.getpid()}.jsonl")
    config._jalapeno_test = None
    spec = config.getoption("--test")
    if spec:
        try:
            config._jalapeno_test = find_test(spec)
        except TestLookupError as e:
            raise pytest.UsageError(f"TEST={spec}: {e}") from None
    preset = config.getoption("--preset")
    if preset:
        from models.config import PRESETS
        if preset not in PRESETS:
            raise pytest.UsageError(f"CONFIG={preset}: no such preset; use one of {sorted(PRESETS)}")


def pytest_report_header(config):
    sims = SIMULATORS if config.getoption("--sim") == "all" else (config.getoption("--sim"),)
    tier = config.getoption("--tier")
    seed = config.getoption("--seed")
    lines = [
        f"jalapeno: simulators {', '.join(sims)}; tier {tier} (Icarus on presets other than "
        f"tiny: {ICARUS_LARGE_PRESET_TIER[tier]}); seed "
        + (f"fixed {seed}" if seed is not None else "fresh per run (printed with each run)"),
        f"jalapeno: presets {config.getoption('--preset') or 'all'}; wall-clock limit "
        f"{_wall_limit(config):g} s per simulator run"
        + (" (--wall-limit)" if config.getoption("--wall-limit") else
           " (JALAPENO_WALL_LIMIT)" if os.environ.get("JALAPENO_WALL_LIMIT") else
           f" ({tier} tier default)")
        + f", {build_limit():g} s per build",
    ]
    if config._jalapeno_test:
        module, name = config._jalapeno_test
        runners = [f for _, f in entries_running(module)]
        lines.append(f"jalapeno: TEST {module}::{name}, run by "
                     + (", ".join(runners) or "no tests/sim entry"))
    return lines


def pytest_generate_tests(metafunc):
    if "sim" in metafunc.fixturenames:
        choice = metafunc.config.getoption("--sim")
        sims = SIMULATORS if choice == "all" else (choice,)
        metafunc.parametrize("sim", sims)


def _entry(item) -> tuple[str, str]:
    try:
        path = Path(item.path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        path = str(item.path)
    return path, getattr(item, "originalname", item.name)


def _cost_class(item) -> int:
    """Longest first, so that pytest-xdist (``--maxschedchunk 1``: one item per free
    worker) does not end on a long simulation: simulations of the 16x16 presets, then the
    other simulations, then everything else (sorted stably: file order within a class)."""
    if item.get_closest_marker("sim") is None:
        return 2
    params = getattr(getattr(item, "callspec", None), "params", {})
    return 0 if params.get("preset", "tiny") not in ("tiny", "tiny_int8") else 1


def pytest_collection_modifyitems(session, config, items):
    keep, drop = [], []
    sel = config._jalapeno_test
    runners = set(entries_running(sel[0])) if sel else set()
    preset = config.getoption("--preset")
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if sel and _entry(item) not in runners:
            drop.append(item)
        elif preset and "preset" in params and params["preset"] != preset:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = sorted(keep, key=_cost_class)
    if sel and not keep:
        module, name = sel
        raise pytest.UsageError(
            f"TEST={config.getoption('--test')}: {module}::{name} is run by "
            + (", ".join(f for _, f in runners) + " but none of them is selected by the "
               "SIM/CONFIG filters or the paths given" if runners else
               "no tests/sim entry (bench modules run with make bench)"))


def pytest_sessionstart(session):
    if _is_controller(session.config):
        REPORTS.mkdir(parents=True, exist_ok=True)
        _results_file().write_text("")


def _k_expression(func: str) -> str:
    """A pytest -k expression that selects the function ``func`` of tests/sim only."""
    longer = sorted({f for _, f in sim_entries() if f != func and func.lower() in f.lower()})
    return " and ".join([func] + [f"not {f}" for f in longer])


@pytest.fixture
def sim_run(request):
    """``sim_run(block, preset, sim, module, **kw)``: run and record one simulation.

    ``kw`` go to :func:`tb.runner.run`; ``record=False`` keeps the run out of the summary
    table and the reproduce list (for tests that expect a failure).
    """
    opts = request.config

    def _run(block, preset, sim, test_module, record=True, **kw):
        sel = opts._jalapeno_test
        if sel:
            module, name = sel
            if test_module != module:
                pytest.skip(f"TEST={name}: this entry runs {test_module}, not {module}")
            own = kw.get("testcase")
            own = [own] if isinstance(own, str) else own
            if own is not None and base_name(name) not in {base_name(o) for o in own}:
                pytest.skip(f"TEST={name}: this entry runs only {', '.join(own)} of {module}")
            kw["testcase"] = name
        preset_name = preset if isinstance(preset, str) else preset.name
        if opts.getoption("--preset") and preset_name != opts.getoption("--preset"):
            pytest.skip(f"preset {preset_name} (CONFIG={opts.getoption('--preset')} asked)")
        kw.setdefault("seed", opts.getoption("--seed"))
        kw.setdefault("waves", opts.getoption("--waves"))
        session_tier = opts.getoption("--tier")
        tier = session_tier
        if sim == "icarus" and preset_name != "tiny":
            tier = ICARUS_LARGE_PRESET_TIER[tier]
        kw.setdefault("tier", tier)
        kw.setdefault("verilator_opt", "-O0")     # build time dominates the regression
        kw.setdefault("wall_limit_s", _wall_limit(opts))
        kw.setdefault("coverage", opts.getoption("--coverage") or None)   # None: env
        path, func = _entry(request.node)

        def reproduce(case, res):
            """``make sim`` selecting this entry, this preset, tier, seed and test."""
            parts = ["make sim", f"SIM={sim}", f"CONFIG={res.preset}", f"TIER={session_tier}",
                     f"SEED={res.seed}"]
            if case is None or len(entries_running(test_module)) > 1:
                parts.append(f"TESTS={shlex.quote(_k_expression(func))}")
            if case is not None:
                parts.append(f"TEST={shlex.quote(qualified_name(test_module, case))}")
            return " ".join(parts)

        kw.setdefault("reproduce", reproduce)
        res = run(block, preset, sim, test_module, **kw)
        if record:
            variant = f"_{kw['variant']}" if kw.get("variant") else ""
            rows = [dict(test=f"{block}{variant}::{c.name}", module=test_module, sim=sim,
                         preset=res.preset, seed=res.seed, tier=kw["tier"],
                         result="TIMEOUT" if c.timed_out else "SKIP" if c.skipped
                         else "PASS" if c.passed else "FAIL",
                         cycles=c.cycles, wall_s=round(c.wall_s, 2),
                         reproduce=res.reproduce.get(c.name, "")) for c in res.cases]
            if res.error and not any(c.timed_out for c in res.cases):
                rows.append(dict(test=f"{block}{variant}::<run>", module=test_module, sim=sim,
                                 preset=res.preset, seed=res.seed, tier=kw["tier"],
                                 result="ERROR", cycles=0, wall_s=round(res.wall_s, 2),
                                 reproduce=res.reproduce.get("", "")))
            REPORTS.mkdir(parents=True, exist_ok=True)
            with open(_results_file(), "a") as f:
                for r in rows:
                    f.write(json.dumps(r) + "\n")
            for case, cmd in res.reproduce.items():
                request.node.user_properties.append(("reproduce", cmd))
        print(res.summary())
        if res.wave_file:
            print(f"waves: {res.wave_file}")
        return res

    return _run


def pytest_runtest_logreport(report):
    """Controller side: one reproduce command per failing item (its sim runs' commands,
    or the pytest node for tests that run no simulation)."""
    if report.when == "call" and not report.skipped:
        _RAN.append(report.nodeid)
    if not report.failed:
        return
    cmds = [v for k, v in report.user_properties if k == "reproduce"]
    if not cmds:
        cmds = [f"PYTHONPATH=. .venv/bin/python -m pytest {shlex.quote(report.nodeid)} -n 0"]
    _REPRODUCE.extend((report.nodeid, c) for c in cmds if (report.nodeid, c) not in _REPRODUCE)


_REPRODUCE: list[tuple[str, str]] = []
_RAN: list[str] = []


def pytest_sessionfinish(session, exitstatus):
    """``make sim TEST=..`` that ran nothing (every entry skipped, e.g. by CONFIG) fails."""
    config = session.config
    if (_is_controller(config) and config.getoption("--test") and not _RAN
            and not config.getoption("--collect-only") and exitstatus == 0):
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED
        config.get_terminal_writer().line(
            f"TEST={config.getoption('--test')}: no simulation ran (every entry was skipped: "
            f"see the skip reasons with -rs)", red=True)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _is_controller(config):
        return
    tr = terminalreporter
    rows = []
    results = _results_file()
    if results.exists():
        rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
        results.unlink()
    if rows:
        rows.sort(key=lambda r: (r["test"], r["preset"], r["sim"]))
        cols = ["test", "sim", "preset", "tier", "seed", "result", "cycles", "wall_s"]
        widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
        tr.section("simulation summary")
        tr.write_line("  ".join(c.ljust(widths[c]) for c in cols))
        for r in rows:
            tr.write_line("  ".join(str(r[c]).ljust(widths[c]) for c in cols))
        per_sim = {}
        for r in rows:
            per_sim.setdefault(r["sim"], [0, 0, 0, 0.0])
            per_sim[r["sim"]][0] += 1
            per_sim[r["sim"]][1] += r["result"] == "PASS"
            per_sim[r["sim"]][2] += r["result"] == "SKIP"
            per_sim[r["sim"]][3] += r["wall_s"]
        for sim, (n, ok, skip, wall) in sorted(per_sim.items()):
            tr.write_line(f"{sim}: {ok}/{n} cocotb tests passed" + (f", {skip} skipped" if skip else "")
                          + f", {wall:.1f} s in tests")
        summary = Path(os.environ.get("JALAPENO_SUMMARY") or REPORTS / "sim_summary.json")
        summary.parent.mkdir(parents=True, exist_ok=True)
        summary.write_text(json.dumps(rows, indent=1))
        junit = summary.with_suffix(".junit.xml")
        junit.write_text(cocotb_junit(rows))
        tr.write_line(f"summary: {summary}; JUnit XML of every cocotb test with its seed: {junit}")
    if _REPRODUCE:
        tr.section("reproduce (one command per failure)")
        for nodeid, cmd in _REPRODUCE:
            tr.write_line(f"{nodeid}:")
            tr.write_line(f"  {cmd}")


def cocotb_tests_except(module: str, excluded) -> list[str]:
    """The cocotb tests of ``module`` (definition order) other than ``excluded``: what an
    entry runs when some of its tests go to another tier (a new test is never left out)."""
    return [n for n in cocotb_tests()[module] if n not in excluded]


def assert_passed(res) -> None:
    """Fail the pytest item with the run's own summary (failing tests, reproduce command,
    log path)."""
    assert res.ok, res.summary()
