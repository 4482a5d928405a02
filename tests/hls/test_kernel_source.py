"""The kernel's sources agree with its loop table and keep its pipelines free of memory dependences.

Parsed from hls/*.cpp (comments stripped, loops found with their labels, headers and bodies):

1. every loop of hls/hcim_loops.h with ii > 0 is a loop labelled with its name, carrying
   `#pragma HLS PIPELINE II=<ii>` in its own body (not a nested loop's); a loop with ii = 0
   is labelled and carries no PIPELINE pragma; every loop id is counted (ENTER and ITER/ITERS);
2. every loop in the per-pixel path (the `pixels` loop's body and the functions it calls) has
   a LOOP_TRIPCOUNT, unless its bound is a compile-time constant or it is fully unrolled;
3. no pipelined loop does a read-modify-write of an array element whose index is data-dependent
   (anything but the pipelined loop's and its unrolled inner loops' induction variables and
   constants): `acc[col.f] += v` or `x[i] = x[i] + v` makes a dependence through memory
   carried across iterations, so the II of the pragma would not be met. Arrays partitioned
   completely (`ARRAY_PARTITION ... complete`, every dimension) are registers, not memory,
   and are exempt;
4. every loop inside a pipelined loop has a constant bound (HLS unrolls it completely).

Each check runs on the real sources and on a bad snippet that it must refuse.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

HLS = Path(__file__).resolve().parents[2] / "hls"
KERNEL_SOURCES = ("hybridcim_accel.cpp", "hcim_program.cpp", "hcim_layers.cpp")
KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "case", "default", "do", "else"}


def strip_comments(src: str) -> str:
    """Comments and string literals blanked (newlines kept)."""
    def blank(m):
        return re.sub(r"[^\n]", " ", m.group(0))
    return re.sub(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\])*"', blank, src, flags=re.S)


def match_close(s: str, i: int, o: str, c: str) -> int:
    """Index just past the bracket closing the one at s[i]."""
    depth = 0
    for j in range(i, len(s)):
        depth += (s[j] == o) - (s[j] == c)
        if depth == 0:
            return j + 1
    raise ValueError(f"unbalanced {o}{c} from offset {i}")


def statement_end(s: str, i: int) -> int:
    """End of the statement starting at s[i] (a block, a loop, or up to ';')."""
    while s[i].isspace():
        i += 1
    if s[i] == "{":
        return match_close(s, i, "{", "}")
    m = re.match(r"(for|while)\s*\(", s[i:])
    if m:
        return statement_end(s, match_close(s, i + m.end() - 1, "(", ")"))
    return s.index(";", i) + 1


def find_loops(s: str) -> list[dict]:
    """Every for/while loop: label, header, body text, span, and the spans of loops nested in it."""
    loops = []
    for m in re.finditer(r"\b(for|while)\s*\(", s):
        h0 = m.end() - 1
        h1 = match_close(s, h0, "(", ")")
        end = statement_end(s, h1)
        before = s[:m.start()].rstrip()
        lm = re.search(r"(?:^|[;{}])\s*(\w+)\s*:$", before)
        label = lm.group(1) if lm and not before.endswith("::") and lm.group(1) not in KEYWORDS else None
        loops.append({"label": label, "header": s[h0 + 1:h1 - 1], "body": s[h1:end], "span": (m.start(), end),
                      "body_start": h1})
    for lp in loops:
        a, b = lp["span"]
        lp["inner"] = [q for q in loops if q is not lp and a < q["span"][0] and q["span"][1] <= b]
    return loops


def own_text(lp: dict) -> str:
    """The loop's body without the bodies of loops nested in it."""
    body, off = lp["body"], lp["body_start"]
    for q in sorted(lp["inner"], key=lambda q: q["span"][0], reverse=True):
        a, b = q["span"][0] - off, q["span"][1] - off
        if 0 <= a and b <= len(body) and not any(q is not r and r["span"][0] < q["span"][0] and q["span"][1] <= r["span"][1]
                                                  for r in lp["inner"]):
            body = body[:a] + " " * (b - a) + body[b:]
    return body


def pragmas(text: str, kind: str) -> list[str]:
    return re.findall(rf"#pragma\s+HLS\s+{kind}\b([^\n]*)", text, re.I)


def pipeline_ii(lp: dict) -> int | None:
    found = pragmas(own_text(lp), "PIPELINE")
    if not found:
        return None
    m = re.search(r"II\s*=\s*(\d+)", found[0], re.I)
    return int(m.group(1)) if m else 1


