# amaranth: UnusedElaboratable=no
"""The top-level blocks: what `make verilog` emits and what the simulation runner builds.

Each entry maps a Verilog module name to a factory taking the chip config. The module
name is the block's one name across rtl/, models/, tb/ and tests/.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from amaranth.lib import wiring

from models.config import JalapenoConfig

__all__ = ["Block", "BLOCKS", "get_block"]


@dataclass(frozen=True)
class Block:
    """A top-level block: Verilog module ``name`` built by ``factory(config)``."""

    name: str
    factory: Callable[[JalapenoConfig], wiring.Component]
    doc: str = ""
    #: Testbenches touch only the top-level ports: Verilator builds it without
    #: ``--public-flat-rw`` (which keeps every internal signal and blocks most of
    #: Verilator's optimizations; the chip top simulates ~20x faster without it).
    ports_only: bool = False
    #: The ``key`` under which a parent shares this block (rtl.lib.shared), from the
    #: config: ``make verilog`` then writes the block's module once per run, for the
    #: block and for the parents that instantiate it (rtl.lib.verilog.convert's key).
    shared_key: Callable[[JalapenoConfig], object] | None = None


def _systolic_array(cfg: JalapenoConfig):
    from rtl.systolic.array import SystolicArray
    return SystolicArray(cfg.systolic)


def _processing_element(cfg: JalapenoConfig):
    from rtl.systolic.pe import ProcessingElement
    return ProcessingElement(cfg.systolic)


def _fp8_multiplier(cfg: JalapenoConfig):
    from rtl.fp.fp8_mul import FP8Multiplier
    return FP8Multiplier()


def _fp32_adder(cfg: JalapenoConfig):
    from rtl.fp.fp32_add import FP32Adder
    return FP32Adder()


def _vector_unit(cfg: JalapenoConfig):
    from rtl.vector.unit import VectorUnit
    return VectorUnit(cfg)


def _fp32_multiplier(cfg: JalapenoConfig):
    from rtl.fp.fp32_mul import FP32Multiplier
    return FP32Multiplier()


def _noc_mesh(cfg: JalapenoConfig):
    from rtl.noc.mesh import NocMesh
    return NocMesh(cfg.noc, shared=True)


def _noc_router(cfg: JalapenoConfig):
    from rtl.noc.router import NocRouter
    return NocRouter(cfg.noc, cfg.noc.cols // 2, cfg.noc.rows // 2)


def _hbm_stub(cfg: JalapenoConfig):
    from rtl.mem.hbm import HbmStub
    return HbmStub(cfg.hbm)


def _dma_engine(cfg: JalapenoConfig):
    from rtl.dma.engine import DmaEngine
    return DmaEngine(cfg.dma, data_bytes=cfg.hbm.data_bytes, id_bits=cfg.hbm.id_bits)


def _dma_hbm(cfg: JalapenoConfig):
    from rtl.dma.system import DmaHbm
    return DmaHbm(cfg)


def _dma_noc_hbm(cfg: JalapenoConfig):
    from rtl.soc.dma_noc_hbm import DmaNocHbm
    return DmaNocHbm(cfg)


def _tensor_core(cfg: JalapenoConfig):
    from rtl.tensor.core import TensorCore
    return TensorCore(cfg)


def _compute_tile(cfg: JalapenoConfig):
    from rtl.soc.tile import ComputeTile
    return ComputeTile(cfg)


def _host_regs(cfg: JalapenoConfig):
    from rtl.regs.block import HostRegs
    return HostRegs(cfg)


def _cmd_processor(cfg: JalapenoConfig):
    from rtl.soc.cmdproc import CommandProcessor
    return CommandProcessor(cfg)


def _moe_dispatch(cfg: JalapenoConfig):
    from rtl.soc.moe_dispatch import MoeDispatch
    return MoeDispatch(cfg)


def _soc(cfg: JalapenoConfig):
    from rtl.soc.top import Soc
    return Soc(cfg)


def _noc_fabric(cfg: JalapenoConfig):
    from rtl.noc.fabric import NocMemFabric
    return NocMemFabric(cfg.noc, shared=True)


BLOCKS: dict[str, Block] = {b.name: b for b in [
    Block("systolic_array", _systolic_array, "R x C weight-stationary INT8 (+FP8) array",
          shared_key=lambda cfg: cfg.systolic),
    Block("processing_element", _processing_element, "one MAC cell of the array",
          shared_key=lambda cfg: cfg.systolic),
    Block("fp8_multiplier", _fp8_multiplier, "FP8 x FP8 -> exact FP32 (E4M3/E5M2 per operand)"),
    Block("fp32_adder", _fp32_adder, "IEEE binary32 adder, RNE, subnormals, canonical NaN"),
    Block("fp32_multiplier", _fp32_multiplier, "IEEE binary32 multiplier, RNE, subnormals"),
    Block("vector_unit", _vector_unit, "vector unit: softmax state, exp, recip, GELU, requant"),
    Block("noc_mesh", _noc_mesh, "k x m mesh NoC: XY wormhole routers, 2 VCs, credits"),
    Block("noc_router", _noc_router, "one 5-port router of the mesh (a centre one)"),
    Block("noc_fabric", _noc_fabric, "mesh + memory request/response network interfaces"),
    Block("hbm_stub", _hbm_stub, "N-channel HBM controller stub, one AXI4 slave port"),
    Block("dma_engine", _dma_engine, "descriptor DMA: AXI4 master <-> SRAM port"),
    Block("dma_hbm", _dma_hbm, "DMA engine driving the HBM stub (tests, bench)"),
    Block("dma_noc_hbm", _dma_noc_hbm, "DMA -> AXI-over-NoC bridges -> mesh -> HBM channels"),
    Block("tensor_core", _tensor_core, "array + act/weight/acc SRAMs + command controller"),
    Block("compute_tile", _compute_tile, "tensor core + DMA engine writing its SRAMs while it computes",
          shared_key=lambda cfg: cfg),
    Block("host_regs", _host_regs, "AXI4-Lite host registers from rtl/regs/jalapeno.rdl"),
    Block("cmd_processor", _cmd_processor, "command processor: ring fetch, ISA check, "
          "per-tile queues with tokens, barrier/fence/irq/halt, watchdog, host registers"),
    Block("moe_dispatch", _moe_dispatch, "MoE dispatch unit: ranking table in HBM -> "
          "capacity / drop / reroute admission, slot table, slot_token list, counters"),
    Block("soc", _soc, "the chip: command processor, compute tiles and HBM channels on the mesh",
          ports_only=True),
]}


def get_block(name: str) -> Block:
    try:
        return BLOCKS[name]
    except KeyError:
        raise KeyError(f"unknown block {name!r}; known blocks: {', '.join(BLOCKS)}") from None
