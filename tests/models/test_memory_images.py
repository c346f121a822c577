"""Memory images of the DMA descriptor and the tensor command, and the generated C header.

The images are checked against packings written out independently here (struct.pack,
shifts typed by hand), never against the table they come from; the C header is
generated, compiled with the system C compiler, and must agree with Python both ways.
"""
import random
import shutil
import struct
import subprocess

import pytest

from models import dma, tensor_cmd
from models.dma import Descriptor, DmaDir, DmaError
from models.memimage import MemoryImage
from models.tensor_cmd import OutFmt, TensorCmd, Unit, VecOp


def _rand_fields(rng, bits: dict) -> dict:
    return {name: rng.getrandbits(b) for name, b in bits.items()}


# --- DMA descriptor: 40 bytes, documented in models/dma.py ------------------------------
def _desc_struct(d: Descriptor) -> bytes:
    # u8 dir, u8 tag, u16 index (bit 0), u32 src, dst, row_bytes, u16 rows, planes,
    # u32 src_ystride, dst_ystride, src_zstride, dst_zstride, index_addr
    return struct.pack("<BBHIIIHHIIIII", d.dir, d.tag, d.index, d.src, d.dst, d.row_bytes,
                       d.rows, d.planes, d.src_ystride, d.dst_ystride, d.src_zstride,
                       d.dst_zstride, d.index_addr)


@pytest.mark.parametrize("seed", range(20))
def test_descriptor_image_matches_struct_pack(seed):
    rng = random.Random(seed)
    d = Descriptor(**_rand_fields(rng, dma.FIELD_BITS))
    img = d.to_bytes()
    assert len(img) == dma.IMAGE_BYTES == 40
    assert img == _desc_struct(d)
    assert Descriptor.from_bytes(img) == d


def test_descriptor_image_edges():
    full = Descriptor(**{n: (1 << b) - 1 for n, b in dma.FIELD_BITS.items()})
    assert full.to_bytes() == _desc_struct(full)
    # reserved bits are ignored when read
    noisy = bytearray(full.to_bytes())
    noisy[0] |= 0xFE                         # bits 1..7 of word 0
    noisy[2:4] = b"\xff\xff"                 # bits 17..31 of word 0 (16: index = 1)
    assert Descriptor.from_bytes(bytes(noisy)) == full
    with pytest.raises(ValueError, match=r"dma_desc: an image is 40 bytes, got 36"):
        Descriptor.from_bytes(bytes(36))
    with pytest.raises(ValueError, match=r"Descriptor.rows must be an int in \[0, 2\*\*16\)"):
        Descriptor(DmaDir.LOAD, 0, 0, 8, rows=1 << 16)
    d = Descriptor(tag=3)
    d.tag = 256                              # mutated past its width
    with pytest.raises(ValueError, match=r"dma_desc.tag must be an int in \[0, 2\*\*8\)"):
        d.to_bytes()


def test_descriptor_one_format_everywhere():
    """Dataclass, RTL layout and image hold the same fields with the same widths."""
    from amaranth.hdl import Shape

    from rtl.formats import dma_desc_layout, dma_done_layout
    assert [(n, Shape.cast(f.shape).width) for n, f in dma_desc_layout()] == \
        list(dma.FIELD_BITS.items())
    assert [(n, Shape.cast(f.shape).width) for n, f in dma_done_layout()] == \
        list(dma.DONE_BITS.items())
    assert {f.name: f.bits for f in dma.IMAGE} == dma.FIELD_BITS
    assert max(DmaError) < 1 << dma.ERR_BITS


