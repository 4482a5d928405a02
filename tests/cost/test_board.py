"""hybridcim.cost runs on a board: numpy only (no torch, no ZigZag, no yaml), presets from package data."""
import subprocess
import sys

SCRIPT = r"""
import sys
for heavy in ("torch", "brevitas", "qonnx", "onnx", "onnxruntime", "pynq", "zigzag", "yaml", "pandas", "matplotlib"):
    sys.modules[heavy] = None  # any import of these now raises ImportError
from hybridcim.cost import cost, list_cost_presets, sensitivity
from hybridcim.emulator import FastEmulator
from hybridcim.zoo import random_images, random_program
p = random_program(2)
counters = FastEmulator(p, "numpy").run(random_images(p, 2)).counters
for name in list_cost_presets():
    c = cost(p, counters, name)
    assert c.energy_pj > 0 and c.latency_ns > 0 and c.images == 2, name
assert sensitivity(p, counters)
print("cost numpy-only OK")
"""


def test_cost_runs_with_numpy_only():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert out.returncode == 0 and "cost numpy-only OK" in out.stdout, out.stderr[-2000:]
