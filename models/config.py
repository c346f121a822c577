"""The one configuration of the chip, shared by RTL, golden models, testbenches and reports.

Every block reads its parameters from a section of :class:`JalapenoConfig`; the golden
model that checks a block reads the *same* object, so the model cannot drift from the
RTL it checks (Gemmini's lesson). Configs are frozen, validated on construction (the
error names the offending value) and serializable to JSON, which is how a config
travels from pytest into a cocotb simulation (``JALAPENO_CONFIG`` environment variable)
and into every bench record.

This module imports neither Amaranth nor cocotb, so models and scripts can use it alone.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

__all__ = ["ConfigError", "SystolicConfig", "TensorConfig", "NocConfig", "SocConfig", "JalapenoConfig", "PRESETS",
           "get_preset"]


class ConfigError(ValueError):
    """A configuration value is out of range; the message names field and value."""


def _check_int(owner: str, name: str, value, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{owner}.{name} must be an int, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{owner}.{name} must be in [{lo}, {hi}], got {value}")


@dataclass(frozen=True)
class SystolicConfig:
    """Weight-stationary systolic array.

    Parameters
    ----------
    rows : int
        R, the number of PE rows = the K depth of one weight tile (1..256).
    cols : int
        C, the number of PE columns = the N width of one weight tile (1..256).
    fp8 : bool
        Build the FP8 datapath (FP8 x FP8 -> FP32 in every PE, selected per tile at
        run time; docs/systolic.md). False builds the INT8-only array, which ignores
        the tile mode fields.

    The INT8 datapath is fixed by the numerics contract: signed 8-bit activations and
    weights, exact products, 32-bit two's-complement accumulation with wrap-around.
    """

    rows: int = 16
    cols: int = 16
    fp8: bool = True

    act_bits = 8
    weight_bits = 8
    acc_bits = 32
    #: Cycles the FP8 build's columns spend rounding their exact sums once, at the
    #: bottom (``rtl.fp.fixed_to_f32.FixedToF32``).
    round_stages = 4

    def __post_init__(self):
        _check_int("SystolicConfig", "rows", self.rows, 1, 256)
        _check_int("SystolicConfig", "cols", self.cols, 1, 256)
        if not isinstance(self.fp8, bool):
            raise ConfigError(f"SystolicConfig.fp8 must be a bool, got {self.fp8!r}")

    @property
    def peak_macs_per_cycle(self) -> int:
        """R x C multiply-accumulates per cycle."""
        return self.rows * self.cols

    @property
    def product_stages(self) -> int:
        """Pipeline registers of a PE between an activation and its add (every PE
        delays its sum by as many cycles): operands and product (2, INT8-only), plus
        the FP8 product's alignment to fixed point (3)."""
        return 3 if self.fp8 else 2

    @property
    def latency(self) -> int:
        """Cycles from an activation vector accepted to its result vector valid: the
        input register (1), the skew and the column (R + C - 1), product_stages, and
        round_stages with FP8: R + C + 2 (INT8-only) or R + C + 7 (FP8)."""
        return (1 + self.rows + self.cols - 1 + self.product_stages
                + (self.round_stages if self.fp8 else 0))

    def folds(self, k: int, n: int) -> int:
        """Weight tiles needed for a K x N weight matrix: ceil(K/R) * ceil(N/C)."""
        return math.ceil(k / self.rows) * math.ceil(n / self.cols)


