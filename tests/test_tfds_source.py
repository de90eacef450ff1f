"""data.source='tfds': the smoke model trains on a TFDS builder read from a fake manual_dir."""

import pytest

import vqa_jax
from tests.helpers import load_config
from tests.tfds_layouts import LAYOUTS
from tests.tfds_layouts import make_manual_dir
from tests.tfds_layouts import parse_label_file
from vqa_jax.training import checkpointing
from vqa_jax.config import validation
from vqa_jax.data import sources
from vqa_jax.data import tfds_builders


def lsvq_config(manual_dir, data_dir):
  """Smoke on the fake LSVQ: its test split as 'test', test_1080p as 'cross'."""
  config = load_config("smoke")
  config.data.source = "tfds"
  config.data.tfds.name = "lsvq"
  config.data.tfds.manual_dir = str(manual_dir)
  config.data.tfds.data_dir = str(data_dir)
  config.data.tfds.splits = {"train": "train", "test": "test", "cross": "test_1080p"}
  config.checkpoint.async_save = False
  return config


@pytest.mark.slow  # ~50 s on 2 cores; the builders' splits are checked in the default run
def test_tfds_splits_are_the_label_files_and_train_the_smoke_model(
    synthetic_root, tmp_path, fast_compile):  # pylint: disable=unused-argument
  manual = tmp_path / "manual"
  make_manual_dir(synthetic_root, str(manual), LAYOUTS[tfds_builders.Lsvq])
  config = lsvq_config(manual, tmp_path / "tfds")
  splits = sources.load_splits(config.data)
  for ours, label_name in (("train", "train_labels.txt"), ("test", "labels_test.txt"),
                           ("cross", "labels_1080p.txt")):
    expected = parse_label_file(str(manual / label_name))
    assert [(e.path, round(e.mos, 4)) for e in splits[ours]] == [
        (str(manual / rel), pytest.approx(mos, abs=1e-4)) for rel, mos in expected]
  results = vqa_jax.train(config, str(tmp_path / "run"))
  assert set(results) == {"test", "cross"} and set(results["test"]) == {"raw", "ema"}
  manager = checkpointing.checkpoint_manager(str(tmp_path / "run"))
  stored = manager.metadata(manager.latest_step()).custom_metadata["config"]
  assert stored["data"]["tfds"]["name"] == "lsvq" and stored["train"]["cosine_steps"] == 6
  manager.close()


def test_tfds_source_needs_a_builder_and_manual_dir():
  config = load_config("smoke")
  config.data.source = "tfds"
  with pytest.raises(ValueError, match="data.tfds.name"):
    validation.validate(config)
