#!/usr/bin/env python3
"""Print libcontainer's module graph (which top-level module uses which) and its cycles.

A module is a top-level entry of libcontainer/src (file or directory). An edge A -> B means a
file of A names `crate::B` (in a `use` or a path). Exit status 1 when the graph has a cycle, so CI
can keep it acyclic. Usage: hack/module-graph.py [--dot]
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "libcontainer", "src")


def top_modules():
    mods = []
    for entry in sorted(os.listdir(ROOT)):
        if entry in ("lib.rs",):
            continue
        path = os.path.join(ROOT, entry)
        if entry.endswith(".rs"):
            mods.append(entry[:-3])
        elif os.path.isfile(os.path.join(path, "mod.rs")):
            mods.append(entry)
    return mods


def files_of(mod):
    path = os.path.join(ROOT, mod)
    if os.path.isdir(path):
        for dirpath, _, names in os.walk(path):
            for n in names:
                if n.endswith(".rs"):
                    yield os.path.join(dirpath, n)
    else:
        yield path + ".rs"


def strip_tests(text):
    # unit tests may use anything; the graph is about the library's own code
    idx = text.find("#[cfg(test)]")
    return text if idx < 0 else text[:idx]


def edges():
    mods = top_modules()
    graph = {m: set() for m in mods}
    pattern = re.compile(r"\bcrate::(\w+)")
    group = re.compile(r"\buse crate::\{([^;]*)\};", re.S)
    for m in mods:
        for f in files_of(m):
            with open(f, encoding="utf-8") as fh:
                text = strip_tests(fh.read())
            names = set(pattern.findall(text))
            for g in group.findall(text):
                for part in g.split(","):
                    head = part.strip().split("::")[0].strip("{} \n")
                    if head:
                        names.add(head)
            for n in names:
                if n in graph and n != m:
                    graph[m].add(n)
    return graph


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    graph = edges()
    if "--dot" in sys.argv:
        print("digraph libcontainer {")
        for m in sorted(graph):
            for n in sorted(graph[m]):
                print(f'  "{m}" -> "{n}";')
        print("}")
    else:
        for m in sorted(graph):
            print(f"{m:16} -> {', '.join(sorted(graph[m])) or '-'}")
    found = cycles(graph)
    for comp in found:
        print("cycle: " + " <-> ".join(comp), file=sys.stderr)
    print(f"module-graph: {len(graph)} modules, "
          f"{sum(len(v) for v in graph.values())} edges, {len(found)} cycles", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