@dataclass(frozen=True)
class NocConfig:
    """2D mesh network-on-chip (docs/noc.md).

    Parameters
    ----------
    cols : int
        k, routers along X (1..16).
    rows : int
        m, routers along Y (1..16). Node ``n = y * cols + x``.
    data_bits : int
        Payload bits of one flit (32..512); one memory data beat per body flit.
    buffer_depth : int
        Flits per virtual-channel input FIFO = credits per VC on each link (2..32).
        The credit round trip is 3 cycles, so a single VC needs 3 to stream at full
        rate; with 4-flit packets, 8 lets a VC hold two packets, which is what lifts
        uniform saturation above 70 % of 4/k on the 4x4 mesh (docs/noc.md).
    addr_bits, len_bits, id_bits : int
        Fields of the memory requests the network interfaces packetize.

    Two virtual channels are fixed: VC 0 carries requests, VC 1 responses.
    """

    cols: int = 4
    rows: int = 4
    data_bits: int = 64
    buffer_depth: int = 4
    addr_bits: int = 32
    len_bits: int = 8
    id_bits: int = 8

    vcs = 2
    VC_REQ = 0
    VC_RESP = 1

    def __post_init__(self):
        _check_int("NocConfig", "cols", self.cols, 1, 16)
        _check_int("NocConfig", "rows", self.rows, 1, 16)
        _check_int("NocConfig", "data_bits", self.data_bits, 32, 512)
        _check_int("NocConfig", "buffer_depth", self.buffer_depth, 2, 32)
        _check_int("NocConfig", "addr_bits", self.addr_bits, 8, 64)
        _check_int("NocConfig", "len_bits", self.len_bits, 1, 16)
        _check_int("NocConfig", "id_bits", self.id_bits, 1, 16)
        from models.noc import MEM_OP_BITS      # models.noc imports this module
        need = MEM_OP_BITS + self.addr_bits + self.len_bits + self.id_bits
        if need > self.data_bits:
            raise ConfigError(f"NocConfig.data_bits must hold a request header of {need} bits "
                              f"(op {MEM_OP_BITS} + addr_bits + len_bits + id_bits), "
                              f"got {self.data_bits}")

    @property
    def nodes(self) -> int:
        return self.cols * self.rows

    @property
    def coord_bits(self) -> int:
        """Bits of a destination coordinate: one value past the mesh always fits, so a
        packet to a node that does not exist can be expressed (and must be dropped)."""
        return max(self.cols, self.rows).bit_length()


def _check_pow2(owner: str, name: str, value, lo: int, hi: int) -> None:
    _check_int(owner, name, value, lo, hi)
    if value & (value - 1):
        raise ConfigError(f"{owner}.{name} must be a power of two, got {value}")


@dataclass(frozen=True)
class HbmConfig:
    """HBM controller stub (rtl/mem/hbm.py, models/hbm.py).

    Parameters
    ----------
    channels : int
        Pseudo-channels (1..16, power of two), each with its own backing store, queues,
        bandwidth limit and row buffers.
    data_bytes : int
        AXI data width in bytes of the front port and of every channel (4..64, pow2).
    id_bits : int
        AXI ID width (1..8).
    channel_bytes : int
        Backing store per channel in bytes (power of two, >= 4 KiB).
    read_latency, write_latency : int
        Cycles from AR accepted to the first R beat / from the last W beat accepted to
        B, when nothing else is queued (2..4095).
    bytes_per_cycle : int
        Bandwidth limit of one channel (reads and writes share it), 1..data_bytes.
    max_outstanding : int
        Reads (and, separately, writes) a channel accepts before it stops taking
        addresses (1..64).
    interleave_bytes : int
        Global address -> channel granularity: channel = (addr // interleave_bytes) %
        channels (power of two, 64..4096).
    banks, row_bytes, row_miss_cycles : int
        Optional row-buffer timing: a burst whose row differs from the open row of its
        bank pays ``row_miss_cycles`` extra (0 disables the model).
    store_bytes : int
        Physical backing store per channel; 0 means ``channel_bytes``. A smaller store
        aliases (local address modulo store_bytes): a performance-only setting for
        benches whose address space is larger than simulation memory should be.
    """

    channels: int = 4
    data_bytes: int = 16
    id_bits: int = 4
    channel_bytes: int = 256 * 1024
    read_latency: int = 100
    write_latency: int = 100
    bytes_per_cycle: int = 16
    max_outstanding: int = 16
    interleave_bytes: int = 4096
    banks: int = 4
    row_bytes: int = 1024
    row_miss_cycles: int = 0
    store_bytes: int = 0

    addr_bits = 32

    def __post_init__(self):
        o = "HbmConfig"
        _check_pow2(o, "channels", self.channels, 1, 16)
        _check_pow2(o, "data_bytes", self.data_bytes, 4, 64)
        _check_int(o, "id_bits", self.id_bits, 1, 8)
        _check_pow2(o, "channel_bytes", self.channel_bytes, 4096, 1 << 28)
        _check_int(o, "read_latency", self.read_latency, 2, 4095)
        _check_int(o, "write_latency", self.write_latency, 2, 4095)
        _check_int(o, "bytes_per_cycle", self.bytes_per_cycle, 1, self.data_bytes)
        _check_int(o, "max_outstanding", self.max_outstanding, 1, 64)
        _check_pow2(o, "interleave_bytes", self.interleave_bytes, 64, 4096)
        _check_pow2(o, "banks", self.banks, 1, 64)
        _check_pow2(o, "row_bytes", self.row_bytes, 64, 1 << 16)
        _check_int(o, "row_miss_cycles", self.row_miss_cycles, 0, 1000)
        if self.store_bytes:
            _check_pow2(o, "store_bytes", self.store_bytes, 4096, self.channel_bytes)
        if self.interleave_bytes < self.data_bytes:
            raise ConfigError(f"HbmConfig.interleave_bytes must be >= data_bytes "
                              f"({self.data_bytes}), got {self.interleave_bytes}")

    @property
    def store(self) -> int:
        """Bytes of real storage per channel."""
        return self.store_bytes or self.channel_bytes

    @property
    def total_bytes(self) -> int:
        """Size of the global address space backed by the stub."""
        return self.channels * self.channel_bytes

    @property
    def peak_bytes_per_cycle(self) -> int:
        """min(front-port width, sum of the channel limits)."""
        return min(self.data_bytes, self.channels * self.bytes_per_cycle)


