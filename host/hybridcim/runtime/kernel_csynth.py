"""Check the kernel cycle model and the resource estimate against a Vitis HLS synthesis of hls/.

Nothing here has been run against a real Vitis HLS output (no Vitis on the development
machines): the formats parsed are those UG1399 documents ("Synthesizing the Code": the log's
``Pipelining result`` lines; the csynth.rpt "Utilization Estimates" summary).

    python -m hybridcim.runtime.kernel_csynth --hls-log hls/build/hls_sun-mars-256/vitis_hls.log
    python -m hybridcim.runtime.kernel_csynth --csynth hls/build/hls_sun-mars-256/sol1/syn/report/csynth.rpt

Exit status 0 when every pipelined loop reached its II (and the report was read), 1 when one
did not or is missing from the log, 2 when a file cannot be read or understood.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Mapping, Sequence

from .kernel_resources import estimate_resources


def loop_table(hls_dir=None) -> list[dict]:
    """The kernel's loop table (hls/hcim_loops.h): [{"name", "ii", "depth"}] in table order."""
    if hls_dir is None:
        from .csim_build import hls_dir as find
        hls_dir = find()
    text = (Path(hls_dir) / "hcim_loops.h").read_text()
    return [{"name": n, "ii": int(ii), "depth": int(d)}
            for n, ii, d in re.findall(r"X\(\w+,\s*\"(\w+)\",\s*(\d+),\s*(\d+)\)", text)]


def compare_hls_log(log: str, loops: Sequence[Mapping]) -> list[dict]:
    """Each pipelined loop of the table against Vitis HLS's "Pipelining result" lines of vitis_hls.log.

    A line ``INFO: [HLS 200-1470] Pipelining result : Target II = 1, Final II = 4, Depth = 6, loop 'units'``
    (UG1399, "Synthesizing the Code"; older versions name the loop on the line before it,
    ``Pipelining loop 'units'.``, and ``v++`` prints ``[v++ 200-1470]``) gives the achieved II and
    depth of a loop; the loop name is matched as the label or as a suffix of HLS's generated
    names (``..._units``). Returns one row per pipelined loop of the table: name, model
    ii/depth, achieved ii/depth (None if no line names it), ok.
    """
    import re
    found: dict[str, tuple[int, int]] = {}
    last_named = None  # older versions name the loop on the line before: "Pipelining loop 'NAME'."
    for m in re.finditer(r"Pipelining loop\s*'([^']+)'|Pipelining result\s*:\s*Target II\s*=\s*\w+,\s*"
                         r"Final II\s*=\s*(\d+),\s*Depth\s*=\s*(\d+)(?:,\s*loop\s*'([^']+)')?", log):
        if m.group(1):
            last_named = m.group(1)
            continue
        name = m.group(4) or last_named
        if name:
            found[name] = (int(m.group(2)), int(m.group(3)))
        last_named = None
    rows = []
    for lp in loops:
        if lp["ii"] == 0:
            continue
        hit = next((v for k, v in found.items() if k == lp["name"] or k.endswith("_" + lp["name"])), None)
        rows.append({"name": lp["name"], "ii": lp["ii"], "depth": lp["depth"],
                     "final_ii": hit[0] if hit else None, "final_depth": hit[1] if hit else None,
                     "ok": bool(hit) and hit[0] <= lp["ii"]})
    return rows


def csynth_utilization(report: str) -> dict[str, float]:
    """The "Total" row of csynth.rpt's "Utilization Estimates" summary as {luts, ffs, bram36, dsps}.

    The table's columns are named BRAM_18K, DSP, FF, LUT (and URAM); BRAM_18K is halved into 36 Kb blocks.
    """
    head = re.search(r"^\|\s*Name\s*\|([^\n]*)$", report, re.M)
    total = re.search(r"^\|\s*Total\s*\|([^\n]*)$", report, re.M)
    if not head or not total:
        raise ValueError("no 'Utilization Estimates' summary (Name / Total rows) in this report")
    cols = [c.strip() for c in head.group(1).strip().strip("|").split("|")]
    vals = [v.strip() for v in total.group(1).strip().strip("|").split("|")]
    got = dict(zip(cols, vals))
    try:
        return {"luts": float(got["LUT"]), "ffs": float(got["FF"]), "bram36": float(got["BRAM_18K"]) / 2,
                "dsps": float(got["DSP"])}
    except (KeyError, ValueError) as e:
        raise ValueError(f"csynth utilization row not understood ({e}): {got}") from None


def main(argv: "Sequence[str] | None" = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m hybridcim.runtime.kernel_csynth",
                                 description="the kernel cycle model and resource estimate vs a Vitis HLS synthesis")
    ap.add_argument("--hls-log", help="vitis_hls.log of a csynth run of hls/ (make -C hls hls-synth)")
    ap.add_argument("--csynth", help="csynth.rpt of that run (sol1/syn/report/csynth.rpt)")
    ap.add_argument("--preset", default="sun-mars-256")
    ap.add_argument("--board", default="pynq-z2", choices=("pynq-z2", "kv260"))
    args = ap.parse_args(argv)
    if not args.hls_log and not args.csynth:
        ap.error("give --hls-log, --csynth or both")
    rc = 0
    try:
        if args.hls_log:
            rows = compare_hls_log(Path(args.hls_log).read_text(encoding="utf-8", errors="replace"), loop_table())
            print("| loop | model II | model depth | csynth II | csynth depth | |\n|---|---:|---:|---:|---:|---|")
            for r in rows:
                verdict = "ok" if r["ok"] else ("not in the log" if r["final_ii"] is None else "II MISSED")
                dash = lambda v: "-" if v is None else v  # noqa: E731
                print(f"| {r['name']} | {r['ii']} | {r['depth']} | {dash(r['final_ii'])} | "
                      f"{dash(r['final_depth'])} | {verdict} |")
            rc = 0 if all(r["ok"] for r in rows) else 1
        if args.csynth:
            got = csynth_utilization(Path(args.csynth).read_text(encoding="utf-8", errors="replace"))
            tot = estimate_resources(args.preset, args.board).total()
            keys = ("luts", "ffs", "bram36", "dsps")
            print("\n| | LUT | FF | BRAM36 | DSP |\n|---|---:|---:|---:|---:|")
            print("| this estimate | " + " | ".join(f"{tot[k]:,.0f}" for k in keys) + " |")
            print("| csynth | " + " | ".join(f"{got[k]:,.0f}" for k in keys) + " |")
    except (OSError, ValueError) as e:
        print(f"kernel_csynth: error: {getattr(e, 'strerror', None) or e}", file=sys.stderr)
        return 2
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
