"""Helpers shared by the bench modules (scripts/bench_*.py)."""
from __future__ import annotations

from tb.runner import BUILD

__all__ = ["BENCH", "print_table"]

BENCH = BUILD / "bench"


def print_table(records: list[dict], cols: list[str], title: str) -> None:
    print(f"\n{title}")
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in records)) for c in cols}
    print("  ".join(c.rjust(widths[c]) for c in cols))
    for r in records:
        print("  ".join(_fmt(r.get(c)).rjust(widths[c]) for c in cols))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return "" if v is None else str(v)