@dataclass(frozen=True)
class DmaConfig:
    """Descriptor-driven DMA engine (rtl/dma/engine.py, models/dma.py).

    Parameters
    ----------
    max_burst_beats : int
        Longest AXI burst the engine issues (1..256, power of two).
    max_outstanding : int
        AXI bursts in flight (1..64).
    sram_bytes : int
        Size of the on-chip SRAM behind the SRAM port (power of two).
    max_bytes : int
        Largest total size of one descriptor (row_bytes * rows * planes).
    desc_depth : int
        Descriptors queued in front of the engine (1..16).
    descs_in_flight : int
        Descriptors accepted and not yet completed (checked, generating, or with bursts
        in flight; 1..64): the depth of the engine's per-descriptor bookkeeping queues.
        With ``max_outstanding`` bursts shared by all of them, 8 keeps a stream of
        >= 1 KiB descriptors data-bound at 100-200 cycle latency (docs/memory.md).
    """

    max_burst_beats: int = 16
    max_outstanding: int = 16
    sram_bytes: int = 1 << 20
    max_bytes: int = 1 << 22
    desc_depth: int = 2
    descs_in_flight: int = 8

    def __post_init__(self):
        o = "DmaConfig"
        _check_pow2(o, "max_burst_beats", self.max_burst_beats, 1, 256)
        _check_int(o, "max_outstanding", self.max_outstanding, 1, 64)
        _check_pow2(o, "sram_bytes", self.sram_bytes, 256, 1 << 30)
        _check_int(o, "max_bytes", self.max_bytes, 1, (1 << 32) - 1)
        _check_int(o, "desc_depth", self.desc_depth, 1, 16)
        _check_int(o, "descs_in_flight", self.descs_in_flight, 1, 64)


@dataclass(frozen=True)
class TensorConfig:
    """SRAMs and queues of one tensor core (rtl/tensor/, models/tensor_core.py).

    Parameters
    ----------
    act_rows : int
        Words of the activation SRAM; a word is one activation vector (R x 8 bits).
    weight_rows : int
        Words of the weight SRAM; a word is one weight row (C x 8 bits).
    acc_rows : int
        Words of the accumulator SRAM; a word is C x 32 bits (INT32 or binary32).
        The vector unit's per-row state (running max, sum, rescale factor) has as
        many entries.
    cmd_depth : int
        Commands queued in front of the controller (1..64).

    Every depth is a power of two between 16 and 65536 (commands carry 16-bit
    addresses).
    """

    act_rows: int = 2048
    weight_rows: int = 2048
    acc_rows: int = 2048
    cmd_depth: int = 4

    def __post_init__(self):
        o = "TensorConfig"
        for name in ("act_rows", "weight_rows", "acc_rows"):
            _check_pow2(o, name, getattr(self, name), 16, 1 << 16)
        _check_int(o, "cmd_depth", self.cmd_depth, 1, 64)


def _check_nodes(owner: str, name: str, value, count: int, count_name: str) -> tuple:
    if not isinstance(value, (tuple, list)):
        raise ConfigError(f"{owner}.{name} must be a tuple of node numbers, got {value!r}")
    if len(value) != count:
        raise ConfigError(f"{owner}.{name} must have {count} entries ({count_name}), "
                          f"got {len(value)}")
    for i, v in enumerate(value):
        _check_int(owner, f"{name}[{i}]", v, 0, 255)
    return tuple(value)


