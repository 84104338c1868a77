#!/usr/bin/env python3
"""Fails on an import cycle between the harness's modules.

Reads every module file of harness/src (test modules left out: `tests.rs` files and what
follows `#[cfg(test)]`), collects the paths it names (`use crate::...`, `crate::a::b` in
code, `super::`/`self::` resolved), and builds two graphs:

- the top-level modules (`scenario`, `compose`, `plan`, `runtime`, ...): an edge A -> B when
  a file of A names something of B;
- inside each top-level module, its direct submodules (`runtime::images`,
  `runtime::pull`, ...): an edge when one names something of a sibling (the parent's own
  file, e.g. `runtime/mod.rs`, is the glue and is not a node).

Every cycle (a strongly connected component of more than one module) is an error listing
the edges and one file:line for each. `--map` prints the top-level graph (module: what it
imports) instead of checking. Usage: check-cycles.py [--map] [--self-test] [--root REPO]
"""

import pathlib
import re
import sys
from collections import defaultdict

ROOT = pathlib.Path(__file__).resolve().parent.parent
if "--root" in sys.argv:
    ROOT = pathlib.Path(sys.argv[sys.argv.index("--root") + 1]).resolve()
SRC = ROOT / "harness" / "src"

# An inline test module (`#[cfg(test)] mod tests { .. }`, conventionally last in its file);
# `#[cfg(test)] mod tests;` names a tests.rs file, which is left out anyway.
TEST_TAIL = re.compile(r"^\s*#\[cfg\(test\)\]\s*\n\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", re.M)


def strip(text):
    """Comments and string literals blanked, line numbers kept."""
    text = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
    text = re.sub(r'r(#*)".*?"\1', lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
    text = re.sub(r'"(\\.|[^"\\])*"', lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def module_of(path):
    """The module path of a file, as a list (`runtime/images.rs` -> ['runtime', 'images'])."""
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def expand_groups(path_text):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    path_text = re.sub(r"\s+", "", path_text)
    m = re.search(r"\{", path_text)
    if not m:
        return [path_text]
    head = path_text[: m.start()]
    depth, i = 0, m.start()
    for i in range(m.start(), len(path_text)):
        if path_text[i] == "{":
            depth += 1
        elif path_text[i] == "}":
            depth -= 1
            if depth == 0:
                break
    inner = path_text[m.start() + 1: i]
    items, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    items.append(cur)
    out = []
    for item in items:
        if item:
            out.extend(expand_groups(head + item))
    return out


def references(text, here):
    """(line, absolute module path list) for each path the code names."""
    refs = []
    code = strip(text)
    m = TEST_TAIL.search(code)
    if m:
        code = code[: m.start()]
    lines_at = [0]
    for i, ch in enumerate(code):
        if ch == "\n":
            lines_at.append(i + 1)

    def line_of(pos):
        lo, hi = 0, len(lines_at) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if lines_at[mid] <= pos:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1

    # `use` statements (groups included), then paths in code.
    spans = []
    for um in re.finditer(r"\buse\s+([^;]+);", code):
        spans.append((um.start(), um.end()))
        for p in expand_groups(um.group(1)):
            refs.append((line_of(um.start()), p))
    in_use = lambda pos: any(a <= pos < b for a, b in spans)
    for pm in re.finditer(r"\b(crate|super|self)(::\w+)+", code):
        if not in_use(pm.start()):
            refs.append((line_of(pm.start()), pm.group(0)))
    out = []
    for line, p in refs:
        segs = [s for s in p.split("::") if s]
        if not segs:
            continue
        if segs[0] == "crate":
            absolute = segs[1:]
        elif segs[0] == "self":
            absolute = list(here) + segs[1:]
        elif segs[0] == "super":
            cur = list(here)
            while segs and segs[0] == "super":
                cur = cur[:-1]
                segs = segs[1:]
            absolute = cur + segs
        else:
            continue
        out.append((line, absolute))
    return out


def modules():
    """Every module path that is a file (tests.rs left out)."""
    found = {}
    for path in sorted(SRC.rglob("*.rs")):
        if path.name == "tests.rs" or path.name == "main.rs":
            continue
        found[tuple(module_of(path))] = path
    return found


def node(absolute, known, depth):
    """The graph node `absolute` falls in at `depth` (1: top level, 2: submodule)."""
    for d in range(min(depth, len(absolute)), 0, -1):
        if tuple(absolute[:d]) in known:
            return tuple(absolute[:d])
    return None


def graph(depth):
    known = modules()
    edges = defaultdict(list)  # (a, b) -> [file:line]
    for mod, path in known.items():
        if not mod:
            continue
        here = node(list(mod), known, depth)
        if here is None or len(here) != depth:
            continue
        for line, absolute in references(path.read_text(encoding="utf-8"), list(mod)):
            there = node(absolute, known, depth)
            if there is None or there == here or len(there) != depth:
                continue
            if depth == 2 and there[0] != here[0]:
                continue
            edges[(here, there)].append(f"{path.relative_to(ROOT)}:{line}")
    return edges


def cycles(edges):
    """Strongly connected components of more than one node (Tarjan)."""
    succ = defaultdict(set)
    nodes = set()
    for a, b in edges:
        succ[a].add(b)
        nodes |= {a, b}
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(succ[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def name(n):
    return "::".join(n)


def self_test():
    assert expand_groups("crate::{a, b::{c, d}}") == ["crate::a", "crate::b::c", "crate::b::d"]
    refs = references("use super::x::Y;\nfn f() { crate::plan::P; }\n#[cfg(test)]\nmod tests {\n use crate::z; }",
                      ["runtime", "files"])
    assert refs == [(1, ["runtime", "x", "Y"]), (2, ["plan", "P"])], refs
    refs = references("#[cfg(test)]\nmod tests;\nuse crate::a::B;", ["x"])
    assert refs == [(3, ["a", "B"])], refs
    refs = references("use super::node::Cx;", ["scenario", "parse"])
    assert refs == [(1, ["scenario", "node", "Cx"])], refs
    edges = {(("a",), ("b",)): ["f:1"], (("b",), ("c",)): ["f:2"], (("c",), ("a",)): ["f:3"],
             (("c",), ("d",)): ["f:4"]}
    assert cycles(edges) == [[("a",), ("b",), ("c",)]], cycles(edges)


def main():
    self_test()
    args = sys.argv[1:]
    if "--self-test" in args:
        print("check-cycles: self-test passed")
        return 0
    if "--map" in args:
        edges = graph(1)
        out = defaultdict(set)
        for a, b in edges:
            out[a].add(b)
        for a in sorted(set(k[0] for k in modules() if k)):
            deps = ", ".join(sorted(name(b) for b in out.get((a,), ())))
            print(f"{a}: {deps or '-'}")
        return 0
    failures = 0
    for depth, what in [(1, "top-level modules"), (2, "submodules")]:
        edges = graph(depth)
        for comp in cycles(edges):
            failures += 1
            members = set(comp)
            print(f"error: import cycle between {what}: {', '.join(name(n) for n in comp)}",
                  file=sys.stderr)
            for (a, b), where in sorted(edges.items()):
                if a in members and b in members:
                    more = f" (+{len(where) - 1} more)" if len(where) > 1 else ""
                    print(f"  {name(a)} -> {name(b)}: {where[0]}{more}", file=sys.stderr)
    if failures:
        print(f"check-cycles: {failures} cycle(s); break each by moving what both sides share "
              "into a module of its own, or by passing it down", file=sys.stderr)
        return 1
    print("check-cycles: no import cycle between modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
