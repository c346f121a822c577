"""The command set (models/isa.py): memory image, legality check, C header.

Images are checked against packings written out here by hand (shifts and struct.pack),
never against the table they come from; the generated C header packs the same commands
and must produce the same bytes.
"""
import random
import shutil
import struct
import subprocess

import pytest

from models.config import get_preset
from models.dma import Descriptor, DmaDir, DmaError
from models.isa import (CMD_BYTES, PAYLOAD_OFFSET, Command, Fault, IsaError, Opcode, Queue,
                        Sram, check, decode_ring, error_word, ring_image, sram_bytes)
from models.tensor_cmd import ErrCode, TensorCmd, VecOp

TINY = get_preset("tiny")
L, S = DmaDir.LOAD, DmaDir.STORE


def _hdr_words(c: Command) -> bytes:
    w0 = (c.opcode | c.tile << 8 | c.sram << 16 | c.queue << 18 | c.wait_prev << 24 |
          c.wait_next << 25 | c.signal_prev << 26 | c.signal_next << 27)
    return struct.pack("<IIII", w0, c.arg, 0, 0)


def _desc_struct(d: Descriptor) -> bytes:
    return struct.pack("<BBHIIIHHIIIII", d.dir, d.tag, 0, d.src, d.dst, d.row_bytes, d.rows,
                       d.planes, d.src_ystride, d.dst_ystride, d.src_zstride, d.dst_zstride, 0)


def _tc_words(c: TensorCmd) -> bytes:
    w0 = (c.unit | c.op << 4 | c.out_fmt << 8 | c.accumulate << 16 | c.fp8 << 17 |
          c.fmt_a << 18 | c.fmt_w << 19 | c.in_int << 20 | c.bias << 21 | c.dst_act << 22 |
          c.causal << 23 | c.pad << 24)
    return struct.pack("<8I", w0, c.src | c.src2 << 16, c.dst | c.count << 16,
                       c.state | c.q_base << 16, c.k_base | c.kv_len << 16, c.imm, c.imm2, 0)


def _hand_image(c: Command) -> bytes:
    payload = b""
    if c.desc is not None:
        payload = _desc_struct(c.desc)
    elif c.tensor is not None:
        payload = _tc_words(c.tensor)
    img = _hdr_words(c) + payload
    return img + bytes(64 - len(img))


def _rand_command(rng: random.Random) -> Command:
    op = rng.choice([o for o in Opcode if o != Opcode.DISPATCH])   # test_moe_dispatch
    kw = dict(tile=rng.getrandbits(8), sram=rng.getrandbits(2), queue=rng.getrandbits(2),
              arg=rng.getrandbits(32), **{f: rng.getrandbits(1) for f in
                                          ("wait_prev", "wait_next", "signal_prev",
                                           "signal_next")})
    if op in (Opcode.DMA_LOAD, Opcode.DMA_STORE):
        kw["desc"] = Descriptor(rng.getrandbits(1), *(rng.getrandbits(32) for _ in range(3)),
                                rng.getrandbits(16), rng.getrandbits(16),
                                *(rng.getrandbits(32) for _ in range(4)),
                                tag=rng.getrandbits(8))
    if op == Opcode.TENSOR:
        kw["tensor"] = TensorCmd(unit=rng.getrandbits(1), op=rng.getrandbits(4),
                                 src=rng.getrandbits(16), count=rng.getrandbits(16),
                                 out_fmt=rng.getrandbits(3), pad=1, imm=rng.getrandbits(32))
    return Command(op, **kw)


@pytest.mark.parametrize("seed", range(30))
def test_image_matches_hand_packing(seed):
    c = _rand_command(random.Random(seed))
    img = c.to_bytes()
    assert len(img) == CMD_BYTES == 64 and PAYLOAD_OFFSET == 16
    assert img == _hand_image(c)
    assert Command.from_bytes(img) == c


def test_image_reserved_bits_and_unused_payload_ignored():
    c = Command.load(1, Sram.WEIGHT, Descriptor(L, 0x40, 0x80, 64), signal_next=1)
    noisy = bytearray(c.to_bytes())
    noisy[0x02] |= 0xF0                      # bits 20..23 of word 0 are reserved
    noisy[0x03] |= 0xF0                      # bits 28..31
    noisy[0x08:0x10] = b"\x5a" * 8           # reserved words
    noisy[0x38:0x40] = b"\xff" * 8           # past the descriptor
    assert Command.from_bytes(bytes(noisy)) == c
    fence = bytearray(Command.fence().to_bytes())
    fence[0x10:0x40] = bytes(range(0x30))    # a FENCE's payload is reserved
    assert Command.from_bytes(bytes(fence)) == Command.fence()
    with pytest.raises(ValueError, match="a command is 64 bytes, got 63"):
        Command.from_bytes(bytes(63))


