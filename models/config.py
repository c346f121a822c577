"""The one configuration of the chip, shared by RTL, golden models, testbenches and reports.

Every block reads its parameters from a section of :class:`JalapenoConfig`; the golden
model that checks a block reads the *same* object, so the model cannot drift from the
RTL it checks (Gemmini's lesson). Configs are frozen, validated on construction (the
error names the offending value) and serializable to JSON, which is how a config
travels from pytest into a cocotb simulation (``JALAPENO_CONFIG`` environment variable)
and into every bench record.

This module imports neither Amaranth nor cocotb, so models and scripts can use it alone.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

__all__ = ["ConfigError", "SystolicConfig", "JalapenoConfig", "PRESETS", "get_preset"]


class ConfigError(ValueError):
    """A configuration value is out of range; the message names field and value."""


def _check_int(owner: str, name: str, value, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{owner}.{name} must be an int, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{owner}.{name} must be in [{lo}, {hi}], got {value}")


@dataclass(frozen=True)
class SystolicConfig:
    """Weight-stationary systolic array.

    Parameters
    ----------
    rows : int
        R, the number of PE rows = the K depth of one weight tile (1..256).
    cols : int
        C, the number of PE columns = the N width of one weight tile (1..256).

    The INT8 datapath is fixed by the numerics contract: signed 8-bit activations and
    weights, exact products, 32-bit two's-complement accumulation with wrap-around.
    """

    rows: int = 16
    cols: int = 16

    act_bits = 8
    weight_bits = 8
    acc_bits = 32

    def __post_init__(self):
        _check_int("SystolicConfig", "rows", self.rows, 1, 256)
        _check_int("SystolicConfig", "cols", self.cols, 1, 256)

    @property
    def peak_macs_per_cycle(self) -> int:
        """R x C multiply-accumulates per cycle."""
        return self.rows * self.cols

    @property
    def latency(self) -> int:
        """Cycles from an activation vector accepted to its result vector valid (R + C - 1)."""
        return self.rows + self.cols - 1

    def folds(self, k: int, n: int) -> int:
        """Weight tiles needed for a K x N weight matrix: ceil(K/R) * ceil(N/C)."""
        return math.ceil(k / self.rows) * math.ceil(n / self.cols)


@dataclass(frozen=True)
class JalapenoConfig:
    """Top-level chip configuration (one section per block; later blocks add theirs).

    Parameters
    ----------
    name : str
        Preset name, used in build folders and reports.
    systolic : SystolicConfig
        The systolic array of each tensor core.
    clock_mhz : float
        Target clock, used for reports and the synthesis constraints (SDC).
    """

    name: str = "default"
    systolic: SystolicConfig = field(default_factory=SystolicConfig)
    clock_mhz: float = 1000.0

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ConfigError(f"JalapenoConfig.name must be an identifier, got {self.name!r}")
        if not isinstance(self.systolic, SystolicConfig):
            raise ConfigError(f"JalapenoConfig.systolic must be a SystolicConfig, got {self.systolic!r}")
        if isinstance(self.clock_mhz, bool) or not isinstance(self.clock_mhz, (int, float)) \
                or not 1.0 <= self.clock_mhz <= 5000.0:
            raise ConfigError(f"JalapenoConfig.clock_mhz must be in [1, 5000], got {self.clock_mhz!r}")

    # --- serialization -------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "JalapenoConfig":
        """Inverse of :meth:`to_dict`; unknown keys are errors (typos never pass silently)."""
        return _from_dict(cls, d)

    @classmethod
    def from_json(cls, text: str) -> "JalapenoConfig":
        return cls.from_dict(json.loads(text))


def _from_dict(cls, d: dict):
    """Build dataclass ``cls`` from a dict, recursing into dataclass-typed sections."""
    if not isinstance(d, dict):
        raise ConfigError(f"{cls.__name__}: expected a JSON object, got {d!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(fields)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    kw = {}
    for name, value in d.items():
        sub = _SECTIONS.get((cls, name))
        kw[name] = _from_dict(sub, value) if sub is not None else value
    return cls(**kw)


def _sections():
    """(owner class, field name) -> dataclass type of that section."""
    out = {}
    for owner in (JalapenoConfig,):
        for f in dataclasses.fields(owner):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
            if dataclasses.is_dataclass(default):
                out[owner, f.name] = type(default)
    return out


_SECTIONS = _sections()

PRESETS: dict[str, JalapenoConfig] = {
    # Fast tests: every block at its smallest useful size.
    "tiny": JalapenoConfig(name="tiny", systolic=SystolicConfig(rows=4, cols=4)),
    # The configuration of `make demo` and the default regression.
    "default": JalapenoConfig(name="default", systolic=SystolicConfig(rows=16, cols=16)),
    # Verilog generation and area estimates at the scale of the real chip.
    "jalapeno": JalapenoConfig(name="jalapeno", systolic=SystolicConfig(rows=64, cols=64)),
}


def get_preset(name: str) -> JalapenoConfig:
    """Return the preset called ``name``; the error lists the known presets."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}") from None
