"""docs/: layout.md's tree matches the repository (every module of vqa_jax/ listed, every entry real),
every test reliability.md names exists, and each document opens with a one-line purpose."""

import ast
import re

from tests.helpers import REPO_ROOT

LAYOUT = REPO_ROOT / "docs" / "layout.md"
RELIABILITY = REPO_ROOT / "docs" / "reliability.md"
# `test_module::test_name`, `::test_name` or `test_name` (both: of the module last named in the row).
TEST_REFERENCE = re.compile(r"`(?:(test_\w+)::)?(?:::)?(test_\w+|Test\w+)(?:::(test_\w+))?`")
DESCRIPTION_COLUMN = 20  # a line indented this far continues the description above it


def listed_paths() -> set[str]:
  """Repository paths the tree block of docs/layout.md names (folders end with '/')."""
  text = LAYOUT.read_text(encoding="utf-8")
  (block,) = re.findall(r"^```\n(vqa_jax/\n.*?)^```", text, re.S | re.M)
  paths, folders = set(), []  # folders: (indent, path) of the enclosing folders
  for line in block.splitlines():
    indent = len(line) - len(line.lstrip())
    if not line.strip() or indent >= DESCRIPTION_COLUMN:
      continue
    while folders and folders[-1][0] >= indent:
      folders.pop()
    parent = folders[-1][1] if folders else ""
    for name in re.match(r"[\w./-]+(?:, [\w./-]+)*", line.strip()).group().split(", "):
      paths.add(parent + name)
      if name.endswith("/"):
        folders.append((indent, parent + name))
  return paths


def test_layout_lists_every_module_of_the_package():
  listed = listed_paths()
  modules = {str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "vqa_jax").rglob("*.py")}
  # A package's __init__.py is listed as its folder (the top level's by name).
  missing = {m for m in modules - listed
             if not (m.endswith("/__init__.py") and m.removesuffix("__init__.py") in listed)}
  assert not missing, f"docs/layout.md does not list: {sorted(missing)}"


def test_every_layout_entry_exists():
  absent = {p for p in listed_paths() if not (REPO_ROOT / p).exists()}
  assert not absent, f"docs/layout.md lists paths that do not exist: {sorted(absent)}"


def defined_tests() -> dict[str, set[str]]:
  """Test module name -> the functions and classes it defines (any depth)."""
  return {path.stem: {node.name for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                      if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
          for path in (REPO_ROOT / "tests").glob("test_*.py")}


def missing_tests(table: str, defined: dict[str, set[str]]) -> list[str]:
  """'row: module::name' for each test a Markdown table names that `defined` lacks."""
  missing = []
  for row in (line for line in table.splitlines() if line.startswith("| ")):
    module = None
    for named_module, name, method in TEST_REFERENCE.findall(row):
      if not named_module and name in defined:  # a module named alone
        module = name
        continue
      module = named_module or module
      wanted = [name, method] if method else [name]
      if module not in defined or not set(wanted) <= defined[module]:
        missing.append(f"{row.split('|')[1].strip()}: {module}::{'::'.join(wanted)}")
  return missing


def test_missing_tests_catches_renames_and_inherited_modules():
  defined = {"test_a": {"test_x", "test_y"}, "test_b": {"TestK", "test_z"}}
  table = ("| 1 | c | e | Pass. `test_a::test_x`, `::test_y`, `test_q` |\n"
           "| 2 | c | e | `test_b::TestK::test_z`, `test_b::test_x` |\n"
           "| 3 | `pytest tests/test_a.py` | e | `test_nope::test_x` |")
  assert missing_tests(table, defined) == ["1: test_a::test_q", "2: test_b::test_x",
                                           "3: test_nope::test_x"]


def test_every_test_reliability_names_exists():
  missing = missing_tests(RELIABILITY.read_text(encoding="utf-8"), defined_tests())
  assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"


def test_every_document_under_docs_opens_with_a_one_line_purpose():
  for document in sorted((REPO_ROOT / "docs").glob("*.md")):
    lines = document.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# ") and not lines[1], f"{document.name}: a title, then a blank line"
    assert lines[2].startswith("Purpose: ") and not lines[3], (
        f"{document.name}:3: a one-line 'Purpose: ...' paragraph under the title")
