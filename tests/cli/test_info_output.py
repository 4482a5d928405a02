"""``hybridcim info`` / ``compile`` output: aligned tables, the model's own name, plot panels and axes."""
import pytest

from hybridcim.cli.main import main
from hybridcim.compiler.report import format_report, layer_report, program_compression
from hybridcim.models import MODELS_DIR
from hybridcim.program import read_program, write_program
from hybridcim.table import format_table
from hybridcim.zoo import random_resnet20

SHIPPED = MODELS_DIR / "resnet20-w4a4-p50" / "model.cim"


def test_format_table_widths_follow_the_widest_cell():
    lines = format_table(["layer", "cycles"], [["a", 1], ["x" * 40, 123456789]]).splitlines()
    assert [len(l) for l in lines] == [51, 51, 51]  # 40 + 2 + 9: right column ends at one place
    assert lines[1].startswith("a ") and lines[0].endswith("   cycles")


@pytest.fixture()
def wide(tmp_path):
    """A program whose layer and tensor names are longer than any fixed column width."""
    prog = random_resnet20()
    for l in prog.layers:
        l.name = l.name + "_with_a_rather_long_suffix"
    return write_program(prog, tmp_path / "wide.cim")


def test_info_table_stays_aligned_on_wide_rows(capsys, wide):
    assert main(["info", str(wide)]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = [l for l in lines[1:] if not l.strip().startswith("total")]
    assert table[0].split()[:2] == ["#", "layer"] and table[0].endswith("tiles")
    ends = {len(l) for l in table if l.split()[2] in ("conv", "fc", "op")}  # right-aligned last column (tiles)
    assert len(ends) == 1 and ends.pop() > 100, table
    cyc = table[0].index("cycles/img") + len("cycles/img")
    assert all(l[cyc - 1].isdigit() for l in table[1:]), table  # every row's cycles end under the header
    assert "_with_a_rather_long_suffix" in table[1]


def test_compile_report_stays_aligned_on_wide_rows(wide):
    rows = layer_report(read_program(wide))
    lines = format_report(rows).splitlines()[:-1]
    end = lines[0].index("cycles/img") + len("cycles/img")
    assert all(len(l) == end for l in lines), lines  # the last (right-aligned) column ends at one place
    assert "nan" not in "\n".join(lines)  # no sparsity given: shown as '-', not nan%


def test_pruned_weights_count_whole_filters():
    """A layer whose filters are pruned whole (units of the rest all present) is not '0 pruned'."""
    prog = read_program(SHIPPED)
    rows = layer_report(prog)
    short = next(r for r in rows if r["layer"] == "s2b1_short")
    assert short["unit_sparsity"] == 0 and short["filters_pruned"] == 20
    assert short["weights_pruned"] == pytest.approx(20 / 32)
    # over the program, the per-layer counts add up to the shipped card's structural sparsity
    total = sum(r["filters"] * r["k_rows"] for r in rows)
    kept = sum((1 - r["weights_pruned"]) * r["filters"] * r["k_rows"] for r in rows)
    assert 1 - kept / total == pytest.approx(program_compression(prog)["structural_sparsity"], abs=1e-12)


def test_info_plot_title_panels_and_headroom(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import hybridcim.plots as plots
    seen = {}
    real = plots.layer_report_figure

    def spy(rows, title=""):
        seen["fig"] = fig = real(rows, title)
        seen["rows"] = rows
        return fig
    monkeypatch.setattr(plots, "layer_report_figure", spy)
    assert main(["info", str(SHIPPED), "--plot", str(tmp_path / "l.png")]) == 0
    fig, rows = seen["fig"], seen["rows"]
    assert fig._suptitle.get_text() == "resnet20-w4a4-p50"  # the model's name, not its config's
    ax = fig.axes
    top = max(r["filters"] for r in rows)
    assert ax[0].get_ylim()[1] >= 1.2 * top  # room above the tallest bar (and for the legend)
    assert ax[2].get_ylabel() == "weights pruned"
    i = [r["layer"] for r in rows].index("s2b1_short")
    assert sum(b.get_height() for b in ax[2].patches if round(b.get_x() + b.get_width() / 2) == i) > 0.6
    assert (tmp_path / "l.png").read_bytes()[:4] == b"\x89PNG"


def test_a_program_outside_a_model_folder_keeps_its_embedded_name(tmp_path):
    from hybridcim.cli.cmd_info import model_name
    prog = random_resnet20()
    path = write_program(prog, tmp_path / "r.cim")
    assert model_name(prog, path) == prog.name
    (tmp_path / "card.json").write_text('{"name": "other", "program": "model.cim"}')  # another file's card
    assert model_name(prog, path) == prog.name
    (tmp_path / "card.json").write_text("[" * 100000)  # not a card at all
    assert model_name(prog, path) == prog.name


def test_compile_plot_title_is_the_shipped_models_name(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from hybridcim.cli import _plot
    titles = []
    monkeypatch.setattr(_plot, "write_layer_plot", lambda rows, png, title: titles.append(title))
    assert main(["compile", str(MODELS_DIR / "resnet8-w4a4-p50-quick"), "-o", str(tmp_path / "m.cim"),
                 "--plot", str(tmp_path / "m.png")]) == 0
    assert titles == ["resnet8-w4a4-p50-quick"]


def test_info_shows_each_dual_layers_ratio_and_both_macro_types(capsys, dual_demo_program):
    assert main(["info", str(dual_demo_program)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "1 dual-path" in lines[0]
    assert lines[2].split()[:4] == ["0", "c1", "conv", "dual"] and lines[3].split()[3] == "digital"
    # the layer takes the longer path: SRAM 6x6 pixels x 4 planes x 2 row blocks = 288, ternary 6x6 x 2 blocks = 72
    assert "total cycles/image: 864" in out  # 288 + c2's 576
    i = next(k for k, l in enumerate(lines) if l.startswith("dual-path layers"))
    assert "2 ternary macros of 64x32 cells" in lines[i]
    assert lines[i + 1].split() == ["#", "layer", "ratio", "ternary", "threshold", "SRAM", "cycles", "tern", "cycles",
                                    "longer", "SRAM", "util", "tern", "util", "tern", "tiles", "refresh/img"]
    # 3 ternary filters x 2 cells x K = 27 rows of 2 blocks x 16 rows: 162 / 192 cells; SRAM: 5 filters x 4 bits x 27
    # of 3 groups x 8 columns x 2 blocks x 16 rows = 540 / 768
    assert lines[i + 2].split() == ["0", "c1", "3/8", "3/8", "x>=8", "288", "72", "sram", "70.3%", "84.4%", "1", "0"]
    assert lines[i + 3].startswith("  macro utilization: SRAM ") and lines[i + 3].endswith("ternary 84.4%")


def test_info_json_has_the_dual_entry(capsys, dual_demo_program):
    import json
    assert main(["info", str(dual_demo_program), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    d = m["layers"][0]["dual"]
    assert (d["ratio_eighths"], d["n_tern"], d["bin_threshold"], d["ratio"], d["n_filters"]) == (3, 3, 8, 0.375, 8)
    assert (d["sram_cycles"], d["tern_cycles"]) == (288, 72)
    assert d["sram_utilization"] == 540 / 768 and d["tern_utilization"] == 162 / 192
    assert m["counters_per_image"][0]["cycles"] == 288 and m["counters_per_image"][0]["tern_input_ones"] is None
    assert "dual" not in m["layers"][1]


def test_info_of_a_program_without_dual_layers_has_no_dual_table(capsys):
    assert main(["info", str(SHIPPED)]) == 0
    out = capsys.readouterr().out
    assert "dual-path" not in out and ", all digital" in out.splitlines()[0]