@dataclass(frozen=True)
class SocConfig:
    """The chip: compute tiles, HBM channel nodes and the command processor on the mesh
    (docs/chip.md; command set models/isa.py, golden model models/chip.py).

    Parameters
    ----------
    tiles : int
        Compute tiles (tensor core + DMA engine + network interface), 1..32: a BARRIER
        names its tiles with a 32-bit mask.
    tile_nodes : tuple of int
        Mesh node (``y * noc.cols + x``) of each tile; ``tiles`` entries.
    hbm_nodes : tuple of int
        Mesh node of each HBM channel (channel i of :func:`models.hbm.route`); as many
        entries as ``hbm.channels`` (checked by :meth:`JalapenoConfig.check_chip`).
    ctrl_node : int
        Mesh node of the command processor (host registers, ring fetch).
    host_node : int
        Mesh node of the host's AXI4 port into HBM (``Soc.s_axi_host``: its own
        initiator bridge, so host traffic never queues behind the ring fetch).
    fetch_depth : int
        Commands fetched from the ring ahead of dispatch (1..64).
    load_depth, compute_depth, store_depth : int
        Entries (commands and barrier markers) of each tile's load, compute and store
        queue (1..256). The dispatcher is in order: a full queue stalls it.
    token_bits : int
        Width of each dependency-token counter (2..16): it holds 0 .. 2**token_bits - 1
        tokens; a signal to a full counter is the TOKEN_OVERFLOW error.
    watchdog_cycles : int
        Cycles a queue head may wait for a token or a barrier before the WATCHDOG error
        (16 .. 2**32 - 1); longer than the longest legal command.
    dispatch_node : int
        Mesh node of the MoE dispatch unit (``DISPATCH`` command, models/moe_dispatch.py):
        its own AXI initiator bridge into HBM, like ``host_node``.
    dispatch_tokens : int
        Most tokens of one DISPATCH (1..65535): the depth of the unit's memories.
    dispatch_experts : int
        Most experts of one DISPATCH (1..16).
    """

    tiles: int = 4
    tile_nodes: tuple = (5, 6, 9, 10)
    hbm_nodes: tuple = (4, 7, 8, 11)
    ctrl_node: int = 0
    host_node: int = 12
    fetch_depth: int = 4
    load_depth: int = 8
    compute_depth: int = 8
    store_depth: int = 8
    token_bits: int = 4
    watchdog_cycles: int = 1 << 20
    dispatch_node: int = 13
    dispatch_tokens: int = 1024
    dispatch_experts: int = 16

    max_tiles = 32
    max_dispatch_experts = 16

    def __post_init__(self):
        o = "SocConfig"
        _check_int(o, "tiles", self.tiles, 1, self.max_tiles)
        object.__setattr__(self, "tile_nodes",
                           _check_nodes(o, "tile_nodes", self.tile_nodes, self.tiles, "tiles"))
        if not isinstance(self.hbm_nodes, (tuple, list)) or not self.hbm_nodes:
            raise ConfigError(f"{o}.hbm_nodes must be a non-empty tuple of node numbers, "
                              f"got {self.hbm_nodes!r}")
        object.__setattr__(self, "hbm_nodes", _check_nodes(
            o, "hbm_nodes", self.hbm_nodes, len(self.hbm_nodes), "HBM channels"))
        _check_int(o, "ctrl_node", self.ctrl_node, 0, 255)
        _check_int(o, "host_node", self.host_node, 0, 255)
        _check_int(o, "fetch_depth", self.fetch_depth, 1, 64)
        for name in ("load_depth", "compute_depth", "store_depth"):
            _check_int(o, name, getattr(self, name), 1, 256)
        _check_int(o, "token_bits", self.token_bits, 2, 16)
        _check_int(o, "watchdog_cycles", self.watchdog_cycles, 16, (1 << 32) - 1)
        _check_int(o, "dispatch_node", self.dispatch_node, 0, 255)
        _check_int(o, "dispatch_tokens", self.dispatch_tokens, 1, (1 << 16) - 1)
        _check_int(o, "dispatch_experts", self.dispatch_experts, 1, self.max_dispatch_experts)
        seen: dict[int, str] = {}
        for what, node in self.units():
            if node in seen:
                raise ConfigError(f"{o}: node {node} holds both {seen[node]} and {what}")
            seen[node] = what

    def units(self) -> list[tuple[str, int]]:
        """``(unit, node)`` of every unit on the mesh: ``"tile i"``, ``"hbm channel i"``,
        ``"host"``, ``"dispatch"``, ``"control"``."""
        return ([(f"tile {i}", n) for i, n in enumerate(self.tile_nodes)]
                + [(f"hbm channel {i}", n) for i, n in enumerate(self.hbm_nodes)]
                + [("host", self.host_node), ("dispatch", self.dispatch_node),
                   ("control", self.ctrl_node)])

    @property
    def token_max(self) -> int:
        """Most tokens a counter holds (2**token_bits - 1)."""
        return (1 << self.token_bits) - 1

    @property
    def queue_depths(self) -> tuple[int, int, int]:
        """(load, compute, store) queue depths, indexed by ``models.isa.Queue``."""
        return self.load_depth, self.compute_depth, self.store_depth


