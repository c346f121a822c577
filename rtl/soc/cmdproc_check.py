"""Command formats of the command processor and the legality check in gates.

Every layout here is derived from the tables of :mod:`models.isa` (header image),
:mod:`models.dma` (descriptor image) and :mod:`models.tensor_cmd` (tensor-command image):
no field width or offset is typed twice. :class:`IsaCheck` is ``models.isa.check`` in
gates, with the same rule order and codes.
"""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from models import dma as _dma
from models import isa
from models import tensor_cmd as _tc
from models.dma import DmaDir, DmaError
from models.isa import IsaError, Opcode, Queue
from rtl.formats import dma_desc_layout, tensor_cmd_layout
from rtl.tensor.check import CmdCheck

__all__ = ["CMD_BITS", "ERR_BITS", "header_layout", "dma_cmd_layout", "compute_cmd_layout",
           "done_layout", "decode_image", "IsaCheck"]

#: Bits of one command image (models.isa.CMD_BYTES).
CMD_BITS = isa.CMD_BYTES * 8
#: Bits of ERROR_CODE's code and of its detail.
ERR_BITS = 8


def header_layout() -> data.StructLayout:
    """The header fields of :data:`models.isa.FIELD_BITS` (LSB first, in that order)."""
    return data.StructLayout(dict(isa.FIELD_BITS))


def dma_cmd_layout() -> data.StructLayout:
    """Payload of the load / store command streams: the SRAM select and the descriptor."""
    return data.StructLayout({"sram": isa.FIELD_BITS["sram"], "desc": dma_desc_layout()})


def compute_cmd_layout() -> data.StructLayout:
    """Payload of the compute command streams: one tensor command."""
    return tensor_cmd_layout()


def done_layout() -> data.StructLayout:
    """A unit's completion: ``err`` 0 = done; else the DMA's ``models.dma.DmaError``
    (load, store: DMA_FAULT) or the tensor core's ``models.tensor_cmd.ErrCode``
    (compute: TENSOR) as the error detail."""
    return data.StructLayout({"err": max(_dma.ERR_BITS, _tc.ERR_CODE_BITS)})


def decode_image(m: Module, image, vec: Value, layout: data.StructLayout, *,
                 byte_offset: int = 0, name: str = "img"):
    """A ``layout`` Signal driven from the little-endian memory image ``image``
    (a :class:`models.memimage.MemoryImage`) that starts at byte ``byte_offset`` of
    ``vec`` (byte ``b`` of memory = bits ``8b .. 8b+7``)."""
    sig = Signal(layout, name=name)
    for f in image.fields:
        lo = (byte_offset + f.offset) * 8 + f.shift
        m.d.comb += getattr(sig, f.name).eq(vec[lo:lo + f.bits])
    return sig


