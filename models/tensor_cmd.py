"""Tensor-core commands: one format for the matmul controller and the vector unit.

A host (the command processor, or a testbench) sends a stream of :class:`TensorCmd` to
a tensor core (``rtl.tensor.core.TensorCore``); ``rtl.formats.tensor_cmd_layout``
is the same record as an Amaranth layout, fields in the order below. The golden model
executes the same list (``models.tensor_core.TensorCoreModel``). This module is pure
Python (no Amaranth, no numpy) so compilers and reports can use it alone.

Fields (all unsigned; addresses are SRAM word indices, 16 bits):

=========== ====== ===========================================================
field       bits   meaning
=========== ====== ===========================================================
unit        1      :class:`Unit`: MATMUL (the array) or VECTOR (the vector unit)
op          4      :class:`VecOp` (VECTOR only)
src         16     MATMUL: first activation row; VECTOR: first accumulator row read
src2        16     MATMUL: first of the R weight rows; VECTOR: second operand rows
dst         16     first row written (accumulator, or activation SRAM if ``dst_act``)
count       16     rows processed (MATMUL: activation vectors M of the tile)
state       16     VECTOR: first row of the per-row softmax state used
accumulate  1      MATMUL: add to the accumulator (INT32 wrap / binary32) instead of
                   overwrite
fp8         1      MATMUL: FP8 tile (else INT8)
fmt_a       1      MATMUL FP8: activation format (0 E4M3, 1 E5M2)
fmt_w       1      MATMUL FP8: weight format
in_int      1      VECTOR: the ``src`` rows are INT32 (converted to binary32 first)
bias        1      VECTOR REQUANT: add the INT32 row at ``src2`` before requantizing
dst_act     1      VECTOR: write 8-bit codes to the activation SRAM (needs R == C)
out_fmt     3      VECTOR: :class:`OutFmt` of the rows written
causal      1      VECTOR: mask key ``k_base + lane`` > query ``q_base + row`` to -inf
pad         1      VECTOR: mask key ``k_base + lane`` >= ``kv_len`` to -inf
q_base      16     VECTOR mask: query index of row 0 of the command
k_base      16     VECTOR mask: key index of lane 0; STATE_LOAD: the lane loaded
kv_len      16     VECTOR mask: number of valid keys
bscale      1      VECTOR ROWMAX / EXP / RESCALE: per-row block scale (``models.vector``:
                   ROWMAX sets ``k``, ``beta = 2**-k``; EXP writes ``e * 2**k`` and adds
                   ``beta * rowsum``; RESCALE adds ``a * beta``); ignored by other ops
indep       1      may start while the *other* unit is still busy with earlier commands
                   (no fence; docs/tensor_core.md "Overlap" has the rules the program
                   must follow); results are those of in-order execution
imm         32     VECTOR: binary32 input scale (REQUANT: Q31 multiplier, int32)
imm2        32     VECTOR: binary32 output scale (REQUANT: shift, int32, -31..30)
=========== ====== ===========================================================

Illegal commands (:func:`check`) are never executed: the core reports the
:class:`ErrCode` and discards commands until the error is cleared (docs/tensor_core.md).

Memory image (what a command processor fetches; :data:`IMAGE`, :meth:`TensorCmd.to_bytes`):
:data:`IMAGE_BYTES` = 32 bytes = 8 little-endian 32-bit words (an 8-byte multiple);
a field never straddles two words; reserved bits are written 0 and ignored.

====== =====================================================================
offset word contents (bit offset: field)
====== =====================================================================
0x00   0: unit, 4: op, 8: out_fmt, 16: accumulate, 17: fp8, 18: fmt_a,
       19: fmt_w, 20: in_int, 21: bias, 22: dst_act, 23: causal, 24: pad,
       25: bscale, 26: indep
0x04   0: src, 16: src2
0x08   0: dst, 16: count
0x0C   0: state, 16: q_base
0x10   0: k_base, 16: kv_len
0x14   0: imm
0x18   0: imm2
0x1C   reserved
====== =====================================================================
"""
from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, fields

