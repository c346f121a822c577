# amaranth: UnusedElaboratable=no
"""Development checks of the vector unit's helpers with Amaranth's Python simulator:
FP32Multiplier, ExpApprox, RecipApprox, Int2F32, F32ToInt8, F32ToBF16, FP8Encoder,
FP8Decoder, Requant, FMax, RowMax, RowSum — each against its function in
``models.vector`` / ``models.fp8`` on specials plus a few thousand weighted random
vectors, combinational (``stages=0``) and pipelined (one vector per cycle, the result
exactly ``stages`` cycles later). The whole unit is tested in cocotb
(tests/sim/test_vector_sim.py).
"""
import numpy as np
import pytest
from amaranth.hdl import Shape
from amaranth.sim import Simulator

from models.fp8 import E4M3, E5M2, decode, encode
from models.vector import (
    exp_approx, fmax, fmul, i2f, recip_approx, requant, row_max, row_sum, to_bf16, to_int8)
from rtl.fp.fp32_mul import FP32Multiplier
from rtl.fp.fp8_enc import FP8Encoder
from rtl.vector.convert import F32ToBF16, F32ToInt8, FP8Decoder, Int2F32
from rtl.vector.exp import ExpApprox
from rtl.vector.recip import RecipApprox
from rtl.vector.reduce import FMax, RowMax, RowSum
from rtl.vector.requant import Requant
from tb.vector.vectors import SPECIALS, mul_vectors
from tests.rtl.test_fp_units_amaranth import assert_bits_equal, run_comb, run_pipe

SEED = 20260604


