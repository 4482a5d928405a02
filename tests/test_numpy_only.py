"""Outside hybridcim.train the package must work with numpy alone (a PYNQ board's ARM CPU has no torch)."""
import subprocess
import sys

SCRIPT = r"""
import sys
for heavy in ("torch", "brevitas", "qonnx", "onnx", "onnxruntime", "pynq"):
    sys.modules[heavy] = None  # any import of these now raises ImportError
import numpy as np
import hybridcim.cli.main, hybridcim.compiler, hybridcim.data, hybridcim.models, hybridcim.runtime, hybridcim.zoo
from hybridcim.emulator import FastEmulator, available_backends
from hybridcim.zoo import random_images, random_program
p = random_program(1)
emu = FastEmulator(p, "numpy")
assert emu.run(random_images(p, 2)).outputs.shape[0] == 2
hybridcim.cli.main.build_parser()
print("numpy-only OK")
"""


def test_core_package_runs_without_torch():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert out.returncode == 0 and "numpy-only OK" in out.stdout, out.stderr[-2000:]
