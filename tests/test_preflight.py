"""Every split's videos are opened before compiling: a bad test-split video fails the run up front."""

import pytest
from tests.helpers import load_config
from tests.video_files import labelled_videos

from vqa_jax.training import trainer
from vqa_jax.data import preflight
from vqa_jax.data import sources
from vqa_jax.data.labels import Entry


@pytest.fixture
def bad_files(tmp_path):
  """{'empty': path, 'text': path, 'folder': path}: files that cannot be opened as videos."""
  (tmp_path / "empty.mp4").write_bytes(b"")
  (tmp_path / "text.mp4").write_text("this is not a video\n" * 50)
  (tmp_path / "folder.mp4").mkdir()
  return {name: str(tmp_path / f"{name}.mp4") for name in ("empty", "text", "folder")}


def test_unopenable_videos_are_listed_per_split_with_reasons(tmp_path, bad_files, caplog):
  good = labelled_videos(tmp_path, 2)
  splits = {"train": good, "test": [good[0], Entry(bad_files["empty"], 1.0),
                                    Entry(bad_files["text"], 2.0), Entry(bad_files["folder"], 3.0)]}
  with pytest.raises(preflight.UnopenableVideos) as e:
    preflight.check_splits(splits, "error")
  lines = str(e.value).splitlines()
  assert lines[0] == "split 'test': 3 of 4 videos cannot be opened (first 3 listed):"
  assert lines[1:4] == [f"  {bad_files['empty']}: file is empty (0 bytes)",
                        f"  {bad_files['text']}: OpenCV cannot open it (not a video, or an "
                        "unsupported container or codec)",
                        f"  {bad_files['folder']}: is a folder, not a file"]
  assert "train" not in str(e.value)
  preflight.check_splits(splits, "skip")  # warns instead
  assert "split 'test': 3 of 4 videos cannot be opened" in caplog.text


def test_bad_video_only_in_the_test_split_fails_before_the_model_is_built(tmp_path, bad_files,
                                                                          monkeypatch):
  monkeypatch.setenv("VQA_JAX_CACHE", str(tmp_path / "cache"))
  monkeypatch.setattr(trainer, "init_state", None)  # never reached
  config = load_config("smoke")
  splits = sources.load_splits(config.data)
  splits["test"] = splits["test"] + [Entry(bad_files["text"], 3.0)]
  with pytest.raises(preflight.UnopenableVideos, match=r"split 'test': 1 of 9 videos"):
    trainer.run(config, str(tmp_path / "work"), splits)
