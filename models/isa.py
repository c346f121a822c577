"""The chip's command set: what the command processor fetches from the ring in HBM.

A program is a sequence of 64-byte :class:`Command` s. The command processor fetches
them in order and either executes them itself (NOP, BARRIER, FENCE, IRQ, HALT) or
dispatches them, in order, to one of three queues of a compute tile:

============ ======= ================================================================
opcode       queue   meaning
============ ======= ================================================================
NOP          --      nothing (retires at once)
DMA_LOAD     load    the tile's DMA copies HBM -> SRAM ``sram`` (descriptor, dir LOAD)
DMA_STORE    store   the tile's DMA copies SRAM ``sram`` -> HBM (descriptor, dir STORE)
TENSOR       compute the tile's tensor core runs one :class:`models.tensor_cmd.TensorCmd`
SYNC         ``queue`` only the token flags (a wait or signal with no work attached)
BARRIER      all 3   of every tile in the mask ``arg``: nothing after it on those tiles
                     starts before everything before it on those tiles completed
FENCE        --      the dispatcher waits until every dispatched command completed
IRQ          --      FENCE, then raise the completion interrupt with value ``arg``
HALT         --      FENCE, then stop fetching (the chip is idle until restarted)
DISPATCH     --      FENCE, then the MoE dispatch unit runs the payload's descriptor
                     (``models.moe_dispatch``), then the command retires
============ ======= ================================================================

Opcode 0 is illegal on purpose: a ring entry that was never written (zeros) raises
BAD_OPCODE instead of running.

**Dependency tokens** (VTA's scheme: 4 bits per command, no address comparators). Each
tile has four counting semaphores, one per direction of its two queue pairs::

    LOAD --(L2C: data ready)--> COMPUTE --(C2S: result ready)--> STORE
    LOAD <--(C2L: buffer free)-- COMPUTE <--(S2C: buffer free)-- STORE

A queue command's ``wait_prev`` / ``wait_next`` flags take one token from the counter
coming from the previous / next queue before the command starts (the queue head waits
while it is 0); ``signal_prev`` / ``signal_next`` add one token to the counter going to
the previous / next queue after the command completed. The load queue has no previous
queue and the store queue no next one: those flags are BAD_TOKEN. A counter holds
0 .. ``soc.token_max``; a signal to a full counter raises TOKEN_OVERFLOW; a wait that is
never satisfied is caught by the watchdog (WATCHDOG).

**Memory image** (:data:`HEADER`, :data:`CMD_BYTES` = 64 bytes = 16 little-endian 32-bit
words; reserved bits are written 0 and ignored; scripts/gen_headers.py writes the same
table into the C header as ``jlp_cmd_hdr``):

====== =====================================================================
offset contents (bit offset: field)
====== =====================================================================
0x00   0: opcode (8), 8: tile (8), 16: sram (2), 18: queue (2),
       24: wait_prev, 25: wait_next, 26: signal_prev, 27: signal_next
0x04   0: arg (32): BARRIER tile mask, IRQ value
0x08   reserved (2 words)
0x10   payload (:data:`PAYLOAD_OFFSET`): DMA_LOAD / DMA_STORE: the 40-byte
       ``models.dma`` descriptor image; TENSOR: the 32-byte ``models.tensor_cmd``
       image; DISPATCH: the 32-byte ``models.moe_dispatch`` image; other opcodes:
       reserved
0x38   reserved up to 0x3F
====== =====================================================================

For DMA commands the descriptor's SRAM side (``dst`` of a load, ``src`` of a store) is
a byte address in the tile's SRAM ``sram`` (:class:`Sram`): activation word ``i`` lane
``j`` is byte ``i * R + j``, weight word ``i`` lane ``j`` byte ``i * C + j``, accumulator
word ``i`` lane ``j`` bytes ``4 * (i * C + j)`` .. ``+ 3`` (little-endian INT32/binary32).
The AXI side is an HBM byte address (``models.hbm.route`` picks the channel).

**Legality** (:func:`check`, what the RTL command processor checks at dispatch, in this
order): opcode, fields the opcode does not use (must be 0), tile, token flags, barrier
mask, SRAM, descriptor direction, descriptor (``models.dma.check_descriptor`` against the
HBM window and the size of the selected SRAM), tensor command
(``models.tensor_cmd.check``). The first rule broken is the :class:`IsaError`, with a
detail code (the DMA or tensor-core code); ERROR_CODE holds ``code | detail << 8``.
DISPATCH checks only its header here (BAD_FIELD: it uses no header field); its
descriptor is checked by the dispatch unit when it starts, after the FENCE wait
(``models.moe_dispatch.check``), and any failure of the unit is the run-time error
DISPATCH with the unit's ``models.moe_dispatch.DispatchError`` as detail.

Pure Python (no numpy, no Amaranth).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import NamedTuple

from models import dma as _dma
from models import moe_dispatch as _md
from models import tensor_cmd as _tc
from models.dma import Descriptor, DmaDir, DmaError
from models.memimage import MemoryImage, check_widths
from models.tensor_cmd import TensorCmd

__all__ = ["Opcode", "Queue", "Sram", "Token", "IsaError", "Fault", "FIELD_BITS", "HEADER",
           "HEADER_BYTES", "CMD_BYTES", "PAYLOAD_OFFSET", "QUEUE_OPS", "TOKEN_FLAGS",
           "Command", "check", "sram_bytes", "error_word", "ring_image", "decode_ring"]


class Opcode(enum.IntEnum):
    """Command opcodes (0 is illegal: an unwritten ring entry never runs)."""

    NOP = 1
    DMA_LOAD = 2
    DMA_STORE = 3
    TENSOR = 4
    SYNC = 5
    BARRIER = 6
    FENCE = 7
    IRQ = 8
    HALT = 9
    DISPATCH = 10


class Queue(enum.IntEnum):
    """A tile's queues, in pipeline order (``prev`` of COMPUTE is LOAD, ``next`` STORE)."""

    LOAD = 0
    COMPUTE = 1
    STORE = 2


