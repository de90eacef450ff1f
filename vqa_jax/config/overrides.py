"""Config override flags (`--config.a.b=VALUE`) checked against the config's fields.

ml_collections' config_flags raises a chain of KeyError / AttributeError tracebacks for an override
of a field the config lacks; `unknown_field` names the override in one line instead, with the
closest field paths (difflib) as the suggestion.
"""

from __future__ import annotations

import difflib
import re

import ml_collections


def field_paths(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
  """Every dotted path of `config`: its sections ('train') and their fields ('train.steps')."""
  paths = []
  for key, value in config.items():
    path = f"{prefix}{key}"
    paths.append(path)
    if isinstance(value, ml_collections.ConfigDict):
      paths.extend(field_paths(value, f"{path}."))
  return paths


def field_paths_of_sections(config: ml_collections.ConfigDict) -> list[str]:
  """The dotted paths of `config`'s sections (nested ConfigDicts): 'train', 'data.label_files'."""
  return [path for path in field_paths(config)
          if isinstance(_get(config, path), ml_collections.ConfigDict)]


def _get(config: ml_collections.ConfigDict, path: str):
  """The value at a dotted path of `config`."""
  for key in path.split("."):
    config = config[key]
  return config


def override_paths(argv: list[str], flag: str = "config") -> list[str]:
  """The field paths of argv's `--FLAG.PATH[=VALUE]` / `--noFLAG.PATH` overrides, in order."""
  pattern = re.compile(rf"^--?(?:no)?{re.escape(flag)}\.([^=]+)")
  paths = []
  for arg in argv:
    if arg == "--":
      break
    match = pattern.match(arg)
    if match:
      paths.append(match.group(1))
  return paths


def unknown_field(config: ml_collections.ConfigDict, path: str) -> str:
  """Why `path` ('train.stepz', 'data.label_files.train[0]') names no field of `config` ('' when
  it does): "config has no field 'train.stepz'; did you mean 'train.steps'?".

  The suggestion is the closest path of the same depth (difflib); without one, the fields of the
  deepest section the path does reach are listed.
  """
  sections = set(field_paths_of_sections(config))
  known = field_paths(config)
  base = path.split("[", 1)[0]  # an index ('tuple_field[1]') addresses inside a field
  if base in known:
    return ""
  message = f"config has no field {base!r}"
  parent = base.rpartition(".")[0]
  while parent and parent not in known:  # the deepest path that exists
    parent = parent.rpartition(".")[0]
  if parent and parent not in sections:
    return f"{message} ({parent!r} is a value, not a section)"
  same_depth = [p for p in known if p.count(".") == base.count(".")]
  close = difflib.get_close_matches(base, same_depth, n=1, cutoff=0.6)
  if close:
    return f"{message}; did you mean {close[0]!r}?"
  fields = [p.rpartition(".")[2] for p in known if p.rpartition(".")[0] == parent]
  where = f"fields of {parent!r}" if parent else "top-level fields"
  return f"{message} ({where}: {', '.join(fields)})"


def first_unknown(config: ml_collections.ConfigDict, argv: list[str],
                  flag: str = "config") -> str:
  """'--FLAG.PATH: <why>' for the first override in argv naming no field of `config`, else ''."""
  for path in override_paths(argv, flag):
    problem = unknown_field(config, path)
    if problem:
      return f"--{flag}.{path}: {problem}"
  return ""
