"""Every ssljax module imports on its own, and the import graph of ssljax/ has no cycle.

A cycle works or breaks depending on which module a user happens to import
first, and it usually hides behind a function-level import; both are checked:

* at run time, each module is imported alone (``sys.modules`` cleared of
  ssljax entries before each) in one fresh interpreter;
* statically, every ``import`` statement of ssljax/ (module level and inside
  functions, except ``if TYPE_CHECKING:`` blocks) is an edge of a graph that
  must be acyclic. A package's ``__init__`` importing its own submodules is not
  an edge back from the submodules (Python runs the ``__init__`` first).
"""

from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "ssljax"


def _module_name(path: pathlib.Path) -> str:
  parts = list(path.relative_to(ROOT).with_suffix("").parts)
  if parts[-1] == "__init__":
    parts.pop()
  return ".".join(parts)


def _modules() -> dict[str, pathlib.Path]:
  return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
  return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
      isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported_modules(tree: ast.AST, module: str, is_package: bool, modules):
  """Yields ``(ssljax module, lineno)`` for every executed import statement in ``tree``."""
  package = module if is_package else module.rpartition(".")[0]
  stack = [tree]
  while stack:
    node = stack.pop()
    if isinstance(node, ast.If) and _is_type_checking(node.test):
      stack.extend(node.orelse)
      continue
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield alias.name, node.lineno
    elif isinstance(node, ast.ImportFrom):
      if node.level:
        parts = package.split(".")
        base = ".".join(parts[: len(parts) - (node.level - 1)] + [node.module or ""]).rstrip(".")
      else:
        base = node.module or ""
      for alias in node.names:
        # `from a import b`: b is a submodule of a, or a name defined by a's module.
        sub = f"{base}.{alias.name}"
        yield (sub if sub in modules else base), node.lineno
    stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, dict[str, int]]:
  """``{module: {imported ssljax module: first line}}`` over every file of ssljax/."""
  modules = _modules()
  graph: dict[str, dict[str, int]] = {m: {} for m in modules}
  for mod, path in modules.items():
    tree = ast.parse(path.read_text(), str(path))
    for name, line in _imported_modules(tree, mod, path.name == "__init__.py", modules):
      # Importing one's own ancestor package is not an edge: its __init__ already ran.
      if name in modules and name != mod and not mod.startswith(name + "."):
        graph[mod][name] = min(line, graph[mod].get(name, line))
  return graph


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
  """One cycle (as a closed path) per strongly connected component with a cycle (Tarjan)."""
  index, low, on_stack, stack, sccs = {}, {}, set(), [], []

  def strongconnect(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in sorted(graph[v]):
      if w not in index:
        strongconnect(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      comp = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        comp.append(w)
        if w == v:
          break
      if len(comp) > 1:
        sccs.append(set(comp))

  sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))
  for v in sorted(graph):
    if v not in index:
      strongconnect(v)

  cycles = []
  for comp in sccs:
    # Shortest cycle through the component's first module (BFS inside the component).
    start = min(comp)
    prev, frontier, found = {start: None}, [start], None
    while frontier and found is None:
      nxt = []
      for v in frontier:
        for w in sorted(graph[v]):
          if w == start:
            found = v
            break
          if w in comp and w not in prev:
            prev[w] = v
            nxt.append(w)
        if found is not None:
          break
      frontier = nxt
    path = [found]
    while prev[path[-1]] is not None:
      path.append(prev[path[-1]])
    cycles.append(path[::-1] + [start])
  return cycles


def _describe(cycle: list[str], graph) -> str:
  hops = [f"{a} (line {graph[a][b]}) -> {b}" for a, b in zip(cycle, cycle[1:])]
  return " -> ".join(cycle) + "\n      " + "\n      ".join(hops)


def test_describe_names_modules_and_lines():
  graph = {"a": {"b": 3}, "b": {"a": 5}}
  assert _describe(["a", "b", "a"], graph) == (
      "a -> b -> a\n      a (line 3) -> b\n      b (line 5) -> a")


def test_find_cycles_names_the_cycle():
  graph = {"a": {"b": 3}, "b": {"c": 5}, "c": {"a": 7}, "d": {"a": 1}}
  assert find_cycles(graph) == [["a", "b", "c", "a"]]
  assert find_cycles({"a": {"b": 1}, "b": {}}) == []


def test_static_import_graph_has_no_cycle():
  graph = import_graph()
  assert "ssljax.train.step" in graph and "ssljax.parallel" in graph["ssljax.train.step"]
  cycles = find_cycles(graph)
  assert not cycles, "import cycles in ssljax/ (module (line of the import) -> module):\n  " + \
      "\n  ".join(_describe(c, graph) for c in cycles)


_IMPORT_EACH = r"""
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
  for m in [m for m in sys.modules if m == "ssljax" or m.startswith("ssljax.")]:
    del sys.modules[m]
  try:
    importlib.import_module(name)
  except Exception:
    failed.append(name + ":\n" + traceback.format_exc(limit=-3))
print("\n".join(failed))
sys.exit(1 if failed else 0)
"""


@pytest.mark.slow
def test_every_module_imports_alone():
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
  proc = subprocess.run([sys.executable, "-c", _IMPORT_EACH, *_modules()], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=240)
  assert proc.returncode == 0, f"modules that fail to import alone:\n{proc.stdout}{proc.stderr}"


def test_layers_point_downwards():
  """The config layer knows nothing of training; kernels know nothing of the train step."""
  graph = import_graph()
  assert set(graph["ssljax.config"]) <= {"ssljax.errors"}, graph["ssljax.config"]
  for mod, deps in graph.items():
    if mod.startswith(("ssljax.losses", "ssljax.pid", "ssljax.models", "ssljax.evaluate")):
      assert not any(d.startswith("ssljax.train") for d in deps), (mod, deps)