class Sram(enum.IntEnum):
    """The SRAM a DMA command reads or writes (= ``models.tensor_core.MEM_*``)."""

    ACT = 0
    WEIGHT = 1
    ACC = 2


class Token(enum.IntEnum):
    """A tile's four token counters (index of ``models.chip`` state and perf counters)."""

    L2C = 0         # load signal_next -> compute wait_prev   (data loaded)
    C2L = 1         # compute signal_prev -> load wait_next   (input buffer free)
    C2S = 2         # compute signal_next -> store wait_prev  (result ready)
    S2C = 3         # store signal_prev -> compute wait_next  (result buffer free)


class IsaError(enum.IntEnum):
    """Command-processor error codes: 1..9 from :func:`check`, 10.. at run time."""

    NONE = 0
    BAD_OPCODE = 1      # opcode not in Opcode
    BAD_FIELD = 2       # a field the opcode does not use is not 0; SYNC queue 3
    BAD_TILE = 3        # tile >= soc.tiles
    BAD_TOKEN = 4       # wait/signal_prev on the load queue, wait/signal_next on store
    BAD_MASK = 5        # BARRIER mask 0 or naming a tile that does not exist
    BAD_SRAM = 6        # sram 3
    BAD_DIR = 7         # descriptor dir differs from the opcode (LOAD / STORE)
    DMA = 8             # descriptor rejected; detail: models.dma.DmaError
    TENSOR = 9          # tensor command illegal; detail: models.tensor_cmd.ErrCode
    DMA_FAULT = 10      # AXI error response during a copy; detail: DmaError
    TOKEN_OVERFLOW = 11  # signal to a full counter; detail: models.isa.Token
    WATCHDOG = 12       # a wait was never satisfied; detail: Queue of the waiting head
    DISPATCH = 13       # the dispatch unit failed; detail: models.moe_dispatch.DispatchError


class Fault(NamedTuple):
    """Result of :func:`check`: an :class:`IsaError` and its detail code."""

    code: IsaError
    detail: int = 0

    def __bool__(self) -> bool:          # truthy when the command is illegal
        return self.code != IsaError.NONE


OK = Fault(IsaError.NONE, 0)

