"""cocotb module behind ``models.runtime`` ``backend="rtl"``: one program on the chip top.

Inputs in the folder ``JALAPENO_RT_DIR`` (written by :func:`models.runtime.run_gemm`):
``image.npy`` (HBM image, uint8, from address 0) and ``job.json`` (``ring_addr``,
``entries``, ``read_addr``, ``read_bytes``, ``cycles`` bound). The image is loaded by
backdoor, the doorbell rung over AXI4-Lite, the IRQ awaited; outputs ``result.npy``
(the bytes of the read region) and ``result.json`` (cycles doorbell -> IRQ, status
registers, simulation speed). Checking is the caller's job.
"""
import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np

from tb.soc.program import load_image, read_region, run_ring
from tb.soc.tb import SocTB


@cocotb.test()
async def run_program(dut):
    """Load, ring, wait for the interrupt, dump the result region."""
    d = Path(os.environ["JALAPENO_RT_DIR"])
    job = json.loads((d / "job.json").read_text())
    tb = SocTB(dut)
    await tb.reset()
    await load_image(tb, np.load(d / "image.npy"), job["ring_addr"], job["entries"])
    t0, c0 = time.monotonic(), tb.now()
    regs = await run_ring(tb, job["ring_addr"], job["entries"], cycles=job["cycles"],
                          what=f"the IRQ of the program ({job['entries'] - 1} commands)")
    wall = time.monotonic() - t0
    regs["sim_cycles_per_s"] = round((tb.now() - c0) / wall) if wall > 0 else None
    regs["sim"] = cocotb.SIM_NAME
    np.save(d / "result.npy", await read_region(tb, job["read_addr"], job["read_bytes"]))
    (d / "result.json").write_text(json.dumps(regs))
