"""Golden chip model (models/chip.py): dispatch, tokens, barrier/fence/irq/halt, errors.

Expected images are computed here independently (numpy int64 matmuls, byte loops), and
ordering rules are checked under many random legal schedules (policy="random").
"""
import dataclasses

import numpy as np
import pytest

from models.chip import ChipModel, write_ring
from models.config import ConfigError, get_preset
from models.dma import Descriptor, DmaDir, DmaError
from models.isa import (CMD_BYTES, Command, Fault, IsaError, Opcode, Queue, Sram, Token)
from models.tensor_cmd import ErrCode, TensorCmd

TINY = get_preset("tiny")
L, S = DmaDir.LOAD, DmaDir.STORE
R = C = 4


def _soc(**kw):
    return dataclasses.replace(TINY, soc=dataclasses.replace(TINY.soc, **kw))


def _hbm(seed=0):
    return np.random.default_rng(seed).integers(0, 256, TINY.hbm.total_bytes, dtype=np.uint8)


def _tile_gemm(tile, a_addr, w_addr, c_addr, m, **flags):
    """One tile: A (m x 4 int8 at a_addr) @ W (4x4 at w_addr) -> C (m x 4 int32 at c_addr)."""
    return [Command.load(tile, Sram.ACT, Descriptor(L, a_addr, 0, m * R)),
            Command.load(tile, Sram.WEIGHT, Descriptor(L, w_addr, 0, R * C),
                         signal_next=flags.get("signal", 1)),
            Command.compute(tile, TensorCmd.matmul(src=0, w=0, dst=0, m=m),
                            wait_prev=flags.get("wait", 1), signal_next=flags.get("signal", 1)),
            Command.store(tile, Sram.ACC, Descriptor(S, 0, c_addr, m * C * 4),
                          wait_prev=flags.get("wait", 1))]


def _ref_gemm(hbm, a_addr, w_addr, m):
    a = hbm[a_addr:a_addr + m * R].view(np.int8).reshape(m, R).astype(np.int64)
    w = hbm[w_addr:w_addr + R * C].view(np.int8).reshape(R, C).astype(np.int64)
    return ((a @ w) & 0xFFFF_FFFF).astype("<u4").view(np.uint8).reshape(-1)


def test_one_tile_gemm_matches_numpy():
    hbm = _hbm(1)
    res = ChipModel(TINY, hbm).run(_tile_gemm(1, 0x100, 0x200, 0x1000, 8))
    assert res.ok and res.completed == 4 and res.discarded == 0
    want = hbm.copy()
    want[0x1000:0x1000 + 128] = _ref_gemm(hbm, 0x100, 0x200, 8)
    assert np.array_equal(res.hbm, want)        # and nothing else changed
    assert res.tokens.tolist() == [[0] * 4, [0] * 4]
    assert res.stats["load_bytes"] == [0, 48] and res.stats["store_bytes"] == [0, 128]
    assert res.stats["matmul_rows"] == [0, 8] and res.stats["waits"] == [0, 2]


def test_strided_dma_round_trip_matches_byte_loop():
    hbm = _hbm(2)
    ld = Descriptor(L, 0x400, 8, 24, rows=3, planes=2, src_ystride=40, dst_ystride=32,
                    src_zstride=200, dst_zstride=104)
    st = Descriptor(S, 0, 0x2000, 256, rows=1)
    res = ChipModel(TINY, hbm).run([Command.load(0, Sram.ACC, ld, signal_next=1),
                                    Command.sync(0, Queue.COMPUTE, wait_prev=1, signal_next=1),
                                    Command.store(0, Sram.ACC, st, wait_prev=1)])
    assert res.ok
    sram = np.zeros(256, np.uint8)
    for z in range(2):
        for y in range(3):
            for i in range(24):
                sram[8 + z * 104 + y * 32 + i] = hbm[0x400 + z * 200 + y * 40 + i]
    assert np.array_equal(res.hbm[0x2000:0x2100], sram)
    assert np.array_equal(res.hbm[:0x2000], hbm[:0x2000])


def test_wait_blocks_until_signal():
    """The compute is older in the stream than the load it waits for."""
    hbm = _hbm(3)
    prog = [Command.compute(0, TensorCmd.matmul(src=0, w=0, dst=0, m=4), wait_prev=1,
                            signal_next=1),
            Command.load(0, Sram.ACT, Descriptor(L, 0x100, 0, 16)),
            Command.load(0, Sram.WEIGHT, Descriptor(L, 0x200, 0, 16), signal_next=1),
            Command.store(0, Sram.ACC, Descriptor(S, 0, 0x1000, 64), wait_prev=1)]
    res = ChipModel(TINY, hbm).run(prog)
    assert res.ok and [i for i, _, _ in res.trace] == [1, 2, 0, 3]
    assert np.array_equal(res.hbm[0x1000:0x1040], _ref_gemm(hbm, 0x100, 0x200, 4))
    # without the wait the oldest-first schedule multiplies the empty SRAMs
    res = ChipModel(TINY, hbm).run([dataclasses.replace(prog[0], wait_prev=0)] + prog[1:])
    assert res.ok and np.all(res.hbm[0x1000:0x1040] == 0)


