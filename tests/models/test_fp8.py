"""Independent checks of models/fp8.py and models/fp32.py.

References: ml_dtypes (decode, non-saturating encode), a float64 nearest-value search
written here (both encode modes), float64 products, a float64 GEMM with an error
bound, and a slow pure-Python loop in the documented accumulation order.
"""
import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from models import fp32
from models.fp32 import CANONICAL_NAN_BITS, canonicalize_nan, fp32_add, fp32_add_bits
from models.fp8 import (
    E4M3, E5M2, FMT_E4M3, FMT_E5M2, FORMATS, OPERAND_FRAC_BITS, PRODUCT_FRAC_BITS,
    PRODUCT_MAG_BITS, FP8Format, acc_fixed_bits, decode, encode, fp8_fixed, fp8_product_f32,
    fp8_product_fixed, gemm_fp8, round_fixed_f32)

ML = {"e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2}
FMTS = [E4M3, E5M2]
CODES = np.arange(256, dtype=np.uint8)
SEED = 20260601


def ml_decode(codes, fmt):
    return np.asarray(codes, np.uint8).view(ML[fmt.name]).astype(np.float32)


def bits(x):
    return np.asarray(x, np.float32).view(np.uint32)


# --------------------------------------------------------------------------- formats

def test_format_constants():
    assert FORMATS == {"e4m3": E4M3, "e5m2": E5M2}
    assert (E4M3.bias, E4M3.exp_bits, E4M3.man_bits, E4M3.has_inf) == (7, 4, 3, False)
    assert (E5M2.bias, E5M2.exp_bits, E5M2.man_bits, E5M2.has_inf) == (15, 5, 2, True)
    assert E4M3.max_value == 448.0 and E5M2.max_value == 57344.0
    assert (E4M3.max_code, E4M3.nan_code, E4M3.inf_code) == (0x7E, 0x7F, None)
    assert (E5M2.max_code, E5M2.nan_code, E5M2.inf_code) == (0x7B, 0x7E, 0x7C)
    with pytest.raises(ValueError, match=r"exp_bits \(4\) \+ man_bits \(4\)"):
        FP8Format("bad", exp_bits=4, man_bits=4, bias=7, has_inf=False)
    # the format select of the RTL and of MATMUL commands (0 E4M3, 1 E5M2)
    assert (FMT_E4M3, FMT_E5M2) == (0, 1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="0..255, got 256"):
        decode(np.array([1, 256]), E4M3)
    with pytest.raises(TypeError, match="float64"):
        decode(np.array([1.0]), E4M3)
    with pytest.raises(TypeError, match="FP8Format"):
        decode(CODES, "e3m4")
    with pytest.raises(TypeError, match="float64: cast explicitly"):
        encode(np.array([1.0]), E4M3)
    assert decode(np.array([0x38]), "e4m3")[0] == 1.0


# --------------------------------------------------------------------------- decode

@pytest.mark.parametrize("fmt", FMTS, ids=lambda f: f.name)
def test_decode_all_codes_vs_ml_dtypes(fmt):
    ours, ref = decode(CODES, fmt), ml_decode(CODES, fmt)
    assert ours.dtype == np.float32
    nan = np.isnan(ref)
    assert np.array_equal(np.isnan(ours), nan)
    assert np.all(bits(ours)[nan] == CANONICAL_NAN_BITS)
    assert np.array_equal(bits(ours)[~nan], bits(ref)[~nan])    # signed zeros too
    assert bits(ours)[0x80] == 0x8000_0000
    expected_nans = {E4M3: [0x7F, 0xFF], E5M2: [0x7D, 0x7E, 0x7F, 0xFD, 0xFE, 0xFF]}[fmt]
    assert np.flatnonzero(nan).tolist() == expected_nans


# --------------------------------------------------------------------------- encode

def ref_encode(x, fmt, saturate):
    """Nearest FP8 value by float64 search; ties by comparing with exact midpoints."""
    with np.errstate(invalid="ignore"):          # signalling NaN inputs
        x = np.asarray(x, np.float32).astype(np.float64)
    pos = decode(np.arange(fmt.max_code + 1, dtype=np.uint8), fmt).astype(np.float64)
    top = pos[-1] + (pos[-1] - pos[-2])            # the value just past max (inf/NaN)
    vals = np.append(pos, top)
    mag = np.abs(np.where(np.isnan(x), 0.0, x))
    lo = np.clip(np.searchsorted(vals, mag, side="right") - 1, 0, len(vals) - 2)
    mid = (vals[lo] + vals[lo + 1]) / 2            # exact in float64
    up = (mag > mid) | ((mag == mid) & (lo % 2 == 1))  # code parity = mantissa parity
    code = np.where(np.isinf(mag), len(vals), lo + up)
    over = code > fmt.max_code
    if saturate:
        code = np.where(over, fmt.max_code, code)
    elif fmt.has_inf:
        code = np.where(over, fmt.inf_code, code)
    code = np.where(np.signbit(x), code | 0x80, code)
    nan = np.isnan(x) | (over & (not saturate) & (not fmt.has_inf))
    return np.where(nan, fmt.nan_code, code).astype(np.uint8)


def encode_inputs(fmt, rng):
    """Dense binade sampling, random bit patterns, ties and neighbours, specials."""
    # Binades from 4 below the smallest subnormal to 2 above the largest normal.
    e_lo = 1 - fmt.bias - fmt.man_bits - 4
    e_hi = (1 << fmt.exp_bits) - 1 - fmt.bias + 2
    step = 1 << 10
    mant = np.arange(0, 1 << 23, step, dtype=np.uint32)
    mant = np.concatenate([mant, mant + 1, mant + step - 1, mant + step // 2])
    expo = np.arange(e_lo, e_hi + 1, dtype=np.int64) + 127
    dense = ((expo[:, None].astype(np.uint32) << 23) | mant[None, :]).ravel()
    rand = rng.integers(0, 1 << 32, 1_000_000, dtype=np.uint64).astype(np.uint32)
    finite = decode(np.arange(fmt.max_code + 1, dtype=np.uint8), fmt).astype(np.float64)
    top = finite[-1] + (finite[-1] - finite[-2])   # first value past max
    pts = np.append(finite, [top, 2 * top])
    ties = np.concatenate([pts, (pts[1:] + pts[:-1]) / 2]).astype(np.float32)
    near = np.concatenate([ties, np.nextafter(ties, np.float32(np.inf)),
                           np.nextafter(ties, np.float32(0))])
    special = np.array([0, 1, 0x7F_FFFF, 0x80_0000, 0x7F7F_FFFF, 0x7F80_0000,
                        0x7F80_0001, 0x7FC0_0000, 0x7FFF_FFFF], np.uint32)
    pos = np.concatenate([dense, rand, bits(near), special])
    return np.concatenate([pos, pos ^ np.uint32(0x8000_0000)]).view(np.float32)


@pytest.mark.parametrize("fmt", FMTS, ids=lambda f: f.name)
def test_encode_vs_ml_dtypes_and_float64(fmt):
    x = encode_inputs(fmt, np.random.default_rng(SEED))
    assert x.size > 2_000_000
    nonsat, sat = encode(x, fmt, saturate=False), encode(x, fmt)
    with np.errstate(invalid="ignore"):
        ml = x.astype(ML[fmt.name]).view(np.uint8)
    ml_nan = np.isnan(ml.view(ML[fmt.name]))
    # Non-saturating mode is ml_dtypes, except that our NaN is the canonical code.
    assert np.all(nonsat[ml_nan] == fmt.nan_code)
    bad = np.flatnonzero(~ml_nan & (nonsat != ml))
    assert bad.size == 0, f"first mismatch x={x[bad[0]]!r}: {nonsat[bad[0]]:#x} != {ml[bad[0]]:#x}"
    np.testing.assert_array_equal(nonsat, ref_encode(x, fmt, saturate=False))
    np.testing.assert_array_equal(sat, ref_encode(x, fmt, saturate=True))
    # Saturation only changes overflow results.
    same = ~ml_nan
    if fmt.has_inf:
        same &= (ml & 0x7F) != fmt.inf_code
    assert np.array_equal(sat[same], nonsat[same])


@pytest.mark.parametrize("fmt", FMTS, ids=lambda f: f.name)
def test_encode_round_trips_all_codes(fmt):
    vals = decode(CODES, fmt)
    ok = ~np.isnan(vals)
    assert np.array_equal(encode(vals, fmt, saturate=False)[ok], CODES[ok])
    if fmt.has_inf:   # inf saturates to max
        ok &= ~np.isinf(vals)
    assert np.array_equal(encode(vals, fmt)[ok], CODES[ok])


@pytest.mark.parametrize("value, fmt, sat, nonsat", [
    (465.0, E4M3, 0x7E, 0x7F),            # ml_dtypes: NaN; SATFINITE: 448
    (464.0, E4M3, 0x7E, 0x7E),            # tie 448/480 -> even mantissa (448)
    (-1e9, E4M3, 0xFE, 0x7F),
    (np.inf, E4M3, 0x7E, 0x7F),
    (-np.inf, E5M2, 0xFB, 0xFC),
    (61440.0, E5M2, 0x7B, 0x7C),          # tie 57344/65536 -> even (inf)
    (61439.996, E5M2, 0x7B, 0x7B),
    (2.0 ** -10, E4M3, 0x00, 0x00),       # half the smallest subnormal: tie to 0
    (-(2.0 ** -10) * 1.0000001, E4M3, 0x81, 0x81),
    (-1e-30, E5M2, 0x80, 0x80),           # sign of a value rounding to zero kept
    (-np.nan, E5M2, 0x7E, 0x7E),          # NaN is canonical, sign dropped
])
def test_encode_directed(value, fmt, sat, nonsat):
    x = np.array([value], np.float32)
    assert (encode(x, fmt)[0], encode(x, fmt, saturate=False)[0]) == (sat, nonsat)


# --------------------------------------------------------------------------- products

@pytest.mark.parametrize("fa", FMTS, ids=lambda f: f.name)
@pytest.mark.parametrize("fb", FMTS, ids=lambda f: f.name)
def test_products_all_pairs_exact(fa, fb):
    a, b = np.repeat(CODES, 256), np.tile(CODES, 256)
    ours = fp8_product_f32(a, fa, b, fb)
    with np.errstate(invalid="ignore"):
        ref64 = ml_decode(a, fa).astype(np.float64) * ml_decode(b, fb).astype(np.float64)
    nan = np.isnan(ref64)
    assert np.array_equal(np.isnan(ours), nan)
    assert np.all(bits(ours)[nan] == CANONICAL_NAN_BITS)
    assert np.array_equal(bits(ours)[~nan], bits(ref64[~nan].astype(np.float32)))
    fin = np.isfinite(ref64)
    assert np.array_equal(ours[fin].astype(np.float64), ref64[fin])      # exact
    nz = fin & (ref64 != 0)
    assert np.abs(ours[nz]).min() >= np.float32(2.0 ** -126)             # never subnormal
    assert np.array_equal(np.signbit(ours[~nan]), (a[~nan] ^ b[~nan]) >= 0x80)


# --------------------------------------------------------------------------- fp32 add

def test_fp32_add_bits_rules():
    n = CANONICAL_NAN_BITS
    cases = [(0x3F80_0000, 0xBF80_0000, 0), (0x8000_0000, 0x8000_0000, 0x8000_0000),
             (0, 0x8000_0000, 0), (0x7F80_0000, 0xFF80_0000, n), (0xFFFF_FFFF, 0, n),
             (0x7F7F_FFFF, 0x7F7F_FFFF, 0x7F80_0000), (1, 1, 2),
             (0x0080_0000, 0x8000_0001, 0x007F_FFFF), (0xFF80_0001, 0x7F80_0000, n)]
    a, b, want = (np.array(c, np.uint32) for c in zip(*cases))
    assert fp32_add_bits(a, b).tolist() == want.tolist()
    with pytest.raises(TypeError, match="b must be float32, got dtype float64"):
        fp32_add(np.float32(1.0), np.float64(1.0))
    assert bits(canonicalize_nan(np.array([-np.nan, 1.0], np.float32))).tolist() == [
        CANONICAL_NAN_BITS, 0x3F80_0000]


def test_fp32_layout_constants():
    """The bit patterns the RTL imports, against numpy's float32 (and finfo)."""
    fi = np.finfo(np.float32)
    assert (fp32.MAN_BITS, fp32.EXP_BITS) == (fi.nmant, fi.nexp)
    assert fp32.EXP_BIAS == fi.maxexp - 1 and fp32.EXP_MAX == 0xFF
    assert fp32.SIGN_BIT == int(bits(-0.0))
    assert fp32.POS_INF_BITS == int(bits(np.inf))
    assert fp32.NEG_INF_BITS == int(bits(-np.inf))
    assert fp32.ONE_BITS == int(bits(1.0))
    assert np.isnan(np.uint32(CANONICAL_NAN_BITS).view(np.float32))
    assert CANONICAL_NAN_BITS == int(bits(np.float32(np.nan))) & ~fp32.SIGN_BIT


# --------------------------------------------------------------------------- GEMM

def rne_f32(x: Fraction) -> np.float32:
    """Round an exact rational to binary32, ties to even, with integers only (normal
    range: the FP8 sums and products are there)."""
    if x == 0:
        return np.float32(0.0)
    mag = abs(x)
    e = mag.numerator.bit_length() - mag.denominator.bit_length()
    if Fraction(2) ** e > mag:
        e -= 1                                   # now 2**e <= mag < 2**(e+1)
    q = mag / Fraction(2) ** (e - 23)            # in [2**23, 2**24)
    n, r = divmod(q.numerator, q.denominator)
    if 2 * r > q.denominator or (2 * r == q.denominator and n % 2):
        n += 1
    return np.float32(math.copysign(math.ldexp(n, e - 23), x))


def exact_tile(av, wv):
    """One tile partial: exact Fraction sum of float products, specials by the rules."""
    prods = []
    for x, y in zip(av, wv):
        x, y = float(x), float(y)
        if math.isnan(x) or math.isnan(y) or (math.isinf(x) and y == 0) or (
                x == 0 and math.isinf(y)):
            return np.float32(np.nan)
        prods.append(x * y)               # exact in float64 (<= 8 significant bits)
    if math.inf in prods and -math.inf in prods:
        return np.float32(np.nan)
    if math.inf in prods or -math.inf in prods:
        return np.float32(math.inf if math.inf in prods else -math.inf)
    return rne_f32(sum((Fraction(p) for p in prods), Fraction(0)))


def slow_gemm(a, fa, w, fw, tile_k):
    """Pure-Python loops in the documented order: each tile's products summed exactly
    with fractions.Fraction and rounded once, tile partials added as np.float32."""
    av, wv = ml_decode(a, fa), ml_decode(w, fw)
    m_dim, k_dim = a.shape
    out = np.zeros((m_dim, w.shape[1]), np.float32)
    with np.errstate(all="ignore"):
        for i in range(m_dim):
            for j in range(w.shape[1]):
                acc = np.float32(0.0)
                for k0 in range(0, k_dim, tile_k):
                    ks = slice(k0, min(k0 + tile_k, k_dim))
                    acc = np.float32(acc + exact_tile(av[i, ks], wv[ks, j]))
                out[i, j] = acc
    return canonicalize_nan(out)


def chained_gemm(a, fa, w, fw, tile_k):
    """The former order (one binary32 add per product down the tile), vectorised: the
    accuracy baseline the exact accumulation must not fall behind."""
    av, wv = decode(a, fa), decode(w, fw)
    out = np.zeros((a.shape[0], w.shape[1]), np.float32)
    with np.errstate(all="ignore"):
        for k0 in range(0, a.shape[1], tile_k):
            part = np.zeros_like(out)
            for k in range(k0, min(k0 + tile_k, a.shape[1])):
                part = np.float32(part + av[:, k, None] * wv[None, k, :])
            out = np.float32(out + part)
    return out


def random_codes(rng, shape, fmt, special_rate):
    """Random finite codes, with NaN/inf/zero codes at ``special_rate``."""
    finite = np.flatnonzero(np.isfinite(decode(CODES, fmt))).astype(np.uint8)
    codes = rng.choice(finite, size=shape)
    specials = np.flatnonzero(~np.isfinite(decode(CODES, fmt))).astype(np.uint8)
    specials = np.concatenate([specials, [0x00, 0x80]]).astype(np.uint8)
    hit = rng.random(shape) < special_rate
    codes[hit] = rng.choice(specials, size=int(hit.sum()))
    return codes


@pytest.mark.parametrize("fa, fw", [(E4M3, E4M3), (E4M3, E5M2), (E5M2, E4M3), (E5M2, E5M2)],
                         ids=["e4m3-e4m3", "e4m3-e5m2", "e5m2-e4m3", "e5m2-e5m2"])
@pytest.mark.parametrize("m_dim, k_dim, n_dim, tile_k", [
    (3, 1, 4, 1), (5, 37, 6, 8), (4, 16, 3, 16), (2, 9, 5, 4), (6, 20, 7, 64), (3, 33, 2, 1)])
@pytest.mark.parametrize("special_rate", [0.0, 0.02])
def test_gemm_bit_exact_vs_slow_loop(fa, fw, m_dim, k_dim, n_dim, tile_k, special_rate):
    rng = np.random.default_rng([SEED, m_dim, k_dim, n_dim, tile_k, int(special_rate * 100)])
    a = random_codes(rng, (m_dim, k_dim), fa, special_rate)
    w = random_codes(rng, (k_dim, n_dim), fw, special_rate)
    out = gemm_fp8(a, fa, w, fw, tile_k=tile_k)
    assert out.dtype == np.float32 and out.shape == (m_dim, n_dim)
    np.testing.assert_array_equal(bits(out), bits(slow_gemm(a, fa, w, fw, tile_k)))
    # Zero padding of K (what the hardware avoids) would give the same bits, and
    # tile_k = 1 is a plain sequential sum, like one tile covering K.
    pad = -k_dim % tile_k
    a_p = np.pad(a, ((0, 0), (0, pad)))
    w_p = np.pad(w, ((0, pad), (0, 0)))
    np.testing.assert_array_equal(bits(gemm_fp8(a_p, fa, w_p, fw, tile_k=tile_k)), bits(out))
    # tile_k = 1 rounds nothing: it equals the former chained order.
    np.testing.assert_array_equal(bits(gemm_fp8(a, fa, w, fw, tile_k=1)),
                                  bits(canonicalize_nan(chained_gemm(a, fa, w, fw, 1))))


@pytest.mark.parametrize("tile_k", [1, 7, 32, 300])
@pytest.mark.parametrize("fa, fw", [(E4M3, E4M3), (E5M2, E5M2), (E4M3, E5M2)],
                         ids=["e4m3-e4m3", "e5m2-e5m2", "e4m3-e5m2"])
def test_gemm_accuracy_vs_float64(fa, fw, tile_k):
    """|out - exact| <= gamma(d) * sum|a*w| with d = ceil(K/tile_k) + 1 roundings on a
    path (one per tile, one per tile add), and never worse than the former order (one
    binary32 add per product) in max and mean error."""
    rng = np.random.default_rng([SEED, tile_k, fa.exp_bits, fw.exp_bits])
    k_dim = 300
    a = random_codes(rng, (16, k_dim), fa, 0.0)
    w = random_codes(rng, (k_dim, 12), fw, 0.0)
    out = gemm_fp8(a, fa, w, fw, tile_k=tile_k).astype(np.float64)
    av, wv = ml_decode(a, fa).astype(np.float64), ml_decode(w, fw).astype(np.float64)
    exact = av @ wv            # float64 rounding here is ~2**-29 of the bound below
    scale = np.abs(av) @ np.abs(wv)
    depth = math.ceil(k_dim / tile_k) + 1
    u = 2.0 ** -24
    gamma = depth * u / (1 - depth * u)
    err = np.abs(out - exact)
    assert np.all(err <= gamma * scale + 2.0 ** -149)
    assert np.all(err <= k_dim * 2.0 ** -23 * scale)      # the bound docs/numerics.md states
    assert err.max() > 0      # the data really exercises rounding


@pytest.mark.parametrize("k_dim", [2, 7, 32, 300])
@pytest.mark.parametrize("fa, fw", [(E4M3, E4M3), (E5M2, E5M2), (E4M3, E5M2)],
                         ids=["e4m3-e4m3", "e5m2-e5m2", "e4m3-e5m2"])
def test_gemm_tile_never_worse_than_chained(fa, fw, k_dim):
    """A tile partial is the binary32 nearest the exact sum, so no output of a one-tile
    GEMM is further from the exact value than with the former chained binary32 adds,
    and on average it is closer."""
    rng = np.random.default_rng([SEED, k_dim, fa.exp_bits, fw.exp_bits, 1])
    a = random_codes(rng, (24, k_dim), fa, 0.0)
    w = random_codes(rng, (k_dim, 16), fw, 0.0)
    av, wv = decode(a, fa), decode(w, fw)
    exact = np.array([[sum((Fraction(float(x)) * Fraction(float(y))
                            for x, y in zip(av[i], wv[:, j])), Fraction(0))
                       for j in range(w.shape[1])] for i in range(a.shape[0])], object)
    new = gemm_fp8(a, fa, w, fw, tile_k=k_dim)
    old = chained_gemm(a, fa, w, fw, k_dim)
    err_new = np.abs(np.vectorize(lambda v, e: Fraction(float(v)) - e)(new, exact))
    err_old = np.abs(np.vectorize(lambda v, e: Fraction(float(v)) - e)(old, exact))
    assert np.all(err_new <= err_old)
    if k_dim > 2:      # (two FP8 products sum exactly in binary32 either way)
        assert sum(err_new.ravel()) < sum(err_old.ravel())


@pytest.mark.parametrize("fmt", FMTS, ids=lambda f: f.name)
def test_fixed_point_constants(fmt):
    """The widths derived from the formats hold every value/product/sum exactly."""
    vals = [Fraction(float(v)) for v in decode(CODES, fmt) if np.isfinite(v)]
    # every value is a multiple of 2**-OPERAND_FRAC_BITS and fits the operand form
    ints, finite = fp8_fixed(CODES, fmt)
    assert finite.sum() == len(vals)
    assert [Fraction(int(i), 2 ** OPERAND_FRAC_BITS) for i in ints[finite]] == vals
    assert min(abs(v) for v in vals if v) * 2 ** OPERAND_FRAC_BITS >= 1
    # the largest product over all format pairs needs exactly PRODUCT_MAG_BITS bits
    top = max(Fraction(f.max_value) * Fraction(g.max_value) for f in FMTS for g in FMTS)
    assert int(top * 2 ** PRODUCT_FRAC_BITS).bit_length() == PRODUCT_MAG_BITS
    for rows in (1, 2, 3, 16, 17, 128, 256):
        width = acc_fixed_bits(rows)
        assert rows * top * 2 ** PRODUCT_FRAC_BITS < 2 ** (width - 1)      # signed, exact
        assert width == PRODUCT_MAG_BITS + 1 + math.ceil(math.log2(rows))
    with pytest.raises(ValueError, match="rows must be an integer >= 1, got 0"):
        acc_fixed_bits(0)


@pytest.mark.parametrize("fa, fb", [(E4M3, E4M3), (E4M3, E5M2), (E5M2, E5M2)],
                         ids=["e4m3-e4m3", "e4m3-e5m2", "e5m2-e5m2"])
def test_product_fixed_all_pairs(fa, fb):
    """fp8_product_fixed (the fixed-point multiplier's model) vs Fraction products."""
    a, b = np.meshgrid(CODES, CODES, indexing="ij")
    mag, neg, nan, inf = fp8_product_fixed(a, fa, b, fb)
    av, bv = decode(a, fa).astype(np.float64), decode(b, fb).astype(np.float64)
    with np.errstate(invalid="ignore"):
        p = av * bv
    np.testing.assert_array_equal(nan, np.isnan(p))
    np.testing.assert_array_equal(inf, np.isinf(p))
    fin = np.isfinite(p)
    assert [int(x) for x in mag[fin]] == [int(Fraction(x) * 2 ** PRODUCT_FRAC_BITS)
                                           for x in np.abs(p[fin])]
    np.testing.assert_array_equal(neg[~nan], np.signbit(p[~nan]))


def test_round_fixed_f32_directed():
    """Ties, near-ties, carries into the exponent, zero, signs, the extremes."""
    u = Fraction(1, 2 ** PRODUCT_FRAC_BITS)
    cases = [0, 1, -1, 2 ** 24 + 1, 2 ** 24 + 3, 2 ** 25 + 2, 2 ** 25 + 6, 2 ** 25 + 2 + 1,
             2 ** 24 - 1, 2 ** 25 - 1, (2 ** 24 - 1) * 2 ** 40 + 2 ** 39,
             (2 ** 24 - 1) * 2 ** 40 + 2 ** 39 - 1, 2 ** 68 - 1, -(2 ** 68) + 1,
             (2 ** 23 + 1) * 2 ** 45 + 2 ** 44, (2 ** 23 + 1) * 2 ** 45 + 2 ** 44 + 1,
             -((2 ** 23 + 1) * 2 ** 45 + 2 ** 44 + 1), 3 * 2 ** 60 + 2 ** 36]
    rng = np.random.default_rng(SEED)
    cases += [int(x) * int(y) for x, y in rng.integers(-2 ** 40, 2 ** 40, (200, 2))]
    got = round_fixed_f32(np.array(cases, dtype=object))
    want = np.array([rne_f32(c * u) for c in cases], np.float32)
    np.testing.assert_array_equal(bits(got), bits(want))
    assert bits(got[0]) == 0          # exact zero is +0


def test_gemm_specials():
    e4, e5 = E4M3, E5M2
    one, neg_one, inf, ninf, nz = 0x38, 0xB8, 0x7C, 0xFC, 0x80   # E4M3 +-1; E5M2 +-inf
    # inf + -inf in different K tiles -> NaN; 0 * inf -> NaN; NaN operand -> NaN.
    a = np.array([[one, one], [0x00, one], [0x7F, 0x00]], np.uint8)
    w = np.array([[inf], [ninf]], np.uint8)
    out = gemm_fp8(a, e4, w, e5, tile_k=1)
    assert bits(out).ravel().tolist() == [CANONICAL_NAN_BITS] * 3
    # inf survives finite additions, with its sign.
    w2 = np.array([[ninf], [0x3C]], np.uint8)                      # -inf, 1.0 (E5M2)
    assert gemm_fp8(np.array([[one, one]], np.uint8), e4, w2, e5, tile_k=1)[0, 0] == -np.inf
    # All products -0 -> +0; exact cancellation -> +0.
    a3 = np.array([[nz, nz, nz], [one, neg_one, 0x00]], np.uint8)
    w3 = np.array([[one], [one], [one]], np.uint8)
    for tk in (1, 2, 3):
        assert bits(gemm_fp8(a3, e4, w3, e4, tile_k=tk)).ravel().tolist() == [0, 0]
    # Exact inside a tile: max^2 - max^2 + min_subnormal^2 = 2**-32 (a chained binary32
    # sum loses the small product); split over tiles it is lost in the tile adds.
    mx, nmx, sub = E5M2.max_code, E5M2.max_code | 0x80, 0x01
    a4 = np.array([[mx, sub, nmx]], np.uint8)
    w4 = np.array([[mx], [sub], [mx]], np.uint8)
    assert gemm_fp8(a4, e5, w4, e5, tile_k=3)[0, 0] == np.float32(2.0 ** -32)
    assert gemm_fp8(a4, e5, w4, e5, tile_k=1)[0, 0] == 0.0


def test_gemm_bad_arguments():
    a = np.zeros((2, 3), np.uint8)
    with pytest.raises(ValueError, match=r"\(2, 3\) @ \(4, 2\)"):
        gemm_fp8(a, E4M3, np.zeros((4, 2), np.uint8), E4M3, tile_k=4)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=f"got {bad!r}"):
            gemm_fp8(a, E4M3, np.zeros((3, 2), np.uint8), E4M3, tile_k=bad)
    with pytest.raises(ValueError, match="a_codes must lie in 0..255, got 300"):
        gemm_fp8(np.full((2, 3), 300), E4M3, np.zeros((3, 2), np.uint8), E4M3, tile_k=1)
