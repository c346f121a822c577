"""Helpers shared by the bench modules (scripts/bench_*.py)."""
from __future__ import annotations

import json

from tb.runner import BUILD, run

__all__ = ["BENCH", "print_table", "run_records"]

BENCH = BUILD / "bench"


def run_records(name: str, block: str, config, sim: str, test_module: str, env: dict,
                **run_kw) -> list[dict]:
    """Run a bench cocotb module; return the JSON records it appended to the file named
    by ``JALAPENO_BENCH_OUT`` (build/bench/.<name>.jsonl). Raises if the run failed."""
    out = BENCH / f".{name}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("")
    res = run(block, config, sim, test_module,
              extra_env={**env, "JALAPENO_BENCH_OUT": str(out)}, **run_kw)
    if not res.ok:
        raise RuntimeError(res.summary())
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def print_table(records: list[dict], cols: list[str], title: str) -> None:
    print(f"\n{title}")
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in records)) for c in cols}
    print("  ".join(c.rjust(widths[c]) for c in cols))
    for r in records:
        print("  ".join(_fmt(r.get(c)).rjust(widths[c]) for c in cols))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if v == 0 or abs(v) >= 0.1 else f"{v:.2g}"
    return "" if v is None else str(v)
