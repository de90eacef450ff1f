"""One convention for programs: each program's absl flags and `main` live in the one module that
`python -m` runs for it (`command.COMMANDS`), and its `--help` lists them, run either way."""

import ast
import functools
import json
import pathlib
import subprocess
import sys

import pytest

from tests import program_help
from tests.helpers import REPO_ROOT
from vqa_jax import command

PACKAGE = REPO_ROOT / "vqa_jax"
# The shared runner every program calls defines --print_config (`entry_point.run`).
SHARED_RUNNER = ("vqa_jax/runtime/entry_point.py", {"print_config"})
CONSOLE_SCRIPT = "vqa_jax/command.py"  # `vqa-jax`: a `main`, no flags
FLAG_MODULES = ("flags", "config_flags")
BOOL_DEFINES = ("DEFINE_bool", "DEFINE_boolean")
CHECKED = list(command.COMMANDS)


def relative(path: str | pathlib.Path) -> str:
  """`path` relative to the repository, with '/'."""
  return pathlib.Path(path).resolve().relative_to(REPO_ROOT).as_posix()


def program_files() -> dict[str, str]:
  """command -> the file `python -m` runs for it, relative to the repository."""
  return {name: relative(program_help.program_file(module))
          for name, (module, _) in command.COMMANDS.items()}


def defined_flags(tree: ast.Module) -> dict[str, str]:
  """Every flag a module defines (`flags.DEFINE_X('name', ...)`, `config_flags.DEFINE_X`, or a
  bare `DEFINE_X` imported from them), anywhere in it: name -> the DEFINE function."""
  found = {}
  for node in ast.walk(tree):
    if not isinstance(node, ast.Call):
      continue
    func = node.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
      define = func.attr if func.value.id in FLAG_MODULES else ""
    else:
      define = func.id if isinstance(func, ast.Name) else ""
    if define.startswith("DEFINE_"):
      name = node.args[0] if node.args else None
      assert isinstance(name, ast.Constant), f"{ast.unparse(node)}: the flag name is not a literal"
      found[name.value] = define
  return found


def top_level_main(tree: ast.Module) -> bool:
  """Whether a module defines a function `main` at its top level."""
  return any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body)


def parse(path: str) -> ast.Module:
  """The syntax tree of a file of the repository."""
  return ast.parse((REPO_ROOT / path).read_text(encoding="utf-8"), filename=path)


def help_line(name: str, define: str) -> str:
  """How absl's --help starts the line of a flag."""
  return f"--[no]{name}:" if define in BOOL_DEFINES else f"--{name}:"


def test_defined_flags_finds_each_form_and_how_help_shows_it():
  tree = ast.parse("from absl import flags\nfrom absl.flags import DEFINE_list\n"
                   "A = flags.DEFINE_bool('a', False, '')\n"
                   "def define():\n  config_flags.DEFINE_config_file('config')\n"
                   "  DEFINE_list('l', [], '')\nflags.mark_flags_as_required(['a'])\n"
                   "other.DEFINE_string('not_a_flag', '', '')\n")
  assert defined_flags(tree) == {"a": "DEFINE_bool", "config": "DEFINE_config_file",
                                 "l": "DEFINE_list"}
  assert [help_line(n, d) for n, d in defined_flags(tree).items()] == ["--[no]a:", "--config:",
                                                                        "--l:"]
  assert top_level_main(ast.parse("def main(argv):\n  pass\n"))
  assert not top_level_main(ast.parse("def run():\n  def main():\n    pass\n"))


def test_every_program_module_defines_its_flags_and_main():
  for name, path in program_files().items():
    tree = parse(path)
    assert defined_flags(tree), f"{path} ({name}): defines no flag"
    assert top_level_main(tree), f"{path} ({name}): defines no top-level main()"


def test_no_library_module_defines_flags_or_a_main():
  programs = set(program_files().values())
  runner, runner_flags = SHARED_RUNNER
  found = []
  for file in sorted(PACKAGE.rglob("*.py")):
    path = relative(file)
    if path in programs:
      continue
    tree = parse(path)
    flags_here = set(defined_flags(tree))
    if path == runner:
      assert flags_here == runner_flags, f"{path}: defines {sorted(flags_here)}"
    elif flags_here:
      found.append(f"{path}: defines flags {sorted(flags_here)}")
    if top_level_main(tree) and path != CONSOLE_SCRIPT:
      found.append(f"{path}: defines main()")
  assert not found, "library modules with a program's parts:\n" + "\n".join(found)


@functools.cache
def help_runs() -> dict:
  """Every checked program's --help, as `python -m MODULE` and as `vqa-jax COMMAND`, run in one
  subprocess (`tests.program_help`: a fork per run)."""
  specs = [f"{kind}:{name}" for command_name in CHECKED
           for kind, name in (("module", command.COMMANDS[command_name][0]),
                              ("command", command_name))]
  proc = subprocess.run([sys.executable, "-m", "tests.program_help", *specs], cwd=REPO_ROOT,
                        capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", ["module", "command"])
@pytest.mark.parametrize("name", CHECKED)
def test_help_lists_every_flag_of_the_program(name, kind):
  module = command.COMMANDS[name][0]
  run = help_runs()[f"{kind}:{module if kind == 'module' else name}"]
  assert run["code"] == 0, run["stderr"][-2000:]
  path = program_files()[name]
  listed = run["stdout"]
  missing = [line for line in (help_line(flag, define)
                               for flag, define in defined_flags(parse(path)).items())
             if f"  {line}" not in listed]
  assert not missing, f"{kind} {name} --help misses {missing} of {path}:\n{listed[-3000:]}"
  assert "  --[no]print_config:" in listed  # the shared runner's
  docstring = ast.get_docstring(parse(path)).splitlines()[0]
  assert listed.startswith(docstring), listed[:500]  # the program module's own docstring
