"""docs/: layout.md's tree matches the repository (every module of vqa_jax/ listed, every entry real),
and each document opens with a one-line purpose."""

import re

from tests.helpers import REPO_ROOT

LAYOUT = REPO_ROOT / "docs" / "layout.md"
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


def test_every_document_under_docs_opens_with_a_one_line_purpose():
  for document in sorted((REPO_ROOT / "docs").glob("*.md")):
    lines = document.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# ") and not lines[1], f"{document.name}: a title, then a blank line"
    assert lines[2].startswith("Purpose: ") and not lines[3], (
        f"{document.name}:3: a one-line 'Purpose: ...' paragraph under the title")
