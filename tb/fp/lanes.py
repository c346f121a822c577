"""Drive a lane harness (:mod:`tb.fp.harness`) with numpy arrays, one step per batch."""
from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import Timer

from tb.common.stream import signal_int

__all__ = ["LaneDriver", "first_mismatch"]


def _to_int(arr: np.ndarray) -> int:
    return int.from_bytes(np.ascontiguousarray(arr).tobytes(), "little")


class LaneDriver:
    """Applies batches of ``lanes`` vectors to a combinational harness and reads results.

    Parameters
    ----------
    dut : cocotb handle of the harness
    inputs : dict
        Port name -> numpy dtype of one lane (``np.uint8``/``np.uint32``; ``bool`` for
        one bit per lane).
    output : str
        Output port name (one ``uint32`` per lane).
    lanes : int
    """

    def __init__(self, dut, inputs: dict, output: str, lanes: int):
        self.dut, self.lanes = dut, lanes
        self.ports = {name: (getattr(dut, name), dt) for name, dt in inputs.items()}
        self.out = getattr(dut, output)
        self.steps = 0

    async def apply(self, **arrays) -> np.ndarray:
        """Run ``len`` vectors (any count: the last batch is padded) and return results."""
        n = len(next(iter(arrays.values())))
        L = self.lanes
        pad = (-n) % L
        arrs = {k: np.concatenate([np.asarray(v), np.zeros(pad, np.asarray(v).dtype)])
                for k, v in arrays.items()}
        got = np.empty(n + pad, np.uint32)
        for s in range(0, n + pad, L):
            for name, (port, dt) in self.ports.items():
                chunk = arrs[name][s:s + L]
                if dt is bool:
                    port.value = int.from_bytes(np.packbits(
                        chunk.astype(np.uint8), bitorder="little").tobytes(), "little")
                else:
                    port.value = _to_int(chunk.astype(dt))
            await Timer(1, "ns")
            got[s:s + L] = np.frombuffer(signal_int(self.out).to_bytes(4 * L, "little"),
                                         np.uint32)
            self.steps += 1
        return got[:n]


def first_mismatch(got: np.ndarray, want: np.ndarray, **inputs) -> str | None:
    """None if ``got == want`` bitwise, else a message naming the first bad vector."""
    bad = np.flatnonzero(got != want)
    if not bad.size:
        return None
    i = bad[0]
    where = ", ".join(f"{k}={int(v[i]):#x}" for k, v in inputs.items())
    return (f"{bad.size} of {got.size} mismatches; first #{i}: {where}: got "
            f"{int(got[i]):#010x}, want {int(want[i]):#010x}")


async def selfcheck_corrupted_expectation(dut, out: str, vectors, model) -> None:
    """The lane check is live: one flipped bit in one expected result (a random vector
    and bit, seeded by ``cocotb.RANDOM_SEED``) is reported naming that vector, 8 times;
    the uncorrupted check passes. ``vectors(rng, n) -> (a, b)`` draws binary32 operands
    for ports ``i_a``/``i_b``; ``model(a, b)`` gives the expected bits of port ``out``."""
    rng = np.random.default_rng(cocotb.RANDOM_SEED)
    drv = LaneDriver(dut, {"i_a": np.uint32, "i_b": np.uint32}, out, len(getattr(dut, out)) // 32)
    a, b = vectors(rng, 4 * drv.lanes)
    got = await drv.apply(i_a=a, i_b=b)
    want = model(a, b)
    assert first_mismatch(got, want, a=a, b=b) is None, "DUT differs before corruption"
    for _ in range(8):
        i, bit = int(rng.integers(0, a.size)), int(rng.integers(0, 32))
        bad = want.copy()
        bad[i] ^= np.uint32(1 << bit)
        msg = first_mismatch(got, bad, a=a, b=b)
        assert msg is not None and f"first #{i}:" in msg, (i, bit, msg)
    dut._log.info("8 corrupted expectations reported, e.g. %s", msg)
