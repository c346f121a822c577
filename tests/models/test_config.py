"""Config validation: every bad value raises ConfigError naming field and value."""
import pytest

from models.config import PRESETS, ConfigError, JalapenoConfig, SystolicConfig, get_preset


@pytest.mark.parametrize("kw, msg", [
    ({"rows": 0}, "SystolicConfig.rows must be in [1, 256], got 0"),
    ({"rows": 257}, "SystolicConfig.rows must be in [1, 256], got 257"),
    ({"cols": -3}, "SystolicConfig.cols must be in [1, 256], got -3"),
    ({"rows": 4.0}, "SystolicConfig.rows must be an int, got 4.0"),
    ({"cols": True}, "SystolicConfig.cols must be an int, got True"),
])
def test_systolic_config_errors(kw, msg):
    with pytest.raises(ConfigError) as e:
        SystolicConfig(**kw)
    assert str(e.value) == msg


@pytest.mark.parametrize("kw, msg", [
    ({"name": "has space"}, "JalapenoConfig.name must be an identifier, got 'has space'"),
    ({"clock_mhz": 0}, "JalapenoConfig.clock_mhz must be in [1, 5000], got 0"),
    ({"systolic": (4, 4)}, "JalapenoConfig.systolic must be a SystolicConfig, got (4, 4)"),
])
def test_top_config_errors(kw, msg):
    with pytest.raises(ConfigError) as e:
        JalapenoConfig(**kw)
    assert str(e.value) == msg


def test_unknown_preset_lists_known():
    with pytest.raises(ConfigError, match=r"unknown preset 'huge'; known presets: tiny, default, jalapeno"):
        get_preset("huge")


def test_unknown_json_keys_rejected():
    with pytest.raises(ConfigError, match=r"SystolicConfig: unknown keys \['depth'\]"):
        JalapenoConfig.from_dict({"systolic": {"rows": 4, "depth": 2}})


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_round_trip_json(name):
    cfg = get_preset(name)
    assert JalapenoConfig.from_json(cfg.to_json()) == cfg
    assert cfg.name == name


def test_config_is_frozen_and_derived():
    cfg = SystolicConfig(rows=8, cols=4)
    with pytest.raises(AttributeError):
        cfg.rows = 3
    assert cfg.peak_macs_per_cycle == 32
    # input register, skew + column, the PEs' pipeline (operands, product, FP8
    # alignment), the FP8 columns' rounding pipeline
    assert cfg.latency == 1 + 8 + 4 - 1 + 3 + 4
    assert SystolicConfig(rows=8, cols=4, fp8=False).latency == 1 + 8 + 4 - 1 + 2
    assert cfg.folds(17, 9) == 3 * 3
