"""cocotb tests of FP8Multiplier through :class:`tb.fp.harness.FP8MulHarness`.

Golden model: ``models.fp8.fp8_product_f32`` (exact products, canonical NaN), compared
bit for bit. Run by tests/sim/test_fp_units_sim.py on both simulators.
"""
import cocotb
import numpy as np

from models.fp8 import E4M3, E5M2, FMT_E4M3, FMT_E5M2, fp8_product_f32
from tb.fp.lanes import LaneDriver, first_mismatch
from tb.fp.vectors import fp8_pairs

SEL = {FMT_E4M3: E4M3, FMT_E5M2: E5M2}
PAIRS = [(FMT_E4M3, FMT_E4M3), (FMT_E4M3, FMT_E5M2), (FMT_E5M2, FMT_E4M3), (FMT_E5M2, FMT_E5M2)]


def _driver(dut):
    lanes = len(dut.i_fmt_a)
    return LaneDriver(dut, {"i_a": np.uint8, "i_b": np.uint8, "i_fmt_a": bool, "i_fmt_b": bool},
                      "o_product", lanes)


@cocotb.test()
async def test_exhaustive_all_format_pairs(dut):
    """All 65,536 code pairs for each of the 4 format pairs (262,144 products)."""
    drv = _driver(dut)
    a, b = fp8_pairs()
    for fa, fb in PAIRS:
        got = await drv.apply(i_a=a, i_b=b, i_fmt_a=np.full(a.size, fa),
                              i_fmt_b=np.full(a.size, fb))
        want = fp8_product_f32(a, SEL[fa], b, SEL[fb]).view(np.uint32)
        msg = first_mismatch(got, want, a=a, b=b)
        assert msg is None, f"{SEL[fa].name} x {SEL[fb].name}: {msg}"
        dut._log.info("%s x %s: 65536 products bit-exact", SEL[fa].name, SEL[fb].name)


@cocotb.test()
async def test_format_switching(dut):
    """Random codes with the formats changing on every vector and lane."""
    rng = np.random.default_rng(cocotb.RANDOM_SEED)
    drv = _driver(dut)
    n = 32768
    a, b = rng.integers(0, 256, n).astype(np.uint8), rng.integers(0, 256, n).astype(np.uint8)
    fa, fb = rng.integers(0, 2, n), rng.integers(0, 2, n)
    got = await drv.apply(i_a=a, i_b=b, i_fmt_a=fa, i_fmt_b=fb)
    want = np.where(fa == 0,
                    np.where(fb == 0, fp8_product_f32(a, E4M3, b, E4M3), fp8_product_f32(a, E4M3, b, E5M2)),
                    np.where(fb == 0, fp8_product_f32(a, E5M2, b, E4M3), fp8_product_f32(a, E5M2, b, E5M2)))
    msg = first_mismatch(got, want.view(np.uint32), a=a, b=b, fmt_a=fa, fmt_b=fb)
    assert msg is None, msg


@cocotb.test()
async def test_selfcheck_wrong_format_is_caught(dut):
    """The comparison is live: E4M3 products checked against E5M2 expectations fail."""
    drv = _driver(dut)
    a, b = fp8_pairs()
    got = await drv.apply(i_a=a[:4096], i_b=b[:4096], i_fmt_a=np.zeros(4096),
                          i_fmt_b=np.zeros(4096))
    want = fp8_product_f32(a[:4096], E5M2, b[:4096], E4M3).view(np.uint32)
    msg = first_mismatch(got, want, a=a[:4096], b=b[:4096])
    assert msg is not None, "a wrong-format expectation was not reported"
    dut._log.info("wrong expectation reported as it must: %s", msg)
