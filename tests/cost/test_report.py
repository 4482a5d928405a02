"""``hybridcim report``: the self-contained HTML page, its Markdown twin, and the cost fields of
``run --json`` / ``emulate --json``."""
import base64
import io
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from hybridcim.cli.main import main
from hybridcim.models import MODELS_DIR

pytest.importorskip("matplotlib")

SHIPPED = sorted(p.parent.name for p in MODELS_DIR.glob("*/model.cim"))
DUAL_SHIPPED = {n for n in SHIPPED if json.loads((MODELS_DIR / n / "card.json").read_text()).get("dual_layers")}
"""Shipped dual-path models (DualNet's): the report gives them a dual section and no seeds comparison."""
FIGURES = ("breakdown", "macro-tiles", "precision-map", "roofline")
PNG_RE = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def decode_png(data: bytes) -> np.ndarray:
    import matplotlib.image as mpimg
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return mpimg.imread(io.BytesIO(data), format="png")


def assert_not_blank(img: np.ndarray, min_w: int = 300, min_h: int = 200) -> None:
    h, w = img.shape[:2]
    assert w >= min_w and h >= min_h, (w, h)
    rgb = img[..., :3].astype(np.float64)
    assert rgb.std() > 0.02, "the image is (nearly) one colour"
    assert (rgb.reshape(-1, 3) < 0.9).any(axis=1).mean() > 0.005, "almost nothing is drawn"


@pytest.fixture(scope="module", params=[*SHIPPED, "zoo:resnet20-random"])
def page(request, tmp_path_factory):
    """A report of every shipped model (50 % ones assumed) and of a zoo program."""
    tmp = tmp_path_factory.mktemp("report")
    out = tmp / "report.html"
    assert main(["report", request.param, "-o", str(out), "--limit", "0"]) == 0
    return request.param, out


def test_page_embeds_four_non_blank_figures(page):
    _, out = page
    html = out.read_text(encoding="utf-8")
    blobs = PNG_RE.findall(html)
    assert len(blobs) == len(FIGURES)
    for b in blobs:
        assert_not_blank(decode_png(base64.b64decode(b)))
    # self-contained: no external resource
    assert not re.search(r'(src|href)="(?!data:)', html)
    assert "<script" not in html


def test_page_has_the_sections_and_tables(page):
    program, out = page
    html = out.read_text(encoding="utf-8")
    for title in ("Energy and latency per layer", "Macro utilization", "Pruning and precision map",
                  "Roofline-style bound per layer", "The seeds&#x27; headline comparisons", "Cost preset constants"):
        assert title in html, title
    assert "50% of the driven word-line bits" in html  # --limit 0: the assumption is stated
    assert "µJ" in html and "<table>" in html


