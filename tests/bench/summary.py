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
COLUMN = re.compile(r"\s{2,}$")  # a value set off by two or more spaces is the figure's value
NAME_MAX = 56
DETAIL_MAX = 64


def component(prog):
    base = os.path.basename(prog.strip())
    for prefix in ("bench_", "bench-"):
        if base.startswith(prefix):
            return base[len(prefix):]
    return base.replace("_bench", "")


def context_of(line):
    """The heading an unindented line gives the indented lines under it: its text before any number or "("."""
    m = re.search(r"[\d(]", line)
    return (line[:m.start()] if m else line).strip().rstrip(":,").strip()


def rows_of(comp, text):
    rows, context = [], ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            continue
        indented = raw[:1] in (" ", "\t")
        if not indented:
            context = context_of(line)
        found = list(NUM.finditer(line))
        if not found:
            continue
        # the value: the number after the widest run of spaces (column-aligned output), else the first number
        def gap(x):
            g = COLUMN.search(line[:x.start()])
            return len(g.group(0)) if g else 0
        m = max(found, key=gap) if any(gap(x) for x in found) else found[0]
        name = re.sub(r"\s+", " ", line[:m.start()]).strip().rstrip(":=").strip()
        rest = re.sub(r"\s+", " ", line[m.end():]).strip()
        if not name:
            name = context or comp
        elif indented and context and not name.startswith(context[:20]):
            name = "%s: %s" % (context[:24], name)
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
