"""cocotb module behind ``models.runtime`` ``backend="rtl"``: programs on the chip top.

Inputs in the folder ``JALAPENO_RT_DIR`` (written by :func:`models.runtime.run_rtl`):
``jobs.json``, a list of jobs, each with ``image`` (an .npy file name: HBM image, uint8,
from address 0), ``ring_addr``, ``entries``, ``read_addr``, ``read_bytes``, ``cycles``
(bound of the wait for the interrupt) and ``sample_every`` (0: no trace). Per job, after
a reset: the image is loaded by backdoor, the doorbell rung over AXI4-Lite, the IRQ
awaited; outputs ``result<i>.npy`` (the bytes of the read region) and ``result<i>.json``
(cycles doorbell -> IRQ, status registers, perf counters, simulation speed and, when
sampled, the trace). Checking is the caller's job.

Trace: every ``sample_every`` cycles a second coroutine reads the perf counters
(:data:`TRACE_REGS` per tile, HBM bytes) over AXI4-Lite and the HBM busy count from the
top's port. Between samples no Python runs; a sample costs a few AXI4-Lite reads, which
do not touch the datapath (the program's cycle count is the same with or without it).
"""
import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from tb.common.stream import signal_int
from tb.soc.program import load_image, read_region, run_ring
from tb.soc.tb import SocTB

#: Per-tile busy counters sampled for the timeline (register names under TILE[t].).
TRACE_REGS = ("LOAD_BUSY", "COMPUTE_BUSY", "STORE_BUSY")
#: Chip-wide counters read after each program (and sampled).
CHIP_REGS = ("BYTES_READ", "BYTES_WRITTEN", "CP_BUSY")


async def read_counters(tb: SocTB) -> dict:
    """Every perf counter of the chip: the registers (per tile and chip-wide) and the
    HBM ports' busy / stall beats (summed over channels)."""
    out = {name: await tb.rd(name) for name in CHIP_REGS}
    for t in range(tb.config.soc.tiles):
        for name in TRACE_REGS + ("TOKENS_WAITED",):
            out[f"TILE[{t}].{name}"] = await tb.rd(f"TILE[{t}].{name}")
    out["HBM_BUSY"] = signal_int(tb.dut.o_perf_busy)
    out["HBM_STALL"] = signal_int(tb.dut.o_perf_stall)
    return out


class Sampler:
    """Reads the counters every ``every`` cycles until :meth:`stop` (a trace)."""

    def __init__(self, tb: SocTB, every: int):
        self.tb, self.every, self.rows, self._run = tb, every, [], True

    async def loop(self):
        while self._run:
            c = self.tb.now()
            self.rows.append({"cycle": c, **await read_counters(self.tb)})
            await ClockCycles(self.tb.dut.clk, self.every)

    def stop(self):
        self._run = False


async def run_job(tb: SocTB, d: Path, i: int, job: dict) -> None:
    await tb.reset()
    await load_image(tb, np.load(d / job["image"]), job["ring_addr"], job["entries"])
    before = await read_counters(tb)
    sampler = None
    if job.get("sample_every"):
        sampler = Sampler(tb, job["sample_every"])
        task = cocotb.start_soon(sampler.loop())
    regs = await run_ring(tb, job["ring_addr"], job["entries"], cycles=job["cycles"],
                          what=f"the IRQ of program {i} ({job['entries'] - 1} commands)")
    if sampler is not None:
        sampler.stop()
        await task
        regs["trace"] = sampler.rows
    after = await read_counters(tb)
    regs["counters"] = {k: (after[k] - before[k]) % (1 << 32) for k in after}
    wall = regs.pop("wait_wall_s")
    regs["sim_cycles_per_s"] = round(regs["cycles"] / wall) if wall > 0 else None
    regs["sim"] = cocotb.SIM_NAME
    np.save(d / f"result{i}.npy", await read_region(tb, job["read_addr"], job["read_bytes"]))
    (d / f"result{i}.json").write_text(json.dumps(regs))


@cocotb.test()
async def run_programs(dut):
    """Per job: reset, load, ring, wait for the interrupt, dump the result region."""
    d = Path(os.environ["JALAPENO_RT_DIR"])
    tb = SocTB(dut)
    for i, job in enumerate(json.loads((d / "jobs.json").read_text())):
        await run_job(tb, d, i, job)
