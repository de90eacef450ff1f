"""Runs `--help` of several programs in one process: `python -m tests.program_help SPEC...`.

A SPEC is `module:NAME` (`python -m NAME --help`) or `command:NAME` (`vqa-jax NAME --help`). Each
runs in a forked child, so every program defines its flags in a fresh absl registry, as in its own
process; the library modules the programs import are imported once, before the forks. Prints one
JSON object: SPEC -> {"code": exit status, "stdout": ..., "stderr": ...}.
"""

import ast
import importlib
import importlib.util
import json
import os
import runpy
import sys
import tempfile

from vqa_jax import command


def program_file(module: str) -> str:
  """The file `python -m module` runs: the module's, or its package's `__main__.py`."""
  spec = importlib.util.find_spec(module)
  if spec.submodule_search_locations:
    spec = importlib.util.find_spec(f"{module}.__main__")
  return spec.origin


def imported_modules(path: str) -> set[str]:
  """The vqa_jax names a file imports at its top level (`import X`; `from P import M`: P, P.M)."""
  found = set()
  for node in ast.parse(open(path, encoding="utf-8").read()).body:
    if isinstance(node, ast.Import):
      found |= {alias.name for alias in node.names}
    elif isinstance(node, ast.ImportFrom) and node.module:
      found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
  return {name for name in found if name.split(".")[0] == "vqa_jax"}


def spec_module(spec: str) -> str:
  """The module a SPEC runs."""
  kind, name = spec.split(":", 1)
  return name if kind == "module" else command.COMMANDS[name][0]


def preimport(modules: set[str]) -> None:
  """Imports the library modules of the programs (not the programs: they define flags)."""
  programs = {module for module, _ in command.COMMANDS.values()}
  for name in sorted(modules - programs):
    if _is_module(name):
      importlib.import_module(name)


def _is_module(name: str) -> bool:
  """Whether `name` is a module (not a function or class imported with `from P import NAME`)."""
  try:
    return importlib.util.find_spec(name) is not None
  except ModuleNotFoundError:
    return False


def run_in_child(spec: str) -> int:
  """What the child runs for `spec`: the program as `python -m` or `vqa-jax` does."""
  kind, name = spec.split(":", 1)
  try:
    if kind == "module":
      sys.argv = [name, "--help"]
      runpy._run_module_as_main(name)  # pylint: disable=protected-access  (what `python -m` runs)
    else:
      command.main(["vqa-jax", name, "--help"])
  except SystemExit as e:
    return 0 if e.code is None else e.code if isinstance(e.code, int) else 1
  return 0


def run_forked(spec: str, folder: str) -> dict:
  """Runs `spec` in a forked child with stdout and stderr in files; its exit status and output."""
  out_path, err_path = os.path.join(folder, "out"), os.path.join(folder, "err")
  pid = os.fork()
  if pid == 0:
    code = 1
    try:
      for fd, path in ((1, out_path), (2, err_path)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
      code = run_in_child(spec)
    finally:
      sys.stdout.flush()
      sys.stderr.flush()
      os._exit(code)  # pylint: disable=protected-access
  _, status = os.waitpid(pid, 0)
  with open(out_path, encoding="utf-8") as out, open(err_path, encoding="utf-8") as err:
    return {"code": os.waitstatus_to_exitcode(status), "stdout": out.read(), "stderr": err.read()}


def main(specs: list[str]) -> None:
  """Prints the JSON object of every spec's help run."""
  preimport(set().union(*(imported_modules(program_file(spec_module(spec))) for spec in specs)))
  results = {}
  for spec in specs:
    with tempfile.TemporaryDirectory() as folder:
      results[spec] = run_forked(spec, folder)
  print(json.dumps(results))


if __name__ == "__main__":
  main(sys.argv[1:])