def induction_vars(header: str) -> set[str]:
    init = header.split(";")[0]
    return set(re.findall(r"\b([A-Za-z_]\w*)\s*=", init))


def functions(s: str) -> dict[str, tuple[int, int]]:
    """Top-level function definitions: name -> body span."""
    out, depth, i, last = {}, 0, 0, 0
    while i < len(s):
        ch = s[i]
        if ch == "{" and depth == 0:
            sig = s[last:i]
            m = re.search(r"(\w+)\s*\([^()]*(?:\([^()]*\)[^()]*)*\)\s*(?:const\s*)?$", sig)
            end = match_close(s, i, "{", "}")
            if m and m.group(1) not in KEYWORDS:
                out[m.group(1)] = (i, end)
            if m or re.search(r"\b(struct|union|enum)\b", sig):
                i, last = end, end
                continue
            depth += 1
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == ";" and depth == 0:
            last = i + 1
        i += 1
    return out


def loop_table(text: str) -> list[tuple[str, str, int, int]]:
    return [(i, n, int(ii), int(d)) for i, n, ii, d in
            re.findall(r"X\((\w+),\s*\"(\w+)\",\s*(\d+),\s*(\d+)\)", text)]


# ---- the three checks: each returns a list of problems (empty = fine) ----

def check_table(table, src: str) -> list[str]:
    loops, bad = find_loops(src), []
    for lid, name, ii, _ in table:
        hits = [lp for lp in loops if lp["label"] == name]
        if len(hits) != 1:
            bad.append(f"loop {name}: {len(hits)} loops labelled {name}: (want 1)")
            continue
        got = pipeline_ii(hits[0])
        if ii > 0 and got != ii:
            bad.append(f"loop {name}: table II {ii}, source PIPELINE II {got}")
        if ii == 0 and got is not None:
            bad.append(f"loop {name}: table says not pipelined, source has PIPELINE II={got}")
        if not re.search(rf"HCIM_LOOP_ENTER\(\s*{lid}\s*\)", src):
            bad.append(f"loop {name}: no HCIM_LOOP_ENTER({lid})")
        if not re.search(rf"HCIM_LOOP_ITERS?\(\s*{lid}\s*[,)]", src):
            bad.append(f"loop {name}: no HCIM_LOOP_ITER({lid}) / HCIM_LOOP_ITERS({lid}, n)")
    return bad


CONST_EXPR = re.compile(r"^[\s\d()+\-*/<>%]*(?:\b[A-Z_][A-Z0-9_]*\b[\s\d()+\-*/<>%]*)*$")


def constant_bound(lp: dict) -> bool:
    parts = lp["header"].split(";")
    if len(parts) != 3:
        return False
    for conj in parts[1].split("&&"):  # `i < 8 && i < bits`: at most 8 iterations
        m = re.match(r"\s*\w+\s*(<=?|!=)\s*(.+?)\s*$", conj)
        if m and CONST_EXPR.match(m.group(2)):
            return True
    return False


def per_pixel_loops(src: str, outer: str = "pixels") -> list[dict]:
    loops, funcs = find_loops(src), functions(src)
    roots = [lp for lp in loops if lp["label"] == outer]
    if not roots:
        raise AssertionError(f"no loop labelled {outer}")
    spans, todo, seen = [roots[0]["span"]], [roots[0]["span"]], set()
    while todo:
        a, b = todo.pop()
        for name in re.findall(r"\b(\w+)\s*(?:<[^;(){}]*>)?\s*\(", src[a:b]):
            if name in funcs and name not in seen:
                seen.add(name)
                spans.append(funcs[name])
                todo.append(funcs[name])
    return [lp for lp in loops if lp["label"] != outer and any(a <= lp["span"][0] < b for a, b in spans)]


def check_tripcounts(src: str) -> list[str]:
    bad = []
    for lp in per_pixel_loops(src):
        own = own_text(lp)
        if pragmas(own, "LOOP_TRIPCOUNT") or constant_bound(lp):
            continue
        if any(not re.search(r"factor", p) for p in pragmas(own, "UNROLL")):
            continue
        bad.append(f"{where(src, lp['span'][0])}: loop {lp['label'] or '(unlabelled)'} ({lp['header'].strip()}) "
                   "has no LOOP_TRIPCOUNT")
    return bad


