"""What every vqa_jax command line shares: `run(main)` in place of absl's `app.run(main)`.

- `--config=NAME` names a shipped config (`config_files.resolve`), beside file paths;
- `--print_config` prints the resolved config (YAML, as `<workdir>/config.yaml`) and exits 0;
- libraries' INFO lines (orbax, absl, jax, ...) are dropped unless `--verbosity=1` (`-v 1`);
  warnings and vqa_jax's own progress lines stay;
- `--help` lists the program's own flags and its module docstring, also when the program runs
  as a subcommand of the `vqa-jax` console script or through a package's `__main__`; exit status 0;
- a flag value the user can fix is one line and the usage hint, exit status 2 (`vqa_jax.runtime.
  usage`): an unknown config name, a config override naming no field, absl's flag errors, a
  missing checkpoint given without --config (`config_or_stored`), and any `UsageProblem` a program
  raises (`--workdir=W: is a file, not a folder`).

Light on purpose (absl, ml_collections): the grain loader's workers re-import the main module.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

from absl import app
from absl import flags
from absl import logging
import ml_collections

from vqa_jax.config import config_files
from vqa_jax.runtime import usage

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # vqa_jax/
ConfigFn = Callable[[], ml_collections.ConfigDict | None]
EXIT_USAGE = usage.EXIT_USAGE  # a flag value the user can fix: one line and the usage hint
USAGE_HINT = usage.USAGE_HINT
UsageProblem = usage.UsageProblem


class LibraryInfoFilter(logging.logging.Filter):
  """Drops INFO and DEBUG records logged outside vqa_jax unless the absl verbosity is >= 1."""

  def filter(self, record):
    return (record.levelno > logging.logging.INFO or record.pathname.startswith(_PACKAGE_DIR)
            or logging.get_verbosity() >= 1)


def quiet_libraries() -> None:
  """Installs `LibraryInfoFilter` on absl's handler (once)."""
  handler = logging.get_absl_handler()
  if not any(isinstance(f, LibraryInfoFilter) for f in handler.filters):
    handler.addFilter(LibraryInfoFilter())


def flag_config() -> ml_collections.ConfigDict | None:
  """The value of the `--config` flag (None when the program has none or it was not given)."""
  return flags.FLAGS["config"].value if "config" in flags.FLAGS else None


def config_or_stored(config: flags.FlagHolder, path: Callable[[], str | None],
                     flag: str = "checkpoint") -> ConfigFn:
  """A ConfigFn: the `--config` flag's value, else the config stored with `path()` (a checkpoint
  or workdir, `run_config.stored_config`); None when neither is given. A `path()` that does not
  exist raises UsageProblem('--FLAG=PATH: does not exist')."""

  def chosen() -> ml_collections.ConfigDict | None:
    if config.value is not None or path() is None:
      return config.value
    if not os.path.exists(path()):
      raise UsageProblem(f"--{flag}={path()}: does not exist")
    from vqa_jax.config import run_config  # pylint: disable=g-import-not-at-top
    return run_config.stored_config(path())

  return chosen


def printable(config: ml_collections.ConfigDict) -> str:
  """The config as `--print_config` shows it: the schedule resolved, YAML."""
  from vqa_jax.config import run_config  # pylint: disable=g-import-not-at-top
  from vqa_jax.config import validation  # pylint: disable=g-import-not-at-top
  if "train" in config and "steps" in config.train:
    config = ml_collections.ConfigDict(config.to_dict())
    validation.resolve_schedule(config)
  return run_config.to_yaml(config)


def _show_help_for(main: Callable) -> None:
  """Makes absl's --help describe `main`'s module: its flags and docstring.

  absl's --help prints `sys.modules['__main__'].__doc__` and only the key flags of the module named
  `sys.argv[0]`; a flag is keyed by the module that defines it, `sys.argv[0]` when that is
  `__main__`. A program module run as `__main__` (the convention: `python -m vqa_jax.score`, or
  `vqa-jax score`, whose runpy sets `sys.argv[0]` to the module's file) thus lists its own flags;
  a `main` whose flags live in another module (imported by name) would show none, so its flags
  and docstring are handed to the main module here, as is the shared --print_config.
  """
  module = sys.modules.get(main.__module__)
  if module is None:
    return
  for flag in [*flags.FLAGS.get_key_flags_for_module(main.__module__),
               flags.FLAGS["print_config"]]:
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  main_module = sys.modules.get("__main__")
  if main_module is not None and main_module is not module and module.__doc__:
    main_module.__doc__ = module.__doc__


_REQUIRED_MESSAGE = "must have a value other than None."  # absl's mark_flag_as_required


def _waive_required_flags() -> None:
  """Lets `--print_config` run without the program's other required flags (--workdir, ...)."""
  for name in flags.FLAGS:
    flag = flags.FLAGS[name]
    flag.validators = [v for v in flag.validators
                       if not str(getattr(v, "message", "")).endswith(_REQUIRED_MESSAGE)]


def run(main: Callable[[list[str]], None], config_fn: ConfigFn = flag_config) -> None:
  """`app.run(main)` with config names, --print_config, quiet libraries, full --help (exit 0) and
  usage errors in one line (exit 2; `usage.parse_flags`, `UsageProblem`, `app.UsageError`)."""
  if "print_config" not in flags.FLAGS:
    flags.DEFINE_bool("print_config", False, "Print the resolved config (YAML) and exit; the "
                      "program's other required flags may be left out.")
  _show_help_for(main)
  if any(a in ("--print_config", "--print_config=true", "--print_config=True") for a in sys.argv):
    _waive_required_flags()

  def wrapped(argv):
    quiet_libraries()
    try:
      if flags.FLAGS.print_config:
        try:
          config = config_fn()
        except (FileNotFoundError, ValueError) as e:  # no stored config where one was looked for
          sys.exit(f"--print_config: {e}")
        if config is None:
          sys.exit("--print_config: no config given (pass --config=NAME_OR_FILE)")
        print(printable(config), end="")
        sys.exit(0)
      return main(argv)
    except (UsageProblem, app.UsageError) as e:  # app.UsageError: absl prints the whole usage
      usage.exit_usage(str(e))

  app.run(wrapped, argv=config_files.resolve_argv(sys.argv), flags_parser=usage.parse_flags)
