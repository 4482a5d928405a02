"""hybridcim: train, compile, emulate and run compressed CNNs on SRAM compute-in-memory.

Install (Python 3.11):  pip install -e ".[all]"
The core package (program, emulator, data, runtime, cli) needs numpy only so that it runs
on a PYNQ board's ARM CPU; training, export and the PyTorch emulator fast path are extras.
"""
import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HLS_SOURCES = ["*.h", "*.cpp", "presets/*.h", "tb/*.cpp", "Makefile", "run_hls.tcl", "hls_config.cfg"]


BITSTREAM_FILES = ["*/manifest.json", "*/*.bit", "*/*.hwh", "*/*.h"]


class BuildPyWithHls(build_py):
    """Copy the repository's hls/ sources into the wheel as hybridcim/hls/ (the csim builder finds them
    there) and its built bitstreams/<board>/ folders as hybridcim/bitstreams/ (runtime/bitstream_path.py)."""

    def run(self):
        super().run()
        root = Path(__file__).resolve().parent
        for sub, patterns in (("hls", HLS_SOURCES), ("bitstreams", BITSTREAM_FILES)):
            src, dst = root / sub, Path(self.build_lib) / "hybridcim" / sub
            for pattern in patterns:
                for f in src.glob(pattern):
                    (dst / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, dst / f.relative_to(src))

TRAIN = ["torch==2.13.0", "brevitas==0.13.4", "onnx", "onnxoptimizer", "qonnx==1.0.0",
         "onnxruntime", "pyyaml", "safetensors"]
CSIM = ["hls4ml==1.3.0"]
TEST = ["pytest", "hypothesis", "nbformat", "nbclient", "ipykernel", "matplotlib"]
BOARD = ["pynq>=3.0.1,<5"]  # 3.0.1 ships on the PYNQ-Z2 v3.0.1 image; pynq 4 dropped the Zynq-7000 boards
SEARCH = ["optuna>=4.0,<6", "pyyaml"]  # hybridcim search (NSGA-II, journal/RDB storages)
ZIGZAG = ["zigzag-dse==3.9.1", "six", "pyyaml"]  # cost-model cross-check only (zigzag uses six undeclared)

setup(
    name="hybridcim",
    version="0.1.0",
    description="Bit-exact SRAM compute-in-memory emulation, FPGA overlay and CIM-aware training",
    package_dir={"": "host"},
    packages=find_packages("host"),
    package_data={"hybridcim": ["models/*/*", "train/configs/*.yaml", "cost/presets/*.json"]},
    cmdclass={"build_py": BuildPyWithHls},
    python_requires=">=3.10",
    install_requires=["numpy>=1.24,<2", "tqdm"],
    extras_require={
        "train": TRAIN,
        "csim": CSIM,
        "test": TEST,
        "board": BOARD,
        "zigzag": ZIGZAG,
        "search": SEARCH,
        "all": TRAIN + CSIM + TEST + BOARD + SEARCH,
    },
    entry_points={"console_scripts": ["hybridcim=hybridcim.cli.main:main"]},
)