@pytest.mark.parametrize("seed", range(12))
def test_two_tiles_random_schedules_agree(seed):
    hbm = _hbm(4)
    prog = _tile_gemm(0, 0x100, 0x200, 0x1000, 8) + _tile_gemm(1, 0x300, 0x400, 0x2000, 12)
    res = ChipModel(TINY, hbm, policy="random", seed=seed).run(prog)
    assert res.ok and res.completed == 8
    assert np.array_equal(res.hbm[0x1000:0x1080], _ref_gemm(hbm, 0x100, 0x200, 8))
    assert np.array_equal(res.hbm[0x2000:0x20C0], _ref_gemm(hbm, 0x300, 0x400, 12))
    pos = {i: k for k, (i, _, _) in enumerate(res.trace)}
    for base in (0, 4):                  # load, load -> compute -> store, per tile
        assert pos[base + 1] < pos[base + 2] < pos[base + 3] and pos[base] < pos[base + 2]


def test_schedules_without_tokens_disagree():
    """The random schedule does reorder: without tokens some seed stores a stale result."""
    hbm = _hbm(4)
    prog = _tile_gemm(0, 0x100, 0x200, 0x1000, 8, wait=0, signal=0)
    want = _ref_gemm(hbm, 0x100, 0x200, 8)
    outs = [np.array_equal(ChipModel(TINY, hbm, policy="random", seed=s).run(prog)
                           .hbm[0x1000:0x1080], want) for s in range(20)]
    assert not all(outs) and any(outs)


def _barrier_prog(barrier: bool):
    """Tile 0 computes C0 and stores it; tile 1 loads C0's first 16 bytes as its A."""
    p = _tile_gemm(0, 0x100, 0x200, 0x1000, 4)
    if barrier:
        p.append(Command.barrier([0, 1]))
    return p + _tile_gemm(1, 0x1000, 0x300, 0x2000, 4)


@pytest.mark.parametrize("seed", range(10))
def test_barrier_orders_tiles(seed):
    hbm = _hbm(5)
    res = ChipModel(TINY, hbm, policy="random", seed=seed).run(_barrier_prog(True))
    assert res.ok and res.completed == 9            # the barrier counts once
    mid = hbm.copy()
    mid[0x1000:0x1040] = _ref_gemm(hbm, 0x100, 0x200, 4)
    assert np.array_equal(res.hbm[0x2000:0x2040], _ref_gemm(mid, 0x1000, 0x300, 4))
    pos = [i for i, _, _ in res.trace]
    assert max(pos.index(i) for i in range(4)) < pos.index(4) < min(pos.index(i)
                                                                    for i in range(5, 9))


def test_without_barrier_some_schedule_reads_stale_data():
    hbm = _hbm(5)
    mid = hbm.copy()
    mid[0x1000:0x1040] = _ref_gemm(hbm, 0x100, 0x200, 4)
    want = _ref_gemm(mid, 0x1000, 0x300, 4)
    good = [np.array_equal(ChipModel(TINY, hbm, policy="random", seed=s)
                           .run(_barrier_prog(False)).hbm[0x2000:0x2040], want) for s in range(20)]
    assert not all(good)


@pytest.mark.parametrize("seed", range(6))
def test_fence_irq_halt(seed):
    hbm = _hbm(6)
    prog = (_tile_gemm(0, 0x100, 0x200, 0x1000, 4) + [Command.irq(11), Command.nop()]
            + _tile_gemm(1, 0x300, 0x400, 0x2000, 4) + [Command.fence(), Command.irq(22),
                                                        Command.halt()]
            + _tile_gemm(0, 0x500, 0x600, 0x3000, 4))
    res = ChipModel(TINY, hbm, policy="random", seed=seed).run(prog, base=0x4000)
    assert res.ok and res.halted and res.irqs == [11, 22]
    assert res.completed == 13 and res.head == 13 and res.discarded == 0
    pos = [i for i, _, _ in res.trace]
    assert pos.index(4) > max(pos.index(i) for i in range(4))           # IRQ fences
    assert pos.index(10) > max(pos.index(i) for i in range(4, 10))      # FENCE
    assert pos[-3:] == [10, 11, 12]
    assert np.all(res.hbm[0x3000:0x3040] == hbm[0x3000:0x3040])         # after HALT


