"""Burst generation and byte checks for the HBM stub's error-path tests.

:func:`pick_burst` draws random bursts (any AxSIZE up to 128 B, WRAP/FIXED/INCR, near
interleave-granule and 4 KiB boundaries, past the end, optional injected SLVERR) and
keeps the first whose response under :func:`models.hbm.burst_verdict` is the one
wanted: the golden model decides, the generator only aims.
"""
from __future__ import annotations

from models.axi import BOUNDARY_BYTES, Burst
from models.hbm import ErrKind, burst_verdict
from tb.hbm.coverage import LEN_CLASSES

__all__ = ["Pick", "pick_burst", "beat_spans", "compare", "WRAP_BEATS"]

WRAP_BEATS = (2, 4, 8, 16)
#: AxSIZE of at most 128 bytes (AXI4's 3-bit field)
MAX_SIZE = 7


class Pick:
    """A burst: ``addr`` (aligned to the size), ``beats``, ``size``, ``burst``,
    ``inject`` = (kind, base, limit) of the stub's error injection while it runs."""

    def __init__(self, addr, beats, size, burst, inject=(ErrKind.OFF, 0, 0)):
        self.addr, self.beats, self.size, self.burst, self.inject = addr, beats, size, burst, inject

    def verdict(self, cfg):
        return burst_verdict(cfg, self.addr, self.beats, self.size, self.burst, *self.inject)

    def __repr__(self):
        return (f"Pick({self.addr:#x} x{self.beats} size {self.size} "
                f"{Burst(self.burst).name if self.burst < 3 else self.burst} inject {self.inject})")


def _beats(rng, burst, lcls, long_max):
    lo, hi = LEN_CLASSES[lcls]
    if burst == Burst.WRAP:
        return rng.choice([b for b in WRAP_BEATS if lo <= b <= hi])
    return rng.randint(lo, min(hi, long_max))


def _addr(rng, cfg, span, size, where):
    g, T = cfg.interleave_bytes, cfg.total_bytes
    if where == "inside":
        k = rng.randrange(T // g)
        a = k * g + rng.randrange(max(1, g - span + 1))
    elif where in ("granule", "4k"):
        step = BOUNDARY_BYTES if where == "4k" else g
        edge = rng.randrange(1, max(2, T // step)) * step
        a = edge - rng.randint(1, max(1, span - 1))
    else:                                              # the end of the space
        a = T - rng.randint(0, span)
    return max(a, 0) & ~((1 << size) - 1)


def pick_burst(rng, cfg, *, burst, lcls, want, long_max=64, tries=500) -> Pick:
    """A random burst of type ``burst`` and length class ``lcls`` that the model answers
    with ``want`` (a :class:`models.axi.Resp`)."""
    lw = (cfg.data_bytes - 1).bit_length()
    for _ in range(tries):
        beats = _beats(rng, burst, lcls, long_max)
        size = rng.choice([lw, lw, lw, rng.randrange(lw + 1), rng.randint(lw + 1, MAX_SIZE)])
        span = (1 << size) if burst == Burst.FIXED else beats << size
        p = Pick(_addr(rng, cfg, span, size, rng.choice(["inside", "inside", "granule", "4k",
                                                         "end"])), beats, size, burst)
        if rng.random() < 0.25:
            lo = p.addr - rng.randrange(64)
            p.inject = (ErrKind.SLVERR, max(lo, 0), p.addr + rng.randint(1, 64))
        if p.verdict(cfg) == want:
            return p
    raise AssertionError(f"no {Burst(burst).name} {lcls} burst answered {want!r} in {tries} "
                         f"tries: generator bug")


def beat_spans(p: Pick, W: int) -> list[tuple[int, int]]:
    """(byte address, bytes) each beat of an aligned burst of at most the bus width moves."""
    n = 1 << p.size
    return [(p.addr + (0 if p.burst == Burst.FIXED else i * n), n) for i in range(p.beats)]


def compare(what: str, got: bytes, exp: bytes, seed, *, skip: range | None = None):
    """Raise naming the first differing byte (bytes in ``skip`` are not compared)."""
    if bytes(got) == bytes(exp):
        return
    bad = [i for i in range(len(exp)) if got[i] != exp[i] and not (skip and i in skip)]
    if bad:
        raise AssertionError(f"{what}: {len(bad)} bytes differ, first at {bad[0]:#x} (got "
                             f"{got[bad[0]]:#04x}, expected {exp[bad[0]]:#04x}); seed {seed}")
