"""The shipped config files by name: `--config=fast_vqa_b` works from any directory.

The repository's `configs/` folder is installed as the package `vqa_jax.configs` (pyproject.toml);
in a checkout it is `<repo>/configs`. `resolve('NAME[:ARGS]')` turns a name (`fast_vqa_b`,
`paper/lsvq_fast_vqa_b_awp`, with or without `.py`) into that file's path; an existing file path is
kept as given, so `--config=configs/demo.py` and `--config=/my/config.py` work as before. Config
files import each other as `configs.X` (`from configs import fast_vqa_b`): `importable()` makes the
installed folder importable under that name when no `configs` package is on the path.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import pathlib
import sys

import ml_collections

_PACKAGE_DIR = pathlib.Path(__file__).resolve().parents[1]  # vqa_jax/


def configs_dir() -> pathlib.Path:
  """The folder of the shipped configs: installed `vqa_jax/configs`, else the checkout's."""
  installed = _PACKAGE_DIR / "configs"
  return installed if installed.is_dir() else _PACKAGE_DIR.parent / "configs"


def names() -> list[str]:
  """Every shipped config's name ('demo', 'paper/lsvq_fast_vqa_b', ...), sorted."""
  root = configs_dir()
  return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.py")
                if p.name not in ("__init__.py", "common.py"))


def resolve(spec: str) -> str:
  """'NAME[:ARGS]' -> 'PATH[:ARGS]': a file that exists stays, a shipped config's name gets its path."""
  importable()
  path, sep, args = spec.partition(":")
  if os.path.exists(path) or not path:
    return spec
  stem = path[:-3] if path.endswith(".py") else path
  for candidate in (configs_dir() / f"{stem}.py",
                    configs_dir() / f"{stem.removeprefix('configs/')}.py"):
    if candidate.is_file():
      return f"{candidate}{sep}{args}"
  return spec


def unknown(spec: str) -> str:
  """Why 'NAME_OR_PATH[:ARGS]' names no config file ('' when it does): the closest shipped name
  (difflib) and the list of all of them."""
  path = resolve(spec).partition(":")[0]
  if os.path.isfile(path):
    return ""
  if os.path.isdir(path):
    return "is a folder, not a config file"
  given = spec.partition(":")[0]
  stem = given.removesuffix(".py").removeprefix("configs/")
  shipped = names()
  close = difflib.get_close_matches(stem, shipped, n=1, cutoff=0.6)
  suggestion = f"; did you mean {close[0]!r}?" if close else ""
  return (f"no such file, and no shipped config of that name{suggestion} "
          f"(shipped: {', '.join(shipped)})")


def resolve_argv(argv: list[str], flag: str = "config") -> list[str]:
  """argv with `--config=NAME` / `--config NAME` rewritten by `resolve` (the rest untouched)."""
  out = list(argv)
  for i, arg in enumerate(out):
    if arg.startswith(f"--{flag}="):
      out[i] = f"--{flag}=" + resolve(arg.split("=", 1)[1])
    elif arg == f"--{flag}" and i + 1 < len(out):
      out[i + 1] = resolve(out[i + 1])
  return out


def importable() -> None:
  """Makes `import configs.X` find the shipped configs when no `configs` package is importable."""
  if "configs" in sys.modules or importlib.util.find_spec("configs") is not None:
    return
  spec = importlib.util.spec_from_file_location(
      "configs", configs_dir() / "__init__.py", submodule_search_locations=[str(configs_dir())])
  module = importlib.util.module_from_spec(spec)
  sys.modules["configs"] = module
  spec.loader.exec_module(module)


def load(spec: str) -> ml_collections.ConfigDict:
  """`get_config()` of 'NAME_OR_PATH', or `get_config(ARGS)` of 'NAME_OR_PATH:ARGS' (as config_flags)."""
  problem = unknown(spec)
  if problem:
    raise FileNotFoundError(f"config {spec!r}: {problem}")
  path, sep, args = resolve(spec).partition(":")
  importable()
  module_spec = importlib.util.spec_from_file_location(
      f"_vqa_jax_config_{pathlib.Path(path).stem}", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(args) if sep else module.get_config()