class IsaCheck(wiring.Component):
    """``models.isa.check`` of one command image, combinationally.

    Rules in the order of the golden model: opcode, unused fields, SYNC queue 3, tile,
    token flags, barrier mask, SRAM, descriptor direction, descriptor
    (``models.dma.check_descriptor`` against the whole HBM and the selected SRAM's size),
    tensor command (:class:`rtl.tensor.check.CmdCheck`, the tensor core's own check).

    Parameters
    ----------
    config : JalapenoConfig
        ``soc.tiles``, ``hbm`` (window = all of HBM, beat width), ``dma.max_bytes``, the
        tile SRAM sizes (``models.isa.sram_bytes``) and the tensor core's limits.

    Members
    -------
    i_cmd : In(CMD_BITS)
        The 64-byte command image.
    o_hdr : Out(header_layout())
        Its header fields.
    o_desc : Out(models.dma descriptor layout), o_tensor : Out(tensor command layout)
        Its payload read as a descriptor / a tensor command.
    o_code, o_detail : Out(8)
        ``models.isa.IsaError`` and detail (0, 0 when legal).
    """

    def __init__(self, config):
        self._config = config
        super().__init__({
            "i_cmd": In(CMD_BITS), "o_hdr": Out(header_layout()),
            "o_desc": Out(dma_desc_layout()), "o_tensor": Out(tensor_cmd_layout()),
            "o_code": Out(ERR_BITS), "o_detail": Out(ERR_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        tiles = cfg.soc.tiles
        vec = self.i_cmd
        hdr = decode_image(m, isa.HEADER, vec, header_layout(), name="hdr")
        desc = decode_image(m, _dma.IMAGE, vec, dma_desc_layout(),
                            byte_offset=isa.PAYLOAD_OFFSET, name="desc")
        tcmd = decode_image(m, _tc.IMAGE, vec, tensor_cmd_layout(),
                            byte_offset=isa.PAYLOAD_OFFSET, name="tcmd")
        m.d.comb += [self.o_hdr.eq(hdr), self.o_desc.eq(desc), self.o_tensor.eq(tcmd)]
        op = hdr.opcode

        # unused header fields (models.isa._USES, read from the model)
        bad_field = Signal()
        terms = []
        for o in Opcode:
            used = isa._USES[o]
            nz = [getattr(hdr, f) != 0 for f in isa.FIELD_BITS if f not in used and f != "opcode"]
            if nz:
                terms.append((op == int(o)) & Cat(*nz).any())
        m.d.comb += bad_field.eq(Cat(*terms).any() |
                                 ((op == int(Opcode.SYNC)) & (hdr.queue > int(Queue.STORE))))

        # target queue
        q = Signal(2)
        m.d.comb += q.eq(Mux(op == int(Opcode.DMA_LOAD), int(Queue.LOAD),
                         Mux(op == int(Opcode.TENSOR), int(Queue.COMPUTE),
                         Mux(op == int(Opcode.DMA_STORE), int(Queue.STORE), hdr.queue))))
        is_q = op.matches(*(int(o) for o in isa.QUEUE_OPS))
        bad_tile = is_q & (hdr.tile >= tiles)
        bad_token = is_q & (((q == int(Queue.LOAD)) & (hdr.wait_prev | hdr.signal_prev)) |
                            ((q == int(Queue.STORE)) & (hdr.wait_next | hdr.signal_next)))
        bad_mask = (op == int(Opcode.BARRIER)) & ((hdr.arg == 0) | ((hdr.arg >> tiles) != 0))
        is_dma = op.matches(int(Opcode.DMA_LOAD), int(Opcode.DMA_STORE))
        bad_sram = is_dma & ~hdr.sram.matches(*(int(s) for s in isa.Sram))
        want_dir = Mux(op == int(Opcode.DMA_STORE), int(DmaDir.STORE), int(DmaDir.LOAD))
        bad_dir = is_dma & (desc.dir != want_dir)

        # descriptor (models.dma.check_descriptor + the SRAM size of models.isa.check)
        W = cfg.hbm.data_bytes
        lw = W.bit_length() - 1
        store = desc.dir == int(DmaDir.STORE)
        axi_b, axi_y, axi_z = (Mux(store, desc.dst, desc.src),
                               Mux(store, desc.dst_ystride, desc.src_ystride),
                               Mux(store, desc.dst_zstride, desc.src_zstride))
        sr_b, sr_y, sr_z = (Mux(store, desc.src, desc.dst),
                            Mux(store, desc.src_ystride, desc.dst_ystride),
                            Mux(store, desc.src_zstride, desc.dst_zstride))
        ym1, zm1 = Signal(16), Signal(16)
        end_axi, end_sram, total, sram_lim = Signal(66), Signal(66), Signal(64), Signal(40)
        lims = [min(cfg.dma.sram_bytes, isa.sram_bytes(cfg, s)) for s in isa.Sram]
        m.d.comb += [
            ym1.eq(desc.rows - 1), zm1.eq(desc.planes - 1),
            end_axi.eq(axi_b + zm1 * axi_z + ym1 * axi_y + desc.row_bytes),
            end_sram.eq(sr_b + zm1 * sr_z + ym1 * sr_y + desc.row_bytes),
            total.eq(desc.row_bytes * desc.rows * desc.planes),
            sram_lim.eq(Mux(hdr.sram == 0, lims[0], Mux(hdr.sram == 1, lims[1], lims[2]))),
        ]
        bad_len = (desc.row_bytes == 0) | (desc.rows == 0) | (desc.planes == 0) | \
            (total > cfg.dma.max_bytes)
        if lw:
            misaligned = ((desc.src - desc.dst)[:lw] != 0) | \
                ((desc.rows > 1) & ((desc.src_ystride - desc.dst_ystride)[:lw] != 0)) | \
                ((desc.planes > 1) & ((desc.src_zstride - desc.dst_zstride)[:lw] != 0))
        else:
            misaligned = 0
        # indexed (models.dma): index list 4-aligned and in HBM, AXI zstride a whole
        # beat; the AXI rows are the engine's per-plane check, not this one
        misaligned = misaligned | (desc.index & ((desc.index_addr[:2] != 0) |
                                                 ((axi_z[:lw] != 0) if lw else 0)))
        list_end = desc.index_addr + (desc.planes << 2)
        window = Mux(desc.index, list_end > cfg.hbm.total_bytes,
                     end_axi > cfg.hbm.total_bytes) | (end_sram > sram_lim)
        dma_err = Signal(ERR_BITS)
        m.d.comb += dma_err.eq(Mux(bad_len, int(DmaError.BAD_LENGTH),
                               Mux(misaligned, int(DmaError.MISALIGNED),
                               Mux(window, int(DmaError.WINDOW), int(DmaError.OK)))))

        # tensor command: the tensor core's own check
        m.submodules.tcheck = tcheck = CmdCheck(cfg)
        m.d.comb += tcheck.i_cmd.eq(tcmd)
        is_tc = op == int(Opcode.TENSOR)

        rules = [
            (~op.matches(*(int(o) for o in Opcode)), IsaError.BAD_OPCODE, 0),
            (bad_field, IsaError.BAD_FIELD, 0),
            (bad_tile, IsaError.BAD_TILE, 0),
            (bad_token, IsaError.BAD_TOKEN, 0),
            (bad_mask, IsaError.BAD_MASK, 0),
            (bad_sram, IsaError.BAD_SRAM, 0),
            (bad_dir, IsaError.BAD_DIR, 0),
            (is_dma & (dma_err != 0), IsaError.DMA, dma_err),
            (is_tc & (tcheck.o_code != 0), IsaError.TENSOR, tcheck.o_code),
        ]
        code, detail = Value.cast(int(IsaError.NONE)), Value.cast(0)
        for cond, c, d in reversed(rules):
            code = Mux(cond, int(c), code)
            detail = Mux(cond, d, detail)
        m.d.comb += [self.o_code.eq(code), self.o_detail.eq(detail)]
        return m