from models.memimage import MemoryImage, check_widths

__all__ = ["Unit", "VecOp", "OutFmt", "ErrCode", "ERR_CODE_BITS", "TensorCmd", "FIELD_BITS", "IMAGE",
           "IMAGE_BYTES", "check",
           "f32_bits", "bits_f32", "VECTOR_READS_SRC", "VECTOR_READS_SRC2",
           "VECTOR_WRITES", "VECTOR_USES_STATE"]


class Unit(enum.IntEnum):
    MATMUL = 0
    VECTOR = 1


class VecOp(enum.IntEnum):
    """Vector-unit operations (semantics: ``models.vector``, docs/vector_unit.md)."""

    COPY = 0        # y = a                       (convert / scale / mask)
    ROWMAX = 1      # m = max(m, max(a)); alpha = exp(m_old - m)        (no write)
    EXP = 2         # y = exp(a - m); l = l * alpha + sum(deq(out))
    RESCALE = 3     # y = b * alpha + a           (b = binary32 row at src2)
    NORM = 4        # y = a * recip(l), 0 where l == 0
    STATE_INIT = 5  # m = -inf, l = 0, alpha = 1                       (no read/write)
    BIAS = 6        # y = a + b
    RELU = 7        # y = max(a, 0)
    GELU = 8        # y = a * sigmoid(1.702 a)
    REQUANT = 9     # INT32 (+ bias) -> INT8, TFLite fixed-point multiplier + shift
    RECIP = 10      # y = recip(a)
    ROWSUM = 11     # l = l * alpha + sum(a)                            (no write)
    STATE_STORE = 12  # row = [m, l, 0, ...] (binary32)                  (no read)
    STATE_MERGE = 13  # merge a stored [m_s, l_s] row into the state    (no write)
    TOPK = 14       # lanes sorted by value, descending: the values, or the lane ids
    STATE_LOAD = 15  # alpha = a[k_base]                                 (no write)


class OutFmt(enum.IntEnum):
    """Format of the rows a vector command writes."""

    FP32 = 0        # binary32 bits
    INT8 = 1        # round to nearest even, saturate to [-128, 127]; NaN -> 0
    E4M3 = 2        # models.fp8.encode, saturating
    E5M2 = 3
    BF16 = 4        # RNE, saturating, in the upper half of the 32-bit word


class ErrCode(enum.IntEnum):
    """Error status of a tensor core (first error wins; sticky until cleared)."""

    NONE = 0
    BAD_OP = 1          # VECTOR op not in VecOp
    ZERO_COUNT = 2      # count == 0
    ACT_RANGE = 3       # activation rows out of the activation SRAM
    WEIGHT_RANGE = 4    # weight rows out of the weight SRAM
    ACC_RANGE = 5       # accumulator rows (src, src2 or dst) out of the accumulator SRAM
    NO_FP8 = 6          # FP8 tile on an array built without the FP8 datapath
    BAD_FMT = 7         # out_fmt not in OutFmt, dst_act with a non-8-bit format or R != C,
                        # REQUANT with a format other than INT8, STATE_STORE not FP32
                        # to the accumulator, TOPK to the activation SRAM not INT8
    STATE_RANGE = 8     # softmax state rows out of range
    BAD_LANE = 9        # STATE_LOAD with k_base >= L (no such lane)


#: Width of an :class:`ErrCode` on hardware ports and in status registers.
ERR_CODE_BITS = 4
assert max(ErrCode) < 1 << ERR_CODE_BITS


FIELD_BITS: dict[str, int] = {
    "unit": 1, "op": 4, "src": 16, "src2": 16, "dst": 16, "count": 16, "state": 16,
    "accumulate": 1, "fp8": 1, "fmt_a": 1, "fmt_w": 1, "in_int": 1, "bias": 1,
    "dst_act": 1, "out_fmt": 3, "causal": 1, "pad": 1, "q_base": 16, "k_base": 16,
    "kv_len": 16, "imm": 32, "imm2": 32, "bscale": 1, "indep": 1,
}

