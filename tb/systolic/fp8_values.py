"""FP8 operand generators for the array tests (value classes of the test plan)."""
from __future__ import annotations

import numpy as np

from models.fp8 import FORMATS

__all__ = ["VALUE_CLASSES", "fp8_codes", "special_codes", "normal_fp8"]

VALUE_CLASSES = ["finite", "specials", "subnormal", "max", "cancel", "all_codes", "zeros"]


def _finite_mask(fmt) -> np.ndarray:
    f = FORMATS[fmt]
    codes = np.arange(256)
    e = (codes >> f.man_bits) & ((1 << f.exp_bits) - 1)
    if f.has_inf:
        return e != (1 << f.exp_bits) - 1
    return (codes & 0x7F) != 0x7F


def special_codes(fmt) -> np.ndarray:
    """NaN, +-inf (E5M2), +-0, +-max, +-smallest subnormal, +-largest subnormal."""
    f = FORMATS[fmt]
    sub_max = (1 << f.man_bits) - 1
    pos = [f.nan_code, 0, f.max_code, 1, sub_max] + ([f.inf_code] if f.has_inf else [])
    return np.array(pos + [c | 0x80 for c in pos], np.uint8)


def fp8_codes(rng: np.random.Generator, shape, fmt: str, cls: str) -> np.ndarray:
    """Codes of ``fmt`` (``"e4m3"``/``"e5m2"``) drawn from value class ``cls``."""
    finite = np.flatnonzero(_finite_mask(fmt)).astype(np.uint8)
    f = FORMATS[fmt]
    if cls == "finite":
        return rng.choice(finite, shape)
    if cls == "specials":        # finite with 5% special values (NaN, inf, 0, max, subnormal)
        base = rng.choice(finite, shape)
        return np.where(rng.random(shape) < 0.05, rng.choice(special_codes(fmt), shape), base).astype(np.uint8)
    if cls == "subnormal":       # exponent field 0: zeros and subnormals, both signs
        return (rng.integers(0, 1 << f.man_bits, shape) | (rng.integers(0, 2, shape) << 7)).astype(np.uint8)
    if cls == "max":             # the top binade, mostly the largest finite value
        top = finite[(finite & 0x7F) >= (f.max_code & 0x7F) - (1 << f.man_bits) + 1]
        return np.where(rng.random(shape) < 0.5, f.max_code | (rng.integers(0, 2, shape) << 7),
                        rng.choice(top, shape)).astype(np.uint8)
    if cls == "cancel":          # pairs of equal magnitude and opposite sign along K
        base = rng.choice(finite, shape)
        flat = base.reshape(-1)
        flat[1::2] = flat[0::2][:flat[1::2].size] ^ 0x80
        return base
    if cls == "all_codes":
        return rng.integers(0, 256, shape).astype(np.uint8)
    if cls == "zeros":           # +0 and -0 only: every product is a signed zero
        return (rng.integers(0, 2, shape) << 7).astype(np.uint8)
    raise ValueError(f"unknown value class {cls!r}; known: {VALUE_CLASSES}")


def normal_fp8(seed: int, m: int, k: int, n: int, fmt_a: str, fmt_b: str):
    """Bench operands: N(0, 1) values rounded to FP8 codes (RNE, saturating)."""
    from models.fp8 import encode
    rng = np.random.default_rng(seed)
    a = encode(rng.standard_normal((m, k)).astype(np.float32), fmt_a)
    w = encode(rng.standard_normal((k, n)).astype(np.float32), fmt_b)
    return a, w
