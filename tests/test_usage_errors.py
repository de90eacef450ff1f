"""Errors a user can act on, in-process: the one-line messages for a config override
naming no field, an unknown config name, an output folder that is a file or cannot be written, and a
missing checkpoint given without --config. The command lines that print them: test_exit_paths."""

import errno
import os
import tempfile
import types

import ml_collections
import pytest

from vqa_jax.config import config_files
from vqa_jax.config import overrides
from vqa_jax.runtime import entry_point
from vqa_jax.runtime import output_folders
from vqa_jax.runtime import usage


def _config():
  """A two-section config: train.{steps, warmup_steps, learning_rate}, data.{batch, label_files.x}."""
  return ml_collections.ConfigDict({
      "seed": 0,
      "train": {"steps": 10, "warmup_steps": 2, "learning_rate": 1e-3},
      "data": {"batch": 4, "label_files": {"x": "a.txt"}},
  })


def test_field_paths_list_sections_and_fields():
  assert overrides.field_paths(_config()) == [  # ConfigDict orders its keys
      "data", "data.batch", "data.label_files", "data.label_files.x", "seed", "train",
      "train.learning_rate", "train.steps", "train.warmup_steps"]


@pytest.mark.parametrize("path,message", [
    ("train.steps", ""),
    ("data.label_files.x", ""),
    ("train.stepz", "config has no field 'train.stepz'; did you mean 'train.steps'?"),
    ("trian.steps", "config has no field 'trian.steps'; did you mean 'train.steps'?"),
    ("train.xyzzy", "config has no field 'train.xyzzy' "
                    "(fields of 'train': learning_rate, steps, warmup_steps)"),
    ("xyzzy", "config has no field 'xyzzy' (top-level fields: data, seed, train)"),
    ("train.steps.x", "config has no field 'train.steps.x' ('train.steps' is a value, "
                      "not a section)"),
])
def test_unknown_field_names_the_closest_path(path, message):
  assert overrides.unknown_field(_config(), path) == message


def test_first_unknown_override_in_argv():
  argv = ["prog", "--config=c.py", "--config.train.steps=3", "--noconfig.train.stepz",
          "--config.data.bacth", "4", "--", "--config.after.terminator=1"]
  assert overrides.override_paths(argv) == ["train.steps", "train.stepz", "data.bacth"]
  assert overrides.first_unknown(_config(), argv) == (
      "--config.train.stepz: config has no field 'train.stepz'; did you mean 'train.steps'?")
  assert overrides.first_unknown(_config(), ["prog", "--config.train.steps=3"]) == ""


def test_unknown_config_name_suggests_and_lists_the_shipped_names():
  problem = config_files.unknown("smok")
  assert problem.startswith("no such file, and no shipped config of that name; did you mean "
                            "'smoke'? (shipped: ")
  assert problem.endswith(f"(shipped: {', '.join(config_files.names())})")
  assert config_files.unknown("smoke") == "" and config_files.unknown("smoke.py") == ""
  assert config_files.unknown("paper/lsvq_fast_vqa_b:/l,/v") == ""
  assert "did you mean 'paper/lsvq_fast_vqa_b_awp'?" in config_files.unknown("paper/lsvq_fast_vqa_b_awq")
  assert "did you mean" not in config_files.unknown("zzzzzzzz")
  with pytest.raises(FileNotFoundError, match="config 'smok': no such file.*did you mean 'smoke'"):
    config_files.load("smok")


def test_a_folder_is_not_a_config_file(tmp_path):
  assert config_files.unknown(str(tmp_path)) == "is a folder, not a config file"


def test_output_folder_problems(tmp_path):
  afile = tmp_path / "afile"
  afile.write_text("x")
  assert output_folders.problem(str(afile)) == "is a file, not a folder"
  assert output_folders.problem(str(afile / "sub")) == f"{afile}: is a file, not a folder"
  assert not (afile / "sub").exists()
  made = tmp_path / "a" / "b"
  assert output_folders.problem(str(made)) == "" and made.is_dir()  # created with its parents
  assert output_folders.problem(str(tmp_path / "missing"), create=False) == "does not exist"
  with pytest.raises(output_folders.UnusableFolder,
                     match=f"^workdir {afile}: is a file, not a folder$"):
    output_folders.make(str(afile), "workdir")


def test_an_unwritable_folder_is_named_with_the_os_reason(tmp_path, monkeypatch):
  # Root writes through permission bits, so the denial is injected where the probe writes.
  def denied(*args, **kwargs):
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

  monkeypatch.setattr(tempfile, "TemporaryFile", denied)
  assert output_folders.problem(str(tmp_path)) == "cannot write (Permission denied)"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_cannot_be_written(tmp_path):
  folder = tmp_path / "ro"
  folder.mkdir()
  folder.chmod(0o500)
  try:
    assert output_folders.problem(str(folder)) == "cannot write (Permission denied)"
  finally:
    folder.chmod(0o700)


def test_a_missing_checkpoint_without_config_is_a_usage_problem(tmp_path):
  no_config = types.SimpleNamespace(value=None)
  missing = str(tmp_path / "nope")
  chosen = entry_point.config_or_stored(no_config, lambda: missing)
  with pytest.raises(entry_point.UsageProblem, match=f"^--checkpoint={missing}: does not exist$"):
    chosen()
  chosen = entry_point.config_or_stored(no_config, lambda: missing, flag="workdir")
  with pytest.raises(entry_point.UsageProblem, match=f"^--workdir={missing}: does not exist$"):
    chosen()
  given = types.SimpleNamespace(value=_config())  # --config given: the path is not looked at
  assert entry_point.config_or_stored(given, lambda: missing)() is given.value
  # An existing path without a stored config keeps its own message.
  with pytest.raises(FileNotFoundError, match="no stored config.json"):
    entry_point.config_or_stored(no_config, lambda: str(tmp_path))()


def test_argv_helpers():
  argv = ["prog", "--config", "a.py", "--config=b.py", "-h", "--", "--config=c.py", "--help"]
  assert usage.flag_value(argv, "config") == "b.py"
  assert not usage.asks_for_help(argv)  # -h is rewritten to --help by parse_flags
  assert usage.asks_for_help(["prog", "--helpfull"])
  assert not usage.asks_for_help(["prog", "--", "--help"])