def test_zeroed_entry_is_illegal_and_ring_round_trips():
    zero = Command.from_bytes(bytes(64))
    assert zero.opcode == 0 and check(zero, TINY) == Fault(IsaError.BAD_OPCODE, 0)
    cmds = [_rand_command(random.Random(s)) for s in range(8)]
    assert decode_ring(ring_image(cmds)) == cmds
    with pytest.raises(ValueError, match="multiple of 64 bytes, got 65"):
        decode_ring(bytes(65))


@pytest.mark.parametrize("kw, msg", [
    (dict(opcode=Opcode.NOP, tile=256), r"Command.tile must be an int in \[0, 2\*\*8\), got 256"),
    (dict(opcode=Opcode.NOP, arg=-1), r"Command.arg must be an int in \[0, 2\*\*32\), got -1"),
    (dict(opcode=256), r"Command.opcode must be an int in \[0, 2\*\*8\), got 256"),
    (dict(opcode=Opcode.DMA_LOAD), "Command: opcode 2 needs descriptor, got None"),
    (dict(opcode=Opcode.NOP, desc=Descriptor()), "Command: opcode 1 takes no descriptor"),
    (dict(opcode=Opcode.TENSOR), "Command: opcode 4 needs tensor command, got None"),
    (dict(opcode=Opcode.SYNC, tensor=TensorCmd()), "Command: opcode 5 takes no tensor command"),
])
def test_command_construction_errors(kw, msg):
    with pytest.raises(ValueError, match=msg):
        Command(**kw)


def test_constructors_and_properties():
    c = Command.compute(1, TensorCmd.matmul(src=0, w=0, dst=0, m=4), wait_prev=True)
    assert c.wait_prev == 1 and type(c.wait_prev) is int and c.target == Queue.COMPUTE
    assert Command.sync(0, Queue.STORE, wait_prev=1).target == Queue.STORE
    assert Command.barrier([0, 1, 1]).arg == 3 and Command.barrier([0]).target is None
    assert Command.irq(7).arg == 7 and Command.halt().opcode == Opcode.HALT
    assert Command(0).target is None


# --- legality ---------------------------------------------------------------------------
def _ld(d=None, sram=Sram.ACT, tile=0, **kw):
    return Command.load(tile, sram, d or Descriptor(L, 0x100, 0x40, 64), **kw)


def _st(d=None, sram=Sram.ACC, tile=0, **kw):
    return Command.store(tile, sram, d or Descriptor(S, 0x40, 0x100, 64), **kw)


MM = TensorCmd.matmul(src=0, w=0, dst=0, m=4)


