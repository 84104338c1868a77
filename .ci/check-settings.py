#!/usr/bin/env python3
"""Settings are read once, at the edge: fails on a change of the process environment or a read
of it below the CLI's options.

- `set_var` / `remove_var` nowhere in the Rust sources (harness/, tests/): settings travel as
  values (`config::Settings`), never through the process environment.
- In the library (harness/src), the process environment is read only by
  `config::Settings::from_env` (harness/src/config.rs): no `std::env::var`, `var_os`, `vars`,
  `vars_os`, `EnvFilter::from_default_env`/`try_from_default_env` elsewhere.
- `Settings::from_env()` and `LaunchOptions::new` (which calls it) are called only at the
  edges: the CLI's `main` (harness/src/cli/mod.rs) and the Rust entry points
  (harness/src/testing.rs); the definitions themselves are allowed.

Comments and string literals are ignored. Usage: check-settings.py [--self-test]
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
LIB = ROOT / "harness" / "src"

CHANGE = re.compile(r"\b(set_var|remove_var)\s*\(")
READ = re.compile(
    r"\benv::(var|var_os|vars|vars_os)\s*\(|\b(try_)?from_default_env\s*\("
)
EDGE = re.compile(r"\b\w+::from_env\s*\(|\bLaunchOptions::new\s*\(")

# Files allowed to read the process environment (the options module).
READERS = {"config.rs"}
# Files allowed to call the edge constructors (the CLI's main, the Rust entry points, and the
# module defining LaunchOptions::new).
EDGES = {"cli/mod.rs", "testing.rs", "runtime/mod.rs", "config.rs"}


def code_only(text):
    """The text with comments and string/char literals blanked (line numbers kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = '"' + hashes
            j = text.find(end, i + 2 + len(hashes))
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]):
            m = re.match(r"'(\\.|[^\\'])'", text[i:])
            out.append(" " * len(m.group(0)))
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def problems(rel, text, in_lib):
    """(line, message) for each breach in one file; `rel` relative to harness/src."""
    found = []
    for no, line in enumerate(code_only(text).split("\n"), 1):
        if CHANGE.search(line):
            found.append((no, "changes the process environment (settings travel as values)"))
        if in_lib and rel not in READERS and READ.search(line):
            found.append((no, "reads the process environment below the CLI's options "
                              "(take it from config::Settings)"))
        if in_lib and rel not in EDGES and EDGE.search(line):
            found.append((no, "builds the settings from the environment below the edge "
                              "(take a config::Settings from the caller)"))
    return found


def self_test():
    bad = {
        "runtime/x.rs": 'fn f() { std::env::set_var("A", "1"); }',
        "runtime/y.rs": 'fn f() -> Option<String> { std::env::var("A").ok() }',
        "plan.rs": "fn f() { let o = LaunchOptions::new(\"s\"); }",
        "runtime/sweep.rs": "let c = crate::config::Config::from_env()?;",
        "cli/output.rs": "let f = EnvFilter::try_from_default_env();",
    }
    good = {
        "runtime/x.rs": '// std::env::set_var("A", "1")\nlet s = "std::env::var(\\"A\\")";',
        "config.rs": "let v = std::env::vars_os();",
        "testing.rs": "let s = Settings::from_env();",
        "scenario/x.rs": "let v = env.var(name);",
    }
    for rel, text in bad.items():
        assert problems(rel, text, True), f"self-test: not caught: {rel}: {text}"
    for rel, text in good.items():
        assert not problems(rel, text, True), f"self-test: false alarm: {rel}: {text}"


def main():
    self_test()
    if "--self-test" in sys.argv[1:]:
        print("check-settings: self-test passed")
        return 0
    failures = []
    for base in [ROOT / "harness", ROOT / "tests"]:
        for path in sorted(base.rglob("*.rs")):
            if "target" in path.relative_to(ROOT).parts:
                continue
            in_lib = LIB in path.parents
            rel = path.relative_to(LIB).as_posix() if in_lib else path.relative_to(ROOT).as_posix()
            text = path.read_text(encoding="utf-8")
            for no, message in problems(rel, text, in_lib):
                failures.append(f"{path.relative_to(ROOT)}:{no}: {message}")
    for f in failures:
        print(f"error: {f}", file=sys.stderr)
    if failures:
        print(f"check-settings: {len(failures)} problem(s)", file=sys.stderr)
        return 1
    print("check-settings: the environment is read once, at the edge")
    return 0


if __name__ == "__main__":
    sys.exit(main())
