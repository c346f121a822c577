"""cocotb module behind `make bench BENCH=dma`: DMA loads through the HBM stub.

Cases come from ``JALAPENO_BENCH_CASES`` (JSON list of [kind, row_bytes, rows,
src_ystride, n_stream]). Each case is measured twice:

* isolated: one descriptor, cycles from its acceptance to its completion (latency-bound
  for short transfers);
* streamed: ``n_stream`` equal descriptors queued back to back (consecutive sources and
  destinations), cycles from the first acceptance to the last completion; the engine
  overlaps them, so this is the throughput of a steady stream of such transfers.

One record per case is appended to ``JALAPENO_BENCH_OUT``, with the analytic figures of
:func:`models.dma.stream_cycles` next to the RTL's. A case of kind ``gather`` is
``[gather, row_bytes, planes, 0, 1]``: one indexed load of ``planes`` rows from random
(repeating) slots, next to the plain 3D load of the same rows in order (per-plane cost
of the index path, docs/dma.md). Every transfer's SRAM result is
checked against the HBM contents, so a number never comes from a wrong copy. The stub
may run with an aliased backing store (``HbmConfig.store_bytes``): the expected data
follows the same aliasing.
"""
import json
import os
import time

import cocotb

from models import dma as model
from models.dma import INDEX_BYTES, DmaDir, DmaError
from models.hbm import route, unroute
from tb.dma.seq import index_bytes
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


def _stream(row, rows, ystride, n, tag0):
    """``n`` equal loads: sources one source extent apart, destinations packed."""
    ext = ystride * (rows - 1) + row if rows > 1 else row
    return [model.Descriptor(DmaDir.LOAD, i * ext, i * row * rows, row, rows, 1,
                             ystride if rows > 1 else 0, row if rows > 1 else 0,
                             tag=(tag0 + i) & 0xFF) for i in range(n)]


async def _measure(tb, hbm, descs):
    """Queue ``descs``, wait for all completions, check the data; cycles first..last."""
    n0, a0 = len(tb.done), len(tb.accepts.cycles)
    for d in descs:
        tb.sb.expect({"tag": d.tag, "err": DmaError.OK})
        tb.desc.send(d.to_payload())
    total = sum(d.total for d in descs)
    await tb.wait_until(lambda: len(tb.done) >= n0 + len(descs), timeout=50 * total + 10_000,
                        what=f"bench stream of {len(descs)} x {descs[0]}")
    for d in descs:
        for (s, t) in model.rows(d):
            if tb.sram.mem[t:t + d.row_bytes] != hbm[s:s + d.row_bytes]:
                raise AssertionError(f"bench transfer {d}: row at {s:#x} differs from HBM")
    return tb.done[-1][1] - tb.accepts.cycles[a0] + 1


