#!/usr/bin/env python3
"""Where the client's WASM code goes: code bytes per crate, and the largest functions.

Reads the wasm as cargo builds it, before wasm-bindgen and wasm-opt strip its names:
    scripts/wasm-code-by-crate.py target/front/wasm32-unknown-unknown/wasm-release/frontend.wasm
A function counts for the crate of its first path segment, or of the self type of an impl
(`<serde_json::de::Deserializer as ...>` counts for serde_json). Generic code counts where it
is defined, not where it is instantiated. wasm-opt shrinks the total by about a third.
"""
import collections
import re
import sys


def leb(d, i):
    r = s = 0
    while True:
        b = d[i]
        i += 1
        r |= (b & 0x7F) << s
        s += 7
        if b < 0x80:
            return r, i


def sections(d):
    out, i = {}, 8
    while i < len(d):
        sid = d[i]
        size, i = leb(d, i + 1)
        if sid == 0:
            n, j = leb(d, i)
            out[d[j:j + n].decode()] = (j + n, i + size)
        else:
            out[sid] = (i, i + size)
        i += size
    return out


def imported_functions(d, start):
    count, i = leb(d, start)
    funcs = 0
    for _ in range(count):
        for _ in range(2):  # module and field names
            n, i = leb(d, i)
            i += n
        kind = d[i]
        i += 1
        if kind == 0:
            _, i = leb(d, i)
            funcs += 1
        elif kind == 1:  # table: element type, limits
            flags, i = leb(d, i + 1)
            _, i = leb(d, i)
            if flags & 1:
                _, i = leb(d, i)
        elif kind == 2:  # memory: limits
            flags, i = leb(d, i)
            _, i = leb(d, i)
            if flags & 1:
                _, i = leb(d, i)
        elif kind == 3:  # global: type, mutability
            i += 2
    return funcs


def demangle(name):
    if not name.startswith("_ZN"):
        return name
    i, parts = 3, []
    while i < len(name) and name[i] != "E":
        m = re.match(r"\d+", name[i:])
        if not m:
            break
        n = int(m.group(0))
        i += len(m.group(0))
        parts.append(name[i:i + n])
        i += n
    s = "::".join(parts)
    for a, b in [("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("$RF$", "&"), ("$BP$", "*"),
                 ("$C$", ","), ("$u7b$", "{"), ("$u7d$", "}"), ("$u5b$", "["), ("$u5d$", "]"),
                 ("$u27$", "'"), ("..", "::")]:
        s = s.replace(a, b)
    return s


def crate(name):
    s = demangle(name)
    if s.startswith("_R"):  # v0 mangling: the first crate name after its disambiguator
        m = re.search(r"Cs[0-9A-Za-z_]+?_\d*([a-z_][a-z0-9_]*)", s)
        return m.group(1) if m else "?"
    s = re.sub(r"^(mut |dyn |\[)", "", s.lstrip("_<&* "))
    m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", s)
    return m.group(0) if m else "?"


def main(path):
    d = open(path, "rb").read()
    secs = sections(d)
    if "name" not in secs:
        sys.exit(f"{path} has no name section (wasm-bindgen and wasm-opt remove it)")
    first = imported_functions(d, secs[2][0]) if 2 in secs else 0
    count, i = leb(d, secs[10][0])
    sizes = []
    for _ in range(count):
        size, j = leb(d, i)
        sizes.append(size + j - i)
        i = j + size
    names, (i, end) = {}, secs["name"]
    while i < end:
        sub = d[i]
        size, i = leb(d, i + 1)
        stop = i + size
        if sub == 1:
            n, i = leb(d, i)
            for _ in range(n):
                idx, i = leb(d, i)
                length, i = leb(d, i)
                names[idx] = d[i:i + length].decode("utf8", "replace")
                i += length
        i = stop
    total = sum(sizes)
    by_crate = collections.Counter()
    for k, size in enumerate(sizes):
        by_crate[crate(names.get(first + k, "?"))] += size
    print(f"{total} bytes of code in {len(sizes)} functions")
    for name, size in by_crate.most_common(25):
        print(f"{size:9d} {100 * size / total:5.1f}%  {name}")
    print("largest functions:")
    for size, k in sorted(((s, k) for k, s in enumerate(sizes)), reverse=True)[:15]:
        print(f"{size:9d}  {demangle(names.get(first + k, '?'))[:140]}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else
         "target/front/wasm32-unknown-unknown/wasm-release/frontend.wasm")
