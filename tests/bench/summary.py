#!/usr/bin/env python3
# summary.py - gathers what every `make bench` program printed into one table: component, figure, value, detail.
# Usage: summary.py LOG            a log of `make bench` (its "== PROGRAM" lines name the component)
#        summary.py --run PROG...  runs each benchmark itself (output passed through), then prints the table
#        summary.py --markdown ... the table as Markdown (for docs/benchmarks.md)
# The benchmarks print free-form lines; each line holding a number becomes one row: the text before the first
# number is the figure's name (a number set off by two or more spaces is preferred, for column-aligned output),
# the number its value, the rest of the line its detail. Nothing is asserted.
import os
import re
import subprocess
import sys

NUM = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.-])")
COLUMN = re.compile(r"\S\s{2,}$")  # a value set off by two or more spaces is the figure's value
NAME_MAX = 56
DETAIL_MAX = 64


def component(prog):
    base = os.path.basename(prog.strip())
    for prefix in ("bench_", "bench-"):
        if base.startswith(prefix):
            return base[len(prefix):]
    return base.replace("_bench", "")


def rows_of(comp, text):
    rows, context = [], ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            continue
        found = list(NUM.finditer(line))
        m = next((x for x in found if COLUMN.search(line[:x.start()])), found[0] if found else None)
        if not m:
            context = line.strip().rstrip(":")
            continue
        name = line[:m.start()].strip().rstrip(":=").strip()
        rest = line[m.end():].strip()
        if not name:
            name = context or comp
        elif raw[:1] in (" ", "\t") and context and not name.startswith(context[:20]):
            name = "%s: %s" % (context.split(" (")[0][:24], name)
        # "key=value" pairs after the first number stay in the detail
        rows.append((comp, name[:NAME_MAX], m.group(0), rest[:DETAIL_MAX]))
    return rows


def parse_log(text):
    """Splits a make bench log at its "== PROGRAM" lines."""
    rows, comp, chunk = [], "bench", []
    for line in text.splitlines():
        if line.startswith("== "):
            if chunk:
                rows += rows_of(comp, "\n".join(chunk))
            comp, chunk = component(line[3:]), []
        else:
            chunk.append(line)
    if chunk:
        rows += rows_of(comp, "\n".join(chunk))
    return rows


def run(progs):
    rows, failed = [], []
    for p in progs:
        print("== %s" % p, flush=True)
        proc = subprocess.run([p], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sys.stdout.write(proc.stdout)
        sys.stdout.flush()
        rows += rows_of(component(p), proc.stdout)
        if proc.returncode != 0:
            failed.append(p)
    return rows, failed


def table(rows, markdown=False):
    if not rows:
        return "(no figures)"
    heads = ("component", "figure", "value", "detail")
    if markdown:
        out = ["| " + " | ".join(heads) + " |", "|---|---|---:|---|"]
        for r in rows:
            out.append("| " + " | ".join(x.replace("|", "/") for x in r) + " |")
        return "\n".join(out)
    w = [max(len(h), max(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    fmt = "%%-%ds  %%-%ds  %%%ds  %%s" % (w[0], w[1], w[2])
    out = [fmt % heads, fmt % (tuple("-" * x for x in w[:3]) + ("-" * 6,))]
    out += [fmt % r for r in rows]
    return "\n".join(out)


def main(argv):
    markdown = "--markdown" in argv
    argv = [a for a in argv if a != "--markdown"]
    failed = []
    if argv and argv[0] == "--run":
        rows, failed = run(argv[1:])
    elif argv:
        with open(argv[0], errors="replace") as f:
            rows = parse_log(f.read())
    else:
        rows = parse_log(sys.stdin.read())
    print("\n== summary (%d figures)" % len(rows))
    print(table(rows, markdown))
    if failed:
        print("benchmarks that failed: %s" % " ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