#: Header fields and widths.
FIELD_BITS: dict[str, int] = {
    "opcode": 8, "tile": 8, "sram": 2, "queue": 2, "wait_prev": 1, "wait_next": 1,
    "signal_prev": 1, "signal_next": 1, "arg": 32,
}
TOKEN_FLAGS = ("wait_prev", "wait_next", "signal_prev", "signal_next")

HEADER_BYTES = 16
HEADER = MemoryImage("cmd_hdr", HEADER_BYTES, [
    ("opcode", 0x00, 0, 8), ("tile", 0x00, 8, 8), ("sram", 0x00, 16, 2),
    ("queue", 0x00, 18, 2), ("wait_prev", 0x00, 24, 1), ("wait_next", 0x00, 25, 1),
    ("signal_prev", 0x00, 26, 1), ("signal_next", 0x00, 27, 1), ("arg", 0x04, 0, 32),
], FIELD_BITS)
#: Byte offset of the descriptor / tensor-command image inside a command.
PAYLOAD_OFFSET = HEADER_BYTES
#: Bytes of one command (a power of two: ring entry ``i`` is at ``base + i * CMD_BYTES``).
CMD_BYTES = 64
assert PAYLOAD_OFFSET + max(_dma.IMAGE_BYTES, _tc.IMAGE_BYTES, _md.IMAGE_BYTES) <= CMD_BYTES

#: Opcodes that go to a tile queue, and which one (SYNC: the ``queue`` field).
QUEUE_OPS = {Opcode.DMA_LOAD: Queue.LOAD, Opcode.TENSOR: Queue.COMPUTE,
             Opcode.DMA_STORE: Queue.STORE, Opcode.SYNC: None}
#: Header fields each opcode uses; every other field must be 0 (BAD_FIELD).
_USES = {Opcode.NOP: (), Opcode.FENCE: (), Opcode.HALT: (), Opcode.DISPATCH: (),
         Opcode.IRQ: ("arg",),
         Opcode.BARRIER: ("arg",), Opcode.TENSOR: ("tile",) + TOKEN_FLAGS,
         Opcode.DMA_LOAD: ("tile", "sram") + TOKEN_FLAGS,
         Opcode.DMA_STORE: ("tile", "sram") + TOKEN_FLAGS,
         Opcode.SYNC: ("tile", "queue") + TOKEN_FLAGS}
_DMA_OPS = {Opcode.DMA_LOAD: DmaDir.LOAD, Opcode.DMA_STORE: DmaDir.STORE}


