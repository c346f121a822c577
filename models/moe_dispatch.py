"""Golden model of the MoE dispatch unit (rtl/soc/moe_dispatch.py) and its descriptor.

The unit runs step 3 of :mod:`models.moe` (capacity, drop / reroute, counting pass,
exclusive prefix sum, token-order placement) on a ranking table in HBM and writes the
slot table, the slot_token list and the counters back to HBM. The command processor
runs it for the ``DISPATCH`` command (``models.isa.Opcode.DISPATCH``): after a FENCE
wait, on the command's payload, the 32-byte descriptor :data:`IMAGE`.

Admission is not re-implemented here: :func:`execute` calls
:func:`models.moe.dispatch` (one source) with the descriptor's capacity.

Descriptor image (:data:`IMAGE`, 32 bytes, little-endian 32-bit words)
----------------------------------------------------------------------

====== ============================================================================
offset fields (bit offset: field (bits))
====== ============================================================================
0x00   0: tokens (16), 16: experts (8), 24: top_k (4), 28: policy (1)
0x04   0: capacity (16), 16: rank_stride (16)
0x08   rank_addr: row t at ``rank_addr + t * rank_stride``; byte r = expert of rank r
0x0C   slot_addr: int32 slot of (token t, choice j) at ``+ 4 (j * tokens + t)``
0x10   slot_token_addr: int32 token of dispatch row s at ``+ 4 s`` (s < kept)
0x14   counts_addr: int32 [0, E) tokens_per_expert, [E, 2E) offsets, 2E dropped,
       2E + 1 dropped_tokens, 2E + 2 kept
0x18   drop_slot: the slot word of a dropped choice
0x1C   reserved
====== ============================================================================

Checks (:func:`check`, before any memory access, in this order; the first broken rule
is the :class:`DispatchError` detail of ``models.isa.IsaError.DISPATCH``): BAD_TOKENS
(0 or > ``soc.dispatch_tokens``), BAD_EXPERTS (0 or > ``soc.dispatch_experts``),
BAD_TOP_K (0 or > min(experts, 8)), BAD_CAPACITY (0), MISALIGNED (rank_addr,
slot_addr, slot_token_addr or counts_addr not a multiple of 4, or rank_stride not a
multiple of 4 when tokens > 1: every row address 4-aligned), WINDOW (a table outside
HBM ``[0, hbm.total_bytes)``; the slot_token list is checked at its largest size,
tokens x top_k words). While the ranking is read (before any write): BAD_RANK (a row
is not a permutation of 0 .. experts - 1); AXI (an AXI error response; writes issued
before it may have landed); TIMEOUT (an AXI handshake waited longer than
``soc.watchdog_cycles``: RTL only, the model never times out).

Writes (:func:`writes`): the slot table, then the slot_token list, then the counters.
numpy only; reads the same :class:`models.config.JalapenoConfig` as the RTL.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from models import moe as _moe
from models.memimage import MemoryImage, check_widths

__all__ = ["DispatchError", "Policy", "FIELD_BITS", "IMAGE", "IMAGE_BYTES", "ERR_BITS",
           "Descriptor", "check", "read_ranking", "run", "writes", "execute",
           "counts_words", "read_counts", "counts_table"]


class DispatchError(enum.IntEnum):
    """Detail code of ``IsaError.DISPATCH`` (the unit's done status); check order above."""

    OK = 0
    BAD_TOKENS = 1      # tokens 0 or > soc.dispatch_tokens
    BAD_EXPERTS = 2     # experts 0 or > soc.dispatch_experts
    BAD_TOP_K = 3       # top_k 0 or > min(experts, MAX_TOP_K)
    BAD_CAPACITY = 4    # capacity 0
    MISALIGNED = 5      # an address (or the row stride, tokens > 1) not a multiple of 4
    WINDOW = 6          # a table outside HBM
    BAD_RANK = 7        # a ranking row is not a permutation of the expert ids
    AXI = 8             # an AXI error response (SLVERR / DECERR)
    TIMEOUT = 9         # an AXI handshake waited > soc.watchdog_cycles (RTL only)


class Policy(enum.IntEnum):
    """Descriptor field ``policy`` (``models.moe.POLICIES`` order)."""

    DROP = 0
    REROUTE = 1


#: Bits of a :class:`DispatchError` on hardware ports.
ERR_BITS = 4
#: Descriptor fields and widths, in RTL layout order (LSB first).
FIELD_BITS: dict[str, int] = {
    "tokens": 16, "experts": 8, "top_k": 4, "policy": 1, "capacity": 16, "rank_stride": 16,
    "rank_addr": 32, "slot_addr": 32, "slot_token_addr": 32, "counts_addr": 32,
    "drop_slot": 32,
}
IMAGE_BYTES = 32
IMAGE = MemoryImage("dispatch_desc", IMAGE_BYTES, [
    ("tokens", 0x00, 0, 16), ("experts", 0x00, 16, 8), ("top_k", 0x00, 24, 4),
    ("policy", 0x00, 28, 1), ("capacity", 0x04, 0, 16), ("rank_stride", 0x04, 16, 16),
    ("rank_addr", 0x08, 0, 32), ("slot_addr", 0x0C, 0, 32),
    ("slot_token_addr", 0x10, 0, 32), ("counts_addr", 0x14, 0, 32),
    ("drop_slot", 0x18, 0, 32),
], FIELD_BITS)
assert max(DispatchError) < 1 << ERR_BITS


@dataclass(frozen=True)
class Descriptor:
    """One dispatch descriptor (fields: the module docstring). Construction checks that
    every field fits its width (``ValueError``); legality is :func:`check`."""

    tokens: int = 1
    experts: int = 1
    top_k: int = 1
    policy: int = Policy.DROP
    capacity: int = 1
    rank_stride: int = 0
    rank_addr: int = 0
    slot_addr: int = 0
    slot_token_addr: int = 0
    counts_addr: int = 0
    drop_slot: int = 0

    def __post_init__(self):
        for name in FIELD_BITS:               # numpy integers (counts, addresses) as int
            if isinstance(v := getattr(self, name), np.integer):
                object.__setattr__(self, name, int(v))
        check_widths("moe_dispatch.Descriptor", self, FIELD_BITS)

    def to_payload(self) -> dict:
        """Field name -> int (``tb.common.packing`` packs it with the RTL layout)."""
        return {k: getattr(self, k) for k in FIELD_BITS}

    def to_bytes(self) -> bytes:
        """The :data:`IMAGE_BYTES`-byte image (:data:`IMAGE`)."""
        return IMAGE.pack(self.to_payload())

    @classmethod
    def from_bytes(cls, data: bytes) -> "Descriptor":
        """Inverse of :meth:`to_bytes` (reserved bits ignored)."""
        return cls(**IMAGE.unpack(data))

    def tables(self) -> dict[str, tuple[int, int]]:
        """HBM byte range ``[base, end)`` of every table (slot_token at its largest)."""
        T, E, k = self.tokens, self.experts, self.top_k
        return {"rank": (self.rank_addr, self.rank_addr + (T - 1) * self.rank_stride + E),
                "slot": (self.slot_addr, self.slot_addr + 4 * T * k),
                "slot_token": (self.slot_token_addr, self.slot_token_addr + 4 * T * k),
                "counts": (self.counts_addr, self.counts_addr + 4 * counts_words(E))}


def counts_words(experts: int) -> int:
    """int32 words of the counters table: 2 E + 3."""
    return 2 * experts + 3


def read_counts(desc: Descriptor, hbm) -> dict:
    """The counters table of a completed run from a uint8 HBM image (:func:`counts_table`
    at the descriptor's ``counts_addr``)."""
    return counts_table(hbm, desc.counts_addr, desc.experts)


def counts_table(hbm, addr: int, experts: int) -> dict:
    """The counters table at byte ``addr`` of a uint8 HBM image: ``tokens_per_expert`` and
    ``offsets`` (int64 (E,)), ``dropped``, ``dropped_tokens``, ``kept`` (what the host
    reads to place the experts)."""
    E = experts
    w = np.ascontiguousarray(np.asarray(hbm)[addr:addr + 4 * counts_words(E)])
    w = w.view("<u4").astype(np.int64)
    return {"tokens_per_expert": w[:E], "offsets": w[E:2 * E], "dropped": int(w[2 * E]),
            "dropped_tokens": int(w[2 * E + 1]), "kept": int(w[2 * E + 2])}


def check(desc: Descriptor, config) -> DispatchError:
    """Detail code of the up-front checks (OK if the unit may read the ranking)."""
    soc = config.soc
    if not 1 <= desc.tokens <= soc.dispatch_tokens:
        return DispatchError.BAD_TOKENS
    if not 1 <= desc.experts <= soc.dispatch_experts:
        return DispatchError.BAD_EXPERTS
    if not 1 <= desc.top_k <= min(desc.experts, _moe.MAX_TOP_K):
        return DispatchError.BAD_TOP_K
    if desc.capacity == 0:
        return DispatchError.BAD_CAPACITY
    addrs = (desc.rank_addr, desc.slot_addr, desc.slot_token_addr, desc.counts_addr)
    if any(a % 4 for a in addrs) or (desc.tokens > 1 and desc.rank_stride % 4):
        return DispatchError.MISALIGNED
    if any(end > config.hbm.total_bytes for _, end in desc.tables().values()):
        return DispatchError.WINDOW
    return DispatchError.OK


def read_ranking(desc: Descriptor, hbm: np.ndarray) -> np.ndarray:
    """The ranking table (tokens, experts) int64 read from the HBM byte image."""
    idx = (desc.rank_addr + np.arange(desc.tokens)[:, None] * desc.rank_stride
           + np.arange(desc.experts)[None, :])
    return np.asarray(hbm)[idx].astype(np.int64)


@dataclass(frozen=True)
class _Problem(_moe.MoeProblem):
    """A :class:`models.moe.MoeProblem` whose capacity is the descriptor's (exact
    integer) rather than one derived from a capacity factor."""

    fixed_capacity: int = 1

    @property
    def capacity(self) -> int:
        return min(self.tokens, self.fixed_capacity)


def run(desc: Descriptor, ranking) -> _moe.Dispatch:
    """``models.moe.dispatch`` of a checked descriptor on ``ranking`` (tokens, experts).

    Raises ``ValueError`` if a row is not a permutation (the unit's BAD_RANK)."""
    policy = _moe.POLICIES[desc.policy]
    problem = _Problem(desc.tokens, 1, 1, desc.experts, desc.top_k, overflow=policy,
                       fixed_capacity=desc.capacity)
    return _moe.dispatch(problem, np.asarray(ranking, np.int64))


def writes(desc: Descriptor, disp: _moe.Dispatch) -> list[tuple[int, np.ndarray]]:
    """``(HBM address, uint32 words)`` the unit writes, in order: slot table (choice
    major, ``drop_slot`` for a dropped choice), slot_token list, counters."""
    slot = np.where(disp.slot >= 0, disp.slot, desc.drop_slot).astype(np.int64)
    kept = int(disp.slot_token.shape[0])
    counts = np.concatenate([disp.tokens_per_expert, disp.offsets,
                             [disp.dropped, disp.dropped_tokens, kept]]).astype(np.int64)
    u32 = lambda a: (np.asarray(a, np.int64) & 0xFFFF_FFFF).astype("<u4")  # noqa: E731
    return [(desc.slot_addr, u32(slot.T.reshape(-1))),
            (desc.slot_token_addr, u32(disp.slot_token)),
            (desc.counts_addr, u32(counts))]


def execute(desc: Descriptor, hbm: np.ndarray, config) -> tuple[DispatchError, object]:
    """Run the unit on a uint8 HBM image in place: ``(detail, Dispatch or None)``.

    On an error nothing is written (the model has no AXI faults)."""
    err = check(desc, config)
    if err != DispatchError.OK:
        return err, None
    try:
        disp = run(desc, read_ranking(desc, hbm))
    except ValueError:
        return DispatchError.BAD_RANK, None
    for addr, words in writes(desc, disp):
        b = words.view(np.uint8)
        hbm[addr:addr + b.size] = b
    return DispatchError.OK, disp
