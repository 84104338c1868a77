#!/usr/bin/env python3
"""Checks the book (docs/) and the README without building anything.

  book-check.py links                 every relative link, image and {{#include}} resolves
  book-check.py scenarios DIR         writes each whole scenario written inline in a ```yaml block
                                      into DIR (one file per block, named after its page and line)
                                      and fails on a scenario fragment written inline (steps or an
                                      agent) instead of included from docs/examples/

Links: a relative link must name an existing file; a `#fragment` must be the id of a heading of
the target page as mdBook makes it (lower case, spaces to `-`, other punctuation dropped). Links
to other sites are not fetched. An {{#include FILE}} or {{#include FILE:anchor}} must name an
existing file and, with an anchor, one that has `ANCHOR: anchor` and `ANCHOR_END: anchor` lines.
Exits 1 naming every problem as FILE:LINE.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "docs" / "src"
PAGES = [ROOT / "README.md", *sorted(BOOK.rglob("*.md"))]

FENCE = re.compile(r"^\s*(```+|~~~+)(.*)$")
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFDEF = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)")
INCLUDE = re.compile(r"\{\{#include\s+([^}\s]+)\s*\}\}")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# A line of a scenario's steps, or of an agent: what must come from docs/examples/.
STEP = re.compile(
    r"^\s*-\s+(api|start|status|wait|stop|abort|until|logs|fault|exits|fetch|exec|call|feed)\s*:"
    r"|^\s*-?\s*instance-id\s*:"
)


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def prose_lines(text: str):
    """(line number, line) of the lines outside code blocks."""
    fence = None
    for n, line in enumerate(text.split("\n"), 1):
        m = FENCE.match(line)
        if m:
            if fence is None:
                fence = m[1]
                continue
            if m[1].startswith(fence):
                fence = None
                continue
        if fence is None:
            yield n, line


def code_blocks(text: str):
    """(line number of the opening fence, info string, body) of every fenced block."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, fence, info = i + 1, m[1], m[2].strip()
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        yield start, info, "\n".join(body) + "\n"
        i += 1


def slug(title: str) -> str:
    """A heading's id as mdBook's HTML renderer makes it."""
    title = re.sub(r"<[^>]*>", "", title)
    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)  # a link: its text
    out = []
    for c in title.strip().lower():
        if c.isalnum() or c in "_-":
            out.append(c)
        elif c.isspace():
            out.append("-")
    return "".join(out)


def heading_ids(page: Path) -> set:
    ids, seen = set(), {}
    for _, line in prose_lines(page.read_text(encoding="utf-8")):
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m[2])
        n = seen.get(base, 0)
        seen[base] = n + 1
        ids.add(base if n == 0 else f"{base}-{n}")
    return ids


def check_links() -> list:
    problems = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for n, line in prose_lines(text):
            code_free = re.sub(r"`[^`]*`", "", line)
            targets = [m[1] for m in LINK.finditer(code_free)]
            m = REFDEF.match(code_free)
            if m:
                targets.append(m[1])
            targets += re.findall(r"<img[^>]*\ssrc=\"([^\"]+)\"", code_free)
            for target in targets:
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                    continue
                path, _, fragment = target.partition("#")
                dest = (page.parent / path).resolve() if path else page
                if not dest.exists():
                    problems.append(f"{rel(page)}:{n}: link to {target}: no such file")
                    continue
                if fragment and dest.suffix == ".md" and fragment not in heading_ids(dest):
                    problems.append(
                        f"{rel(page)}:{n}: link to {target}: {rel(dest)} has no heading "
                        f"with the id `{fragment}`"
                    )
        for n, line in enumerate(text.split("\n"), 1):
            for m in INCLUDE.finditer(line):
                path, _, anchor = m[1].partition(":")
                dest = (page.parent / path).resolve()
                if not dest.is_file():
                    problems.append(f"{rel(page)}:{n}: {{{{#include {m[1]}}}}}: no such file")
                    continue
                if anchor and not re.fullmatch(r"\d*(:\d*)?", anchor):
                    body = dest.read_text(encoding="utf-8")
                    for mark in (f"ANCHOR: {anchor}", f"ANCHOR_END: {anchor}"):
                        if not re.search(rf"{re.escape(mark)}\b", body):
                            problems.append(
                                f"{rel(page)}:{n}: {{{{#include {m[1]}}}}}: "
                                f"{rel(dest)} has no `{mark}` line"
                            )
    return problems


def extract_scenarios(into: Path) -> list:
    problems = []
    into.mkdir(parents=True, exist_ok=True)
    count = 0
    for page in PAGES:
        for n, info, body in code_blocks(page.read_text(encoding="utf-8")):
            language = re.split(r"[,\s]", info, maxsplit=1)[0]
            if language not in ("yaml", "yml") or INCLUDE.search(body):
                continue
            whole = re.search(r"^steps\s*:", body, re.M) and re.search(r"^stack\s*:", body, re.M)
            if whole:
                name = f"{page.stem}-line{n}.yaml".lower()
                (into / name).write_text(
                    f"# {rel(page)}:{n}, the ```yaml block there.\n{body}", encoding="utf-8"
                )
                count += 1
            elif any(STEP.search(line) for line in body.split("\n")):
                problems.append(
                    f"{rel(page)}:{n}: a scenario fragment written inline: put it in a whole "
                    "scenario under docs/examples/ between `# ANCHOR: name` and "
                    "`# ANCHOR_END: name` lines and show it with "
                    "{{#include ../examples/FILE.yaml:name}}, so that CI checks it"
                )
    print(f"book-check: {count} inline scenario(s) extracted into {into}")
    return problems


def main() -> int:
    if sys.argv[1:2] == ["links"]:
        problems = check_links()
        what = f"{len(PAGES)} pages' links and includes"
    elif sys.argv[1:2] == ["scenarios"] and len(sys.argv) == 3:
        problems = extract_scenarios(Path(sys.argv[2]))
        what = "inline scenario blocks"
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if problems:
        print(f"book-check: {len(problems)} problem(s) in {what}", file=sys.stderr)
        return 1
    print(f"book-check: {what} are fine")
    return 0


if __name__ == "__main__":
    sys.exit(main())