def test_markdown_twin_beside_the_page(page):
    _, out = page
    md = out.with_suffix(".md")
    text = md.read_text(encoding="utf-8")
    assert text.startswith("# hybridcim report")
    assert "| layer | op | energy nJ/image |" in text
    if page[0] in DUAL_SHIPPED:  # SUN's and MARS's comparisons are of SRAM-only programs: the page says why not
        assert "Not computed for this program" in text.split("## The seeds' headline comparisons")[1]
    else:
        assert "| seed | comparison | paper | hybridcim | ratio |" in text
        assert "| SUN |" in text and "| MARS |" in text
    html_pngs = [base64.b64decode(b) for b in PNG_RE.findall(out.read_text(encoding="utf-8"))]
    for name, png in zip(FIGURES, html_pngs):
        assert f"](report_files/{name}.png)" in text
        assert (out.parent / "report_files" / f"{name}.png").read_bytes() == png
    leftovers = [p.name for p in out.parent.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []  # atomic writes leave no temporary file


def test_report_measured_on_cifar10(tmp_path, cifar10_root, capsys):
    quick = str(MODELS_DIR / "resnet8-w4a4-p50-quick" / "model.cim")
    out = tmp_path / "r.html"
    assert main(["report", quick, "-o", str(out), "--data", str(cifar10_root), "--limit", "4", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("resnet8") and "uJ/image" in lines[0]
    assert "open it in a browser" in lines[1]
    summary = json.loads(lines[-1])
    assert summary["counters"] == "measured" and summary["images"] == 4
    assert summary["energy_uj_per_image"] > 0 and summary["latency_us_per_image"] > 0
    assert "measured by the fast emulator on 4 CIFAR-10 test images" in out.read_text(encoding="utf-8")


def test_seeds_table_printed(capsys):
    assert main(["report", "--seeds", "--limit", "0", "--json"]) == 0
    out = capsys.readouterr().out
    assert "| SUN | throughput on CIFAR-10 (GOPS) | 792.2 GOPS |" in out
    assert "| MARS | energy efficiency (on chip) (TOPS/W) |" in out
    rows = json.loads(out.strip().splitlines()[-1])["seeds"]
    assert {r["seed"] for r in rows} == {"SUN", "MARS"}
    for r in rows:
        assert isinstance(r["hybridcim"], float) and np.isfinite(r["hybridcim"]) and r["hybridcim"] > 0
        assert (r["ratio"] is None) == (r["paper"] is None)


@pytest.mark.parametrize("argv, says", [
    (["report"], "give a PROGRAM"),
    (["report", "zoo:resnet20-random", "-o", "page.pdf"], "must name an .html file"),
    (["report", "zoo:nope", "--limit", "0"], "unknown zoo program"),
    (["report", "zoo:resnet20-random", "--cost-preset", "nope", "--limit", "0"], "unknown cost preset"),
])
def test_bad_input_one_line_exit_2(argv, says, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1


def test_negative_limit_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["report", "zoo:resnet20-random", "--limit", "-1"])
    assert e.value.code == 2 and "argument --limit: must be >= 0" in capsys.readouterr().err


def test_page_without_matplotlib_is_refused_clearly(capsys, tmp_path, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    monkeypatch.chdir(tmp_path)
    assert main(["report", "zoo:resnet20-random", "--limit", "0"]) == 2
    assert "needs matplotlib" in capsys.readouterr().err
    assert not (tmp_path / "report.html").exists()


@pytest.mark.slow
def test_page_renders_in_headless_chromium(tmp_path):
    """Open the page in Debian's chromium (headless) and screenshot it: the screenshot is not blank."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    out = tmp_path / "report.html"
    assert main(["report", "zoo:resnet20-random", "-o", str(out), "--limit", "0"]) == 0
    shot = tmp_path / "shot.png"
    subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2400",
                    f"--screenshot={shot}", out.as_uri()], check=True, capture_output=True, timeout=120)
    img = decode_png(shot.read_bytes())
    assert img.shape[1] == 1280
    assert_not_blank(img, 1280, 1000)


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def _assert_cost_fields(d: dict, preset: str = "dcim-28nm") -> None:
    assert d["cost_preset"] == preset
    for k in ("energy_uj_per_image", "latency_us_per_image"):
        assert isinstance(d[k], float) and np.isfinite(d[k]) and d[k] > 0, (k, d[k])


def test_emulate_json_has_cost_fields(cifar10_root, capsys):
    assert main(["emulate", "zoo:resnet20-random", "--data", str(cifar10_root), "--limit", "4",
                 "--backend", "numpy", "--json"]) == 0
    _assert_cost_fields(_last_json(capsys.readouterr().out))
    assert main(["emulate", "zoo:resnet20-random", "--data", str(cifar10_root), "--limit", "4",
                 "--backend", "numpy", "--json", "--cost-preset", "dcim-65nm"]) == 0
    _assert_cost_fields(_last_json(capsys.readouterr().out), "dcim-65nm")


def test_run_json_has_cost_fields(cifar10_root, capsys):
    assert main(["run", "--model", "zoo:resnet20-random", "--data", str(cifar10_root), "--limit", "4",
                 "--reference", "none", "--json"]) == 0
    d = _last_json(capsys.readouterr().out)
    _assert_cost_fields(d)
    assert d["images"] == 4


@pytest.mark.parametrize("cmd", [["emulate", "zoo:resnet20-random"], ["run", "--model", "zoo:resnet20-random"]])
def test_bad_cost_preset_refused_before_running(cmd, cifar10_root, capsys):
    assert main([*cmd, "--data", str(cifar10_root), "--limit", "1", "--json", "--cost-preset", "nope"]) == 2
    assert "unknown cost preset 'nope'" in capsys.readouterr().err


def test_page_path_checked_before_work(tmp_path, capsys):
    (tmp_path / "page.html").mkdir()
    assert main(["report", "zoo:resnet20-random", "-o", str(tmp_path / "page.html"), "--limit", "0"]) == 2
    assert "report page" in capsys.readouterr().err
    assert not (tmp_path / "page.md").exists()


def test_readme_report_line_is_current(cifar10_root):
    """README's sample output of `hybridcim report resnet20-w4a4-p50` is what the command prints now."""
    from pathlib import Path

    from hybridcim.cost import cost
    from hybridcim.data import Cifar10
    from hybridcim.cli.cmd_report import _load
    from hybridcim.report.workload import measure
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    line = next(l for l in readme.splitlines() if l.startswith("resnet20-w4a4-p50: ") and "uJ/image" in l)
    prog, _ = _load("resnet20-w4a4-p50")  # the command names a shipped model by its card's name
    w = measure(prog, Cifar10(cifar10_root, "test").images(0, 32))
    assert line == cost(prog, w.counters, "dcim-28nm").summary()


def test_page_without_a_seeds_table_says_why(tmp_path, capsys, monkeypatch):
    from hybridcim.cost import seeds

    def refuse(program, bits=8):
        raise ValueError("layer 'x': its shifts or bias leave their range at 8 bits")
    monkeypatch.setattr(seeds, "dense_counterpart", refuse)
    out = tmp_path / "r.html"
    assert main(["report", "zoo:resnet20-random", "-o", str(out), "--limit", "0"]) == 0
    assert "Not computed for this program: layer" in out.read_text(encoding="utf-8")
    assert main(["report", "zoo:resnet20-random", "--seeds", "--limit", "0"]) == 2  # --seeds asked for it: an error
    assert "leave their range" in capsys.readouterr().err


def test_report_of_a_dual_program_shows_ratios_and_both_macro_types(tmp_path, capsys, dual_demo_program):
    from hybridcim.cost import cost, load_cost_preset
    from hybridcim.program import read_program
    from hybridcim.report.workload import measure
    path = dual_demo_program
    out = tmp_path / "r.html"
    assert main(["report", str(path), "-o", str(out), "--limit", "0", "--json"]) == 0
    summary = _last_json(capsys.readouterr().out)
    # SRAM: c1's 5 INT4 filters x 4 bits x K = 27 (540 bits in 3 groups x 2 blocks x 8 x 16 = 768 cells) + c2's 4 x 4 x 72
    # (1,152 bits in 2 groups x 5 blocks x 128 = 1,280 cells); ternary: 3 filters x 2 x 27 = 162 of 3 x 2 x 2 x 16 = 192 cells
    assert summary["macro_utilization"] == {"sram": (540 + 1152) / (768 + 1280), "ternary": 162 / 192}
    assert summary["memory_bits_by_kind"]["tern_weights"] == 192
    md = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "| macro utilization | SRAM 82.6% of the allocated cells hold weight bits; ternary 84.4% of the allocated " \
           "ternary cells hold ternary weights (2 cells per weight) |" in md
    assert "## Dual-path layers" in md and "tern_macros" in md
    row = next(l for l in md.splitlines() if l.startswith("| c1 | 3/8 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    c = cost(read_program(path), measure(read_program(path)).counters, load_cost_preset("dcim-28nm")).layers[0]
    # 288 SRAM compute cycles + 768 cells / 128 bits per cycle; 72 ternary + 192 / 128; at 200 MHz
    assert cells[:9] == ["c1", "3/8", "3/8", "x>=8", f"{(288 + 6) / 200:.4g}", f"{(72 + 1.5) / 200:.4g}", "sram",
                         "70.3%", "84.4%"]
    assert cells[9] == f"{(c.energy_pj['macro2'] + c.energy_pj['tern_accumulate'] + c.energy_pj['tern_weight_load']) / 1e3:.4g}"
    assert cells[10] == "50.0%"  # --limit 0: the assumed density, also on the ternary word lines


def test_report_of_a_program_without_dual_layers_has_no_dual_section(page):
    name, out = page
    md = out.with_suffix(".md").read_text(encoding="utf-8")
    if name in DUAL_SHIPPED:
        assert "## Dual-path layers" in md
        return
    assert "## Dual-path layers" not in md and "tern" not in md.split("## Cost preset constants")[0]
