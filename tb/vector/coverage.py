"""Functional coverage of the vector unit (cocotb-coverage), sampled per command.

Covergroup ``vector_unit`` (same style as tb/dma/uvm.py's):

``op``, ``fmt``, ``stall``
    The command's VecOp, its output format (OutFmt) and the ``i_cmd`` stall setting it
    was sent under (``gaps`` or ``back-to-back``).
``op_x_fmt_x_stall``
    Every op with every output format under both stall settings (REQUANT writes INT8
    only, STATE_STORE FP32 only: their other formats are ignored bins), 144 bins.
``special``, ``op_x_special``
    Special binary32 values in the rows a command reads (``src``, and ``src2`` when the
    op reads it): NaN, +-inf, -0, subnormal; crossed with every op that reads rows.
``op_x_bscale``
    The ops that use the block scale (ROWMAX, EXP, RESCALE) with ``bscale`` 0 and 1.

:func:`VectorCoverage.holes` lists the empty bins, which the closure test steers
toward; :meth:`VectorCoverage.export` writes ``coverage-<name>.yml`` in the run
directory (the convention of tb/dma/uvm.py).
"""
from __future__ import annotations

import numpy as np
from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db

from models.tensor_cmd import VECTOR_READS_SRC, VECTOR_READS_SRC2, OutFmt, TensorCmd, VecOp

__all__ = ["VectorCoverage", "STALLS", "BSCALE_OPS", "SPECIAL_CLASSES", "SPECIAL_WORDS",
           "special_classes", "coverage"]

#: i_cmd stall settings: name -> (gap probability, longest gap)
STALLS = {"back-to-back": (0.0, 1), "gaps": (0.5, 6)}
SPECIAL_CLASSES = ["nan", "inf", "neg_zero", "subnormal"]
#: One binary32 pattern of each class (the closure test plants them).
SPECIAL_WORDS = {"nan": 0xFFC1_2345, "inf": 0x7F80_0000, "neg_zero": 0x8000_0000,
                 "subnormal": 0x0000_0123}
_READERS = [op.name for op in VecOp if op in VECTOR_READS_SRC]
#: The ops that use ``bscale``.
BSCALE_OPS = [VecOp.ROWMAX.name, VecOp.EXP.name, VecOp.RESCALE.name]


def special_classes(words: np.ndarray) -> set[str]:
    """The special-value classes present in binary32 ``words``."""
    w = np.asarray(words, np.uint32).ravel()
    exp, man = (w >> 23) & 0xFF, w & 0x7F_FFFF
    out = set()
    if np.any((exp == 0xFF) & (man != 0)):
        out.add("nan")
    if np.any((exp == 0xFF) & (man == 0)):
        out.add("inf")
    if np.any(w == 0x8000_0000):
        out.add("neg_zero")
    if np.any((exp == 0) & (man != 0)):
        out.add("subnormal")
    return out


class VectorCoverage:
    """The vector unit's covergroup (names prefixed by ``tag``)."""

    NAMES = ("op", "fmt", "stall", "op_x_fmt_x_stall", "special", "op_x_special",
             "op_x_bscale")

    def __init__(self, tag: str = "vector_unit"):
        self.tag = tag
        ops, fmts = [op.name for op in VecOp], [f.name for f in OutFmt]
        ign = [(VecOp.REQUANT.name, f, None) for f in fmts if f != OutFmt.INT8.name]
        ign += [(VecOp.STATE_STORE.name, f, None) for f in fmts if f != OutFmt.FP32.name]
        points = [CoverPoint(f"{tag}.{name}", xf=xf, bins=bins)
                  for name, xf, bins in (("op", lambda c: c[0], ops),
                                         ("fmt", lambda c: c[1], fmts),
                                         ("stall", lambda c: c[2], list(STALLS)))]
        cross = CoverCross(f"{tag}.op_x_fmt_x_stall",
                           items=[f"{tag}.op", f"{tag}.fmt", f"{tag}.stall"], ign_bins=ign)
        sample = cross(lambda c: None)
        for p in points:
            sample = p(sample)
        self._sample_cmd = sample
        rd = CoverPoint(f"{tag}.rd_op", xf=lambda s: s[0], bins=_READERS)
        sp = CoverPoint(f"{tag}.special", xf=lambda s: s[1], bins=SPECIAL_CLASSES)
        spx = CoverCross(f"{tag}.op_x_special", items=[f"{tag}.rd_op", f"{tag}.special"])
        self._sample_special = sp(rd(spx(lambda s: None)))
        bo = CoverPoint(f"{tag}.bscale_op", xf=lambda s: s[0], bins=BSCALE_OPS)
        bs = CoverPoint(f"{tag}.bscale", xf=lambda s: s[1], bins=[0, 1])
        bx = CoverCross(f"{tag}.op_x_bscale", items=[f"{tag}.bscale_op", f"{tag}.bscale"])
        self._sample_bscale = bs(bo(bx(lambda s: None)))

    def sample(self, cmd: TensorCmd, acc: np.ndarray, stall: str) -> None:
        """Sample one command sent under ``stall``; ``acc`` is the accumulator as the
        command will read it (the model's copy when it is queued)."""
        op = VecOp(cmd.op)
        self._sample_cmd((op.name, OutFmt(cmd.out_fmt).name, stall))
        if op.name in BSCALE_OPS:
            self._sample_bscale((op.name, int(cmd.bscale)))
        if op not in VECTOR_READS_SRC:
            return
        rows = [acc[cmd.src:cmd.src + cmd.count]]
        if op in VECTOR_READS_SRC2 or (op == VecOp.REQUANT and cmd.bias):
            rows.append(acc[cmd.src2:cmd.src2 + cmd.count])
        for cls in sorted(special_classes(np.concatenate(rows))):
            self._sample_special((op.name, cls))

    def _cov(self, name: str):
        return coverage_db[f"{self.tag}.{name}"]

    def holes(self, name: str) -> list:
        """Empty bins of cross or point ``name``."""
        return [b for b, n in self._cov(name).detailed_coverage.items() if n == 0]

    def percent(self) -> dict[str, float]:
        return {n: self._cov(n).cover_percentage for n in self.NAMES}

    def closed(self) -> bool:
        return all(p >= 100.0 for p in self.percent().values())

    def export(self, test_name: str) -> str:
        """Write ``coverage-<test_name>.yml`` (cocotb-coverage YAML) in the run folder."""
        path = f"coverage-{test_name}.yml"
        coverage_db.export_to_yaml(path)
        return path


_COVERAGE: VectorCoverage | None = None


def coverage() -> VectorCoverage:
    """The run's covergroup (one per simulator run: the tests of a module add to it)."""
    global _COVERAGE
    if _COVERAGE is None:
        _COVERAGE = VectorCoverage()
    return _COVERAGE
