"""Development checks of the FP8 fixed-point units (rtl/fp/fp8_fixed_mul.py,
rtl/fp/fixed_to_f32.py) with Amaranth's Python simulator.

FP8FixedMultiplier: random code pairs for the 4 format pairs plus every special code,
vs ``models.fp8.fp8_product_fixed``. FixedToF32: ties, near-ties, carries, zero,
extremes, specials, INT8 pass-through, through its pipeline with stalls, vs
``models.fp8.round_fixed_f32``. The array tests (tests/sim) cover both on Verilator and
Icarus.
"""
import numpy as np
from amaranth.sim import Simulator

from models.fp32 import CANONICAL_NAN_BITS, NEG_INF_BITS, POS_INF_BITS
from models.fp8 import E4M3, E5M2, FMT_E4M3, acc_fixed_bits, decode, fp8_product_fixed, round_fixed_f32
from rtl.fp.fixed_to_f32 import FixedToF32
from rtl.fp.fp8_fixed_mul import FP8FixedMultiplier

SEED = 20261129


def test_fp8_fixed_multiplier():
    rng = np.random.default_rng(SEED)
    n = 1500
    specials = [0x00, 0x80, 0x7F, 0xFF, 0x7E, 0xFE, 0x7C, 0xFC, 0x7D, 0x01, 0x81]
    a = np.concatenate([rng.integers(0, 256, n), np.repeat(specials, len(specials))])
    b = np.concatenate([rng.integers(0, 256, n), np.tile(specials, len(specials))])
    fa = rng.integers(0, 2, a.size)
    fb = rng.integers(0, 2, a.size)
    dut = FP8FixedMultiplier()
    got = []

    async def bench(ctx):
        for i in range(a.size):
            ctx.set(dut.i_a, int(a[i]))
            ctx.set(dut.i_b, int(b[i]))
            ctx.set(dut.i_fmt_a, int(fa[i]))
            ctx.set(dut.i_fmt_b, int(fb[i]))
            got.append((ctx.get(dut.o_mag), ctx.get(dut.o_neg), ctx.get(dut.o_nan),
                        ctx.get(dut.o_inf)))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    fmts = (E4M3, E5M2)
    for i in range(a.size):
        mag, neg, nan, inf = fp8_product_fixed(a[i], fmts[fa[i]], b[i], fmts[fb[i]])
        want = (int(mag), int(neg), int(nan), int(inf))
        assert got[i] == want, (hex(a[i]), hex(b[i]), fa[i], fb[i], got[i], want)
    assert any(g[2] for g in got) and any(g[3] for g in got)


def test_fixed_to_f32_pipeline():
    width = acc_fixed_bits(16)
    rng = np.random.default_rng(SEED)
    lim = 2 ** (width - 1)
    sums = [0, 1, -1, 2 ** 24 + 1, 2 ** 24 + 3, 2 ** 25 + 2, 2 ** 25 + 6, 2 ** 25 + 3,
            2 ** 24 - 1, (2 ** 24 - 1) * 2 ** 40 + 2 ** 39, (2 ** 24 - 1) * 2 ** 40 + 2 ** 39 - 1,
            lim - 1, -lim + 1, (2 ** 23 + 1) * 2 ** 43 + 2 ** 42,
            -((2 ** 23 + 1) * 2 ** 43 + 2 ** 42 + 1), 3 * 2 ** 60 + 2 ** 36, 2 ** 31, -2 ** 31]
    sums += [int(x) * int(y) for x, y in rng.integers(-2 ** 33, 2 ** 33, (150, 2))]
    sums += [int(x) >> int(s) for x, s in zip(rng.integers(-2 ** 62, 2 ** 62, 100),
                                              rng.integers(0, 60, 100))]
    assert all(abs(s) < lim for s in sums)            # the range the array guarantees
    # (sum, nan, pinf, ninf, fp)
    vecs = [(s, 0, 0, 0, 1) for s in sums] + [(s, 0, 0, 0, 0) for s in sums[:40]]
    vecs += [(5, 1, 0, 0, 1), (5, 0, 1, 0, 1), (-5, 0, 0, 1, 1), (0, 0, 1, 1, 1),
             (7, 1, 1, 0, 0)]
    dut = FixedToF32(width)
    got = []
    stall = rng.random(4 * len(vecs)) < 0.3

    async def bench(ctx):
        sent, t = 0, 0
        pending = []             # results due: a sample taken STAGES advances later
        while len(got) < len(vecs):
            en = not stall[t % len(stall)]
            t += 1
            ctx.set(dut.i_en, en)
            if sent < len(vecs):
                s, nan, pinf, ninf, fp = vecs[sent]
                ctx.set(dut.i_sum.sum, s)
                ctx.set(dut.i_sum.nan, nan)
                ctx.set(dut.i_sum.pinf, pinf)
                ctx.set(dut.i_sum.ninf, ninf)
                ctx.set(dut.i_fp, fp)
            await ctx.tick()
            if en:
                pending = [p - 1 for p in pending]
                if sent < len(vecs):
                    pending.append(FixedToF32.STAGES - 1)   # more advances to go
                    sent += 1
                if pending and pending[0] == 0:
                    pending.pop(0)
                    got.append(ctx.get(dut.o_result))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for (s, nan, pinf, ninf, fp), g in zip(vecs, got):
        if not fp:
            want = s & 0xFFFF_FFFF
        elif nan or (pinf and ninf):
            want = CANONICAL_NAN_BITS
        elif pinf or ninf:
            want = POS_INF_BITS if pinf else NEG_INF_BITS
        else:
            want = int(round_fixed_f32(np.array([s], dtype=object)).view(np.uint32)[0])
        assert g == want, (s, nan, pinf, ninf, fp, hex(g), hex(want))
