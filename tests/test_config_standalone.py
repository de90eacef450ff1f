"""A config stands alone: loading and validating one imports no library module, base_config holds
every field a shipped config sets, and a stored config of an older run still loads."""

import json
import os
import pathlib
import subprocess
import sys

import ml_collections
import pytest

from tests.helpers import REPO_ROOT
from vqa_jax.config import config_base
from vqa_jax.config import config_files
from vqa_jax.config import run_config
from vqa_jax.config import sections
from vqa_jax.config import validation

# Every shipped config file, found on disk (configs/common.py and the paper's common.py are
# helpers without get_config).
CONFIG_FILES = sorted(
    p.relative_to(REPO_ROOT / "configs").with_suffix("").as_posix()
    for p in (REPO_ROOT / "configs").rglob("*.py") if p.name not in ("__init__.py", "common.py"))
# What loading and validating a config must not import.
HEAVY_MODULES = ("jax", "flax", "optax", "tensorflow", "cv2", "vqa_jax.training", "vqa_jax.families",
                 "vqa_jax.models", "vqa_jax.data", "vqa_jax.perturb")
# Config sections whose keys are names the config chooses (splits), not fields.
NAMED_ENTRIES = ("data.label_files", "data.tfds.splits")

_LOAD_ALL = """
import json, sys
from vqa_jax.config import config_files, validation
names = json.loads(sys.argv[1])
for name in names:
  config = config_files.load(name)  # get_config() with its documented default argument
  if config.model.name == "simple_vqa" and not config.data.motion_dir:
    config.data.motion_dir = "/motion"  # set by flag in the documented commands
  validation.validate(config)
heavy = sorted(m for m in sys.modules
               if any(m == h or m.startswith(h + ".") for h in json.loads(sys.argv[2])))
print(json.dumps({"loaded": len(names), "heavy": heavy}))
"""


@pytest.mark.integration  # a fresh interpreter in a subprocess
def test_every_config_loads_and_validates_without_the_library():
  assert len(CONFIG_FILES) >= 20 and "paper/lsvq_fast_vqa_b_awp" in CONFIG_FILES
  out = subprocess.run([sys.executable, "-c", _LOAD_ALL, json.dumps(CONFIG_FILES),
                        json.dumps(HEAVY_MODULES)], cwd=REPO_ROOT, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, timeout=300, check=True)
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result == {"loaded": len(CONFIG_FILES), "heavy": []}


def _fields(tree: dict, prefix: str = "") -> set[str]:
  """Dotted names of every leaf of a nested dict; NAMED_ENTRIES count as one leaf each."""
  names = set()
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict) and name not in NAMED_ENTRIES:
      names |= _fields(value, name + ".")
    else:
      names.add(name)
  return names


def _config(name: str) -> ml_collections.ConfigDict:
  """get_config() of a shipped config, loaded as --config does."""
  return config_files.load(name)


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_base_config_has_every_field_a_config_sets(name):
  config = _config(name).to_dict()
  # The study program's own section (`study/design.StudyOptions` reads it; the trainer does not).
  config.pop("study", None)
  base = config_base.base_config().to_dict()
  # The model section is the family's: FAST-VQA-B's in base_config, or SimpleVQA's.
  base["model"] = {"fast_vqa": sections.fast_vqa_b_config,
                   "simple_vqa": sections.simple_vqa_config}[config["model"]["name"]]().to_dict()
  assert _fields(config) - _fields(base) == set()


def test_base_config_holds_the_sections_configs_used_to_add():
  base = config_base.base_config()
  assert base.model.name == "fast_vqa"
  assert base.motion.resize == 224 and tuple(base.motion.stage_sizes) == (3, 4, 6, 3)
  assert (base.data.synthetic_images.height, base.data.synthetic_images.width) == (128, 160)
  assert base.train.plcc_rank_weight == 0.3 and base.loss.hard_rank_weight == 1.0
  assert "rank_weight" not in base.train and "rank_weight" not in base.loss


def _write_json(folder: pathlib.Path, tree: dict) -> None:
  """`tree` as folder/config.json, as an older run wrote it."""
  folder.mkdir(parents=True, exist_ok=True)
  (folder / "config.json").write_text(json.dumps(tree, indent=2))


def test_a_stored_config_with_the_old_rank_weights_loads_under_the_new_names(tmp_path):
  _write_json(tmp_path, {"train": {"rank_weight": 0.25, "steps": 7},
                         "loss": {"l1_weight": 2.0, "rank_weight": 0.75}})
  stored = run_config.read_config(str(tmp_path))
  assert stored.train.plcc_rank_weight == 0.25 and stored.train.steps == 7
  assert stored.loss.hard_rank_weight == 0.75 and stored.loss.l1_weight == 2.0
  assert "rank_weight" not in stored.train and "rank_weight" not in stored.loss


def test_resuming_a_run_stored_under_the_old_names_sees_no_change(tmp_path):
  config = _config("smoke")
  validation.validate(config)
  old = json.loads(json.dumps(config.to_dict()))
  old["train"]["rank_weight"] = old["train"].pop("plcc_rank_weight")
  old["loss"]["rank_weight"] = old["loss"].pop("hard_rank_weight")
  _write_json(tmp_path, old)
  (tmp_path / "checkpoints" / "3").mkdir(parents=True)  # a run to resume
  assert run_config.check_resume(str(tmp_path), config) == {}


def test_an_older_stored_config_gets_the_fields_it_lacks(tmp_path):
  """A FAST-VQA run stored before model.name, motion and data.synthetic_images existed, and a
  SimpleVQA run, load complete (their own values kept) and validate."""
  old = json.loads(json.dumps(_config("smoke").to_dict()))
  del old["model"]["name"], old["motion"], old["data"]["synthetic_images"], old["sampling"]["crop"]
  old["train"]["rank_weight"] = old["train"].pop("plcc_rank_weight")
  old["train"]["steps"] = 5
  _write_json(tmp_path / "fast", old)
  stored = run_config.stored_config(str(tmp_path / "fast" / "checkpoints" / "5"))
  assert stored.model.name == "fast_vqa" and stored.model.embed_dim == 16  # the smoke model's
  assert stored.motion.chunk_len == 32 and stored.data.synthetic_images.num_train == 480
  assert stored.sampling.crop == 448 and stored.train.steps == 5
  assert stored.train.plcc_rank_weight == 0.3
  validation.validate(stored)

  simple = json.loads(json.dumps(_config("simple_vqa_demo").to_dict()))
  del simple["model"]["dtype"], simple["data"]["synthetic_images"]
  simple["data"]["motion_dir"] = "/motion"
  _write_json(tmp_path / "simple", simple)
  stored = run_config.stored_config(str(tmp_path / "simple"))
  assert stored.model.dtype == "float32" and stored.model.width == 8  # the demo's width kept
  assert "patch_size" not in stored.model  # not completed with FAST-VQA's fields
  validation.validate(stored)