@dataclass(frozen=True, eq=True)
class Command:
    """One command: header fields (module docstring) and the payload of its opcode.

    ``desc`` is required for DMA_LOAD / DMA_STORE, ``tensor`` for TENSOR and ``dispatch``
    (a ``models.moe_dispatch.Descriptor``) for DISPATCH; other opcodes (and opcode
    values outside :class:`Opcode`, which tests send) carry none.
    Construction checks widths and the payload (``ValueError``); legality for a config is
    :func:`check`, because an illegal command is a run-time error the chip reports.
    """

    opcode: int
    tile: int = 0
    sram: int = 0
    queue: int = 0
    wait_prev: int = 0
    wait_next: int = 0
    signal_prev: int = 0
    signal_next: int = 0
    arg: int = 0
    desc: Descriptor | None = None
    tensor: TensorCmd | None = None
    dispatch: _md.Descriptor | None = None

    def __post_init__(self):
        for name in FIELD_BITS:               # flags may be given as bools
            if isinstance(v := getattr(self, name), bool):
                object.__setattr__(self, name, int(v))
        check_widths("Command", self, FIELD_BITS)
        want_desc, want_tc = self.opcode in _DMA_OPS, self.opcode == Opcode.TENSOR
        if want_desc != isinstance(self.desc, Descriptor) or (
                not want_desc and self.desc is not None):
            raise ValueError(f"Command: opcode {self.opcode} {'needs' if want_desc else 'takes no'}"
                             f" descriptor, got {self.desc!r}")
        if want_tc != isinstance(self.tensor, TensorCmd) or (
                not want_tc and self.tensor is not None):
            raise ValueError(f"Command: opcode {self.opcode} {'needs' if want_tc else 'takes no'}"
                             f" tensor command, got {self.tensor!r}")
        want_md = self.opcode == Opcode.DISPATCH
        if want_md != isinstance(self.dispatch, _md.Descriptor) or (
                not want_md and self.dispatch is not None):
            raise ValueError(f"Command: opcode {self.opcode} {'needs' if want_md else 'takes no'}"
                             f" dispatch descriptor, got {self.dispatch!r}")

    # --- constructors -----------------------------------------------------------------
    @classmethod
    def load(cls, tile: int, sram: int, desc: Descriptor, **tokens) -> "Command":
        """DMA_LOAD of ``desc`` (dir LOAD) into SRAM ``sram`` of ``tile``."""
        return cls(Opcode.DMA_LOAD, tile=tile, sram=int(sram), desc=desc, **tokens)

    @classmethod
    def store(cls, tile: int, sram: int, desc: Descriptor, **tokens) -> "Command":
        """DMA_STORE of ``desc`` (dir STORE) out of SRAM ``sram`` of ``tile``."""
        return cls(Opcode.DMA_STORE, tile=tile, sram=int(sram), desc=desc, **tokens)

    @classmethod
    def compute(cls, tile: int, cmd: TensorCmd, **tokens) -> "Command":
        """TENSOR: ``cmd`` on the tensor core of ``tile``."""
        return cls(Opcode.TENSOR, tile=tile, tensor=cmd, **tokens)

    @classmethod
    def sync(cls, tile: int, queue: int, **tokens) -> "Command":
        """SYNC: token flags only, in ``queue`` of ``tile``."""
        return cls(Opcode.SYNC, tile=tile, queue=int(queue), **tokens)

    @classmethod
    def barrier(cls, tiles) -> "Command":
        """BARRIER over ``tiles`` (an iterable of tile numbers)."""
        return cls(Opcode.BARRIER, arg=sum(1 << t for t in set(tiles)))

    @classmethod
    def moe_dispatch(cls, desc: _md.Descriptor) -> "Command":
        """DISPATCH: the MoE dispatch unit runs ``desc`` (after a FENCE wait)."""
        return cls(Opcode.DISPATCH, dispatch=desc)

    @classmethod
    def fence(cls) -> "Command":
        return cls(Opcode.FENCE)

    @classmethod
    def irq(cls, value: int = 0) -> "Command":
        return cls(Opcode.IRQ, arg=value)

    @classmethod
    def halt(cls) -> "Command":
        return cls(Opcode.HALT)

    @classmethod
    def nop(cls) -> "Command":
        return cls(Opcode.NOP)

    # --- properties -------------------------------------------------------------------
    def header(self) -> dict[str, int]:
        """Header field name -> int."""
        return {name: int(getattr(self, name)) for name in FIELD_BITS}

    @property
    def target(self) -> Queue | None:
        """The tile queue the command goes to (None: the dispatcher executes it)."""
        if self.opcode not in QUEUE_OPS:
            return None
        q = QUEUE_OPS[Opcode(self.opcode)]
        return Queue(self.queue) if q is None else q

    @property
    def tokens(self) -> dict[str, int]:
        return {f: getattr(self, f) for f in TOKEN_FLAGS}

    # --- memory image -----------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The :data:`CMD_BYTES`-byte memory image."""
        payload = b""
        if self.desc is not None:
            payload = self.desc.to_bytes()
        elif self.tensor is not None:
            payload = self.tensor.to_bytes()
        elif self.dispatch is not None:
            payload = self.dispatch.to_bytes()
        img = HEADER.pack(self.header()) + payload
        return img + bytes(CMD_BYTES - len(img))

    @classmethod
    def from_bytes(cls, data: bytes) -> "Command":
        """Inverse of :meth:`to_bytes` (reserved bits and unused payloads ignored)."""
        data = bytes(data)
        if len(data) != CMD_BYTES:
            raise ValueError(f"a command is {CMD_BYTES} bytes, got {len(data)}")
        hdr = HEADER.unpack(data[:HEADER_BYTES])
        p = data[PAYLOAD_OFFSET:]
        if hdr["opcode"] in _DMA_OPS:
            return cls(**hdr, desc=Descriptor.from_bytes(p[:_dma.IMAGE_BYTES]))
        if hdr["opcode"] == Opcode.TENSOR:
            return cls(**hdr, tensor=TensorCmd.from_bytes(p[:_tc.IMAGE_BYTES]))
        if hdr["opcode"] == Opcode.DISPATCH:
            return cls(**hdr, dispatch=_md.Descriptor.from_bytes(p[:_md.IMAGE_BYTES]))
        return cls(**hdr)


