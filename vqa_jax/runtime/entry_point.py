"""What every vqa_jax command line shares: `run(main)` in place of absl's `app.run(main)`.

- `--config=NAME` names a shipped config (`config_files.resolve`), beside file paths;
- `--print_config` prints the resolved config (YAML, as `<workdir>/config.yaml`) and exits 0;
- libraries' INFO lines (orbax, absl, jax, ...) are dropped unless `--verbosity=1` (`-v 1`);
  warnings and vqa_jax's own progress lines stay;
- `--help` lists the program's own flags and its module docstring, also when the program runs
  as a subcommand of the `vqa-jax` console script or through a package's `__main__`; exit status 0;
- a flag value the user can fix is one line and the usage hint, exit status 2 (`EXIT_USAGE`): an
  unknown config name (with the closest shipped names and the list), a config override naming no
  field (`--config.train.stepz: config has no field 'train.stepz'; did you mean 'train.steps'?`),
  absl's flag errors (unknown flag, bad value, missing required flag), a missing checkpoint given
  without --config (`config_or_stored`), and any `UsageProblem` a program raises (`--workdir=W: is
  a file, not a folder`).

Light on purpose (absl, ml_collections): the grain loader's workers re-import the main module.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, NoReturn

from absl import app
from absl import flags
from absl import logging
import ml_collections

from vqa_jax.config import config_files
from vqa_jax.config import overrides

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # vqa_jax/
ConfigFn = Callable[[], ml_collections.ConfigDict | None]
EXIT_USAGE = 2  # a flag value the user can fix (score's checkpoint and output errors use it too)
USAGE_HINT = "Pass --help to see the program's flags."


class UsageProblem(Exception):
  """A flag value the user can fix: `run` prints the message and USAGE_HINT, exit status 2."""


def exit_usage(message: str) -> NoReturn:
  """Prints `message` (one line) and the usage hint on stderr; exits with EXIT_USAGE."""
  sys.stderr.write(f"{message}\n{USAGE_HINT}\n")
  sys.exit(EXIT_USAGE)


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
  """Makes absl's --help describe `main`'s module: its flags and docstring."""
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


_HELP_FLAGS = {f"{dashes}{name}" for dashes in ("-", "--")
               for name in ("help", "helpshort", "helpfull", "helpxml", "?")}


def _flag_args(argv: list[str]) -> list[str]:
  """argv's arguments before a `--` terminator (absl parses no flag after it)."""
  return argv[1:argv.index("--")] if "--" in argv else argv[1:]


def asks_for_help(argv: list[str]) -> bool:
  """Whether argv asks for absl's help (--help, -h, --helpfull, ...)."""
  return any(arg in _HELP_FLAGS for arg in _flag_args(argv))


def flag_value(argv: list[str], name: str) -> str | None:
  """The last value given to `--NAME=V` / `--NAME V` in argv, or None."""
  value = None
  args = _flag_args(argv)
  for i, arg in enumerate(args):
    if arg.startswith(f"--{name}=") or arg.startswith(f"-{name}="):
      value = arg.split("=", 1)[1]
    elif arg in (f"--{name}", f"-{name}") and i + 1 < len(args):
      value = args[i + 1]
  return value


def _override_problem(argv: list[str]) -> str:
  """'--config.PATH: config has no field ...' for an override naming no field of --config, or ''."""
  spec = flag_value(argv, "config")
  if not spec:
    return ""
  try:
    config = config_files.load(spec)
  except Exception:  # pylint: disable=broad-except  (the parse error is then reported as it is)
    return ""
  return overrides.first_unknown(config, argv)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing (the `flags_parser` of app.run) with errors a user can act on.

  A usage error is one line and the hint, exit status 2: an unknown --config name, a config
  override of a field the config lacks, absl's flag errors. --help (or -h) exits 0 (absl's
  exits 1).
  """
  flag_count = len(_flag_args(argv))
  argv = [argv[0], *("--help" if a == "-h" else a for a in argv[1:flag_count + 1]),
          *argv[flag_count + 1:]]  # -h as --help
  help_asked = asks_for_help(argv)
  spec = flag_value(argv, "config")
  if spec and not help_asked:
    problem = config_files.unknown(spec)
    if problem:
      exit_usage(f"--config={spec}: {problem}")
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:  # unknown flag, bad value, missing required flag (absl's wording)
    exit_usage("; ".join(line.strip() for line in str(e).splitlines() if line.strip()))
  except (AttributeError, KeyError):  # ml_collections: an override of a field the config lacks
    problem = _override_problem(argv)
    if not problem:
      raise
    exit_usage(problem)
  except SystemExit as e:  # absl's help flags exit 1 after printing the help
    if help_asked and e.code == 1:
      sys.exit(0)
    raise


def run(main: Callable[[list[str]], None], config_fn: ConfigFn = flag_config) -> None:
  """`app.run(main)` with config names, --print_config, quiet libraries, full --help (exit 0) and
  usage errors in one line (exit 2; `parse_flags`, `UsageProblem`)."""
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
    except UsageProblem as e:
      exit_usage(str(e))

  app.run(wrapped, argv=config_files.resolve_argv(sys.argv), flags_parser=parse_flags)