def element_writes(body: str):
    """(array, subscripts, op, rhs) of every assignment to an array element: op '' for '=', '+' for '+=', ..."""
    for m in re.finditer(r"\b(\w+)\s*\[", body):
        i, j = m.end() - 1, m.end() - 1
        while True:  # consecutive subscripts, brackets matched (an index may hold an array access)
            j = match_close(body, i, "[", "]")
            k = j
            while k < len(body) and body[k].isspace():
                k += 1
            if k < len(body) and body[k] == "[":
                i = k
                continue
            break
        a = re.match(r"\s*(\+|-|\*|/|\||&|\^|<<|>>)?=(?!=)([^;]*);", body[j:])
        if a and not body[:m.start()].rstrip().endswith((".", "->")):
            yield m.group(1), body[m.end() - 1:j], a.group(1) or "", a.group(2)


def register_arrays(src: str) -> set[str]:
    """Arrays partitioned completely in every dimension (registers: no memory, no memory dependence)."""
    ndims = {m.group(1): len(re.findall(r"\[", m.group(2))) for m in
             re.finditer(r"\b[A-Za-z_]\w*\s+(\w+)((?:\s*\[[^\]]+\])+)\s*[;=]", src)}
    out = set()
    for p in pragmas(src, "ARRAY_PARTITION"):
        m = re.search(r"variable\s*=\s*(\w+)", p)
        dm = re.search(r"dim\s*=\s*(\d+)", p)
        if m and re.search(r"\bcomplete\b", p) and (not dm or dm.group(1) == "0" or ndims.get(m.group(1)) == 1):
            out.add(m.group(1))
    return out


