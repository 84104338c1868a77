"""Apply one seeded regression (a .seed file) to an agent's source.

A .seed file: `#` comment lines (the first says what the regression is, what it stands for,
and `Caught by: <scenario>`), then one target line, then `old:` / `new:` pairs.

The target line says which mechanism applies the change (score.sh picks it from this line):

  file: <path under the installed ocs package>   the image mechanism: run inside a derived
                                                  simonsobs/ocs:latest (see score.sh)
  fixture: <path under fixtures/>                 the fixture mechanism: run on a copy of the
                                                  repository's scenarios/ and fixtures/, whose
                                                  fixtures/ directory is the second argument

`old: TEXT` is replaced by the `new:` lines after it (several `new:` lines give several
lines; the first takes the indentation `old` had, the others are written with their own).
Several `old:` lines in a row are one text of several lines (the first without its
indentation, the others with their own), for a change whose lines are not unique alone.
Every `old` text must occur exactly once, else the seeding fails (the mechanism's own check:
a seed whose text is gone from the agent is an error, never a silent no-op).
"""
import os
import sys


def parse(path):
    target, pairs = None, []
    for number, line in enumerate(open(path), 1):
        line = line.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, text = line.partition(":")
        if not sep:
            sys.exit("%s:%d: expected `KEY: TEXT`, got %r" % (path, number, line))
        text = text[1:] if text.startswith(" ") else text
        if key in ("file", "fixture") and target is None:
            target = (key, text.strip())
        elif key == "old" and pairs and pairs[-1][1] is None:
            pairs[-1][0] += "\n" + text
        elif key == "old" and target is not None:
            pairs.append([text, None])
        elif key == "new" and pairs:
            pairs[-1][1] = text if pairs[-1][1] is None else pairs[-1][1] + "\n" + text
        else:
            sys.exit("%s:%d: unexpected %r (a seed is a `file:` or `fixture:` line, then "
                     "`old:` / `new:` pairs)" % (path, number, key))
    if target is None or not pairs or any(new is None for _, new in pairs):
        sys.exit("%s: needs a `file:` or `fixture:` line and `old:` lines each followed by "
                 "`new:`" % path)
    return target, pairs


def main():
    (kind, relative), pairs = parse(sys.argv[1])
    if kind == "file":
        import ocs
        root = os.path.dirname(ocs.__file__)
    else:
        if len(sys.argv) < 3:
            sys.exit("a `fixture:` seed needs the fixtures directory as second argument")
        root = sys.argv[2]
    target = os.path.join(root, relative)
    text = open(target).read()
    for old, new in pairs:
        if text.count(old) != 1:
            sys.exit("seed: %r occurs %d times in %s" % (old, text.count(old), target))
        text = text.replace(old, new)
    open(target, "w").write(text)
    print("seeded", target)


if __name__ == "__main__":
    main()
