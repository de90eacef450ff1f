"""Usage errors: a flag value the user can fix is one line and a hint, exit status 2, no traceback.

  --config.train.stepz: config has no field 'train.stepz'; did you mean 'train.steps'?
  Pass --help to see the program's flags.

`parse_flags` (the `flags_parser` that `entry_point.run` gives absl's app.run) turns into one:
an unknown --config name (the closest shipped name and all of them, `config_files.unknown`), a
config override naming no field of the config (`overrides.first_unknown`; ml_collections raises a
chain of three tracebacks), and absl's own flag errors (unknown flag, bad value, missing required
flag; absl exits 1 with them). Programs raise `UsageProblem` for the rest (a workdir that is a file,
an --out that cannot be written, a missing checkpoint); `entry_point.run` prints it the same way.
--help (and -h) exit 0 with the program's usage and flags (absl's exits 1).
"""

from __future__ import annotations

import sys
from typing import NoReturn

from absl import flags

from vqa_jax.config import config_files
from vqa_jax.config import overrides

EXIT_USAGE = 2  # as score's checkpoint and output errors
USAGE_HINT = "Pass --help to see the program's flags."


class UsageProblem(Exception):
  """A flag value the user can fix: `entry_point.run` prints the message and USAGE_HINT, exit
  status 2."""


def exit_usage(message: str) -> NoReturn:
  """Prints `message` (one line) and the usage hint on stderr; exits with EXIT_USAGE."""
  sys.stderr.write(f"{message}\n{USAGE_HINT}\n")
  sys.exit(EXIT_USAGE)


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
