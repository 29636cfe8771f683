#!/usr/bin/env python3
"""Prints a Rust crate's module graph and its import circles; exits 1 if there are any.

    python3 tools/module_cycles.py [app/src] [--graph] [--depth N]

A module is a file (`foo.rs`, `foo/bar.rs`; inline `mod x { }` blocks count as their file). An
edge A -> B is any path in A's code (not comments) naming something in B: `use crate::b::..`,
`crate::b::f()`, `super::..`, `self::..`, a child's own name (`child::..`), grouped `use crate::{b, c::d}`. Declaring `mod b;` is
not an edge; re-exporting (`pub use b::*`) is. `--depth 1` folds modules into their top-level
room (`state`, `browser`, ...) to check the rooms as well. Reading source text, not resolving
names, is crude but enough for a crate whose paths are written out.
"""

import re
import sys
from pathlib import Path

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def module_of(root: Path, file: Path) -> tuple:
    rel = file.relative_to(root).with_suffix("")
    parts = rel.parts
    if parts in (("lib",), ("main",)):
        return ()
    return parts


def paths_in(code: str):
    """Yields (anchor, [segments]) for every crate/super/self path, expanding `{..}` groups."""
    for m in re.finditer(r"\b(crate|super|self)((?:::(?:super|" + IDENT + r"))*)::(\{)?", code):
        anchor, rest, brace = m.group(1), m.group(2), m.group(3)
        head = [s for s in rest.split("::") if s]
        if brace:
            depth, i = 1, m.end()
            while i < len(code) and depth:
                depth += {"{": 1, "}": -1}.get(code[i], 0)
                i += 1
            inner = code[m.end() : i - 1]
            for item in split_top(inner):
                segs = re.findall(IDENT, item.split("{")[0])
                yield anchor, head + [s for s in segs if s not in ("as", "self")]
        else:
            # The match may stop before the last segment (`crate::foo` without `::`).
            tail = re.match(IDENT, code[m.end() :]) if not brace else None
            yield anchor, head + ([tail.group(0)] if tail else [])


def split_top(s: str):
    depth, cur = 0, ""
    for c in s:
        if c == "," and depth == 0:
            yield cur
            cur = ""
            continue
        depth += {"{": 1, "}": -1}.get(c, 0)
        cur += c
    if cur.strip():
        yield cur


def strip_comments(line: str) -> str:
    return re.sub(r"//.*", "", re.sub(r'"(?:\\.|[^"\\])*"', '""', line))


def graph(root: Path):
    files = sorted(root.rglob("*.rs"))
    modules = {module_of(root, f) for f in files}
    edges = {m: set() for m in modules}
    for f in files:
        me = module_of(root, f)
        inline = []  # (indent, name) of inline `mod x {` blocks we are in
        for raw in f.read_text().splitlines():
            indent = len(raw) - len(raw.lstrip())
            while inline and raw.strip() == "}" and indent == inline[-1][0]:
                inline.pop()
                raw = ""
            code = strip_comments(raw)
            opened = re.match(r"\s*(?:pub(?:\([^)]*\))?\s+)?mod (" + IDENT + r")\s*\{", code)
            if opened:
                inline.append((indent, opened.group(1)))
                continue
            here = me + tuple(name for _, name in inline)
            for anchor, segs in paths_in(code):
                if anchor == "crate":
                    base = ()
                elif anchor == "self":
                    base = here
                else:
                    base = here[:-1]
                while segs and segs[0] == "super":
                    base, segs = base[:-1], segs[1:]
                target = base + tuple(segs)
                # The longest prefix that is a module file.
                while target and target not in modules:
                    target = target[:-1]
                if target != me and not (target == () and anchor != "crate"):
                    edges[me].add(target)
            # A child module named without a prefix (`pub use auth::*;`, `grid::add(..)`).
            for child in re.findall(r"(?<![:\w])(" + IDENT + r")::", code):
                if here + (child,) in modules:
                    edges[me].add(here + (child,))
    return edges


def fold(edges, depth):
    out = {}
    for a, bs in edges.items():
        fa = a[:depth]
        out.setdefault(fa, set())
        for b in bs:
            fb = b[:depth]
            if fb != fa:
                out[fa].add(fb)
    return out


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
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
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def name(m):
    return "::".join(("crate",) + m)


def main():
    args = sys.argv[1:]
    depth = None
    if "--depth" in args:
        i = args.index("--depth")
        depth = int(args[i + 1])
        del args[i : i + 2]
    show = "--graph" in args
    args = [a for a in args if a != "--graph"]
    root = Path(args[0] if args else "app/src")
    edges = graph(root)
    if depth is not None:
        edges = fold(edges, depth)
    if show:
        for a in sorted(edges):
            print(f"{name(a)} -> {', '.join(name(b) for b in sorted(edges[a])) or '-'}")
    found = cycles(edges)
    for c in found:
        print("circle: " + " <-> ".join(name(m) for m in c))
    if not found:
        print(f"no circles among {len(edges)} modules")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
