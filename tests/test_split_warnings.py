"""Training warns with counts about the training split."""

import ml_collections
import pytest

from tests.helpers import load_config
from vqa_jax.training import split_warnings
from vqa_jax.training import trainer


class BuiltTheModel(Exception):
  """Raised in place of building the model: the run got past its split checks."""


def label_file(tmp_path, name: str, mos: list[float]) -> str:
  """A FAST-VQA label file `name` with one line per MOS (the videos need not exist here)."""
  path = tmp_path / name
  stem = name.split(".")[0]
  path.write_text("".join(f"{stem}{i}.mp4, 8, 30, {m!r}\n" for i, m in enumerate(mos)))
  return f"{path}:{tmp_path}"


def run_until_the_model(tmp_path, monkeypatch, train_mos: list[float], batch_size: int):
  """Runs the smoke config on a label-file training split up to building the model."""
  config = load_config("smoke")
  config.data.source = "label_files"
  config.data.label_files = ml_collections.ConfigDict({
      "train": label_file(tmp_path, "train.txt", train_mos),
      "test": label_file(tmp_path, "test.txt", [1.0, 2.0, 3.0])})
  config.data.eval_splits = ("test",)
  config.train.batch_size = batch_size

  def built(_):
    raise BuiltTheModel()

  monkeypatch.setattr(trainer.families, "build", built)
  with pytest.raises(BuiltTheModel):
    trainer.train(config, str(tmp_path / "work"))


def test_a_batch_larger_than_the_training_set_says_both_numbers(tmp_path, monkeypatch, caplog):
  with caplog.at_level("WARNING"):
    run_until_the_model(tmp_path, monkeypatch, [1.0, 2.5, 3.0], batch_size=8)
  assert ("train.batch_size 8 is larger than the training split 'train' (3 videos): every batch "
          "holds some videos more than once, and each step covers 2.7 epochs") in caplog.text
  assert "labels" not in caplog.text


def test_constant_training_labels_are_a_warning(tmp_path, monkeypatch, caplog):
  with caplog.at_level("WARNING"):
    run_until_the_model(tmp_path, monkeypatch, [3.5] * 8, batch_size=8)
  assert ("the training labels of split 'train' are constant (8 videos, MOS 3.5): the correlation "
          "losses have nothing to fit") in caplog.text
  assert "score calibration" in caplog.text and "degenerates" in caplog.text
  assert "larger than the training split" not in caplog.text  # 8 videos, batch 8


def test_a_usable_training_split_gives_no_warning(tmp_path, monkeypatch, caplog):
  with caplog.at_level("WARNING"):
    run_until_the_model(tmp_path, monkeypatch, [1.0, 2.0, 3.0, 4.0] * 2, batch_size=8)
  assert "larger than the training split" not in caplog.text
  assert "training labels" not in caplog.text


@pytest.mark.parametrize("mos, expected", [
    ([70.0, 70.0 + 5e-5, 70.0], "near-constant (3 videos, MOS 70.0 to 70.00005)"),  # 7e-7 of 70
    ([0.2, 0.2 + 5e-7], "near-constant (2 videos, MOS 0.2 to 0.2000005)"),  # below 1e-6 of 1
    ([70.0, 70.0 + 1e-4], ""),  # 1.4e-6 of the magnitude: real (if tiny) spread
    ([1.0, 2.0], ""),
    ([], ""),
])
def test_near_constant_is_relative_to_the_label_magnitude(mos, expected):
  text = split_warnings.constant_labels(mos, "train")
  assert (expected in text) if expected else text == ""


def test_batch_warning_counts():
  assert split_warnings.batch_larger_than_split(16, 16, "train") == ""
  assert "(5 videos)" in split_warnings.batch_larger_than_split(16, 5, "train")
  assert "covers 3.2 epochs" in split_warnings.batch_larger_than_split(16, 5, "train")
