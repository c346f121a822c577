#!/usr/bin/env python3
"""FuseSoC generator of jalapeno.core: the Verilog of one block for one preset.

FuseSoC runs it as ``python3 scripts/fusesoc_gen.py <gapi.yml>`` from the folder where
the generated core belongs. The GAPI file gives ``files_root`` (this repository),
``vlnv`` (the name of the core to write) and ``parameters``:

``preset``
    a preset of models/config.py (``tiny``, ``default``, ``jalapeno``); default ``default``.
``block``
    a block of rtl/blocks.py; default ``soc`` (the chip).

It writes ``<block>.v`` (the block and every shared module it instantiates, one file),
``<block>.sdc``, manifest.json (scripts/gen_verilog.py) and a core file naming the
Verilog as ``verilogSource`` and the SDC as ``SDC``, with ``toplevel: <block>``.

The Python that runs it needs the project's packages (amaranth, numpy, ...): when the
interpreter FuseSoC started lacks them, the script runs again under
``<files_root>/.venv/bin/python`` (made by ``make setup``) if it exists.
docs/verilog.md.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def read_gapi(path: Path) -> dict:
    import yaml
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a GAPI mapping")
    return data


def core_text(vlnv: str, block: str, preset: str, files: list[tuple[str, str]]) -> str:
    """The generated CAPI2 core: one fileset of ``files`` ((name, file_type) pairs)."""
    lines = ["CAPI=2:", "", f"name: {vlnv}",
             f"description: jalapeno {block} ({preset} preset), written by scripts/fusesoc_gen.py",
             "", "filesets:", "  rtl:", "    files:"]
    lines += [f"      - {name}: {{file_type: {ftype}}}" for name, ftype in files]
    lines += ["", "targets:", "  default:", "    filesets: [rtl]", f"    toplevel: {block}", ""]
    return "\n".join(lines)


def run(gapi: dict, out: Path) -> Path:
    """Emit the block named by ``gapi`` into ``out``; returns the core file written."""
    files_root = Path(gapi.get("files_root") or ROOT)
    if str(files_root) not in sys.path:
        sys.path.insert(0, str(files_root))
    from scripts.gen_verilog import generate
    params = gapi.get("parameters") or {}
    preset = str(params.get("preset", "default"))
    block = str(params.get("block", "soc"))
    generate(preset, [block], out_dir=out)
    vlnv = gapi.get("vlnv") or f"jalapeno:gen:{block}_{preset}:0"
    core = out / f"{vlnv.split(':')[2] or block}.core"
    core.write_text(core_text(vlnv, block, preset,
                              [(f"{block}.v", "verilogSource"), (f"{block}.sdc", "SDC")]))
    return core


def _reexec_in_venv(gapi_path: str) -> None:
    """Run again under the project's venv when this interpreter lacks its packages."""
    try:
        import amaranth  # noqa: F401
        import yaml  # noqa: F401
        return
    except ImportError:
        pass
    # no yaml here either: files_root is one plain line of the GAPI file
    m = re.search(r"^files_root:\s*(\S.*?)\s*$", Path(gapi_path).read_text(), re.M)
    root = Path(m.group(1).strip("'\"")) if m else ROOT
    venv = root / ".venv"
    # a venv's python links to the base interpreter: compare prefixes, not executables
    if (venv / "bin" / "python").exists() and Path(sys.prefix).resolve() != venv.resolve():
        os.execv(str(venv / "bin" / "python"),
                 [str(venv / "bin" / "python"), str(Path(__file__).resolve()), gapi_path])
    sys.exit(f"fusesoc_gen: this Python ({sys.executable}) lacks amaranth/pyyaml and "
             f"{venv} does not exist: run `make setup` in {root} or `pip install {root}`")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: fusesoc_gen.py <gapi.yml>", file=sys.stderr)
        return 2
    _reexec_in_venv(argv[0])
    try:
        core = run(read_gapi(Path(argv[0])), Path.cwd())
    except (KeyError, ValueError) as e:
        print(f"fusesoc_gen: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    print(f"fusesoc_gen: wrote {core}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
