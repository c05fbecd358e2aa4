#!/usr/bin/env python3
"""Checks the module graph of mesh-core: no module imports another that imports it back
(no cycles, at the level of files), and the top-level modules keep to their layers —
domain, then the engine layer, then http, then the surfaces (hub, rest, mcp, which never
import each other), then the composition (app). Prints the tree with each module's
imports when asked (--tree), for docs/architecture.md.

    scripts/check-layers.py [--tree] [path/to/mesh-core/src]

An import is a `use` (other than a module's `pub use` of its own child, which only
re-exports it) or a path in code (`crate::a::B`, `super::c`, `child::d`). Names are
followed through re-exports to the module that defines them, so importing `Engine`
through `crate::Engine` points at `engine`, not at the crate root.
"""

import os
import re
import sys

LAYERS = {
    "domain": 1, "trace": 1,
    "engine": 2, "collab": 2, "workflow": 2, "shared_docs": 2, "services": 2, "knowledge": 2, "worker": 2, "tools": 2, "agents": 2,
    "observe": 2, "health": 2, "access": 2,
    "cluster": 2,
    "http": 3,
    "hub": 4, "rest": 4, "mcp": 4, "ui": 4,
    "app": 5,
    "testing": 6,
}
SURFACES = {"hub", "rest", "mcp", "ui"}
# A file past this many lines says why at its top, with REASON.
MAX_LINES = 600
REASON = "Long on purpose:"

