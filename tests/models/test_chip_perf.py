"""Roofline model (models/chip_perf.py) against streams counted by hand."""
import dataclasses

import pytest

from models.chip_perf import gemm_roofline, peaks, stream_roofline
from models.compiler import gemm_program, plan_gemm
from models.config import get_preset
from models.dma import Descriptor, DmaDir
from models.isa import Command, Opcode, Sram
from models.tensor_cmd import TensorCmd, Unit, VecOp
from models.vector import vector_latency

TINY, DEFAULT = get_preset("tiny"), get_preset("default")
L, S = DmaDir.LOAD, DmaDir.STORE


def test_peaks():
    assert dataclasses.astuple(peaks(TINY)) == (2 * 16, 2 * 8, 8)
    assert dataclasses.astuple(peaks(DEFAULT)) == (4 * 256, 4 * 16, 16)
    assert dataclasses.astuple(peaks(get_preset("jalapeno"))) == (16 * 64 * 64, 16 * 32, 32)


def test_stream_counted_by_hand():
    # tiny: W = 8 bytes, 16-beat bursts (128 bytes), interleave 1024 over 2 channels,
    # 8 bytes/cycle per channel, R = C = 4
    cmds = [
        Command.load(0, Sram.ACT, Descriptor(L, 0, 0, 128)),          # 1 burst, ch 0
        Command.load(0, Sram.WEIGHT, Descriptor(L, 1024 + 120, 0, 16)),  # 2 bursts, ch 1
        Command.compute(0, TensorCmd.matmul(src=0, w=0, dst=0, m=10)),  # 10 cycles
        Command.compute(0, TensorCmd.matmul(src=0, w=0, dst=0, m=2)),   # max(2, R) = 4
        Command.compute(1, TensorCmd.vector(VecOp.RELU, src=0, dst=0, count=30)),
        Command.store(1, Sram.ACC, Descriptor(S, 0, 1024, 256)),        # 2 bursts, ch 1
        Command.nop(), Command.fence(),
    ]
    r = stream_roofline(TINY, cmds)
    assert r.macs == 12 * 16
    # tile 1's vector rows and the vector unit's pipeline (one command at a time)
    assert r.compute_cycles == 30 + vector_latency(4)
    # tile 0 ejects 17 + (1 + 1) + (1 + 1) flits; tile 1 injects 2 x 17
    assert r.noc_cycles == 34
    # channel 1: 1 + 1 beats of the weight load + 32 beats of the store
    assert r.hbm_cycles == 34 * 8 / 8
    assert r.hbm_bytes == 128 + 16 + 256
    assert r.bound_cycles == 30 + vector_latency(4) and r.limiter == "compute"
    assert r.utilization(TINY, 100) == 12 * 16 / (32 * 100)
    # without the vector command: tile 0's 10 + 4 cycles, and a tie names the first
    r = stream_roofline(TINY, [c for c in cmds if c.opcode != Opcode.TENSOR
                               or c.tensor.unit == Unit.MATMUL])
    assert r.compute_cycles == 14
    assert r.bound_cycles == 34 and r.limiter == "hbm"
    assert r.as_dict()["limiter"] == "hbm"


def test_limiters():
    mm = Command.compute(1, TensorCmd.matmul(src=0, w=0, dst=0, m=500))
    assert stream_roofline(TINY, [mm]).limiter == "compute"
    big = Command.load(0, Sram.ACC, Descriptor(L, 0, 0, 4096))    # 32 bursts, 2 channels
    r = stream_roofline(TINY, [big])
    assert r.noc_cycles == 32 * 17 and r.hbm_cycles == 256 and r.limiter == "noc"
    slow = dataclasses.replace(TINY, hbm=dataclasses.replace(TINY.hbm, bytes_per_cycle=1))
    assert stream_roofline(slow, [big]).limiter == "hbm"
    assert stream_roofline(slow, [big]).hbm_cycles == 2048
    empty = stream_roofline(TINY, [])
    assert empty.bound_cycles == 0 and empty.macs == 0


@pytest.mark.parametrize("preset, shape", [("tiny", (40, 33, 21)), ("default", (256, 256, 256))])
def test_compiled_stream_vs_shape_bound(preset, shape):
    """A compiled GEMM never beats the shape bound and moves at least its operands."""
    cfg = get_preset(preset)
    plan = plan_gemm(cfg, *shape)
    s, g = stream_roofline(cfg, gemm_program(plan)), gemm_roofline(cfg, *shape)
    m, k, n = shape
    assert s.macs >= g.macs and s.hbm_bytes >= g.hbm_bytes
    assert s.bound_cycles >= g.compute_cycles
    assert s.macs == plan.nmb * plan.mb * plan.kt * plan.nt * cfg.systolic.peak_macs_per_cycle