def _values(n=1500):
    """binary32 patterns: specials, uniform bits, softmax-range negatives, tiny
    negatives, and moderate values of both signs."""
    rng = np.random.default_rng(SEED)
    return np.concatenate([
        SPECIALS, rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32),
        (-rng.uniform(0, 100, n)).astype(np.float32).view(np.uint32),
        (-rng.uniform(0, 1e-3, n // 10)).astype(np.float32).view(np.uint32),
        rng.uniform(-300, 300, n).astype(np.float32).view(np.uint32)])


def _check(dut, inputs, out, want):
    n = len(next(iter(inputs.values())))
    got = run_comb(dut, inputs, out, n)
    assert_bits_equal(got, np.asarray(want).astype(np.uint64), inputs)


def test_fp32_multiplier_signature():
    mul = FP32Multiplier().signature.members
    assert {k: (v.flow.name, Shape.cast(v.shape).width) for k, v in mul.items()} == {
        "i_a": ("In", 32), "i_b": ("In", 32), "o_product": ("Out", 32)}


def test_fp32_multiplier():
    a, b = mul_vectors(np.random.default_rng(SEED), 1200)
    dut = FP32Multiplier()
    _check(dut, {"i_a": a, "i_b": b}, dut.o_product,
           fmul(a.view(np.float32), b.view(np.float32)).view(np.uint32))


@pytest.mark.parametrize("unit, model", [(ExpApprox, exp_approx), (RecipApprox, recip_approx)],
                         ids=["exp", "recip"])
def test_table_functions(unit, model):
    x = _values()
    dut = unit()
    _check(dut, {"i_a": x}, dut.o_result, model(x.view(np.float32)).view(np.uint32))


def test_int_to_f32():
    x = _values()
    dut = Int2F32(32)
    _check(dut, {"i_a": x}, dut.o_result, i2f(x).view(np.uint32))
    c = np.arange(256)
    dut = Int2F32(8)
    _check(dut, {"i_a": c}, dut.o_result,
           i2f(c.astype(np.uint8).view(np.int8).astype(np.int32)).view(np.uint32))


def test_to_int8_and_bf16():
    x = _values()
    dut = F32ToInt8()
    _check(dut, {"i_a": x}, dut.o_result, to_int8(x.view(np.float32)).view(np.uint8))
    dut = F32ToBF16()
    _check(dut, {"i_a": x}, dut.o_result, to_bf16(x.view(np.float32)))


@pytest.mark.parametrize("sel, fmt", [(0, E4M3), (1, E5M2)], ids=["e4m3", "e5m2"])
def test_fp8_encode_decode(sel, fmt):
    x = _values(800)
    dut = FP8Encoder()
    _check(dut, {"i_a": x, "i_fmt": np.full(x.size, sel)}, dut.o_code,
           encode(x.view(np.float32), fmt))
    c = np.arange(256)
    dut = FP8Decoder()
    _check(dut, {"i_code": c, "i_fmt": np.full(256, sel)}, dut.o_result,
           decode(c, fmt).view(np.uint32))


def test_requant():
    rng = np.random.default_rng(SEED + 1)
    n = 2000
    acc = np.concatenate([rng.integers(-(1 << 31), 1 << 31, n // 2),
                          rng.integers(-5000, 5000, n // 2)]).astype(np.int64)
    mult = rng.integers(1 << 30, 1 << 31, n).astype(np.int64)
    shift = rng.integers(-40, 40, n)
    shift[: n // 2] = rng.integers(-12, 3, n // 2)
    mult[:4] = [-(2**31), 1 << 30, (1 << 31) - 1, 1 << 30]
    acc[:4] = [-(2**31), -(2**31), -(2**31), -1]
    dut = Requant()
    _check(dut, {"i_acc": acc & 0xFFFF_FFFF, "i_mult": mult & 0xFFFF_FFFF,
                 "i_shift": shift & 0xFFFF_FFFF},
           dut.o_result, requant(acc, mult, shift).view(np.uint8))


@pytest.mark.parametrize("lanes", [3, 4])
def test_reductions(lanes):
    rng = np.random.default_rng(SEED + lanes)
    pool = np.concatenate([SPECIALS, rng.standard_normal(60).astype(np.float32).view(np.uint32)])
    pair = rng.choice(pool, (800, 2)).astype(np.uint32)
    dut = FMax()
    _check(dut, {"i_a": pair[:, 0], "i_b": pair[:, 1]}, dut.o_result,
           fmax(pair[:, 0].view(np.float32), pair[:, 1].view(np.float32)).view(np.uint32))
    rows = rng.choice(pool, (500, lanes)).astype(np.uint32)
    packed = [int.from_bytes(r.tobytes(), "little") for r in rows]
    dut = RowMax(lanes)
    _check(dut, {"i_a": packed}, dut.o_result, row_max(rows.view(np.float32)).view(np.uint32))
    dut = RowSum(lanes)
    _check(dut, {"i_a": packed}, dut.o_result, row_sum(rows.view(np.float32)).view(np.uint32))


def _check_pipe(dut, inputs, out, want, latency):
    n = len(next(iter(inputs.values())))
    got = run_pipe(dut, inputs, out, n, latency)
    assert_bits_equal(got, np.asarray(want).astype(np.uint64), inputs)


@pytest.mark.parametrize("stages", [1, 2, 3, 4, 5])
def test_fp32_multiplier_stages(stages):
    """Pipelined multiplier: bit-exact with the model, result ``stages`` cycles later."""
    a, b = mul_vectors(np.random.default_rng(SEED + stages), 600)
    dut = FP32Multiplier(stages)
    assert dut.stages == stages
    _check_pipe(dut, {"i_a": a, "i_b": b}, dut.o_product,
                fmul(a.view(np.float32), b.view(np.float32)).view(np.uint32), stages)


def test_stage_parameters_are_checked():
    for bad in (-1, 6, "3"):
        with pytest.raises(ValueError, match="FP32Multiplier stages must be 0..5"):
            FP32Multiplier(bad)
    with pytest.raises(ValueError, match="ExpApprox stages"):
        ExpApprox(2)
    with pytest.raises(ValueError, match="RecipApprox stages"):
        RecipApprox(1)
    with pytest.raises(ValueError, match="Int2F32 stages"):
        Int2F32(32, stages=3)
    with pytest.raises(ValueError, match="F32ToInt8 stages"):
        F32ToInt8(stages=2)
    with pytest.raises(ValueError, match="Requant stages"):
        Requant(stages=1)


@pytest.mark.parametrize("unit, model", [(ExpApprox, exp_approx), (RecipApprox, recip_approx)],
                         ids=["exp", "recip"])
def test_table_functions_pipelined(unit, model):
    x = _values(400)
    dut = unit(unit.PIPELINED)
    _check_pipe(dut, {"i_a": x}, dut.o_result, model(x.view(np.float32)).view(np.uint32),
                unit.PIPELINED)


@pytest.mark.parametrize("stages", [1, 2])
def test_conversions_pipelined(stages):
    x = _values(400)
    dut = Int2F32(32, stages=stages)
    _check_pipe(dut, {"i_a": x}, dut.o_result, i2f(x).view(np.uint32), stages)
    c = np.arange(256)
    dut = Int2F32(8, stages=stages)
    _check_pipe(dut, {"i_a": c}, dut.o_result,
                i2f(c.astype(np.uint8).view(np.int8).astype(np.int32)).view(np.uint32), stages)
    if stages == 1:
        dut = F32ToInt8(stages=1)
        _check_pipe(dut, {"i_a": x}, dut.o_result, to_int8(x.view(np.float32)).view(np.uint8), 1)


def test_requant_pipelined():
    rng = np.random.default_rng(SEED + 2)
    n = 600
    acc = rng.integers(-(1 << 31), 1 << 31, n).astype(np.int64)
    mult = rng.integers(1 << 30, 1 << 31, n).astype(np.int64)
    shift = rng.integers(-40, 40, n)
    mult[:2], acc[:2] = [-(2**31), -(2**31)], [-(2**31), -1]
    dut = Requant(stages=Requant.PIPELINED)
    _check_pipe(dut, {"i_acc": acc & 0xFFFF_FFFF, "i_mult": mult & 0xFFFF_FFFF,
                      "i_shift": shift & 0xFFFF_FFFF},
                dut.o_result, requant(acc, mult, shift).view(np.uint8), Requant.PIPELINED)


@pytest.mark.parametrize("lanes", [3, 4])
def test_reductions_pipelined(lanes):
    rng = np.random.default_rng(SEED + 10 + lanes)
    pool = np.concatenate([SPECIALS, rng.standard_normal(60).astype(np.float32).view(np.uint32)])
    rows = rng.choice(pool, (300, lanes)).astype(np.uint32)
    packed = [int.from_bytes(r.tobytes(), "little") for r in rows]
    dut = RowMax(lanes, pipelined=True)
    assert dut.latency == 2
    _check_pipe(dut, {"i_a": packed}, dut.o_result,
                row_max(rows.view(np.float32)).view(np.uint32), dut.latency)
    dut = RowSum(lanes, pipelined=True)
    assert dut.latency == 2 * 5
    _check_pipe(dut, {"i_a": packed}, dut.o_result,
                row_sum(rows.view(np.float32)).view(np.uint32), dut.latency)


@pytest.mark.parametrize("sel, fmt", [(0, E4M3), (1, E5M2)], ids=["e4m3", "e5m2"])
def test_fp8_encode_pipelined(sel, fmt):
    x = _values(400)
    dut = FP8Encoder(stages=1)
    _check_pipe(dut, {"i_a": x, "i_fmt": np.full(x.size, sel)}, dut.o_code,
                encode(x.view(np.float32), fmt), 1)


def _packed(cmd) -> int:
    """A TensorCmd as the bits of ``rtl.formats.tensor_cmd_layout()`` (LSB first)."""
    from models.tensor_cmd import FIELD_BITS
    v, lo = 0, 0
    for name in type(cmd).__dataclass_fields__:
        v |= (int(getattr(cmd, name)) & ((1 << FIELD_BITS[name]) - 1)) << lo
        lo += FIELD_BITS[name]
    return v


def test_cmd_check_vector_rules():
    """``rtl.tensor.check.CmdCheck`` == ``models.tensor_cmd.check`` on random VECTOR
    commands of every op code (0..15: STATE_STORE's FP32-to-accumulator rule, its
    unchecked ``src``, STATE_MERGE's unchecked ``dst``, TOPK's INT8 ids, STATE_LOAD's
    lane), formats, destinations and ranges near the SRAM limits."""
    from models.config import get_preset
    from models.tensor_cmd import TensorCmd, check
    from rtl.tensor.check import CmdCheck
    cfg = get_preset("tiny")
    rng = np.random.default_rng(SEED)
    rows = cfg.tensor.acc_rows
    cmds = []
    for _ in range(3000):
        near = lambda: int(rng.choice([rng.integers(0, rows), rows - rng.integers(0, 8),  # noqa: E731
                                       rng.integers(rows, 1 << 16)]))
        cmds.append(TensorCmd(unit=1, op=int(rng.integers(0, 16)), src=near(), src2=near(),
                              dst=near(), state=near(), count=int(rng.integers(0, 12)),
                              out_fmt=int(rng.integers(0, 8)), dst_act=int(rng.integers(0, 2)),
                              bias=int(rng.integers(0, 2)), bscale=int(rng.integers(0, 2)),
                              k_base=int(rng.integers(0, 8))))
    want = np.array([int(check(c, cfg)) for c in cmds], np.uint64)
    dut = CmdCheck(cfg)
    got = np.zeros(len(cmds), np.uint64)

    async def testbench(ctx):
        for i, c in enumerate(cmds):
            ctx.set(dut.i_cmd.as_value(), _packed(c))
            got[i] = ctx.get(dut.o_code)

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    bad = np.flatnonzero(got != want)
    assert not bad.size, [(cmds[i], int(got[i]), int(want[i])) for i in bad[:3]]
    assert len(set(want.tolist())) >= 5, set(want.tolist())     # the rules are exercised