IMAGE_BYTES = 32
IMAGE = MemoryImage("tensor_cmd", IMAGE_BYTES, [
    ("unit", 0x00, 0, 1), ("op", 0x00, 4, 4), ("out_fmt", 0x00, 8, 3),
    ("accumulate", 0x00, 16, 1), ("fp8", 0x00, 17, 1), ("fmt_a", 0x00, 18, 1),
    ("fmt_w", 0x00, 19, 1), ("in_int", 0x00, 20, 1), ("bias", 0x00, 21, 1),
    ("dst_act", 0x00, 22, 1), ("causal", 0x00, 23, 1), ("pad", 0x00, 24, 1),
    ("src", 0x04, 0, 16), ("src2", 0x04, 16, 16), ("dst", 0x08, 0, 16),
    ("count", 0x08, 16, 16), ("state", 0x0C, 0, 16), ("q_base", 0x0C, 16, 16),
    ("k_base", 0x10, 0, 16), ("kv_len", 0x10, 16, 16),
    ("imm", 0x14, 0, 32), ("imm2", 0x18, 0, 32),
    ("bscale", 0x00, 25, 1), ("indep", 0x00, 26, 1),
], FIELD_BITS)

#: Vector ops that read the ``src`` rows / the ``src2`` rows / write ``dst`` / use state.
VECTOR_READS_SRC = frozenset(VecOp) - {VecOp.STATE_INIT, VecOp.STATE_STORE}
VECTOR_READS_SRC2 = frozenset({VecOp.RESCALE, VecOp.BIAS})      # + REQUANT with bias
VECTOR_WRITES = frozenset(VecOp) - {VecOp.ROWMAX, VecOp.STATE_INIT, VecOp.ROWSUM,
                                    VecOp.STATE_MERGE, VecOp.STATE_LOAD}
VECTOR_USES_STATE = frozenset({VecOp.ROWMAX, VecOp.EXP, VecOp.RESCALE, VecOp.NORM,
                               VecOp.STATE_INIT, VecOp.ROWSUM, VecOp.STATE_STORE,
                               VecOp.STATE_MERGE, VecOp.STATE_LOAD})


def f32_bits(x: float) -> int:
    """binary32 bits of ``x`` (rounded to nearest even by the conversion)."""
    return struct.unpack("<I", struct.pack("<f", x))[0]


def bits_f32(b: int) -> float:
    """The binary32 value with bits ``b``."""
    return struct.unpack("<f", struct.pack("<I", b & 0xFFFF_FFFF))[0]