DEF = re.compile(
    r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?(?:unsafe\s+)?"
    r"(?:struct|enum|trait|type|fn|const|static|union)\s+([A-Za-z_]\w*)",
    re.M,
)
MACRO = re.compile(r"^\s*macro_rules!\s*([A-Za-z_]\w*)", re.M)
MOD = re.compile(r"^\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+([a-z_]\w*)\s*;", re.M)
USE = re.compile(r"^\s*(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.M)
PATH = re.compile(r"\b((?:crate|super|self)(?:::[A-Za-z_]\w*)+)")


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def expand_use(tree):
    """`a::{b, c::{d as e}}` → [(["a","b"], "b"), (["a","c","d"], "e")]."""
    tree = tree.strip()
    out = []
    depth, start, i = 0, 0, 0
    brace = tree.find("{")
    if brace == -1:
        alias = None
        if " as " in tree:
            tree, alias = [p.strip() for p in tree.split(" as ")]
        parts = [p for p in tree.split("::") if p]
        if parts:
            out.append((parts, alias or parts[-1]))
        return out
    prefix = [p for p in tree[:brace].split("::") if p]
    inner = tree[brace + 1 : tree.rfind("}")]
    items = []
    for i, ch in enumerate(inner):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(inner[start:i])
            start = i + 1
    items.append(inner[start:])
    for item in items:
        item = item.strip()
        if not item:
            continue
        for parts, alias in expand_use(item):
            if parts == ["self"]:
                out.append((prefix, alias if alias != "self" else prefix[-1]))
            else:
                out.append((prefix + parts, alias))
    return out


class Module:
    def __init__(self, path, file):
        self.path = path  # tuple of names, () for the crate root
        self.file = file
        text = strip_comments(open(file).read())
        # Test modules are not part of the graph.
        text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
        self.text = text
        self.children = set(MOD.findall(text))
        self.defs = set(DEF.findall(text)) | set(MACRO.findall(text))
        self.uses = []  # (is_pub, parts, alias)
        for pub, tree in USE.findall(text):
            for parts, alias in expand_use(tree):
                self.uses.append((bool(pub), parts, alias))

    @property
    def name(self):
        return "::".join(self.path) or "crate"


def load(src):
    modules = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            file = os.path.join(root, f)
            rel = os.path.relpath(file, src)[:-3].split(os.sep)
            if rel == ["lib"]:
                path = ()
            elif rel[-1] == "mod":
                path = tuple(rel[:-1])
            else:
                path = tuple(rel)
            modules[path] = Module(path, file)
    return modules


def resolve(modules, module, parts, seen=None):
    """The module that defines what `parts` names, seen from `module`."""
    seen = seen or set()
    key = (module, tuple(parts))
    if key in seen:
        return module
    seen.add(key)
    if not parts:
        return module
    head, rest = parts[0], parts[1:]
    if head == "crate":
        return walk(modules, (), rest, seen)
    if head == "super":
        return walk(modules, module[:-1], rest, seen)
    if head == "self":
        return walk(modules, module, rest, seen)
    return walk(modules, module, parts, seen)


def walk(modules, current, parts, seen):
    for i, seg in enumerate(parts):
        m = modules.get(current)
        if m is None:
            return current
        if seg in m.children and current + (seg,) in modules:
            current = current + (seg,)
            continue
        if seg in m.defs:
            return current
        for _, use_parts, alias in m.uses:
            if alias == seg and use_parts[0] in ("crate", "super", "self") or (
                alias == seg and use_parts[0] in m.children
            ):
                target = resolve(modules, current, use_parts, seen)
                return walk(modules, target, parts[i + 1 :], seen) if i + 1 < len(parts) and target != current else target
        return current
    return current


def edges_of(modules, m):
    edges = set()
    for is_pub, parts, _ in m.uses:
        if parts[0] not in ("crate", "super", "self") and parts[0] not in m.children:
            continue  # an external crate
        facade = is_pub and (
            parts[0] in m.children or (parts[0] == "self" and len(parts) > 1 and parts[1] in m.children)
        )
        if facade:
            continue  # re-exporting its own child is no import, unless its code uses it (below)
        edges.add(resolve(modules, m.path, parts))
    body = USE.sub("", m.text)
    for is_pub, parts, alias in m.uses:
        if is_pub and parts[0] in m.children and re.search(r"(?<![:\w])" + alias + r"\b", body):
            edges.add(resolve(modules, m.path, parts))
    for path in PATH.findall(body):
        edges.add(resolve(modules, m.path, path.split("::")))
    for child in m.children:
        if re.search(r"(?<![:\w])" + child + r"::", body):
            edges.add(m.path + (child,))
    edges.discard(m.path)
    return {e for e in edges if e in modules}


def cycles(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                out.append(scc)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def doc_tree(text):
    """The module paths the tree after `<!-- module-tree` in the doc draws."""
    marker = text.find("<!-- module-tree")
    if marker == -1:
        return set()
    block = text[text.index("```text", marker) + 7 : text.index("```", text.index("```text", marker) + 7)]
    paths, stack = set(), []
    for line in block.split("\n"):
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2
        name = line.split()[0]
        if depth == 0:
            stack = []
            continue
        stack = stack[: depth - 1] + [name]
        paths.add(tuple(stack))
    return paths


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    src = args[0] if args else os.path.join(os.path.dirname(__file__), "..", "mesh-core", "src")
    modules = load(src)
    graph = {p: edges_of(modules, m) for p, m in modules.items()}
    problems = []
    for scc in cycles(graph):
        names = sorted("::".join(p) or "crate" for p in scc)
        problems.append("import cycle: " + " <-> ".join(names))
    for p, targets in graph.items():
        if not p:
            continue
        for t in targets:
            if not t or t[0] == p[0]:
                continue
            a, b = LAYERS.get(p[0]), LAYERS.get(t[0])
            if a is None or b is None:
                problems.append(f"{'::'.join(p)}: top-level module without a layer")
            elif b > a:
                problems.append(f"{'::'.join(p)} (layer {a}) imports {'::'.join(t)} (layer {b})")
            elif p[0] in SURFACES and t[0] in SURFACES:
                problems.append(f"surface {'::'.join(p)} imports surface {'::'.join(t)}")
    crate = os.path.dirname(os.path.abspath(src))
    for root, _, files in os.walk(crate):
        if "/target" in root:
            continue
        for f in files:
            if f.endswith(".rs"):
                file = os.path.join(root, f)
                lines = open(file).read().split("\n")
                if len(lines) > MAX_LINES and not any(REASON in l for l in lines[:10]):
                    rel = os.path.relpath(file, crate)
                    problems.append(f"{rel}: {len(lines)} lines and no '{REASON}' at its top")
    doc = os.path.join(os.path.dirname(crate), "docs", "architecture.md")
    if os.path.exists(doc):
        drawn = doc_tree(open(doc).read())
        actual = {p for p in modules if p}
        for p in sorted(actual - drawn):
            problems.append(f"docs/architecture.md: module {'::'.join(p)} is missing from the tree")
        for p in sorted(drawn - actual):
            problems.append(f"docs/architecture.md: the tree draws {'::'.join(p)}, which does not exist")
    if "--tree" in sys.argv:
        for p in sorted(modules):
            name = "::".join(p) or "crate"
            deps = sorted({"::".join(t) or "crate" for t in graph[p]})
            print(f"{'  ' * len(p)}{name.split('::')[-1] if p else 'mesh_core'}  -> {', '.join(deps)}")
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(modules)} modules, {sum(len(e) for e in graph.values())} imports, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
