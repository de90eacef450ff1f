"""The import graph of vqa_jax/, read with `ast`: no cycles, and the layers point one way.

Every import counts: absolute and relative, at module level and inside functions (a deferred import
that dodges a cycle is still a cycle). `from P import N` depends on the module P.N when that is a
module of the package, else on P.
"""

import ast
import os

import pytest

from tests import helpers

PACKAGE = "vqa_jax"
PACKAGE_DIR = helpers.REPO_ROOT / PACKAGE


def module_files(package_dir=PACKAGE_DIR, package=PACKAGE) -> dict[str, str]:
  """Module name -> file of every .py file under the package ('a.b' for a/b/__init__.py)."""
  modules = {}
  for folder, _, files in os.walk(package_dir):
    relative = os.path.relpath(folder, package_dir)
    prefix = package if relative == "." else ".".join([package, *relative.split(os.sep)])
    for name in files:
      if name.endswith(".py"):
        stem = name[:-3]
        modules[prefix if stem == "__init__" else f"{prefix}.{stem}"] = os.path.join(folder, name)
  return modules


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
  """The absolute name of a `from ... import` statement's module (relative ones resolved)."""
  if not node.level:
    return node.module
  parts = module.split(".") if is_package else module.split(".")[:-1]
  base = parts[:len(parts) - node.level + 1]
  return ".".join(base + ([node.module] if node.module else []))


def imported_modules(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
  """The modules of `known` that `source` (the text of `module`) imports, anywhere in it."""
  found = set()
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = _absolute(node, module, is_package)
      for alias in node.names:
        found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
  return {name for name in found if name in known and name != module}


def import_graph(modules: dict[str, str]) -> dict[str, set[str]]:
  """Module -> the package modules it imports."""
  known = set(modules)
  graph = {}
  for name, path in modules.items():
    with open(path, encoding="utf-8") as f:
      graph[name] = imported_modules(f.read(), name, path.endswith("__init__.py"), known)
  return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """One import cycle [m0, m1, ..., m0] of the graph, or None (iterative depth-first search)."""
  state = {}  # module -> 1 on the current path, 2 finished
  for root in sorted(graph):
    if root in state:
      continue
    path, stack = [root], [iter(sorted(graph[root]))]
    state[root] = 1
    while stack:
      child = next(stack[-1], None)
      if child is None:
        state[path.pop()] = 2
        stack.pop()
      elif state.get(child) == 1:
        return path[path.index(child):] + [child]
      elif child not in state:
        state[child] = 1
        path.append(child)
        stack.append(iter(sorted(graph[child])))
  return None


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
  """The modules `start` imports directly or through others."""
  seen, todo = set(), [start]
  while todo:
    for child in graph[todo.pop()]:
      if child not in seen:
        seen.add(child)
        todo.append(child)
  return seen


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
  return import_graph(module_files())


# The reader itself, on a small package written for the test.


def test_reader_resolves_relative_deferred_and_from_imports(tmp_path):
  pkg = tmp_path / "pkg"
  (pkg / "sub").mkdir(parents=True)
  files = {
      "__init__.py": "",
      "a.py": "from pkg.sub import b\n",
      "sub/__init__.py": "from . import c\n",
      "sub/b.py": "def f():\n  from ..a import x\n",  # deferred, relative, name of a module
      "sub/c.py": "import pkg.a\nfrom .. import a\nimport os\n",
  }
  for name, text in files.items():
    (pkg / name).write_text(text)
  found = import_graph(module_files(str(pkg), "pkg"))
  assert found == {"pkg": set(), "pkg.a": {"pkg.sub.b"}, "pkg.sub": {"pkg.sub.c"},
                   "pkg.sub.b": {"pkg.a"}, "pkg.sub.c": {"pkg.a"}}
  assert find_cycle(found) in (["pkg.a", "pkg.sub.b", "pkg.a"], ["pkg.sub.b", "pkg.a", "pkg.sub.b"])
  del found["pkg.sub.b"]
  found["pkg.a"] = set()
  assert find_cycle(found) is None


# The package.


def test_package_has_no_import_cycle(graph):
  assert len(graph) > 100, sorted(graph)  # the walk found the package
  cycle = find_cycle(graph)
  assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_families_import_nothing_from_convert(graph):
  families = [m for m in graph if m == "vqa_jax.families" or m.startswith("vqa_jax.families.")]
  assert "vqa_jax.families.losses" in families
  upward = {m: sorted(c for c in reachable(graph, m) if c.startswith("vqa_jax.convert"))
            for m in families}
  assert not any(upward.values()), {m: c for m, c in upward.items() if c}