@dataclass(frozen=True)
class JalapenoConfig:
    """Top-level chip configuration (one section per block; later blocks add theirs).

    Parameters
    ----------
    name : str
        Preset name, used in build folders and reports.
    systolic : SystolicConfig
        The systolic array of each tensor core.
    clock_mhz : float
        Target clock, used for reports and the synthesis constraints (SDC).
    tensor : TensorConfig
        SRAM depths and command queue of each tensor core.
    """

    name: str = "default"
    systolic: SystolicConfig = field(default_factory=SystolicConfig)
    clock_mhz: float = 1000.0
    hbm: HbmConfig = field(default_factory=HbmConfig)
    dma: DmaConfig = field(default_factory=DmaConfig)
    noc: NocConfig = field(default_factory=NocConfig)
    tensor: TensorConfig = field(default_factory=TensorConfig)
    soc: SocConfig = field(default_factory=SocConfig)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ConfigError(f"JalapenoConfig.name must be an identifier, got {self.name!r}")
        if not isinstance(self.systolic, SystolicConfig):
            raise ConfigError(f"JalapenoConfig.systolic must be a SystolicConfig, got {self.systolic!r}")
        if isinstance(self.clock_mhz, bool) or not isinstance(self.clock_mhz, (int, float)) \
                or not 1.0 <= self.clock_mhz <= 5000.0:
            raise ConfigError(f"JalapenoConfig.clock_mhz must be in [1, 5000], got {self.clock_mhz!r}")
        if not isinstance(self.hbm, HbmConfig):
            raise ConfigError(f"JalapenoConfig.hbm must be a HbmConfig, got {self.hbm!r}")
        if not isinstance(self.dma, DmaConfig):
            raise ConfigError(f"JalapenoConfig.dma must be a DmaConfig, got {self.dma!r}")
        if not isinstance(self.noc, NocConfig):
            raise ConfigError(f"JalapenoConfig.noc must be a NocConfig, got {self.noc!r}")
        if not isinstance(self.tensor, TensorConfig):
            raise ConfigError(f"JalapenoConfig.tensor must be a TensorConfig, got {self.tensor!r}")
        if not isinstance(self.soc, SocConfig):
            raise ConfigError(f"JalapenoConfig.soc must be a SocConfig, got {self.soc!r}")

    # --- the chip: rules across sections ---------------------------------------------
    def chip_errors(self) -> list[str]:
        """Every broken cross-section rule of the chip (empty when it can be built).

        Block-level configurations (a 2x2 mesh for the NoC fabric test, a narrow NoC for
        its bench) need not satisfy these, so they are checked by :meth:`check_chip`,
        which every chip-level consumer calls (SoC top, ``models.chip``, the runtime)
        and every preset passes.
        """
        from models.axi import BOUNDARY_BYTES
        soc, noc, hbm, dma, sa, tc = (self.soc, self.noc, self.hbm, self.dma, self.systolic,
                                      self.tensor)
        err = []
        if len(soc.hbm_nodes) != hbm.channels:
            err.append(f"soc.hbm_nodes has {len(soc.hbm_nodes)} entries, hbm.channels is "
                       f"{hbm.channels}: one mesh node per HBM channel")
        for what, node in soc.units():
            if node >= noc.nodes:
                err.append(f"soc places {what} on node {node}, the {noc.cols}x{noc.rows} mesh "
                           f"has nodes 0..{noc.nodes - 1}")
        if noc.data_bits != 8 * hbm.data_bytes:
            err.append(f"noc.data_bits ({noc.data_bits}) must equal 8 * hbm.data_bytes "
                       f"({8 * hbm.data_bytes}): one flit carries one memory beat")
        if hbm.total_bytes > 1 << noc.addr_bits:
            err.append(f"noc.addr_bits ({noc.addr_bits}) cannot address hbm.total_bytes "
                       f"({hbm.total_bytes})")
        if dma.max_burst_beats > 1 << noc.len_bits:
            err.append(f"dma.max_burst_beats ({dma.max_burst_beats}) does not fit a packet's "
                       f"len field (noc.len_bits {noc.len_bits}: at most {1 << noc.len_bits})")
        if noc.id_bits < hbm.id_bits:
            err.append(f"noc.id_bits ({noc.id_bits}) must be >= hbm.id_bits ({hbm.id_bits})")
        chunk = min(BOUNDARY_BYTES, dma.max_burst_beats * hbm.data_bytes)  # dma.burst_chunk
        if hbm.interleave_bytes < chunk:
            err.append(f"hbm.interleave_bytes ({hbm.interleave_bytes}) must be >= the DMA "
                       f"burst span ({chunk} bytes): a burst must stay in one channel")
        srams = {"activation": tc.act_rows * sa.rows, "weight": tc.weight_rows * sa.cols,
                 "accumulator": tc.acc_rows * sa.cols * 4}
        for name, size in srams.items():
            if size > dma.sram_bytes:
                err.append(f"dma.sram_bytes ({dma.sram_bytes}) must cover the {name} SRAM "
                           f"({size} bytes)")
        return err

    def check_chip(self) -> "JalapenoConfig":
        """Raise ConfigError naming every broken cross-section rule; return ``self``."""
        err = self.chip_errors()
        if err:
            raise ConfigError(f"JalapenoConfig {self.name!r} is not a valid chip: "
                              + "; ".join(err))
        return self

    # --- serialization -------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "JalapenoConfig":
        """Inverse of :meth:`to_dict`; unknown keys are errors (typos never pass silently)."""
        return _from_dict(cls, d)

    @classmethod
    def from_json(cls, text: str) -> "JalapenoConfig":
        return cls.from_dict(json.loads(text))


