"""Models of the HBM stub (rtl/mem/hbm.py): address map, error codes and analytic timing.

* :class:`ErrKind`: the run-time error injection (``i_err_kind``); :class:`User`: the
  router's per-burst verdict, carried to a channel on AxUSER (:data:`USER_BITS`).
* :func:`route` / :func:`unroute`: global address <-> (channel, local address).
* :func:`burst_verdict`: what the stub answers for a burst (:class:`models.axi.Resp`).
* :func:`transfer_cycles`: analytic cycle count of a stream of read (or write) bursts
  through the stub (latency, bandwidth limit, outstanding limit), which the bench
  compares with the RTL.

numpy/stdlib only; reads the same :class:`models.config.HbmConfig` as the RTL.
"""
from __future__ import annotations

import enum
import math

from models.axi import Burst, Resp
from models.config import HbmConfig

__all__ = ["ErrKind", "User", "ERR_KIND_BITS", "USER_BITS", "route", "unroute",
           "burst_verdict", "transfer_cycles"]


class ErrKind(enum.IntEnum):
    """``i_err_kind``: error injection on bursts touching ``[i_err_base, i_err_limit)``."""

    OFF = 0
    SLVERR = 1          # reads and writes answer SLVERR; writes do not land
    POISON = 2          # reads answer SLVERR with every data bit inverted; writes land, OKAY


class User(enum.IntEnum):
    """The router's verdict on a burst, on the channel's AxUSER. An injected
    :class:`ErrKind` passes through unchanged, so the shared codes are equal."""

    OK = 0
    SLVERR = ErrKind.SLVERR     # the channel answers SLVERR, a write does not land
    POISON = ErrKind.POISON     # SLVERR, read data inverted, a write lands
    DECERR = 3                  # the channel answers DECERR, a write does not land


ERR_KIND_BITS = 2
USER_BITS = 2
assert max(ErrKind) < 1 << ERR_KIND_BITS and max(User) < 1 << USER_BITS


def route(cfg: HbmConfig, addr: int) -> tuple[int, int]:
    """(channel, local byte address) of a global byte address."""
    g, n = cfg.interleave_bytes, cfg.channels
    gran = addr // g
    return gran % n, (gran // n) * g + addr % g


def unroute(cfg: HbmConfig, channel: int, local: int) -> int:
    """Inverse of :func:`route`."""
    g, n = cfg.interleave_bytes, cfg.channels
    return ((local // g) * n + channel) * g + local % g


def burst_verdict(cfg: HbmConfig, addr: int, beats: int, size: int, burst: int = Burst.INCR,
                  err_kind: int = ErrKind.OFF, err_base: int = 0, err_limit: int = 0, *,
                  write: bool = False) -> Resp:
    """AXI response code the stub gives a burst (same rules, same priority as the RTL).

    ``write``: the burst is a write; a poisoned write lands and answers OKAY (poison marks
    the data a read returns, :class:`ErrKind`).
    """
    if write and err_kind == ErrKind.POISON:
        err_kind = ErrKind.OFF
    start = addr & ~((1 << size) - 1)
    span = (1 << size) if burst == Burst.FIXED else beats << size
    end = start + span - 1
    g = cfg.interleave_bytes
    if start // g != end // g or end >= cfg.total_bytes:
        return Resp.DECERR
    if burst > Burst.INCR or (1 << size) > cfg.data_bytes:
        return Resp.SLVERR
    if err_kind != ErrKind.OFF and start < err_limit and end >= err_base:
        return Resp.SLVERR
    return Resp.OKAY


def transfer_cycles(cfg: HbmConfig, bursts: list[int], *, outstanding: int,
                    latency: int | None = None, overhead: int = 4) -> int:
    """Analytic cycles to move ``bursts`` (beats each) through one master port.

    A burst's data can start ``latency`` cycles after its address; the port moves at
    most one beat per cycle and each channel ``bytes_per_cycle / data_bytes`` beats per
    cycle; at most ``outstanding`` bursts are in flight (the smaller of the master's and
    the channels' limits). Simulated as a simple event loop (addresses issued one per
    cycle); ``overhead`` covers descriptor check and completion.
    """
    lat = cfg.read_latency if latency is None else latency
    rate = min(1.0, cfg.channels * cfg.bytes_per_cycle / cfg.data_bytes)
    t_issue = 0.0
    data_free = 0.0
    done: list[float] = []
    for i, b in enumerate(bursts):
        if i >= outstanding:
            t_issue = max(t_issue, done[i - outstanding])
        start = max(t_issue + lat, data_free)
        data_free = start + b / rate
        done.append(data_free)
        t_issue += 1
    return int(math.ceil(done[-1])) + overhead if done else overhead
