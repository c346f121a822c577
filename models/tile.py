"""Golden model of a compute tile: tensor core + DMA engine + the tile's SRAM byte map.

models/isa.py addresses a tile SRAM with a separate ``sram`` field (:class:`models.isa.Sram`)
and a byte address inside that SRAM (activation word ``i`` lane ``j`` = byte ``i * R + j``,
weight ``i * C + j``, accumulator bytes ``4 * (i * C + j)`` .. ``+ 3`` little-endian). The
DMA engine has one SRAM byte window. This module defines how that window covers the
three SRAMs (models/isa.py and models/chip.py leave it open):

* The tile's SRAM space is :func:`space_bytes` = 4 x ``dma.sram_bytes`` bytes: region
  ``k`` = ``[k * R_B, (k + 1) * R_B)`` with ``R_B = config.dma.sram_bytes`` (a power of
  two that covers every SRAM: ``JalapenoConfig.chip_errors``) holds SRAM ``k``
  (``Sram.ACT``, ``Sram.WEIGHT``, ``Sram.ACC``) at its ISA byte addresses; region 3
  and the bytes of a region past its SRAM's size are unmapped: writes there are
  dropped, reads return zero.
* A DMA command ``(sram, desc)`` of the ISA becomes the tile descriptor
  :func:`tile_descriptor` (its SRAM-side base moved by ``sram * R_B``); the tile's
  engine checks descriptors with :func:`tile_dma_config` (``sram_bytes`` = the space).

:class:`TileModel` runs descriptors (``models.dma`` semantics: check, then ``apply``)
and tensor commands (``models.tensor_core.TensorCoreModel``) on the same SRAM images.
It is a sequential model: overlap of DMA and compute in the RTL is invisible to it as
long as a program does not touch an SRAM row that a running command uses.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from models import dma as _dma
from models.config import DmaConfig, JalapenoConfig
from models.dma import Descriptor, DmaDir, DmaError
from models.isa import Sram
from models.tensor_core import TensorCoreModel

__all__ = ["REGIONS", "region_bytes", "space_bytes", "sram_base", "sram_size",
           "tile_dma_config", "tile_descriptor", "TileModel"]

#: Regions of the tile's SRAM space (3 SRAMs + one unmapped region; a power of two).
REGIONS = 4


def region_bytes(config: JalapenoConfig) -> int:
    """Bytes of one region (``config.dma.sram_bytes``)."""
    return config.dma.sram_bytes


def space_bytes(config: JalapenoConfig) -> int:
    """Bytes of the tile's SRAM space: the DMA engine's SRAM window."""
    return REGIONS * region_bytes(config)


def sram_base(config: JalapenoConfig, sram: int) -> int:
    """Tile-space byte address of byte 0 of SRAM ``sram``."""
    return int(Sram(sram)) * region_bytes(config)


def sram_size(config: JalapenoConfig, sram: int) -> int:
    """Bytes of SRAM ``sram`` (rows x row bytes)."""
    tc, sa = config.tensor, config.systolic
    return {Sram.ACT: tc.act_rows * sa.rows, Sram.WEIGHT: tc.weight_rows * sa.cols,
            Sram.ACC: tc.acc_rows * sa.cols * 4}[Sram(sram)]


def tile_dma_config(config: JalapenoConfig) -> DmaConfig:
    """The tile engine's DMA config: ``config.dma`` with ``sram_bytes`` = the tile space."""
    return dataclasses.replace(config.dma, sram_bytes=space_bytes(config))


def tile_descriptor(config: JalapenoConfig, sram: int, desc: Descriptor) -> Descriptor:
    """The tile descriptor of ISA DMA command ``(sram, desc)`` (SRAM side moved into
    region ``sram``)."""
    base = sram_base(config, sram)
    if desc.dir == DmaDir.LOAD:
        return dataclasses.replace(desc, dst=desc.dst + base)
    return dataclasses.replace(desc, src=desc.src + base)


class TileModel:
    """One compute tile: SRAM images, DMA descriptors and tensor commands in order.

    Parameters
    ----------
    config : JalapenoConfig
    hbm : np.ndarray of uint8
        The memory behind the tile's AXI port (modified in place by stores).
    win_base, win_limit : int
        The engine's AXI window (default: all of ``hbm``).

    Attributes
    ----------
    core : TensorCoreModel
        The tensor core (its ``act``, ``wgt``, ``acc`` are the SRAMs).
    """

    def __init__(self, config: JalapenoConfig, hbm: np.ndarray, *, win_base: int = 0,
                 win_limit: int | None = None):
        self.config = config
        self.hbm = hbm
        self.win = (win_base, len(hbm) if win_limit is None else win_limit)
        self.core = TensorCoreModel(config)
        self.dma_cfg = tile_dma_config(config)

    def sram(self, sram: int) -> np.ndarray:
        """Flat byte view (writes go through) of SRAM ``sram``."""
        c = self.core
        return {Sram.ACT: c.act, Sram.WEIGHT: c.wgt, Sram.ACC: c.acc}[Sram(sram)] \
            .view(np.uint8).reshape(-1)

    def space(self) -> np.ndarray:
        """A copy of the tile's SRAM space (unmapped bytes zero)."""
        img = np.zeros(space_bytes(self.config), np.uint8)
        for s in Sram:
            b = sram_base(self.config, s)
            img[b:b + sram_size(self.config, s)] = self.sram(s)
        return img

    def dma(self, desc: Descriptor) -> DmaError:
        """Run one tile descriptor; returns its completion code (up-front checks and the
        per-plane window check of an indexed descriptor; AXI error responses are not
        modelled here)."""
        code = _dma.check_descriptor(self.dma_cfg, self.config.hbm.data_bytes, desc,
                                     *self.win)
        if code != DmaError.OK:
            return code
        img = self.space()
        code = _dma.apply(desc, self.hbm, img, win_base=self.win[0], win_limit=self.win[1])
        if desc.dir == DmaDir.LOAD:
            for s in Sram:
                b = sram_base(self.config, s)
                self.sram(s)[:] = img[b:b + sram_size(self.config, s)]
        return code

    def execute(self, cmds):
        """Tensor commands (``TensorCoreModel.execute``)."""
        return self.core.execute(cmds)
