"""Apply one seeded regression (a .seed file) to the installed ocs package.

Run inside a derived image (see score.sh). A .seed file: `#` comment lines, then
`file: <path under the ocs package>`, then pairs of `old: <line text>` / `new: <line text>`.
Every `old` text must occur exactly once, else the seeding fails (the mechanism's own check).
"""
import os
import sys

import ocs

spec = [l.rstrip("\n") for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")]
target = os.path.join(os.path.dirname(ocs.__file__), spec[0].split(":", 1)[1].strip())
text = open(target).read()
pairs = spec[1:]
for old, new in zip(pairs[0::2], pairs[1::2]):
    old, new = old.split(": ", 1)[1], new.split(": ", 1)[1]
    if text.count(old) != 1:
        sys.exit("seed: %r occurs %d times in %s" % (old, text.count(old), target))
    text = text.replace(old, new)
open(target, "w").write(text)
print("seeded", target)
