"""Development checks of rtl/fp with Amaranth's Python simulator.

FP8Multiplier: all 65536 code pairs for each of the 4 format pairs (about 9 s each).
FP32Adder: 20k vectors weighted toward specials, subnormals, ties, cancellation and
overflow; its pipelined forms (``stages`` 1-4) on 1.5k each. Both are compared bit-exactly with their golden models
(models.fp8.fp8_product_f32, models.fp32.fp32_add_bits). cocotb tests on Verilator
and Icarus live elsewhere.
"""
import numpy as np
import pytest
from amaranth.hdl import Shape
from amaranth.sim import Simulator

from models.fp32 import fp32_add_bits
from models.fp8 import E4M3, E5M2, FMT_E4M3, FMT_E5M2, fp8_product_f32
from rtl.fp.fp32_add import FP32Adder
from rtl.fp.fp8_mul import FP8Multiplier
from tb.fp.vectors import adder_vectors

SEED = 20260602
SEL = {FMT_E4M3: E4M3, FMT_E5M2: E5M2}


def run_comb(dut, inputs: dict, output, count):
    """Drive ``inputs`` (name -> int array) for ``count`` vectors, read ``output``."""
    got = np.zeros(count, np.uint64)

    async def testbench(ctx):
        ports = {name: getattr(dut, name) for name in inputs}
        last = dict.fromkeys(inputs)
        for i in range(count):
            for name, port in ports.items():
                value = int(inputs[name][i])
                if value != last[name]:         # each set costs a settle: skip repeats
                    ctx.set(port, value)
                    last[name] = value
            got[i] = ctx.get(output)

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    return got


def run_pipe(dut, inputs: dict, output, count, latency):
    """Drive ``inputs`` (name -> int array) one vector per clock cycle and read
    ``output`` ``latency`` cycles after each vector (the pipeline never stalls)."""
    got = np.zeros(count, np.uint64)

    async def testbench(ctx):
        ports = {name: getattr(dut, name) for name in inputs}
        for i in range(count + latency):
            if i < count:
                for name, port in ports.items():
                    ctx.set(port, int(inputs[name][i]))
            if i >= latency:
                got[i - latency] = ctx.get(output)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return got


def assert_bits_equal(got, want, inputs):
    bad = np.flatnonzero(got != want)
    if bad.size:
        i = bad[0]
        where = ", ".join(f"{k}={int(v[i]):#x}" for k, v in inputs.items())
        pytest.fail(f"{bad.size} mismatches; first: {where}: got {int(got[i]):#010x}, "
                    f"want {int(want[i]):#010x}")


def test_signatures():
    mul = FP8Multiplier().signature.members
    assert {k: (v.flow.name, Shape.cast(v.shape).width) for k, v in mul.items()} == {
        "i_a": ("In", 8), "i_fmt_a": ("In", 1), "i_b": ("In", 8), "i_fmt_b": ("In", 1),
        "o_product": ("Out", 32)}
    add = FP32Adder().signature.members
    assert {k: (v.flow.name, Shape.cast(v.shape).width) for k, v in add.items()} == {
        "i_a": ("In", 32), "i_b": ("In", 32), "o_result": ("Out", 32)}


@pytest.mark.parametrize("fmt_a", [FMT_E4M3, FMT_E5M2], ids=["a_e4m3", "a_e5m2"])
@pytest.mark.parametrize("fmt_b", [FMT_E4M3, FMT_E5M2], ids=["b_e4m3", "b_e5m2"])
def test_fp8_multiplier_exhaustive(fmt_a, fmt_b):
    a = np.repeat(np.arange(256, dtype=np.uint8), 256)
    b = np.tile(np.arange(256, dtype=np.uint8), 256)
    inputs = {"i_a": a, "i_b": b, "i_fmt_a": np.full(a.size, fmt_a),
              "i_fmt_b": np.full(a.size, fmt_b)}
    dut = FP8Multiplier()
    got = run_comb(dut, inputs, dut.o_product, a.size)
    want = fp8_product_f32(a, SEL[fmt_a], b, SEL[fmt_b]).view(np.uint32)
    assert_bits_equal(got, want, inputs)


