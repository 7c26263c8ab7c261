#!/usr/bin/env python3
"""Fails if modules of any crate in the workspace import each other in a circle.

Each file under crates/*/src and functions/*/src is a module; an edge A -> B is a path in A's
code (`use crate::b::…`, `super::b::…`, `crate::b::f(…)`) that names module B or an item in it.
A parent declaring a child (`mod b;`) is not an edge; a child naming an item of its parent is.
Inline test modules (`#[cfg(test)] mod tests { … }`) are left out: they may use anything.
"""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+|::\{)")


def module_of(src: pathlib.Path, file: pathlib.Path) -> tuple:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts in (["lib"], ["main"]):
        return ()
    if parts[-1] == "mod":
        parts = parts[:-1]
    return tuple(parts)


def cycles_in(src: pathlib.Path) -> list:
    files = {module_of(src, f): f for f in src.rglob("*.rs")}
    modules = set(files)
    edges = {m: set() for m in modules}
    for module, file in files.items():
        text = file.read_text()
        # Inline test modules come last in a file.
        text = re.split(r"#\[cfg\((?:all\()?test[^\n]*\n\s*mod tests", text)[0]
        text = re.sub(r"//[^\n]*", "", text)
        for anchor, rest in PATH.findall(text):
            names = [n for n in rest.split("::") if n and n != "{"]
            if anchor == "crate":
                base = ()
            elif anchor == "self":
                base = module
            else:  # super: the parent of this module
                base = module[:-1]
            while names and names[0] == "super":
                base, names = base[:-1], names[1:]
            target = base
            for name in names:
                if target + (name,) in modules:
                    target = target + (name,)
                else:
                    break
            if target != module:
                edges[module].add(target)
    # Strongly connected components with more than one module are circles.
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted("::".join(m) or "crate" for m in component))

    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            visit(v)
    return out


failed = False
sources = sorted(p for p in [*root.glob("crates/*/src"), *root.glob("functions/*/src")] if p.is_dir())
for src in sources:
    for circle in cycles_in(src):
        failed = True
        print(f"{src.parent.relative_to(root)}: modules import each other in a circle: {', '.join(circle)}")
if failed:
    sys.exit(1)
print(f"module_cycles: no import circle in {len(sources)} crates")