def test_illegal_command_stops_dispatch_and_drains():
    hbm = _hbm(7)
    prog = _tile_gemm(0, 0x100, 0x200, 0x1000, 4)[:3] + [
        Command.compute(5, TensorCmd.matmul(src=0, w=0, dst=0, m=4)),       # bad tile
        Command.store(0, Sram.ACC, Descriptor(S, 0, 0x1000, 64), wait_prev=1)]
    res = ChipModel(TINY, hbm).run(prog, base=0x6000)
    assert res.error == Fault(IsaError.BAD_TILE) and res.error_addr == 0x6000 + 3 * CMD_BYTES
    assert res.completed == 3 and res.head == 3 and res.discarded == 0
    assert np.array_equal(res.hbm, hbm)             # the store after it never ran
    # a queued command waiting for a token that only a later command would give: dropped
    prog = [Command.sync(1, Queue.STORE, wait_prev=1), Command(Opcode(7), tile=1),
            Command.sync(1, Queue.COMPUTE, signal_next=1)]
    res = ChipModel(TINY, hbm).run(prog)
    assert res.error == Fault(IsaError.BAD_FIELD) and res.error_addr == CMD_BYTES
    assert res.completed == 0 and res.discarded == 1


def test_tensor_and_dma_faults_carry_detail():
    res = ChipModel(TINY).run([Command.nop(), Command.compute(
        0, TensorCmd.matmul(src=0, w=1021, dst=0, m=4))])
    assert res.error == Fault(IsaError.TENSOR, ErrCode.WEIGHT_RANGE) and res.completed == 1
    res = ChipModel(TINY, win_limit=0x1000).run([Command.load(
        0, Sram.ACT, Descriptor(L, 0x0FF8, 0, 16))])
    assert res.error == Fault(IsaError.DMA, DmaError.WINDOW) and res.error_addr == 0


def test_watchdog_names_the_oldest_waiting_head():
    prog = [Command.sync(0, Queue.COMPUTE, signal_next=1),
            Command.sync(1, Queue.STORE, wait_prev=1),             # never signalled
            Command.sync(0, Queue.STORE, wait_prev=1),
            Command.sync(0, Queue.COMPUTE, wait_prev=1)]           # never signalled
    res = ChipModel(TINY).run(prog, base=0x100)
    assert res.error == Fault(IsaError.WATCHDOG, Queue.STORE)
    assert res.error_addr == 0x100 + CMD_BYTES
    assert res.completed == 2 and res.discarded == 2 and res.head == 4


def test_queue_depth_stalls_dispatch():
    """Load queue of depth 1: a waiting load blocks the dispatcher before the compute
    command that would signal it -> watchdog; depth 2 lets the signal through."""
    prog = [Command.sync(0, Queue.LOAD, wait_next=1), Command.sync(0, Queue.LOAD),
            Command.sync(0, Queue.COMPUTE, signal_prev=1)]
    res = ChipModel(_soc(load_depth=1)).run(prog)
    assert res.error == Fault(IsaError.WATCHDOG, Queue.LOAD) and res.error_addr == 0
    assert res.head == 1 and res.discarded == 1       # the second load never got in
    assert ChipModel(_soc(load_depth=2)).run(prog).ok
    # a barrier of another tile does not hold tile 0 back; one of tile 0 orders the
    # signal after the wait, which can then never be satisfied
    for tiles, ok in (([1], True), ([0], False), ([0, 1], False)):
        prog = [Command.sync(0, Queue.LOAD, wait_next=1), Command.barrier(tiles),
                Command.sync(0, Queue.COMPUTE, signal_prev=1)]
        res = ChipModel(_soc(load_depth=2)).run(prog)
        assert res.ok == ok and res.completed == (3 if ok else 0)


def test_token_overflow():
    prog = [Command.sync(0, Queue.LOAD, signal_next=1)] * 4
    res = ChipModel(_soc(token_bits=2)).run(prog, base=0x40)
    assert res.error == Fault(IsaError.TOKEN_OVERFLOW, Token.L2C)
    assert res.error_addr == 0x40 + 3 * CMD_BYTES and res.completed == 3
    assert res.tokens[0].tolist() == [3, 0, 0, 0]
    both = [Command.sync(1, Queue.COMPUTE, signal_prev=1)] * 3 + [
        Command.sync(1, Queue.COMPUTE, signal_next=1, signal_prev=1)]
    res = ChipModel(_soc(token_bits=2)).run(both)
    assert res.error == Fault(IsaError.TOKEN_OVERFLOW, Token.C2L)
    assert res.tokens[1].tolist() == [0, 3, 0, 0]           # neither counter signalled
    assert ChipModel(_soc(token_bits=3)).run(prog).ok