@pytest.mark.parametrize("cmd, fault", [
    (Command.nop(), (IsaError.NONE, 0)),
    (Command.fence(), (IsaError.NONE, 0)),
    (Command.irq(0xFFFF_FFFF), (IsaError.NONE, 0)),
    (Command.halt(), (IsaError.NONE, 0)),
    (Command.barrier([0, 1]), (IsaError.NONE, 0)),
    (_ld(signal_next=1, wait_next=1), (IsaError.NONE, 0)),
    (_st(wait_prev=1, signal_prev=1, tile=1), (IsaError.NONE, 0)),
    (Command.compute(1, MM, wait_prev=1, wait_next=1, signal_prev=1, signal_next=1),
     (IsaError.NONE, 0)),
    (Command.sync(1, Queue.STORE, wait_prev=1), (IsaError.NONE, 0)),
    (Command(0), (IsaError.BAD_OPCODE, 0)),
    (Command(11), (IsaError.BAD_OPCODE, 0)),
    (Command(255, tile=9), (IsaError.BAD_OPCODE, 0)),
    (Command(Opcode.NOP, tile=1), (IsaError.BAD_FIELD, 0)),
    (Command(Opcode.FENCE, arg=1), (IsaError.BAD_FIELD, 0)),
    (Command(Opcode.HALT, signal_next=1), (IsaError.BAD_FIELD, 0)),
    (Command(Opcode.IRQ, queue=1), (IsaError.BAD_FIELD, 0)),
    (Command(Opcode.BARRIER, arg=1, wait_prev=1), (IsaError.BAD_FIELD, 0)),
    (Command(Opcode.TENSOR, sram=1, tensor=MM), (IsaError.BAD_FIELD, 0)),
    (Command(Opcode.DMA_LOAD, queue=2, desc=Descriptor(L, 0, 0, 8)), (IsaError.BAD_FIELD, 0)),
    (Command(Opcode.SYNC, arg=1), (IsaError.BAD_FIELD, 0)),
    (Command.sync(0, 3), (IsaError.BAD_FIELD, 0)),
    (Command(Opcode.TENSOR, tile=99, sram=1, tensor=MM), (IsaError.BAD_FIELD, 0)),  # order
    (Command.compute(2, MM), (IsaError.BAD_TILE, 0)),
    (_ld(tile=255), (IsaError.BAD_TILE, 0)),
    (Command.sync(2, Queue.LOAD), (IsaError.BAD_TILE, 0)),
    (_ld(wait_prev=1), (IsaError.BAD_TOKEN, 0)),
    (_ld(signal_prev=1), (IsaError.BAD_TOKEN, 0)),
    (_st(wait_next=1), (IsaError.BAD_TOKEN, 0)),
    (_st(signal_next=1), (IsaError.BAD_TOKEN, 0)),
    (Command.sync(0, Queue.LOAD, wait_prev=1), (IsaError.BAD_TOKEN, 0)),
    (Command.sync(0, Queue.STORE, signal_next=1), (IsaError.BAD_TOKEN, 0)),
    (Command(Opcode.BARRIER, arg=0), (IsaError.BAD_MASK, 0)),
    (Command(Opcode.BARRIER, arg=0b100), (IsaError.BAD_MASK, 0)),
    (_ld(sram=3), (IsaError.BAD_SRAM, 0)),
    (_ld(Descriptor(S, 0x100, 0x40, 64)), (IsaError.BAD_DIR, 0)),
    (_st(Descriptor(L, 0x40, 0x100, 64)), (IsaError.BAD_DIR, 0)),
    (_ld(Descriptor(L, 0x100, 0x40, 0)), (IsaError.DMA, DmaError.BAD_LENGTH)),
    (_ld(Descriptor(L, 0x100, 0x40, 1 << 17)), (IsaError.DMA, DmaError.BAD_LENGTH)),
    (_ld(Descriptor(L, 0x101, 0x40, 8)), (IsaError.DMA, DmaError.MISALIGNED)),
    (_ld(Descriptor(L, 32768 - 8, 0x40, 16)), (IsaError.DMA, DmaError.WINDOW)),
    (_st(Descriptor(S, 0x40, 32768 - 8, 16)), (IsaError.DMA, DmaError.WINDOW)),
    # the activation SRAM of tiny is 1024 x 4 = 4096 bytes; the accumulator 16384
    (_ld(Descriptor(L, 0, 4096 - 8, 16)), (IsaError.DMA, DmaError.WINDOW)),
    (_ld(Descriptor(L, 0, 4096 - 16, 16)), (IsaError.NONE, 0)),
    (_ld(Descriptor(L, 0, 4096 - 8, 16), sram=Sram.ACC), (IsaError.NONE, 0)),
    (_st(Descriptor(S, 16384 - 8, 0, 16)), (IsaError.DMA, DmaError.WINDOW)),
    (_ld(Descriptor(L, 0, 0, 16, rows=2, src_ystride=16, dst_ystride=4096)),
     (IsaError.DMA, DmaError.WINDOW)),
    (Command.compute(0, TensorCmd.matmul(src=0, w=0, dst=0, m=0)),
     (IsaError.TENSOR, ErrCode.ZERO_COUNT)),
    (Command.compute(0, TensorCmd.matmul(src=1021, w=0, dst=0, m=4)),
     (IsaError.TENSOR, ErrCode.ACT_RANGE)),
    (Command.compute(0, TensorCmd(unit=1, op=15, k_base=4)), (IsaError.TENSOR, ErrCode.BAD_LANE)),
    (Command.compute(0, TensorCmd.vector(VecOp.COPY, src=0, dst=1024, count=1)),
     (IsaError.TENSOR, ErrCode.ACC_RANGE)),
])
def test_check(cmd, fault):
    got = check(cmd, TINY)
    assert got == Fault(*fault)
    assert bool(got) == (fault[0] != IsaError.NONE)
    # the image carries everything the check looks at
    assert check(Command.from_bytes(cmd.to_bytes()), TINY) == got


def test_check_window_and_sizes():
    d = Descriptor(L, 0x1000, 0, 64)
    assert check(_ld(d), TINY, win_base=0x1000, win_limit=0x1040) == Fault(IsaError.NONE)
    assert check(_ld(d), TINY, win_base=0x1008, win_limit=0x2000) == \
        Fault(IsaError.DMA, DmaError.WINDOW)
    assert check(_ld(d), TINY, win_limit=0x103F) == Fault(IsaError.DMA, DmaError.WINDOW)
    assert [sram_bytes(TINY, s) for s in Sram] == [4096, 4096, 16384]
    d16 = get_preset("default")
    assert [sram_bytes(d16, s) for s in Sram] == [2048 * 16, 2048 * 16, 2048 * 16 * 4]
    assert check(Command.barrier(range(4)), d16) == Fault(IsaError.NONE)


