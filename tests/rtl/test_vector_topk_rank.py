"""Amaranth simulation of TOPK's rank network (``rtl.vector.topk.RankNetwork``) against
the golden model's order (``models.vector.topk_perm``): rank(lane) is the inverse of
the permutation, for rows with many ties (±0, NaNs, ±inf, subnormals, equal values)."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from models.vector import topk_perm
from rtl.vector.topk import RankNetwork

SEED = 20261124
TIES = np.array([0x0000_0000, 0x8000_0000, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000,
                 0xFFC1_2345, 0x7F80_0001, 0x0000_0001, 0x8000_0001, 0x3F80_0000,
                 0xBF80_0000], np.uint32)


@pytest.mark.parametrize("lanes", [1, 3, 4, 16])
def test_rank_network_is_inverse_of_topk_perm(lanes):
    rng = np.random.default_rng(SEED + lanes)
    rows = np.concatenate([rng.choice(TIES, (150, lanes)),
                           rng.integers(0, 1 << 32, (50, lanes), dtype=np.uint64)]).astype(np.uint32)
    perm = topk_perm(rows.view(np.float32))
    want = np.argsort(perm, axis=1)                 # rank of each lane
    dut = RankNetwork(lanes)
    B, got = dut.bits, []

    async def testbench(ctx):
        for k in range(len(rows) + RankNetwork.LATENCY):
            if k < len(rows):
                ctx.set(dut.i_a, sum(int(w) << (32 * j) for j, w in enumerate(rows[k])))
            await ctx.tick()
            if k >= RankNetwork.LATENCY - 1 and len(got) < len(rows):
                v = ctx.get(dut.o_rank)
                got.append([(v >> (B * j)) & ((1 << B) - 1) for j in range(lanes)])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    got = np.array(got)
    bad = np.flatnonzero((got != want).any(axis=1))
    assert not bad.size, [(rows[i].tolist(), got[i].tolist(), want[i].tolist()) for i in bad[:3]]
