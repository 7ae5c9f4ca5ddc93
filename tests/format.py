#!/usr/bin/env python3
"""format.py - make test's check that the C tree is as `make format` leaves it (clang-format with the repository's
.clang-format): one PASS, or one FAIL naming the files clang-format would change (run `make format`). Says SKIP
when clang-format is not installed."""
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    tool = shutil.which("clang-format")
    if tool is None:
        print("SKIP format.tree_is_formatted: clang-format is not installed (make deps installs it)")
        return 0
    files = subprocess.run(["git", "ls-files", "*.c", "*.h"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    if not files:
        print("SKIP format.tree_is_formatted: not a git checkout (no file list)")
        return 0
    changed = []
    for i in range(0, len(files), 64):
        batch = files[i:i + 64]
        p = subprocess.run([tool, "--dry-run", "--Werror"] + batch, cwd=ROOT, capture_output=True, text=True)
        if p.returncode != 0:
            changed += sorted({line.split(":", 1)[0] for line in p.stderr.splitlines()
                               if ": error:" in line and line.split(":", 1)[0] in batch})
    if changed:
        print("FAIL format.tree_is_formatted: make format would change %d file(s): %s" %
              (len(changed), " ".join(changed)))
    else:
        print("PASS format.tree_is_formatted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
