#!/usr/bin/env python3
"""layers.py - the layering check of make test: every #include "..." of the C tree names a file by its path from the
repository root, the file exists, and it comes from the including file's own layer or one below it.

    common     includes common only
    store      common, store
    directory  common, directory
    transport  common, store, directory, transport
    attendant  everything above and attendant
    tests      anything

Run as a test (no arguments: the repository this file sits in) it prints PASS/FAIL lines like every other test: one
for the tree, and one for the checker itself, which must catch an upward include planted in a scratch tree.
`layers.py --check DIR` checks DIR only and exits 1 on a violation."""
import os
import re
import sys
import tempfile

ALLOWED = {
    "common": {"common"},
    "store": {"common", "store"},
    "directory": {"common", "directory"},
    "transport": {"common", "store", "directory", "transport"},
    "attendant": {"common", "store", "directory", "transport", "attendant"},
    "tests": None,  # tests may include anything
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def sources(root):
    for top in ALLOWED:
        base = os.path.join(root, top)
        for d, subdirs, files in os.walk(base):
            subdirs[:] = [s for s in subdirs if s != "corpus"]
            for f in files:
                if f.endswith((".c", ".h")):
                    yield top, os.path.join(d, f)


def violations(root):
    """Every offending include of the tree under root, as 'path:line: why' strings."""
    out = []
    for layer, path in sources(root):
        rel = os.path.relpath(path, root)
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                inc = m.group(1)
                if "/" not in inc:
                    out.append('%s:%d: "%s" is not named by its path from the repository root' % (rel, n, inc))
                    continue
                if not os.path.isfile(os.path.join(root, inc)):
                    out.append('%s:%d: "%s" does not exist' % (rel, n, inc))
                    continue
                target = inc.split("/", 1)[0]
                allowed = ALLOWED[layer]
                if allowed is not None and target not in allowed:
                    out.append('%s:%d: %s may not include %s ("%s"): it may use %s' %
                               (rel, n, layer, target, inc, ", ".join(sorted(allowed))))
    return out


def self_test():
    """The checker must fail on an upward include and pass on the same tree without it."""
    with tempfile.TemporaryDirectory() as d:
        for sub in ("common", "store", "directory", "transport/net", "attendant", "tests"):
            os.makedirs(os.path.join(d, sub))
        open(os.path.join(d, "common", "buf.h"), "w").write("/* base */\n")
        open(os.path.join(d, "store", "store.h"), "w").write('#include "common/buf.h"\n')
        open(os.path.join(d, "transport", "net", "conn.h"), "w").write('#include "store/store.h"\n')
        good = violations(d)
        open(os.path.join(d, "common", "evloop.c"), "w").write('#include "common/buf.h"\n#include "store/store.h"\n')
        open(os.path.join(d, "directory", "dir.c"), "w").write('#include "transport/net/conn.h"\n')
        open(os.path.join(d, "store", "x.c"), "w").write('#include "buf.h"\n')
        bad = violations(d)
    expected = ["common/evloop.c:2", "directory/dir.c:1", "store/x.c:1"]
    found = sorted(v.split(": ")[0] for v in bad)
    if good or found != expected:
        return "clean tree gave %r; planted tree gave %r (want %r)" % (good, found, expected)
    return None


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        bad = violations(sys.argv[2])
        for v in bad:
            print(v)
        sys.exit(1 if bad else 0)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    why = self_test()
    print("PASS layers.checker_fails_on_an_upward_include" if why is None
          else "FAIL layers.checker_fails_on_an_upward_include: %s" % why)
    bad = violations(root)
    if bad:
        print("FAIL layers.no_include_crosses_a_layer: %d violation(s)" % len(bad))
        for v in bad:
            print("  " + v)
    else:
        print("PASS layers.no_include_crosses_a_layer")


if __name__ == "__main__":
    main()
