"""Unpacking of an OCP FP8 code (E4M3 or E5M2, chosen at run time) into its fields."""
from amaranth import Cat, Const, Mux, Signal

from models.fp8 import E4M3, E5M2, FMT_E4M3, FMT_E5M2

__all__ = ["unpack_fp8"]


def unpack_fp8(m, code, fmt, name: str, *, frac_bits: int | None = None):
    """Fields of the FP8 ``code`` in format ``fmt`` (``FMT_E4M3`` / ``FMT_E5M2``).

    Returns ``(sign, sig, e1, is_nan, is_inf, is_zero)``: ``sig`` is the 4-bit significand
    with its hidden bit (``e != 0``); with ``frac_bits`` its mantissa is left-aligned to
    that many fraction bits (E5M2's two bits padded with zeros), else right-aligned.
    ``e1 = max(e, 1)`` is the biased exponent field (subnormals share the exponent of the
    smallest normal); the value of a finite code is ``sig * 2**(e1 - bias - man_bits)``
    (right-aligned) or ``sig * 2**(e1 - bias - frac_bits)`` (left-aligned). NaN / inf
    follow ``models.fp8`` (E4M3FN: NaN only at ``S.1111.111``, no inf). Combinational.
    """
    sig = Signal(4, name=f"{name}_sig")
    e1 = Signal(range(1 << max(f.exp_bits for f in (E4M3, E5M2))), name=f"{name}_exp")
    is_nan = Signal(name=f"{name}_nan")
    is_inf = Signal(name=f"{name}_inf")
    for sel, f in ((FMT_E4M3, E4M3), (FMT_E5M2, E5M2)):
        e = code[f.man_bits:7]
        man = code[:f.man_bits]
        e_max = (1 << f.exp_bits) - 1
        pad = [] if frac_bits is None else [Const(0, frac_bits - f.man_bits)]
        with m.If(fmt == sel):
            m.d.comb += [sig.eq(Cat(*pad, man, e != 0)), e1.eq(Mux(e == 0, 1, e))]
            if f.has_inf:
                m.d.comb += [is_nan.eq((e == e_max) & (man != 0)),
                             is_inf.eq((e == e_max) & (man == 0))]
            else:
                m.d.comb += is_nan.eq(code[:7] == f.nan_code)
    return code[7], sig, e1, is_nan, is_inf, code[:7] == 0