# --- tensor command: 32 bytes, documented in models/tensor_cmd.py -----------------------
def _cmd_words(c: TensorCmd) -> bytes:
    w0 = (c.unit | c.op << 4 | c.out_fmt << 8 | c.accumulate << 16 | c.fp8 << 17 |
          c.fmt_a << 18 | c.fmt_w << 19 | c.in_int << 20 | c.bias << 21 | c.dst_act << 22 |
          c.causal << 23 | c.pad << 24 | c.bscale << 25 | c.indep << 26)
    words = [w0, c.src | c.src2 << 16, c.dst | c.count << 16, c.state | c.q_base << 16,
             c.k_base | c.kv_len << 16, c.imm, c.imm2, 0]
    return b"".join(w.to_bytes(4, "little") for w in words)


@pytest.mark.parametrize("seed", range(20))
def test_tensor_cmd_image_matches_hand_packing(seed):
    c = TensorCmd(**_rand_fields(random.Random(seed), tensor_cmd.FIELD_BITS))
    img = c.to_bytes()
    assert len(img) == tensor_cmd.IMAGE_BYTES == 32
    assert img == _cmd_words(c)
    assert TensorCmd.from_bytes(img) == c


def test_tensor_cmd_image_of_real_commands():
    for c in (TensorCmd.matmul(src=1, w=2, dst=3, m=4, accumulate=True, fp8=True, fmt_w=1),
              TensorCmd.vector(VecOp.EXP, src=5, dst=6, count=7, imm=0.5, causal=1, pad=1,
                               k_base=9, kv_len=10, out_fmt=OutFmt.E4M3)):
        assert c.to_bytes() == _cmd_words(c)
        assert TensorCmd.from_bytes(c.to_bytes()) == c
    assert TensorCmd().to_bytes()[0] & 1 == Unit.MATMUL


# --- the image tables themselves --------------------------------------------------------
@pytest.mark.parametrize("size, fields, msg", [
    (36, [("a", 0, 0, 8)], "t: image size must be a positive multiple of 8, got 36"),
    (8, [("a", 2, 0, 8)], "t.a: byte offset 2 is not a word inside the 8-byte image"),
    (8, [("a", 8, 0, 8)], "t.a: byte offset 8 is not a word inside the 8-byte image"),
    (8, [("a", 0, 28, 8)], "t.a: bits 28..35 leave the 32-bit word"),
    (8, [("a", 0, 0, 7)], "t.a: 7 bits in the image, 8 in the format"),
    (8, [("a", 0, 0, 8), ("b", 0, 4, 4)], "t.b overlaps another field"),
    (8, [("b", 0, 0, 4)], "t.b: 4 bits in the image, None in the format"),
])
def test_image_table_errors(size, fields, msg):
    with pytest.raises(ValueError) as e:
        MemoryImage("t", size, fields, {"a": 8} if len(fields) == 1 else {"a": 8, "b": 4})
    assert str(e.value) == msg


def test_image_table_missing_field():
    with pytest.raises(ValueError, match=r"t: image fields differ from the format: "
                                         r"missing \['b'\]"):
        MemoryImage("t", 8, [("a", 0, 0, 8)], {"a": 8, "b": 4})


