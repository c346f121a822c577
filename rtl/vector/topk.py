"""TOPK's rank network: the rank of every lane of a row, all pairs compared at once."""
from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.fp32 import CANONICAL_NAN_BITS, POS_INF_BITS, SIGN_BIT

__all__ = ["RankNetwork", "order_key", "rank_bits"]


def rank_bits(lanes: int) -> int:
    """Width of a rank ``0 .. lanes-1`` (at least 1)."""
    return max(1, (lanes - 1).bit_length())


def order_key(a):
    """32-bit unsigned key of binary32 ``a`` in TOPK's order (``models.vector.order_key``):
    ``-0`` as ``+0``, every NaN as the canonical NaN (above ``+inf``); the sign bit
    flipped for positive values, every bit inverted for negative ones."""
    mag = a[:31]
    b = Mux(mag > POS_INF_BITS, CANONICAL_NAN_BITS, Mux(mag == 0, 0, a))
    return Mux(b[31], ~b, b | SIGN_BIT)[:32]


class RankNetwork(wiring.Component):
    """``rank(i) = #{j : a_j > a_i} + #{j < i : a_j == a_i}`` for the ``lanes`` binary32
    values of a row (TOPK's order, golden model ``models.vector.topk_perm``: lane ``i``
    goes to output position ``rank(i)``; the ranks are a permutation of ``0 .. L-1``).

    One unsigned comparator per pair ``i < j`` (``L (L-1) / 2``) on the order keys
    (:func:`order_key`): ``key_j > key_i`` counts for ``rank(i)``, its complement for
    ``rank(j)``; each rank is the popcount of its ``L - 1`` bits.

    Latency: :attr:`LATENCY` cycles (keys, comparisons, popcounts, each registered);
    one row per cycle, no enable.

    Parameters
    ----------
    lanes : int

    Members
    -------
    i_a : In(32 * lanes)
        Lane ``j`` in bits ``32j .. 32j+31``.
    o_rank : Out(rank_bits(lanes) * lanes)
        Rank of lane ``j`` in bits ``B j .. B j + B - 1`` (``B = rank_bits(lanes)``).
    """

    LATENCY = 3

    def __init__(self, lanes: int):
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        self.lanes = lanes
        self.bits = rank_bits(lanes)
        super().__init__({"i_a": In(32 * lanes), "o_rank": Out(self.bits * lanes)})

    def elaborate(self, platform):
        m = Module()
        L, B = self.lanes, self.bits
        keys = [Signal(32, name=f"key{j}") for j in range(L)]
        m.d.sync += [k.eq(order_key(self.i_a[32 * j:32 * j + 32])) for j, k in enumerate(keys)]
        later_gt = {}                       # (i, j), i < j: key_j > key_i
        for i in range(L):
            for j in range(i + 1, L):
                g = later_gt[i, j] = Signal(name=f"gt_{i}_{j}")
                m.d.sync += g.eq(keys[j] > keys[i])
        for i in range(L):
            votes = [later_gt[i, j] for j in range(i + 1, L)]
            votes += [~later_gt[j, i] for j in range(i)]
            r = sum(v.as_unsigned() for v in votes) if votes else 0
            m.d.sync += self.o_rank[B * i:B * i + B].eq(r)
        return m
