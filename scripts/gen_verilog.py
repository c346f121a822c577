"""Write the Verilog of every top-level block, plus SDC timing constraints.

    python scripts/gen_verilog.py --config default [--blocks systolic_array,...]

Output: build/verilog/<config>/<block>.v, <block>.sdc, and manifest.json with the
generation time and size of each file (the scale figures of `make bench` read it).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from models.config import get_preset
from rtl.blocks import BLOCKS, get_block
from rtl.lib.verilog import write as write_verilog
from tb.runner import BUILD

SDC = """# Timing constraints for {block} ({config} preset), written by scripts/gen_verilog.py.
# Amaranth's sync domain: one clock `clk`, synchronous active-high reset `rst`.
create_clock -name clk -period {period_ns:.3f} [get_ports clk]
set_input_delay  -clock clk {io_ns:.3f} [remove_from_collection [all_inputs] [get_ports clk]]
set_output_delay -clock clk {io_ns:.3f} [all_outputs]
"""


def generate(config_name: str, blocks: list[str], out_root: Path = BUILD / "verilog") -> list[dict]:
    cfg = get_preset(config_name)
    out = out_root / cfg.name
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for name in blocks:
        t0 = time.monotonic()
        path = out / f"{name}.v"
        write_verilog(get_block(name).factory(cfg), name, path)
        dt = time.monotonic() - t0
        period = 1000.0 / cfg.clock_mhz
        (out / f"{name}.sdc").write_text(SDC.format(block=name, config=cfg.name,
                                                     period_ns=period, io_ns=0.2 * period))
        text = path.read_text()
        rec = {"block": name, "config": cfg.name, "file": str(path), "seconds": round(dt, 2),
               "bytes": len(text), "lines": text.count("\n"),
               "modules": text.count("\nmodule ") + text.startswith("module ")}
        records.append(rec)
        print(f"{name:24s} {rec['lines']:8d} lines {rec['modules']:6d} modules "
              f"{dt:7.2f} s  -> {path}")
    (out / "manifest.json").write_text(json.dumps({"config": cfg.to_dict(), "blocks": records},
                                                  indent=1))
    return records


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="default", help="preset name")
    ap.add_argument("--blocks", default=",".join(BLOCKS), help="comma-separated block names")
    args = ap.parse_args(argv)
    try:
        generate(args.config, [b for b in args.blocks.split(",") if b])
    except (KeyError, ValueError) as e:
        print(f"gen_verilog: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
