"""docs/program-format.md "Runtime buffers" states the kernel version, the counter layout and N of
hls/hybridcim_accel.h, and its counter index table is the kernel's order (all N counters)."""
import re
from pathlib import Path

from hybridcim.runtime.bitstream import header_defines
from hybridcim.runtime.buffers import COUNTER_FIELDS, COUNTERS_LAYOUT

ROOT = Path(__file__).resolve().parents[2]
DEFINES = header_defines(ROOT / "hls" / "hybridcim_accel.h")
N = int(DEFINES["HCIM_N_COUNTERS"])
VERSION = f"{int(DEFINES['HCIM_KERNEL_VERSION_MAJOR'])}.{int(DEFINES['HCIM_KERNEL_VERSION_MINOR'])}"


def runtime_buffers() -> str:
    text = (ROOT / "docs" / "program-format.md").read_text(encoding="utf-8")
    return text.split("## Runtime buffers", 1)[1].split("\n## ", 1)[0]


def test_the_header_and_the_host_agree():
    assert N == len(COUNTER_FIELDS) and int(DEFINES["HCIM_CNT_LAYOUT"]) == COUNTERS_LAYOUT


def test_the_doc_names_the_current_kernel_and_counter_layout():
    part = runtime_buffers()
    assert f"`hybridcim_accel`, kernel version {VERSION})" in part
    assert f"(N = {N} from kernel {VERSION}," in part  # the counters buffer row
    assert f"version ({COUNTERS_LAYOUT} from kernel {VERSION};" in part  # the header word
    assert f"counters per layer N ({N};" in part
    doc = (ROOT / "docs" / "program-format.md").read_text(encoding="utf-8")
    args = next(line for line in doc.splitlines() if line.startswith("| 1 | ARGS |"))
    assert f"(N = {N};" in args


def test_the_counter_index_table_is_the_kernels_order():
    """Every `| k | `name` |` cell pair of the table, ranges (17…24) expanded, gives COUNTER_FIELDS."""
    part = runtime_buffers()
    index = {}
    for k, name in re.findall(r"(?=\| (\d+) \| `(\w+)` \|)", part):
        index[int(k)] = name
    for a, b, first, last in re.findall(r"\| (\d+)…(\d+) \| `(\w+?)0` … `(\w+?)7` \|", part):
        assert first == last
        for k in range(int(a), int(b) + 1):
            index[k] = f"{first}{k - int(a)}"
    assert [index.get(k) for k in range(N)] == list(COUNTER_FIELDS)
