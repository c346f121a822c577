"""Amaranth layouts of the formats shared by several blocks, derived from models/.

A neutral module: blocks import their formats from here, never from each other (the
vector unit and the tensor core both read the tensor command; neither imports the
other for it). Every layout is built from the field table of its model, so a field
exists in one place only.
"""
from __future__ import annotations

from amaranth.lib import data

from models.tensor_cmd import FIELD_BITS, TensorCmd

__all__ = ["tensor_cmd_layout", "SRAM_ADDR_BITS"]

#: Width of a tensor-core SRAM row address on every internal port (the commands'
#: address fields; the memories use the low bits of a legal address).
SRAM_ADDR_BITS = FIELD_BITS["src"]


def tensor_cmd_layout() -> data.StructLayout:
    """One :class:`models.tensor_cmd.TensorCmd`, fields LSB first in declaration order.

    The layout does not depend on the configuration (addresses are always 16 bits), so
    command streams are portable between presets; :func:`models.tensor_cmd.check`
    decides what a given core accepts.
    """
    return data.StructLayout({name: FIELD_BITS[name] for name in TensorCmd.__dataclass_fields__})


# --- DMA (models/dma.py): the command processor and the DMA engine share these --------
__all__ += ["dma_desc_layout", "dma_done_layout"]


def dma_desc_layout() -> data.StructLayout:
    """One :class:`models.dma.Descriptor`, fields LSB first in the order of
    :data:`models.dma.FIELD_BITS` (the same for every configuration)."""
    from models import dma
    return data.StructLayout(dma.FIELD_BITS)


def dma_done_layout() -> data.StructLayout:
    """One DMA completion: the descriptor's ``tag`` and a :class:`models.dma.DmaError`
    (:data:`models.dma.DONE_BITS`)."""
    from models import dma
    return data.StructLayout(dma.DONE_BITS)