async def _gather(tb, hbm, i, row, planes, pre_n):
    """One gather of ``planes`` rows of ``row`` bytes and the plain 3D load of as many
    rows: a record with both cycle counts (SRAM checked against the aliased HBM)."""
    W, zs = tb.W, -(-row // tb.W) * tb.W
    at = pre_n - INDEX_BYTES * planes // W * W - W       # list: top of the real store
    slots = min(at, tb.dcfg.sram_bytes) // zs - 1
    idx = [tb.rng.randrange(slots) for _ in range(planes)]
    raw = index_bytes(idx)
    buf = bytearray(hbm[at:at + -(-len(raw) // W) * W])
    buf[:len(raw)] = raw
    await tb.hbm_write(at, bytes(buf))
    hbm[at:at + len(buf)] = buf
    g = model.Descriptor(DmaDir.LOAD, 0, 0, row, 1, planes, 0, 0, zs, zs, tag=i & 0xFF,
                         index=1, index_addr=at)
    p = model.Descriptor(DmaDir.LOAD, 0, 0, row, 1, planes, 0, 0, zs, zs, tag=i & 0xFF)
    cycles = {}
    for name, d, ix in (("gather", g, idx), ("plain", p, None)):
        n0, a0 = len(tb.done), len(tb.accepts.cycles)
        tb.sb.expect({"tag": d.tag, "err": DmaError.OK})
        tb.desc.send(d.to_payload())
        await tb.wait_until(lambda: len(tb.done) > n0, timeout=100 * d.total + 10_000,
                            what=f"bench {name} {d}")
        for s, t in model.rows(d, ix):
            if tb.sram.mem[t:t + row] != hbm[s:s + row]:
                raise AssertionError(f"bench {name} {d}: row at {s:#x} differs from HBM")
        cycles[name] = tb.done[-1][1] - tb.accepts.cycles[a0] + 1
    return {"kind": "gather", "bytes": g.total, "row_bytes": row, "planes": planes,
            "latency": tb.hcfg.read_latency, "cycles": cycles["gather"],
            "plain_cycles": cycles["plain"],
            "cycles_per_plane": round(cycles["gather"] / planes, 2),
            "plain_cycles_per_plane": round(cycles["plain"] / planes, 2),
            "index_reads": len(model.index_reads(g, W)),
            "index_lookahead": model.index_lookahead(tb.dcfg, W), "data_bytes": W,
            "outstanding": tb.dcfg.max_outstanding, "checked": True, "sim": cocotb.SIM_NAME}


@cocotb.test()
async def bench_dma(dut):
    cases = json.loads(os.environ.get("JALAPENO_BENCH_CASES", '[["1d", 4096, 1, 0, 16]]'))
    out = os.environ.get("JALAPENO_BENCH_OUT")
    tb = DmaTB(dut)
    await tb.reset()
    h, W = tb.hcfg, tb.W
    pre_n = h.store * h.channels
    pre = bytes(tb.rng.getrandbits(8) for _ in range(pre_n))
    await tb.hbm_write(0, pre)
    need = max(n * (r * max(s, rb)) for _, rb, r, s, n in cases)
    hbm = _expected_hbm(h, pre, min(h.total_bytes, max(need, pre_n)))
    peak = h.peak_bytes_per_cycle
    for i, (kind, row, rows, ystride, n) in enumerate(cases):
        if kind == "gather":
            rec = await _gather(tb, bytearray(hbm), i, row, rows, pre_n)
            tb.log.info("bench %s", rec)
            if out:
                with open(out, "a") as f:
                    f.write(json.dumps(rec) + "\n")
            continue
        t0, c0 = time.monotonic(), tb.cycle
        one = _stream(row, rows, ystride, 1, i)
        cycles = await _measure(tb, hbm, one)
        stream = _stream(row, rows, ystride, n, i)
        s_cycles = await _measure(tb, hbm, stream) if n > 1 else cycles
        wall = time.monotonic() - t0
        nbytes = one[0].total
        bpc = n * nbytes / s_cycles
        rec = {"kind": kind, "bytes": nbytes, "row_bytes": row, "rows": rows,
               "latency": h.read_latency, "peak_bytes_per_cycle": peak,
               # isolated descriptor (latency-bound)
               "cycles": cycles,
               "model_cycles": model.stream_cycles(tb.dcfg, h, one)[-1] + 1,
               "isolated_efficiency": round(nbytes / cycles / peak, 4),
               # stream of n back-to-back descriptors
               "stream_n": n, "stream_cycles": s_cycles,
               "stream_model_cycles": model.stream_cycles(tb.dcfg, h, stream)[-1] + 1,
               "bytes_per_cycle": round(bpc, 3), "efficiency": round(bpc / peak, 4),
               "bursts": len(model.plan_bursts(tb.dcfg, W, one[0])), "channels": h.channels,
               "data_bytes": W, "outstanding": tb.dcfg.max_outstanding,
               "descs_in_flight": tb.dcfg.descs_in_flight, "checked": True,
               "sim": cocotb.SIM_NAME,
               "sim_cycles_per_s": round((tb.cycle - c0) / max(wall, 1e-9))}
        tb.log.info("bench %s", rec)
        if out:
            with open(out, "a") as f:
                f.write(json.dumps(rec) + "\n")
    tb.finish()