def check_pipelines(src: str) -> list[str]:
    bad, regs = [], register_arrays(src)
    for lp in find_loops(src):
        if pipeline_ii(lp) is None:
            continue
        ok_vars = induction_vars(lp["header"])
        for q in lp["inner"]:
            if pragmas(own_text(q), "UNROLL") or constant_bound(q):  # unrolled inside a pipeline
                ok_vars |= induction_vars(q["header"])
        hits = [(arr, idx) for arr, idx, op, rhs in element_writes(lp["body"])
                if (op or re.search(rf"\b{arr}\s*\[", rhs)) and arr not in regs]
        for arr, idx in hits:
            names = set(re.findall(r"\b[A-Za-z_]\w*\b", idx)) - ok_vars
            names = {n for n in names if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", n)}
            if names:
                bad.append(f"{where(src, lp['span'][0])}: loop {lp['label'] or '(unlabelled)'}: read-modify-write of {arr}{idx.strip()} "
                           f"(index depends on {', '.join(sorted(names))}) in a pipelined loop")
    return bad


def check_inner_bounds(src: str) -> list[str]:
    """Loops inside a pipelined loop are unrolled by HLS, which needs a constant bound."""
    bad = []
    for lp in find_loops(src):
        if pipeline_ii(lp) is None:
            continue
        for q in lp["inner"]:
            if not constant_bound(q):
                bad.append(f"{where(src, q['span'][0])}: loop ({q['header'].strip()}) inside pipelined loop "
                           f"{lp['label'] or '(unlabelled)'} has a variable bound (it must unroll)")
    return bad


# ---- the real sources ----

def kernel_text() -> str:
    """The kernel sources, comments stripped, each after a `#file NAME` marker line (for locations)."""
    return "".join(f"#file {f}\n" + strip_comments((HLS / f).read_text()) + "\n" for f in KERNEL_SOURCES)


def where(src: str, pos: int) -> str:
    """file:line of an offset of kernel_text() (or line N of a snippet)."""
    m = None
    for m in re.finditer(r"^#file (\S+)\n", src[:pos], re.M):
        pass
    if m is None:
        return f"line {src[:pos].count(chr(10)) + 1}"
    return f"{m.group(1)}:{src[m.end():pos].count(chr(10)) + 1}"


@pytest.fixture(scope="module")
def src() -> str:
    return kernel_text()


@pytest.fixture(scope="module")
def table():
    t = loop_table((HLS / "hcim_loops.h").read_text())
    assert t and len({n for _, n, _, _ in t}) == len(t)
    return t


def test_table_matches_the_sources(table, src):
    assert check_table(table, src) == []


def test_per_pixel_loops_have_tripcounts(src):
    assert check_tripcounts(src) == []


def test_pipelines_have_no_memory_read_modify_write(src):
    assert check_pipelines(src) == []


def test_loops_inside_pipelines_have_constant_bounds(src):
    assert check_inner_bounds(src) == []


# ---- each check refuses a bad snippet ----

GOOD = """
static void f(const int *w, int n, int *acc) {
units:
    for (int u = 0; u < n; u++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 512
#pragma HLS PIPELINE II = 1
        HCIM_LOOP_ITER(HCIM_LP_UNITS);
        int r[8];
        for (int c = 0; c < 8; c++) { r[c] += w[u * 8 + c]; }
        acc[u] = r[0];
    }
}
void top(int n, const int *w, int *acc) {
pixels:
    for (int p = 0; p < n; p++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = 1024
        HCIM_LOOP_ENTER(HCIM_LP_UNITS);
        f(w, n, acc);
    }
}
"""
TABLE = [("HCIM_LP_UNITS", "units", 1, 8)]


def test_good_snippet_passes():
    s = strip_comments(GOOD)
    assert check_table(TABLE, s) == [] and check_tripcounts(s) == [] and check_pipelines(s) == []


@pytest.mark.parametrize("edit, problem", [
    (("II = 1", "II = 2"), "source PIPELINE II 2"),
    (("units:", "cols:"), "0 loops labelled units"),
    (("#pragma HLS PIPELINE II = 1", ""), "source PIPELINE II None"),
    (("HCIM_LOOP_ENTER(HCIM_LP_UNITS);", ""), "no HCIM_LOOP_ENTER"),
    (("HCIM_LOOP_ITER(HCIM_LP_UNITS);", ""), "no HCIM_LOOP_ITER"),
])
def test_table_check_fails_on_bad_snippet(edit, problem):
    bad = check_table(TABLE, strip_comments(GOOD.replace(*edit)))
    assert bad and problem in bad[0]


def test_table_check_refuses_pragma_in_nested_loop_only():
    s = GOOD.replace("#pragma HLS PIPELINE II = 1\n", "").replace(
        "for (int c = 0; c < 8; c++) {", "for (int c = 0; c < 8; c++) {\n#pragma HLS PIPELINE II = 1\n")
    assert any("PIPELINE II None" in b for b in check_table(TABLE, strip_comments(s)))


def test_unpipelined_table_loop_with_pragma_refused():
    assert "not pipelined" in check_table([("HCIM_LP_UNITS", "units", 0, 0)], strip_comments(GOOD))[0]


def test_tripcount_check_fails_on_bad_snippet():
    s = GOOD.replace("#pragma HLS LOOP_TRIPCOUNT min = 1 max = 512\n", "")
    assert "units" in check_tripcounts(strip_comments(s))[0]
    # a constant bound needs none; a variable one does, also in a function called from the pixel loop
    s2 = GOOD.replace("c < 8", "c < n")
    assert "c < n" in check_tripcounts(strip_comments(s2))[0]


@pytest.mark.parametrize("stmt", ["acc[col_f] += v;", "acc[idx[u]] |= 1;", "x[k] = x[k] + 3;",
                                  "g[u >> 3][f] -= 2;"])
def test_pipeline_check_fails_on_bad_snippet(stmt):
    s = GOOD.replace("acc[u] = r[0];", "int v = 1, col_f = w[u], k = w[u + 1], f = w[2];\n        " + stmt)
    bad = check_pipelines(strip_comments(s))
    assert bad and "read-modify-write" in bad[0]


def test_pipeline_check_exempts_register_arrays():
    s = GOOD.replace("int r[8];", "int r[8];\n#pragma HLS ARRAY_PARTITION variable = r complete").replace(
        "acc[u] = r[0];", "r[w[u] & 7] += 1; acc[u] = r[0];")
    assert check_pipelines(strip_comments(s)) == []
    assert check_pipelines(strip_comments(s.replace("variable = r complete", "variable = r cyclic factor = 2")))


def test_inner_bound_check_fails_on_bad_snippet():
    assert check_inner_bounds(strip_comments(GOOD)) == []
    bad = check_inner_bounds(strip_comments(GOOD.replace("c < 8", "c < n")))
    assert bad and "inside pipelined loop units" in bad[0]
    assert check_inner_bounds(strip_comments(GOOD.replace("c < 8", "c < 8 && c < n"))) == []


def test_pipeline_check_allows_induction_indices():
    s = GOOD.replace("acc[u] = r[0];", "acc[u] += r[0]; acc[u + 1] = acc[u + 1] + 1;")
    assert check_pipelines(strip_comments(s)) == []
