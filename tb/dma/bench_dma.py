"""cocotb module behind `make bench BENCH=dma`: DMA loads through the HBM stub.

Transfers come from ``JALAPENO_BENCH_CASES`` (JSON list of [kind, row_bytes, rows,
src_ystride]); one record per case is appended to ``JALAPENO_BENCH_OUT``. Every
transfer's SRAM result is checked against the HBM contents, so a number never comes
from a wrong copy. The stub may run with an aliased backing store
(``HbmConfig.store_bytes``): the expected data follows the same aliasing.
"""
import json
import os
import time

import cocotb

from models import dma as model
from models.hbm import route, transfer_cycles, unroute
from tb.dma.tb import DmaTB


def _expected_hbm(h, pre: bytes, size: int) -> bytes:
    """Contents of global [0, size) when each channel's store aliases every store bytes."""
    g = h.interleave_bytes
    out = bytearray(size)
    for a in range(0, size, g):
        ch, local = route(h, a)
        src = unroute(h, ch, local % h.store)
        out[a:a + g] = pre[src:src + g]
    return bytes(out)


@cocotb.test()
async def bench_dma(dut):
    cases = json.loads(os.environ.get("JALAPENO_BENCH_CASES", '[["1d", 4096, 1, 0]]'))
    out = os.environ.get("JALAPENO_BENCH_OUT")
    tb = DmaTB(dut)
    await tb.reset()
    h, W = tb.hcfg, tb.W
    pre_n = h.store * h.channels
    pre = bytes(tb.rng.getrandbits(8) for _ in range(pre_n))
    await tb.hbm_write(0, pre)
    need = max(r * max(s, rb) for _, rb, r, s in cases)
    hbm = _expected_hbm(h, pre, min(h.total_bytes, max(need, pre_n)))
    for i, (kind, row, rows, ystride) in enumerate(cases):
        d = model.Descriptor(model.LOAD, 0, 0, row, rows, 1, ystride if rows > 1 else 0,
                             row if rows > 1 else 0, tag=i & 0xFF)
        n0 = len(tb.done)
        tb.sb.expect({"tag": d.tag, "err": model.OK})
        t0, c0 = time.monotonic(), tb.cycle
        tb.desc.send(d.to_payload())
        await tb.wait_until(lambda: len(tb.done) > n0, timeout=50 * d.total + 10_000,
                            what=f"bench transfer {d}")
        cycles = tb.done[n0][1] - tb.desc.last_fire + 1
        wall = time.monotonic() - t0
        for y in range(rows):
            s = y * d.src_ystride
            if tb.sram.mem[y * d.dst_ystride:y * d.dst_ystride + row] != hbm[s:s + row]:
                raise AssertionError(f"bench transfer {d}: row {y} differs from HBM")
        bursts = [b.beats for b in model.plan_bursts(tb.dcfg, W, d)]
        nbytes = d.total
        bpc = nbytes / cycles
        rec = {"kind": kind, "bytes": nbytes, "row_bytes": row, "rows": rows,
               "latency": h.read_latency, "cycles": cycles,
               "bytes_per_cycle": round(bpc, 3), "peak_bytes_per_cycle": h.peak_bytes_per_cycle,
               "efficiency": round(bpc / h.peak_bytes_per_cycle, 4),
               "model_cycles": transfer_cycles(h, bursts, outstanding=min(
                   tb.dcfg.max_outstanding, h.max_outstanding * h.channels)),
               "bursts": len(bursts), "channels": h.channels, "data_bytes": W,
               "outstanding": tb.dcfg.max_outstanding, "checked": True,
               "sim": cocotb.SIM_NAME, "sim_cycles_per_s": round((tb.cycle - c0) / max(wall, 1e-9))}
        tb.log.info("bench %s", rec)
        if out:
            with open(out, "a") as f:
                f.write(json.dumps(rec) + "\n")
    tb.finish()