def test_error_word():
    assert error_word(Fault(IsaError.TENSOR, ErrCode.ACC_RANGE)) == 9 | 5 << 8
    assert error_word(Fault(IsaError.NONE)) == 0
    assert max(IsaError) < 256 and max(max(DmaError), max(ErrCode)) < 256


# --- the generated C header -------------------------------------------------------------
_C_TEST = r"""
#include <stdio.h>
#include <string.h>
#include "jalapeno_formats.h"

_Static_assert(JLP_CMD_BYTES == 64 && JLP_CMD_PAYLOAD_OFFSET == 16, "command size");
_Static_assert(JLP_CMD_HDR_BYTES == 16 && JLP_CMD_HDR_ARG_OFFSET == 4, "header");
_Static_assert(JLP_CMD_HDR_TILE_SHIFT == 8 && JLP_CMD_HDR_SIGNAL_NEXT_SHIFT == 27, "flags");
_Static_assert(JLP_OPCODE_DMA_LOAD == 2 && JLP_OPCODE_HALT == 9, "opcodes");
_Static_assert(JLP_ISA_ERROR_WATCHDOG == 12 && JLP_SRAM_ACC == 2 && JLP_QUEUE_STORE == 2 &&
               JLP_TOKEN_S2C == 3, "enums");

static const uint8_t given[JLP_CMD_BYTES] = { GIVEN };

static void dump(const uint8_t *img)
{
    for (unsigned i = 0; i < JLP_CMD_BYTES; i++)
        printf("%02x", img[i]);
    printf("\n");
}

int main(void)
{
    uint8_t img[JLP_CMD_BYTES] = {0};
    jlp_cmd_hdr_t h = {0};
    jlp_dma_desc_t d = {0};
    h.opcode = JLP_OPCODE_DMA_LOAD; h.tile = 1; h.sram = JLP_SRAM_WEIGHT;
    h.wait_next = 1; h.signal_next = 1;
    d.dir = JLP_DMA_DIR_LOAD; d.src = 0x1240; d.dst = 0x80; d.row_bytes = 96; d.rows = 3;
    d.planes = 1; d.src_ystride = 128; d.dst_ystride = 96; d.tag = 7;
    jlp_cmd_hdr_pack(&h, img);
    jlp_dma_desc_pack(&d, img + JLP_CMD_PAYLOAD_OFFSET);
    dump(img);

    memset(img, 0, sizeof img);
    jlp_tensor_cmd_t t = {0};
    h = (jlp_cmd_hdr_t){0};
    h.opcode = JLP_OPCODE_TENSOR; h.wait_prev = 1; h.signal_prev = 1;
    t.unit = JLP_UNIT_MATMUL; t.src = 5; t.src2 = 16; t.dst = 9; t.count = 33;
    t.accumulate = 1; t.imm = 0x3f800000u; t.imm2 = 0x3f800000u;
    jlp_cmd_hdr_pack(&h, img);
    jlp_tensor_cmd_pack(&t, img + JLP_CMD_PAYLOAD_OFFSET);
    dump(img);

    jlp_cmd_hdr_unpack(given, &h);
    jlp_dma_desc_unpack(given + JLP_CMD_PAYLOAD_OFFSET, &d);
    printf("%u %u %u %u %u %u\n", h.opcode, h.tile, h.sram, h.wait_next, h.signal_prev,
           d.src);
    return 0;
}
"""


def test_c_header_packs_the_same_commands(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc/gcc) on PATH")
    from scripts.gen_headers import write
    write(tmp_path / "jalapeno_formats.h")
    given = Command.store(5, Sram.ACC, Descriptor(S, 0x40, 0xBEEF00, 256), wait_prev=1,
                          signal_prev=1)
    src = _C_TEST.replace("GIVEN", ", ".join(f"0x{b:02x}" for b in given.to_bytes()))
    (tmp_path / "t.c").write_text(src)
    exe = tmp_path / "t"
    subprocess.run([cc, "-std=c11", "-Wall", "-Wextra", "-pedantic", "-Werror",
                    "-I", str(tmp_path), str(tmp_path / "t.c"), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    load_hex, tensor_hex, fields = out.split("\n")[:3]
    load = Command.load(1, Sram.WEIGHT, Descriptor(L, 0x1240, 0x80, 96, 3, 1, 128, 96, tag=7),
                        wait_next=1, signal_next=1)
    assert bytes.fromhex(load_hex) == load.to_bytes()
    mm = TensorCmd.matmul(src=5, w=16, dst=9, m=33, accumulate=True)
    assert bytes.fromhex(tensor_hex) == Command.compute(0, mm, wait_prev=1,
                                                        signal_prev=1).to_bytes()
    assert list(map(int, fields.split())) == [Opcode.DMA_STORE, 5, Sram.ACC, 0, 1, 0x40]