# --- the generated C header -------------------------------------------------------------
_C_TEST = r"""
#include <stdio.h>
#include <string.h>
#include "jalapeno_formats.h"

_Static_assert(JLP_DMA_DESC_BYTES == 40, "descriptor size");
_Static_assert(JLP_DMA_DESC_DIR_OFFSET == 0 && JLP_DMA_DESC_DIR_SHIFT == 0, "dir");
_Static_assert(JLP_DMA_DESC_TAG_OFFSET == 0 && JLP_DMA_DESC_TAG_SHIFT == 8, "tag");
_Static_assert(JLP_DMA_DESC_SRC_OFFSET == 4 && JLP_DMA_DESC_DST_OFFSET == 8, "src/dst");
_Static_assert(JLP_DMA_DESC_ROW_BYTES_OFFSET == 12, "row_bytes");
_Static_assert(JLP_DMA_DESC_ROWS_OFFSET == 16 && JLP_DMA_DESC_ROWS_MASK == 0xffff, "rows");
_Static_assert(JLP_DMA_DESC_PLANES_OFFSET == 16 && JLP_DMA_DESC_PLANES_SHIFT == 16, "planes");
_Static_assert(JLP_DMA_DESC_SRC_YSTRIDE_OFFSET == 20 && JLP_DMA_DESC_DST_YSTRIDE_OFFSET == 24,
               "ystrides");
_Static_assert(JLP_DMA_DESC_SRC_ZSTRIDE_OFFSET == 28 && JLP_DMA_DESC_DST_ZSTRIDE_OFFSET == 32,
               "zstrides");
_Static_assert(JLP_TENSOR_CMD_BYTES == 32, "command size");
_Static_assert(JLP_TENSOR_CMD_OP_SHIFT == 4 && JLP_TENSOR_CMD_OUT_FMT_SHIFT == 8, "op/out_fmt");
_Static_assert(JLP_TENSOR_CMD_PAD_SHIFT == 24 && JLP_TENSOR_CMD_SRC2_OFFSET == 4, "pad/src2");
_Static_assert(JLP_TENSOR_CMD_IMM2_OFFSET == 24, "imm2");
_Static_assert(JLP_DMA_ERROR_MISALIGNED == 5 && JLP_DMA_DIR_STORE == 1, "dma enums");
_Static_assert(JLP_AXI_RESP_DECERR == 3 && JLP_VEC_OP_ROWSUM == 11, "enums");
_Static_assert(JLP_ERR_CODE_STATE_RANGE == 8 && JLP_OUT_FMT_BF16 == 4 && JLP_UNIT_VECTOR == 1,
               "enums");

static const uint8_t image[JLP_DMA_DESC_BYTES] = { IMAGE_BYTES };

int main(void)
{
    jlp_dma_desc_t d;
    uint8_t again[JLP_DMA_DESC_BYTES];
    jlp_dma_desc_unpack(image, &d);
    printf("%u %u %u %u %u %u %u %u %u %u %u\n", d.dir, d.tag, d.src, d.dst, d.row_bytes,
           d.rows, d.planes, d.src_ystride, d.dst_ystride, d.src_zstride, d.dst_zstride);
    jlp_dma_desc_pack(&d, again);
    for (unsigned i = 0; i < JLP_DMA_DESC_BYTES; i++)
        printf("%02x", again[i]);
    printf("\n%u\n", (unsigned)JLP_GET(DMA_DESC, PLANES, image));
    return memcmp(image, again, sizeof image) != 0;
}
"""


def test_c_header_compiles_and_round_trips(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc/gcc) on PATH")
    from scripts.gen_headers import write
    assert write(tmp_path / "jalapeno_formats.h")
    assert not write(tmp_path / "jalapeno_formats.h"), "an unchanged header was rewritten"
    d = Descriptor(DmaDir.STORE, 0x1234_5678, 0x9ABC_DEF0, 4097, 3, 2, 0x1_0000, 4100,
                   0xFFFF_FFFF, 0x4000, tag=0xA5)
    img = d.to_bytes()
    src = _C_TEST.replace("IMAGE_BYTES", ", ".join(f"0x{b:02x}" for b in img))
    (tmp_path / "t.c").write_text(src)
    exe = tmp_path / "t"
    subprocess.run([cc, "-std=c11", "-Wall", "-Wextra", "-pedantic", "-Werror",
                    "-I", str(tmp_path), str(tmp_path / "t.c"), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True)
    assert out.returncode == 0, f"C re-packed a different image: {out.stdout}"
    fields, hexed, planes = out.stdout.split("\n")[:3]
    got = dict(zip(("dir", "tag", "src", "dst", "row_bytes", "rows", "planes", "src_ystride",
                    "dst_ystride", "src_zstride", "dst_zstride"), map(int, fields.split())))
    assert Descriptor(**got) == d
    assert bytes.fromhex(hexed) == img and int(planes) == 2