def test_ring_wraps_and_reads_hbm():
    hbm = _hbm(8)
    base, entries = 0x6000, 8
    prog = _tile_gemm(1, 0x100, 0x200, 0x1000, 4) + [Command.irq(5)]
    ring = np.zeros(entries * CMD_BYTES, np.uint8)
    for k, cmd in enumerate(prog):             # entries 6, 7, 0, 1, 2
        e = (6 + k) % entries
        ring[e * CMD_BYTES:(e + 1) * CMD_BYTES] = np.frombuffer(cmd.to_bytes(), np.uint8)
    hbm[base:base + ring.size] = ring
    res = ChipModel(TINY, hbm).run_ring(base, entries, 6, 3)
    assert res.ok and res.irqs == [5] and res.completed == 5 and res.head == 3
    assert np.array_equal(res.hbm[0x1000:0x1040], _ref_gemm(hbm, 0x100, 0x200, 4))
    # an entry never written (zeros) is illegal, reported at its address
    hbm[base + 1 * CMD_BYTES:base + 2 * CMD_BYTES] = 0
    res = ChipModel(TINY, hbm).run_ring(base, entries, 6, 3)
    assert res.error == Fault(IsaError.BAD_OPCODE) and res.error_addr == base + CMD_BYTES
    assert res.head == 1 and res.completed == 3
    with pytest.raises(ValueError, match=r"head 8 and tail 0 must be in \[0, 8\)"):
        ChipModel(TINY).run_ring(base, entries, 8, 0)
    with pytest.raises(ValueError, match="leaves HBM"):
        ChipModel(TINY).run_ring(TINY.hbm.total_bytes - 64, 2, 0, 1)


def test_write_ring():
    hbm = np.zeros(TINY.hbm.total_bytes, np.uint8)
    assert write_ring(hbm, 128, [Command.nop(), Command.halt()]) == 2
    assert hbm[128] == Opcode.NOP and hbm[192] == Opcode.HALT and hbm[256] == 0


def test_slverr_store_lands_only_outside_the_fault():
    hbm = _hbm(9)
    sram_data = _hbm(10)[:512]
    prog = [Command.load(0, Sram.ACC, Descriptor(L, 0x3000, 0, 512), signal_next=1),
            Command.sync(0, Queue.COMPUTE, wait_prev=1, signal_next=1),
            Command.store(0, Sram.ACC, Descriptor(S, 0, 0x1000, 512), wait_prev=1)]
    hbm[0x3000:0x3200] = sram_data
    # bursts of 128 bytes (16 beats x 8): the fault [0x1090, 0x1091) poisons 0x1080..0x10FF
    res = ChipModel(TINY, hbm, faults=[(0x1090, 0x1091)]).run(prog, base=0x100)
    assert res.error == Fault(IsaError.DMA_FAULT, DmaError.SLVERR)
    assert res.error_addr == 0x100 + 2 * CMD_BYTES and res.completed == 2
    want = hbm.copy()
    want[0x1000:0x1080] = sram_data[:0x80]
    want[0x1100:0x1200] = sram_data[0x100:]
    assert np.array_equal(res.hbm, want)
    res = ChipModel(TINY, hbm, faults=[(0x31F0, 0x3400)]).run(prog)
    assert res.error == Fault(IsaError.DMA_FAULT, DmaError.SLVERR) and res.completed == 0


def test_constructor_errors():
    with pytest.raises(ValueError, match="hbm must be a uint8 array of hbm.total_bytes = 32768"):
        ChipModel(TINY, np.zeros(100, np.uint8))
    with pytest.raises(ValueError, match="hbm must be a uint8 array"):
        ChipModel(TINY, np.zeros(TINY.hbm.total_bytes, np.int16))
    with pytest.raises(ValueError, match="policy must be 'oldest' or 'random', got 'lifo'"):
        ChipModel(TINY, policy="lifo")
    bad = dataclasses.replace(TINY, noc=dataclasses.replace(TINY.noc, cols=2, rows=2))
    with pytest.raises(ConfigError, match="is not a valid chip: soc places tile 1 on node 7"):
        ChipModel(bad)
    hbm = _hbm(0)
    m = ChipModel(TINY, hbm)
    m.hbm[0] ^= 1
    assert hbm[0] != m.hbm[0]                       # the model works on a copy
    assert m.sram(1, Sram.ACC).size == 16384 and m.sram(0, Sram.ACT).size == 4096
