"""The runtime's RTL backend: command-ring programs on the SoC RTL under cocotb.

:func:`run_rtl` writes each job's HBM image and parameters into a folder under
build/runtime_rtl/, runs the cocotb module ``tb.soc.runtime_rtl`` once on the chip top
(block ``soc``, :func:`tb.runner.run`: one build, one simulator process for all jobs),
and turns each job's registers and read region back into a
:class:`models.chip.ChipResult` (the HBM image with the read region as the RTL left
it), plus the measured cycles, perf counters and optional counter trace.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.chip import ChipResult
from models.config import JalapenoConfig
from models.isa import Fault, IsaError

__all__ = ["RtlJob", "RtlRun", "run_rtl", "SIMS"]

SIMS = ("verilator", "icarus")


@dataclass
class RtlJob:
    """One program: ``hbm`` image (from address 0), its ring, the region to read back,
    the bound of the wait for the interrupt and the trace period (0: no trace)."""

    hbm: np.ndarray
    ring_addr: int
    entries: int
    read_addr: int
    read_bytes: int
    cycles: int
    sample_every: int = 0


@dataclass
class RtlRun:
    """What one job gave: the chip result, cycles doorbell -> IRQ, the perf counters over
    the program (deltas), the trace rows (``sample_every``), the simulator's speed while
    it waited and the simulator run (:class:`tb.runner.RunResult`)."""

    result: ChipResult
    cycles: int
    counters: dict
    trace: list = field(default_factory=list)
    start: int = 0
    sim_cycles_per_s: int | None = None
    sim_run: object = None


def run_rtl(cfg: JalapenoConfig, jobs: list[RtlJob], *, sim: str = "verilator",
            seed: int | None = None, verilator_opt: str | None = None) -> list[RtlRun]:
    """Run ``jobs`` in order on the SoC RTL (a reset before each); raises RuntimeError
    naming the log if the simulation failed. ``verilator_opt``: as :func:`tb.runner.run`
    (tests pass the regression's ``-O0`` to share its build)."""
    from tb.runner import BUILD, run

    if sim not in SIMS:
        raise ValueError(f"sim must be 'verilator' or 'icarus', got {sim!r}")
    root = BUILD / "runtime_rtl"
    root.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix=f"{cfg.name}-{sim}-", dir=root))
    spec = []
    for i, j in enumerate(jobs):
        np.save(d / f"image{i}.npy", j.hbm)
        spec.append({"image": f"image{i}.npy", "ring_addr": j.ring_addr,
                     "entries": j.entries, "read_addr": j.read_addr,
                     "read_bytes": j.read_bytes, "cycles": j.cycles,
                     "sample_every": j.sample_every})
    (d / "jobs.json").write_text(json.dumps(spec))
    sr = run("soc", cfg, sim, "tb.soc.runtime_rtl", seed=seed,
             extra_env={"JALAPENO_RT_DIR": str(d)}, verilator_opt=verilator_opt)
    if not sr.ok:
        raise RuntimeError(f"the SoC RTL run failed:\n{sr.summary()}")
    return [_result(d, i, j, sr) for i, j in enumerate(jobs)]


def _result(d: Path, i: int, job: RtlJob, sr) -> RtlRun:
    regs = json.loads((d / f"result{i}.json").read_text())
    out = job.hbm.copy()
    out[job.read_addr:job.read_addr + job.read_bytes] = np.load(d / f"result{i}.npy")
    code = regs["ERROR_CODE"]
    res = ChipResult(out, completed=regs["COMPLETIONS"],
                     error=Fault(IsaError(code & 0xFF), code >> 8),
                     error_addr=regs["ERROR_ADDR"] if code else None,
                     irqs=[regs["IRQ_VALUE"]] if regs["INTR_STATUS"] & 1 else [],
                     head=regs["RING_HEAD"])
    return RtlRun(res, regs["cycles"], regs["counters"], regs.get("trace", []),
                  regs["start"], regs["sim_cycles_per_s"], sr)
