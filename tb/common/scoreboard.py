"""In-order scoreboard: compares what a DUT emits with what its golden model predicts."""
from __future__ import annotations

from collections import deque

import numpy as np

__all__ = ["Scoreboard"]


def _equal(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (np.ndarray, list, tuple)) or isinstance(b, (np.ndarray, list, tuple)):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and bool(np.array_equal(a, b))
    return a == b


class Scoreboard:
    """Expected items are queued with :meth:`expect`, DUT items arrive via :meth:`got`.

    Every mismatch is counted and the first few are logged in full; :meth:`check`
    raises ``AssertionError`` if anything mismatched, is missing or was unexpected, so
    a test cannot pass silently.

    Parameters
    ----------
    name : str
        Used in messages.
    log : logging.Logger
    max_report : int
        How many mismatches to log in full.
    """

    def __init__(self, name: str, log, *, max_report: int = 5):
        self.name, self.log, self.max_report = name, log, max_report
        self.expected: deque = deque()
        self.matched = 0
        self.mismatches: list[str] = []
        self.unexpected = 0

    def expect(self, item, tag: str = "") -> None:
        self.expected.append((item, tag))

    def got(self, item, cycle: int | None = None) -> None:
        if not self.expected:
            self.unexpected += 1
            self.mismatches.append(f"unexpected item at cycle {cycle}: {item}")
            return
        exp, tag = self.expected.popleft()
        if _equal(exp, item):
            self.matched += 1
            return
        msg = f"{self.name} mismatch {tag} at cycle {cycle}:\n  expected {exp}\n  got      {item}"
        if len(self.mismatches) < self.max_report:
            self.log.error(msg)
        self.mismatches.append(msg)

    @property
    def pending(self) -> int:
        return len(self.expected)

    def check(self) -> None:
        """Raise unless every expected item arrived, matched, and nothing else came."""
        problems = []
        if self.mismatches:
            problems.append(f"{len(self.mismatches)} mismatches (first: {self.mismatches[0]})")
        if self.expected:
            problems.append(f"{len(self.expected)} expected items never arrived")
        if self.unexpected:
            problems.append(f"{self.unexpected} unexpected items")
        if problems:
            raise AssertionError(f"{self.name}: " + "; ".join(problems))
        self.log.info("%s: %d items matched", self.name, self.matched)
