"""Every module of models/ imports on its own in a fresh interpreter (cocotb test modules
import them in any order, so an import cycle that a test session's import order hides
breaks a simulation)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(f"models.{p.stem}" for p in (ROOT / "models").glob("*.py")
                 if p.stem != "__init__")


@pytest.mark.parametrize("module", MODULES)
def test_imports_alone(module):
    p = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120,
                       env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert p.returncode == 0, p.stderr[-2000:]
