"""cocotb tests of FP32Adder through :class:`tb.fp.harness.FP32AddHarness`.

Golden model: ``models.fp32.fp32_add_bits`` (numpy float32 addition, canonical NaN).
Operands come from :func:`tb.fp.vectors.adder_vectors`: all pairs of special values,
uniform bit patterns, subnormals, near-cancellation, every alignment shift, exact ties
and overflow, in both operand orders.

Vector counts (``JALAPENO_FP32_ADDS`` overrides): Verilator 1,000,000 in the full tier
(10,000,000 nightly); Icarus 100,000 (1,000,000 nightly); the smoke tier 50,000.
"""
import os

import cocotb
import numpy as np

from models.fp32 import fp32_add_bits
from tb.common.clocked import tier
from tb.fp.lanes import LaneDriver, first_mismatch, selfcheck_corrupted_expectation
from tb.fp.vectors import adder_vectors

_COUNTS = {("verilator", "smoke"): 50_000, ("verilator", "full"): 1_000_000,
           ("verilator", "nightly"): 10_000_000, ("icarus", "smoke"): 50_000,
           ("icarus", "full"): 100_000, ("icarus", "nightly"): 1_000_000}
_CHUNK = 65_536


def _count() -> int:
    if "JALAPENO_FP32_ADDS" in os.environ:
        return int(os.environ["JALAPENO_FP32_ADDS"])
    sim = "verilator" if "verilator" in cocotb.SIM_NAME.lower() else "icarus"
    return _COUNTS[sim, tier()]


@cocotb.test()
async def test_weighted_random_adds(dut):
    """Weighted random binary32 additions, bit-exact against numpy float32."""
    rng = np.random.default_rng(cocotb.RANDOM_SEED)
    drv = LaneDriver(dut, {"i_a": np.uint32, "i_b": np.uint32}, "o_result",
                     len(dut.o_result) // 32)
    total, target = 0, _count()
    while total < target:
        a, b = adder_vectors(rng, min(_CHUNK, target - total))
        a, b = a[:target - total], b[:target - total]
        got = await drv.apply(i_a=a, i_b=b)
        msg = first_mismatch(got, fp32_add_bits(a, b), a=a, b=b)
        assert msg is None, f"after {total} good additions: {msg}"
        total += a.size
    dut._log.info("%d additions bit-exact (%d simulator steps)", total, drv.steps)


@cocotb.test()
async def test_directed_rules(dut):
    """The numerics contract's named cases, both operand orders."""
    cases = [
        (0x3F80_0000, 0xBF80_0000, 0x0000_0000),   # 1 + -1 = +0
        (0x8000_0000, 0x8000_0000, 0x8000_0000),   # -0 + -0 = -0
        (0x8000_0000, 0x0000_0000, 0x0000_0000),   # -0 + +0 = +0
        (0x8000_0001, 0x0000_0000, 0x8000_0001),   # x + 0 = x (subnormal)
        (0x7F80_0000, 0xFF80_0000, 0x7FC0_0000),   # inf - inf = canonical NaN
        (0xFF80_0000, 0x7F7F_FFFF, 0xFF80_0000),   # -inf + max = -inf
        (0xFFC1_2345, 0x3F80_0000, 0x7FC0_0000),   # NaN payload not propagated
        (0x7F7F_FFFF, 0x7F7F_FFFF, 0x7F80_0000),   # overflow -> inf
        (0x7F7F_FFFF, 0x7300_0000, 0x7F80_0000),   # max + half ulp: tie to even -> inf
        (0x0080_0000, 0x8000_0001, 0x007F_FFFF),   # normal - subnormal -> subnormal
        (0x007F_FFFF, 0x0000_0001, 0x0080_0000),   # subnormal + subnormal -> normal
        (0x3F80_0000, 0x3380_0000, 0x3F80_0000),   # 1 + 2**-24: tie, even (down)
        (0x3F80_0001, 0x3380_0000, 0x3F80_0002),   # tie, even (up)
    ]
    a = np.array([c[0] for c in cases] + [c[1] for c in cases], np.uint32)
    b = np.array([c[1] for c in cases] + [c[0] for c in cases], np.uint32)
    want = np.array([c[2] for c in cases] * 2, np.uint32)
    drv = LaneDriver(dut, {"i_a": np.uint32, "i_b": np.uint32}, "o_result",
                     len(dut.o_result) // 32)
    got = await drv.apply(i_a=a, i_b=b)
    assert np.array_equal(fp32_add_bits(a, b), want), "golden model disagrees with the contract"
    msg = first_mismatch(got, want, a=a, b=b)
    assert msg is None, msg


@cocotb.test()
async def test_selfcheck_corrupted_expectation(dut):
    """The check is live: one flipped bit in one expected sum (a random vector and a
    random bit, seeded) is reported, naming that vector; the uncorrupted check passes."""
    await selfcheck_corrupted_expectation(dut, "o_result", adder_vectors, fp32_add_bits)