assert {f.name for f in fields(Command)} == set(FIELD_BITS) | {"desc", "tensor", "dispatch"}


def sram_bytes(config, sram: int) -> int:
    """Bytes of SRAM ``sram`` (:class:`Sram`) of one tile of ``config``."""
    sa, tc = config.systolic, config.tensor
    return {Sram.ACT: tc.act_rows * sa.rows, Sram.WEIGHT: tc.weight_rows * sa.cols,
            Sram.ACC: tc.acc_rows * sa.cols * 4}[Sram(sram)]


def check(cmd: Command, config, *, win_base: int = 0, win_limit: int | None = None) -> Fault:
    """The fault the command processor of a chip built from ``config`` raises for
    ``cmd`` (``Fault(NONE, 0)``, falsy, when it is legal). Rule order: module docstring.

    ``[win_base, win_limit)`` is the HBM window of the tiles' DMA engines (default: all
    of HBM, ``config.hbm.total_bytes``).
    """
    soc = config.soc
    if cmd.opcode not in Opcode._value2member_map_:
        return Fault(IsaError.BAD_OPCODE)
    op = Opcode(cmd.opcode)
    hdr = cmd.header()
    if any(v for name, v in hdr.items() if name not in _USES[op] and name != "opcode"):
        return Fault(IsaError.BAD_FIELD)
    if op == Opcode.SYNC and cmd.queue > Queue.STORE:
        return Fault(IsaError.BAD_FIELD)
    q = cmd.target
    if q is not None:
        if cmd.tile >= soc.tiles:
            return Fault(IsaError.BAD_TILE)
        if (q == Queue.LOAD and (cmd.wait_prev or cmd.signal_prev)) or \
                (q == Queue.STORE and (cmd.wait_next or cmd.signal_next)):
            return Fault(IsaError.BAD_TOKEN)
    if op == Opcode.BARRIER and (cmd.arg == 0 or cmd.arg >> soc.tiles):
        return Fault(IsaError.BAD_MASK)
    if op in _DMA_OPS:
        if cmd.sram not in Sram._value2member_map_:
            return Fault(IsaError.BAD_SRAM)
        d = cmd.desc
        if d.dir != _DMA_OPS[op]:
            return Fault(IsaError.BAD_DIR)
        limit = config.hbm.total_bytes if win_limit is None else win_limit
        err = _dma.check_descriptor(config.dma, config.hbm.data_bytes, d, win_base, limit)
        if err == DmaError.OK:
            base, ys, zs = d.sram
            end = base + (d.planes - 1) * zs + (d.rows - 1) * ys + d.row_bytes
            if end > sram_bytes(config, cmd.sram):
                err = DmaError.WINDOW
        if err != DmaError.OK:
            return Fault(IsaError.DMA, int(err))
    if op == Opcode.TENSOR:
        err = _tc.check(cmd.tensor, config)
        if err != _tc.ErrCode.NONE:
            return Fault(IsaError.TENSOR, int(err))
    return OK


def error_word(fault: Fault) -> int:
    """ERROR_CODE register value of a fault: ``code | detail << 8``."""
    return int(fault.code) | int(fault.detail) << 8


def ring_image(cmds) -> bytes:
    """The images of ``cmds`` back to back (ring entries 0, 1, ...)."""
    return b"".join(c.to_bytes() for c in cmds)


def decode_ring(data: bytes) -> list[Command]:
    """Inverse of :func:`ring_image`."""
    data = bytes(data)
    if len(data) % CMD_BYTES:
        raise ValueError(f"a ring image is a multiple of {CMD_BYTES} bytes, got {len(data)}")
    return [Command.from_bytes(data[i:i + CMD_BYTES]) for i in range(0, len(data), CMD_BYTES)]
