"""Table-based ``exp(x)`` for ``x <= 0`` (softmax), bit-exact to the golden model."""
from amaranth import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.fp32 import CANONICAL_NAN_BITS
from models.vector import EXP_FRAC_BITS, EXP_IDX_BITS, EXP_LUT, LOG2E_F32
from rtl.fp.fp32_mul import FP32Multiplier

__all__ = ["ExpApprox"]

_LOG2E_BITS = int(LOG2E_F32.view("uint32"))
_M126_MAG = 0x42FC_0000          # |-126.0| bits


class ExpApprox(wiring.Component):
    """``exp(x)``, binary32 -> binary32, as ``2**(x log2 e)`` with a 65-entry table.

    ``t = fmul(x, f32(log2 e))`` (x > 0 clamped to 0); ``T = floor(t * 2**16)``;
    ``2**(T / 2**16) = 2**n * 2**(f / 2**16)`` with the fraction from
    ``LUT[idx] + ((LUT[idx+1] - LUT[idx]) * fr >> 10)``. NaN -> canonical NaN,
    ``t < -126`` -> ``+0``; results are always normal or ``+0``.

    Golden model: ``models.vector.exp_approx`` (bit-exact; max relative error
    2.5e-5 vs float64 ``exp``, docs/vector_unit.md).

    Latency: 0 cycles (one FP32Multiplier, a 24-bit shifter, a 6-bit table lookup,
    an 18x10-bit multiplier and an adder).

    Members
    -------
    a : In(32)
    result : Out(32)
    """

    def __init__(self):
        super().__init__({"a": In(32), "result": Out(32)})

    def elaborate(self, platform):
        m = Module()
        a = self.a
        nan = (a[23:31] == 0xFF) & (a[:23] != 0)
        pos = ~a[31] & (a[:31] != 0)
        m.submodules.mul = mul = FP32Multiplier()
        m.d.comb += [mul.a.eq(Mux(pos, 0, a)), mul.b.eq(_LOG2E_BITS)]
        t = mul.product                                  # <= 0 (or -0), never NaN
        zero = t[31] & (t[:31] > _M126_MAG)              # t < -126, incl. -inf
        et = t[23:31]
        sig = Cat(t[:23], et != 0)
        # |t| * 2**16 = sig * 2**(max(et,1) - 134), a right shift by >= 1 (|t| <= 126)
        sh = Signal(range(26))
        eff = Mux(et == 0, 1, et)
        m.d.comb += sh.eq(Mux(eff <= 134 - 25, 25, 134 - eff))
        u = Signal(24)
        m.d.comb += u.eq(sig >> sh)
        inexact = Signal()
        m.d.comb += inexact.eq((sig & ((Const(1, 26) << sh) - 1)[:24]) != 0)
        v = Signal(24)                                    # ceil(|t| * 2**16)
        m.d.comb += v.eq(u + inexact)
        big_t = Signal(24)                                # T = -v, two's complement
        m.d.comb += big_t.eq(-v)
        n = big_t[EXP_FRAC_BITS:].as_signed()            # floor(T / 2**16), -126..0
        f = big_t[:EXP_FRAC_BITS]
        sh_f = EXP_FRAC_BITS - EXP_IDX_BITS
        idx = f[sh_f:]
        fr = f[:sh_f]
        lo_tab = Array(Const(int(x), 25) for x in EXP_LUT[:-1])
        hi_tab = Array(Const(int(x), 25) for x in EXP_LUT[1:])
        lo = Signal(25)
        hi = Signal(25)
        m.d.comb += [lo.eq(lo_tab[idx]), hi.eq(hi_tab[idx])]
        p = Signal(25)
        m.d.comb += p.eq(lo + (((hi - lo)[:20] * fr) >> sh_f))
        field = Signal(signed(10))
        m.d.comb += field.eq(n + 127)
        with m.If(nan):
            m.d.comb += self.result.eq(CANONICAL_NAN_BITS)
        with m.Elif(zero):
            m.d.comb += self.result.eq(0)
        with m.Else():
            m.d.comb += self.result.eq(Cat(p[:23], field[:8], Const(0, 1)))
        return m