def test_fp8_multiplier_format_switching():
    """Formats change on every vector (the exhaustive test holds them constant)."""
    rng = np.random.default_rng(SEED)
    n = 2000
    inputs = {k: rng.integers(0, 256, n) for k in ("i_a", "i_b")}
    inputs |= {k: rng.integers(0, 2, n) for k in ("i_fmt_a", "i_fmt_b")}
    dut = FP8Multiplier()
    got = run_comb(dut, inputs, dut.o_product, n)
    want = np.array([fp8_product_f32(np.uint8(inputs["i_a"][i]), SEL[inputs["i_fmt_a"][i]],
                                     np.uint8(inputs["i_b"][i]), SEL[inputs["i_fmt_b"][i]])
                     for i in range(n)]).view(np.uint32)
    assert_bits_equal(got, want, inputs)


@pytest.mark.parametrize("part", [0, 1])
def test_fp32_adder_weighted_random(part):
    a, b = adder_vectors(np.random.default_rng([SEED, part]), 10_000)
    inputs = {"i_a": a, "i_b": b}
    dut = FP32Adder()
    got = run_comb(dut, inputs, dut.o_result, a.size)
    assert_bits_equal(got, fp32_add_bits(a, b), inputs)


@pytest.mark.parametrize("a, b, want", [
    (0x3F80_0000, 0xBF80_0000, 0x0000_0000),   # 1 + -1 = +0
    (0x8000_0000, 0x8000_0000, 0x8000_0000),   # -0 + -0 = -0
    (0x8000_0000, 0x0000_0000, 0x0000_0000),   # -0 + +0 = +0
    (0x8000_0001, 0x0000_0000, 0x8000_0001),   # x + 0 = x (subnormal)
    (0x7F80_0000, 0xFF80_0000, 0x7FC0_0000),   # inf - inf = NaN
    (0xFF80_0000, 0x7F7F_FFFF, 0xFF80_0000),   # -inf + max = -inf
    (0xFFC1_2345, 0x3F80_0000, 0x7FC0_0000),   # NaN payloads are not propagated
    (0x7F7F_FFFF, 0x7F7F_FFFF, 0x7F80_0000),   # overflow
    (0x7F7F_FFFF, 0x7300_0000, 0x7F80_0000),   # max + half ulp: tie to even -> inf
    (0x7F7F_FFFF, 0x72FF_FFFF, 0x7F7F_FFFF),   # max + just under half ulp
    (0x0080_0000, 0x8000_0001, 0x007F_FFFF),   # normal - subnormal -> subnormal
    (0x007F_FFFF, 0x0000_0001, 0x0080_0000),   # subnormal + subnormal -> normal
    (0x3F80_0000, 0x3380_0000, 0x3F80_0000),   # 1 + 2**-24: tie to even (down)
    (0x3F80_0001, 0x3380_0000, 0x3F80_0002),   # tie to even (up)
    (0x3F80_0000, 0xB380_0000, 0x3F7F_FFFF),   # 1 - 2**-24 exact (normalises left)
])
def test_fp32_adder_directed(a, b, want):
    assert int(fp32_add_bits(np.uint32(a), np.uint32(b))) == want
    for x, y in ((a, b), (b, a)):
        dut = FP32Adder()
        got = run_comb(dut, {"i_a": [x], "i_b": [y]}, dut.o_result, 1)
        assert int(got[0]) == want, f"{x:#010x} + {y:#010x} -> {int(got[0]):#010x}"


@pytest.mark.parametrize("stages", [1, 2, 3, 4])
def test_fp32_adder_stages(stages):
    """Pipelined adder: bit-exact with the model, one pair per cycle, the sum exactly
    ``stages`` cycles later (directed cases first, then weighted random pairs)."""
    a, b = adder_vectors(np.random.default_rng([SEED, 10 + stages]), 1500)
    a = np.concatenate([np.array([0x3F80_0000, 0x8000_0000, 0x7F80_0000, 0x7F7F_FFFF,
                                  0x0080_0000, 0x3F80_0000], np.uint32), a])
    b = np.concatenate([np.array([0xBF80_0000, 0x8000_0000, 0xFF80_0000, 0x7300_0000,
                                  0x8000_0001, 0xB380_0000], np.uint32), b])
    dut = FP32Adder(stages)
    assert dut.stages == stages
    got = run_pipe(dut, {"i_a": a, "i_b": b}, dut.o_result, a.size, stages)
    assert_bits_equal(got, fp32_add_bits(a, b), {"i_a": a, "i_b": b})
