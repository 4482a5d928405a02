"""Notebooks that need no board are executed top to bottom, headless (as CI and nbconvert run
them): any cell error fails the test, every cell that draws a figure must hold it as an inline
PNG (not only ``<Figure size ...>``), and no output may carry library noise (warnings, the ONNX
exporter's progress lines)."""
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NO_BOARD = ["01_laptop_emulation.ipynb", "02_train_compile_check.ipynb"]
BOARD_ONLY = ["03_pynq_board.ipynb"]


@pytest.mark.parametrize("name", NO_BOARD)
def test_notebook_runs(name, cifar10_root, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("CIFAR10_DIR", str(cifar10_root))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    check_figures_and_noise(nb, name)


DRAWS = re.compile(r"plt\.|_figure\(|\.subplots\(|\bdisplay\(")
NOISE = re.compile(r"(?:User|Deprecation|Future|PendingDeprecation)Warning:|torchvision is not installed|"
                   r"\[torch\.onnx\]|fast_hadamard_transform|Traceback")
"""Library noise: third-party warnings and the ONNX exporter's chatter (hybridcim's own
RuntimeWarnings, e.g. an emulator engine falling back, are messages to the user, not noise)."""


def _texts(cell) -> list[str]:
    out = []
    for o in cell.get("outputs", []):
        if o.output_type == "stream":
            out.append(o.text)
        elif o.output_type in ("execute_result", "display_data"):
            out.append(str(o.get("data", {}).get("text/plain", "")))
    return out


def check_figures_and_noise(nb, name: str) -> None:
    """Each code cell that draws (pyplot, a *_figure() helper, display) holds an image/png output,
    the notebook holds at least one, and no output text is library noise."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    pngs = [sum("image/png" in o.get("data", {}) for o in c.get("outputs", [])) for c in code]
    drawing = [i for i, c in enumerate(code) if DRAWS.search(c.source)]
    assert drawing, f"{name}: no cell draws a figure"
    for i in drawing:
        assert pngs[i] >= 1, f"{name}: code cell {i} draws a figure but holds no image/png output"
    noisy = [(i, t[max(0, m.start() - 150):m.end() + 150]) for i, c in enumerate(code) for t in _texts(c)
             for m in [NOISE.search(t)] if m]
    assert not noisy, f"{name}: library noise in outputs: {noisy[:5]}"


def test_the_figure_check_catches_a_figure_that_did_not_render():
    nbformat = pytest.importorskip("nbformat")
    cell = nbformat.v4.new_code_cell("fig = layer_report_figure(rows)\nfig")
    cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "<Figure size 800x900 with 5 Axes>"},
                                           execution_count=1)]
    nb = nbformat.v4.new_notebook(cells=[cell])
    with pytest.raises(AssertionError, match="holds no image/png"):
        check_figures_and_noise(nb, "x")
    cell.outputs.append(nbformat.v4.new_output("display_data", {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}))
    check_figures_and_noise(nb, "x")
    cell.outputs.append(nbformat.v4.new_output("stream", name="stderr", text="W1202 torchvision is not installed."))
    with pytest.raises(AssertionError, match="noise"):
        check_figures_and_noise(nb, "x")


@pytest.mark.parametrize("name", BOARD_ONLY)
def test_board_notebook_is_valid_python(name):
    """Board notebooks cannot run here; their cells must at least parse and name real APIs."""
    import ast
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith("%")))  # IPython magics
    import hybridcim.runtime as rt
    for api in ("PynqDevice", "EmulatorDevice", "Session"):
        assert api in source and hasattr(rt, api)
