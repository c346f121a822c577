"""Run one attention head on the tensor core RTL (shared by the tests and the bench).

The head is loaded through the host write port, its command program
(``models.attention.program``) is sent on ``i_cmd``, and the accumulator, activation
regions it wrote are compared bitwise with the golden model that
:class:`tb.tensor.tb.TensorCoreTB` mirrors. Only then are O's values used.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models import attention as att
from models.tensor_core import MEM_ACC, MEM_ACT
from models.tensor_cmd import ErrCode


@dataclass
class HeadRun:
    """What one head on the RTL produced."""

    plan: att.AttentionPlan
    cmds: list
    o: np.ndarray           # Sq x d float32, read from the DUT
    cycles: int             # first command accepted .. idle
    perf: dict              # perf-counter deltas over the run
    accuracy: dict          # vs the float64 reference


async def run_head(tb, head: att.QuantizedHead, *, mq: int | None = None) -> HeadRun:
    """Load, run and check one head; raises AssertionError on any mismatch."""
    pl = att.plan(tb.config, head.problem, mq)
    for mem, addr, rows in att.sram_images(pl, head):
        await tb.write_rows(mem, addr, rows)
    cmds = att.program(pl, head)
    before = tb.perf()
    await tb.send(cmds, wait=False)
    cycles = await tb.wait_idle()
    after = tb.perf()
    st = tb.status()
    assert st["err_code"] == ErrCode.NONE, f"attention program raised {st} (seed {tb.seed})"
    addr, n = att.output_rows(pl)
    # every region the program wrote: S, PV and O (accumulator), P (activation)
    await tb.check_mem(MEM_ACC, pl.s_acc, pl.o_acc - pl.s_acc, "S/PV scratch")
    await tb.check_mem(MEM_ACC, addr, n, "O")
    await tb.check_mem(MEM_ACT, pl.p_act, pl.mq, "P")
    o = att.output(pl, await tb.read_rows(MEM_ACC, addr, n))
    perf = {k: (after[k] - before[k]) & 0xFFFF_FFFF for k in after}
    acc = att.accuracy(o, att.reference(head), head)
    return HeadRun(pl, cmds, o, cycles, perf, acc)