@dataclass(frozen=True)
class TensorCmd:
    """One command (see the module docstring for the fields).

    Construction checks only that each field fits its width (``ValueError``); whether
    the command is legal for a configuration is :func:`check`, because an illegal
    command is a run-time error the hardware must report, and tests send them.
    """

    unit: int = Unit.MATMUL
    op: int = 0
    src: int = 0
    src2: int = 0
    dst: int = 0
    count: int = 1
    state: int = 0
    accumulate: int = 0
    fp8: int = 0
    fmt_a: int = 0
    fmt_w: int = 0
    in_int: int = 0
    bias: int = 0
    dst_act: int = 0
    out_fmt: int = OutFmt.FP32
    causal: int = 0
    pad: int = 0
    q_base: int = 0
    k_base: int = 0
    kv_len: int = 0
    imm: int = 0x3F80_0000      # 1.0
    imm2: int = 0x3F80_0000     # 1.0
    bscale: int = 0
    indep: int = 0

    def __post_init__(self):
        check_widths("TensorCmd", self, {f.name: FIELD_BITS[f.name] for f in fields(self)})

    def as_dict(self) -> dict[str, int]:
        """Field name -> int, for packing with ``tb.common.packing``."""
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}

    def to_bytes(self) -> bytes:
        """The :data:`IMAGE_BYTES`-byte memory image (:data:`IMAGE`)."""
        return IMAGE.pack(self.as_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> "TensorCmd":
        """Inverse of :meth:`to_bytes` (reserved bits ignored)."""
        return cls(**IMAGE.unpack(data))

    @classmethod
    def matmul(cls, *, src: int, w: int, dst: int, m: int, accumulate: bool = False,
               fp8: bool = False, fmt_a: int = 0, fmt_w: int = 0) -> "TensorCmd":
        """Tile ``acc[dst + i] (+)= act[src + i] @ W`` with W = weight rows ``w .. w+R-1``."""
        return cls(unit=Unit.MATMUL, src=src, src2=w, dst=dst, count=m,
                   accumulate=int(accumulate), fp8=int(fp8), fmt_a=fmt_a, fmt_w=fmt_w)

    @classmethod
    def vector(cls, op: VecOp, *, src: int = 0, dst: int = 0, count: int = 1,
               src2: int = 0, state: int = 0, imm: float | None = None,
               imm2: float | None = None, **kw) -> "TensorCmd":
        """A vector command; ``imm``/``imm2`` given as floats are stored as binary32."""
        for name, v in (("imm", imm), ("imm2", imm2)):
            if v is not None:
                kw[name] = v & 0xFFFF_FFFF if isinstance(v, int) else f32_bits(v)
        return cls(unit=Unit.VECTOR, op=int(op), src=src, src2=src2, dst=dst, count=count,
                   state=state, **kw)


def check(cmd: TensorCmd, config) -> ErrCode:
    """The error a tensor core built from ``config`` (a JalapenoConfig) reports for ``cmd``.

    Rules are checked in this order; the first that fails is the code:
    count, op, format, then ranges (MATMUL: activation, weight, accumulator, FP8;
    VECTOR: src, src2, dst, state), then STATE_LOAD's lane (``k_base < L``).
    """
    tc, sa = config.tensor, config.systolic
    if cmd.count == 0:
        return ErrCode.ZERO_COUNT
    end = cmd.count
    if cmd.unit == Unit.MATMUL:
        if cmd.src + end > tc.act_rows:
            return ErrCode.ACT_RANGE
        if cmd.src2 + sa.rows > tc.weight_rows:
            return ErrCode.WEIGHT_RANGE
        if cmd.dst + end > tc.acc_rows:
            return ErrCode.ACC_RANGE
        if cmd.fp8 and not sa.fp8:
            return ErrCode.NO_FP8
        return ErrCode.NONE
    if cmd.op not in VecOp._value2member_map_:
        return ErrCode.BAD_OP
    op = VecOp(cmd.op)
    if cmd.out_fmt not in OutFmt._value2member_map_:
        return ErrCode.BAD_FMT
    if op in VECTOR_WRITES and cmd.dst_act and (
            cmd.out_fmt not in (OutFmt.INT8, OutFmt.E4M3, OutFmt.E5M2) or sa.rows != sa.cols):
        return ErrCode.BAD_FMT
    if op == VecOp.REQUANT and cmd.out_fmt != OutFmt.INT8:
        return ErrCode.BAD_FMT
    if op == VecOp.STATE_STORE and (cmd.out_fmt != OutFmt.FP32 or cmd.dst_act):
        return ErrCode.BAD_FMT
    if op == VecOp.TOPK and cmd.dst_act and cmd.out_fmt != OutFmt.INT8:
        return ErrCode.BAD_FMT
    reads2 = op in VECTOR_READS_SRC2 or (op == VecOp.REQUANT and cmd.bias)
    if op in VECTOR_READS_SRC and cmd.src + end > tc.acc_rows:
        return ErrCode.ACC_RANGE
    if reads2 and cmd.src2 + end > tc.acc_rows:
        return ErrCode.ACC_RANGE
    if op in VECTOR_WRITES and cmd.dst + end > (tc.act_rows if cmd.dst_act else tc.acc_rows):
        return ErrCode.ACT_RANGE if cmd.dst_act else ErrCode.ACC_RANGE
    if op in VECTOR_USES_STATE and cmd.state + end > tc.acc_rows:
        return ErrCode.STATE_RANGE
    if op == VecOp.STATE_LOAD and cmd.k_base >= sa.cols:
        return ErrCode.BAD_LANE
    return ErrCode.NONE
