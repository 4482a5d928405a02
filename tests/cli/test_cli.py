"""The ``hybridcim`` command line, run as a user would (subprocess for the entry point, main() for speed)."""
import json
import subprocess
import sys

import pytest

from hybridcim.cli.main import main
from hybridcim.program import write_program
from hybridcim.zoo import random_resnet20


@pytest.fixture(scope="module")
def r20(tmp_path_factory):
    return write_program(random_resnet20(), tmp_path_factory.mktemp("p") / "r20.cim")


def test_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "hybridcim.cli.main", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "emulate" in out.stdout and "info" in out.stdout


def test_info_presets_and_program(capsys, r20):
    assert main(["info", "--json"]) == 0
    presets = json.loads(capsys.readouterr().out)
    assert "sun-mars-256" in presets
    assert main(["info", str(r20)]) == 0
    text = capsys.readouterr().out
    assert "s3b3_conv2" in text and "total cycles/image" in text
    assert main(["info", str(r20), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert len(m["counters_per_image"]) == len(m["layers"]) == 23
    first = m["counters_per_image"][0]  # the memory counters; input_ones depends on the data: null here
    assert first["weight_load_bits"] > 0 and first["dram_bytes"] > 0 and first["input_ones"] is None


@pytest.mark.parametrize("emulator", ["fast", "reference"])
def test_emulate_json_summary(capsys, r20, cifar10_root, emulator):
    limit = 40 if emulator == "fast" else 2
    assert main(["emulate", str(r20), "--data", str(cifar10_root), "--limit", str(limit), "--batch-size", "16",
                 "--emulator", emulator, "--json"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    s = json.loads(last)
    assert s["images"] == limit and 0.0 <= s["accuracy"] <= 1.0 and s["images_per_s"] > 0
    assert s["cycles_per_image"] > 0 and s["peak_rss_mb"] > 0


def test_fast_and_reference_agree_through_cli(capsys, r20, cifar10_root):
    # the same 2 images through both emulators: both succeed with identical summaries (the
    # logits themselves are compared in tests/emulator; here the CLI plumbing of --emulator)
    outs = []
    for emulator in ("fast", "reference"):
        rc = main(["emulate", str(r20), "--data", str(cifar10_root), "--limit", "2", "--emulator", emulator, "--json"])
        assert rc == 0
        outs.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    for key in ("images", "accuracy", "cycles_per_image"):
        assert outs[0][key] == outs[1][key], key
    assert [o["emulator"] for o in outs] == ["fast", "reference"]


def test_errors_are_one_line_exit_2(capsys, tmp_path, r20, cifar10_root):
    bad = tmp_path / "bad.cim"
    data = bytearray(r20.read_bytes())
    data[1000] ^= 1
    bad.write_bytes(bytes(data))
    assert main(["emulate", str(bad), "--data", str(cifar10_root)]) == 2
    err = capsys.readouterr().err
    assert "CRC-32 mismatch" in err and "Traceback" not in err
    assert main(["emulate", str(r20), "--data", str(tmp_path / "nowhere")]) == 2
    assert "error" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "missing.cim")]) == 2


def test_zoo_writes_program(tmp_path, capsys):
    out = tmp_path / "z.cim"
    assert main(["zoo", "resnet20-random", "-o", str(out), "--preset", "tiny-64"]) == 0
    assert out.exists() and (tmp_path / "z.cim.json").exists()


def test_layer_report_figure_draws_the_report(r20):
    """Each panel's bars are the report's numbers (stacked filters add up to the layer's filters)."""
    import numpy as np
    pytest.importorskip("matplotlib")
    from hybridcim.compiler.report import layer_report
    from hybridcim.plots import layer_report_figure
    from hybridcim.program import read_program
    rows = layer_report(read_program(r20))
    ax = layer_report_figure(rows).axes
    n = len(rows)
    stacked = np.zeros(n)
    for bar in ax[0].patches:
        stacked[int(round(bar.get_x() + bar.get_width() / 2))] += bar.get_height()
    assert stacked.tolist() == [r["filters"] for r in rows]
    assert [b.get_height() for b in ax[1].patches] == [r["util_paired"] for r in rows]  # no naive rows here
    pruned = np.zeros(n)  # stacked: whole filters, then units; the total is the weights pruned
    for bar in ax[2].patches:
        pruned[int(round(bar.get_x() + bar.get_width() / 2))] += bar.get_height()
    assert np.allclose(pruned, [r["weights_pruned"] for r in rows], rtol=0, atol=1e-12)
    assert [b.get_height() for b in ax[2].patches[:n]] == [r["filters_pruned"] / r["filters"] for r in rows]
    assert [b.get_height() for b in ax[3].patches] == [r["tiles"] for r in rows]
    assert [b.get_height() for b in ax[4].patches] == [r["cycles"] for r in rows]
    assert [t.get_text() for t in ax[4].get_xticklabels()] == [r["layer"] for r in rows]


def test_info_and_compile_plot(tmp_path, capsys, r20, monkeypatch):
    pytest.importorskip("matplotlib")
    png = tmp_path / "layers.png"
    assert main(["info", str(r20), "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(tmp_path.glob(".*tmp*"))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as on a board without matplotlib
    assert main(["info", str(r20), "--plot", str(tmp_path / "no.png")]) == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err and not (tmp_path / "no.png").exists()
    from hybridcim.models import MODELS_DIR  # compile refuses before it writes anything
    assert main(["compile", str(MODELS_DIR / "resnet8-w4a4-p50-quick"), "-o", str(tmp_path / "m.cim"),
                 "--plot", str(tmp_path / "no.png")]) == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err and not list(tmp_path.glob("m.cim*"))