def _from_dict(cls, d: dict):
    """Build dataclass ``cls`` from a dict, recursing into dataclass-typed sections."""
    if not isinstance(d, dict):
        raise ConfigError(f"{cls.__name__}: expected a JSON object, got {d!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(fields)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    kw = {}
    for name, value in d.items():
        sub = _SECTIONS.get((cls, name))
        kw[name] = _from_dict(sub, value) if sub is not None else value
    return cls(**kw)


def _sections():
    """(owner class, field name) -> dataclass type of that section."""
    out = {}
    for owner in (JalapenoConfig,):
        for f in dataclasses.fields(owner):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
            if dataclasses.is_dataclass(default):
                out[owner, f.name] = type(default)
    return out


_SECTIONS = _sections()

PRESETS: dict[str, JalapenoConfig] = {
    # Fast tests: every block at its smallest useful size.
    "tiny": JalapenoConfig(name="tiny", systolic=SystolicConfig(rows=4, cols=4),
                           # data_bits = 8 * hbm.data_bytes: one flit per memory beat
                           noc=NocConfig(cols=3, rows=3, data_bits=64, addr_bits=16,
                                         len_bits=4, id_bits=4),
                           hbm=HbmConfig(channels=2, data_bytes=8, channel_bytes=16 * 1024,
                                         read_latency=20, write_latency=20, bytes_per_cycle=8,
                                         max_outstanding=8, interleave_bytes=1024,
                                         row_miss_cycles=4),
                           # sram_bytes covers the 16 KiB accumulator SRAM
                           dma=DmaConfig(max_burst_beats=16, max_outstanding=8,
                                         sram_bytes=16 * 1024, max_bytes=1 << 16),
                           tensor=TensorConfig(act_rows=1024, weight_rows=1024, acc_rows=1024),
                           # the host port in the centre: one hop from both HBM
                           # channels and on no tile's XY route to them
                           soc=SocConfig(tiles=2, tile_nodes=(1, 7), hbm_nodes=(3, 5),
                                         ctrl_node=0, host_node=4, fetch_depth=4, load_depth=4,
                                         compute_depth=4, store_depth=4, token_bits=4,
                                         watchdog_cycles=1 << 16, dispatch_node=2,
                                         dispatch_tokens=64, dispatch_experts=8)),
    # The configuration of `make demo` and the default regression: INT8 and FP8 arrays
    # (the pipelined FP8 PE with exact fixed-point column sums costs no clock against
    # the INT8 PE: docs/systolic.md, docs/implementation.md).
    "default": JalapenoConfig(name="default", systolic=SystolicConfig(rows=16, cols=16),
                              noc=NocConfig(cols=4, rows=4, data_bits=128, buffer_depth=8),
                              # 2 MiB: a 512x512x512 INT8 GEMM (A, B, INT32 C) + its ring.
                              # 1 KiB interleave: an operand load spreads over all 4 channels
                              # (at 4 KiB the 4 tiles' loads of a step met on 2 channels)
                              hbm=HbmConfig(channels=4, data_bytes=16, channel_bytes=512 * 1024,
                                            read_latency=100, write_latency=100,
                                            bytes_per_cycle=16, max_outstanding=32,
                                            interleave_bytes=1024),
                              # 64-beat (1 KiB) bursts: the ring fetch carries 16 commands
                              # per burst (at 16 beats, 4 per ~150-cycle round trip starved
                              # the tiles of commands: 512^3 array_util 0.77)
                              dma=DmaConfig(max_burst_beats=64, max_outstanding=32,
                                            sram_bytes=1 << 18, max_bytes=1 << 22),
                              # HBM channels on the west and east edges, tiles in the middle.
                              # fetch_depth 32 = two 16-command bursts: the next burst goes
                              # out full while the last one is dispatched (at 16 it took the
                              # few free slots: an MoE layer's program 2 on the RTL, 2,346
                              # commands, 32.2 -> 24.4 cycles per command, docs/moe.md)
                              soc=SocConfig(tiles=4, tile_nodes=(5, 6, 9, 10),
                                            hbm_nodes=(4, 7, 8, 11), ctrl_node=0,
                                            host_node=12, fetch_depth=32, load_depth=8,
                                            compute_depth=16, store_depth=8, token_bits=4,
                                            watchdog_cycles=1 << 20, dispatch_node=13,
                                            dispatch_tokens=1024, dispatch_experts=16)),
    # Verilog generation and area estimates at the scale of the real chip.
    "jalapeno": JalapenoConfig(name="jalapeno", systolic=SystolicConfig(rows=64, cols=64),
                               noc=NocConfig(cols=8, rows=8, data_bits=256, buffer_depth=8),
                               # 32-byte beats = the 256-bit flits (bytes_per_cycle is 32)
                               hbm=HbmConfig(channels=16, data_bytes=32, channel_bytes=1 << 26,
                                             read_latency=100, write_latency=100,
                                             bytes_per_cycle=32, max_outstanding=32,
                                             interleave_bytes=1024, row_miss_cycles=20),
                               dma=DmaConfig(max_burst_beats=16, max_outstanding=32,
                                             sram_bytes=1 << 24, max_bytes=1 << 26),
                               tensor=TensorConfig(act_rows=4096, weight_rows=4096,
                                                   acc_rows=4096),
                               # HBM channels on the west and east columns, the 16 tiles in
                               # the central 4x4 block
                               soc=SocConfig(tiles=16,
                                             tile_nodes=tuple(y * 8 + x for y in range(2, 6)
                                                              for x in range(2, 6)),
                                             hbm_nodes=tuple(y * 8 + x for x in (0, 7)
                                                             for y in range(8)),
                                             ctrl_node=1, host_node=6, fetch_depth=32, load_depth=16,
                                             compute_depth=16, store_depth=16, token_bits=6,
                                             watchdog_cycles=1 << 24, dispatch_node=3,
                                             dispatch_tokens=4096, dispatch_experts=16)),
}

# The tiny chip built without the FP8 datapath: the INT8-only PE and array (the area and
# timing baseline of `make synth`) and the tensor core's NO_FP8 error stay simulated.
PRESETS["tiny_int8"] = dataclasses.replace(
    PRESETS["tiny"], name="tiny_int8",
    systolic=dataclasses.replace(PRESETS["tiny"].systolic, fp8=False))

for _cfg in PRESETS.values():       # every preset is a chip
    _cfg.check_chip()


def get_preset(name: str) -> JalapenoConfig:
    """Return the preset called ``name``; the error lists the known presets."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}") from None
