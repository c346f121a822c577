"""cocotb tests of FP32Multiplier through :class:`tb.vector.harness.FP32MulHarness`.

Golden model: ``models.vector.fmul`` (numpy float32 multiply, canonical NaN), which
tests/models/test_vector_model.py checks against float64 products rounded once.
Vectors: :func:`tb.vector.vectors.mul_vectors` (all pairs of specials, uniform bit
patterns, products at the subnormal and overflow edges, subnormal operands, short
significands for exact products and ties), both operand orders.
"""
import cocotb
import numpy as np

from models.vector import fmul
from tb.common.clocked import tier
from tb.fp.lanes import LaneDriver, first_mismatch, selfcheck_corrupted_expectation
from tb.vector.vectors import mul_vectors

_COUNTS = {("verilator", "smoke"): 50_000, ("verilator", "full"): 500_000,
           ("verilator", "nightly"): 5_000_000, ("icarus", "smoke"): 30_000,
           ("icarus", "full"): 100_000, ("icarus", "nightly"): 1_000_000}


def _count() -> int:
    sim = "verilator" if "verilator" in cocotb.SIM_NAME.lower() else "icarus"
    return _COUNTS[sim, tier()]


def _fmul_bits(a, b):
    return fmul(a.view(np.float32), b.view(np.float32)).view(np.uint32)


@cocotb.test()
async def test_weighted_random_products(dut):
    """Weighted random binary32 products, bit-exact against the model."""
    rng = np.random.default_rng(cocotb.RANDOM_SEED)
    drv = LaneDriver(dut, {"i_a": np.uint32, "i_b": np.uint32}, "o_product",
                     len(dut.o_product) // 32)
    total, target = 0, _count()
    while total < target:
        a, b = mul_vectors(rng, min(60_000, target - total))
        got = await drv.apply(i_a=a, i_b=b)
        msg = first_mismatch(got, _fmul_bits(a, b), a=a, b=b)
        assert msg is None, f"after {total} good products: {msg}"
        total += a.size
    dut._log.info("%d products bit-exact", total)


@cocotb.test()
async def test_directed_rules(dut):
    """Named cases of the contract, both operand orders."""
    cases = [
        (0x3F80_0000, 0x3F80_0000, 0x3F80_0000),   # 1 * 1
        (0x8000_0000, 0x4040_0000, 0x8000_0000),   # -0 * 3 = -0
        (0x7F80_0000, 0x0000_0000, 0x7FC0_0000),   # inf * 0 = NaN
        (0xFF80_0000, 0x3F80_0000, 0xFF80_0000),   # -inf * 1
        (0xFFC1_2345, 0x3F80_0000, 0x7FC0_0000),   # NaN payload dropped
        (0x7F7F_FFFF, 0x4000_0000, 0x7F80_0000),   # overflow -> inf
        (0x0080_0000, 0x3F00_0000, 0x0040_0000),   # normal -> subnormal, exact
        (0x0000_0001, 0x3F00_0000, 0x0000_0000),   # 2**-150: tie to even -> +0
        (0x0000_0003, 0x3F00_0000, 0x0000_0002),   # 1.5 ulp: tie to even -> 2
        (0x0000_0001, 0x3F40_0000, 0x0000_0001),   # 0.75 ulp -> 1
        (0x0000_0001, 0x4B00_0000, 0x0080_0000),   # subnormal * 2**23 -> smallest normal
        (0x3F80_0001, 0x3F80_0001, 0x3F80_0002),   # (1+u)^2 rounds to 1+2u
    ]
    a = np.array([c[0] for c in cases] + [c[1] for c in cases], np.uint32)
    b = np.array([c[1] for c in cases] + [c[0] for c in cases], np.uint32)
    want = np.array([c[2] for c in cases] * 2, np.uint32)
    assert np.array_equal(_fmul_bits(a, b), want), "golden model disagrees with the contract"
    drv = LaneDriver(dut, {"i_a": np.uint32, "i_b": np.uint32}, "o_product",
                     len(dut.o_product) // 32)
    msg = first_mismatch(await drv.apply(i_a=a, i_b=b), want, a=a, b=b)
    assert msg is None, msg


@cocotb.test()
async def test_selfcheck_corrupted_expectation(dut):
    """The check is live: one flipped bit in one expected product (a random vector and a
    random bit, seeded) is reported, naming that vector; the uncorrupted check passes."""
    await selfcheck_corrupted_expectation(dut, "o_product", mul_vectors, _fmul_bits)
