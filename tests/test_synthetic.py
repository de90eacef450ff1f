"""Tests of the procedural synthetic VQA dataset (vqa_jax.data.synthetic)."""

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys

import cv2
import ml_collections
import numpy as np
import pytest
import scipy.stats

from vqa_jax.data import labels
from vqa_jax.data import sources
from vqa_jax.config.specs import ImageSpec
from vqa_jax.config.specs import SyntheticSpec
from vqa_jax.data.synthetic import cache as synthetic_cache
from vqa_jax.data.synthetic import dataset as synthetic_dataset
from vqa_jax.data.synthetic import images as synthetic_images
from vqa_jax.data.synthetic import metadata as synthetic_metadata
from vqa_jax.data.synthetic import video as synthetic_video

TINY = SyntheticSpec.tiny()
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _decode(path: str) -> np.ndarray:
  """Every frame of a video, decoded with cv2 directly."""
  capture = cv2.VideoCapture(path)
  frames = []
  ok, frame = capture.read()
  while ok:
    frames.append(frame)
    ok, frame = capture.read()
  capture.release()
  return np.stack(frames)


def _metadata(path: str) -> list[dict]:
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f]


def tiny_relpath(dataset) -> str:
  """The relative path of the first training video of a dataset."""
  return os.path.relpath(labels.read_labels(dataset.label_files["train"], dataset.root)[0].path,
                         dataset.root)


def _mtimes(root: str) -> dict[str, int]:
  return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
          for d, _, files in os.walk(root) for f in files}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> str:
  return str(tmp_path_factory.mktemp("synthetic_cache"))


@pytest.fixture(scope="module")
def tiny(cache_dir) -> synthetic_dataset.SyntheticDataset:
  """The tiny dataset, generated once with a pool of 2 worker processes."""
  return synthetic_dataset.ensure_dataset(cache_dir, TINY, num_workers=2)


# MOS function.


def test_mos_hand_values():
  assert synthetic_metadata.mos_from_strengths({}) == 5.0
  assert synthetic_metadata.mos_from_strengths({"blur": 0.0}) == 5.0
  # 1 + 4 * (1 - 0.85 * 0.5) = 3.3
  assert synthetic_metadata.mos_from_strengths({"blur": 0.5}) == pytest.approx(3.3)
  # 1 + 4 * (1 - 0.5) = 3.0
  assert synthetic_metadata.mos_from_strengths({"judder": 1.0}) == pytest.approx(3.0)
  # 1 + 4 * (1 - 0.85) * (1 - 0.75 * 0.4) = 1 + 4 * 0.15 * 0.7 = 1.42
  assert (synthetic_metadata.mos_from_strengths({"jpeg": 1.0, "overexposure": 0.4})
          == pytest.approx(1.42))


def test_mos_rejects_bad_input():
  with pytest.raises(ValueError, match="Unknown distortion"):
    synthetic_metadata.mos_from_strengths({"vignette": 0.5})
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    synthetic_metadata.mos_from_strengths({"blur": 1.5})


@pytest.mark.parametrize("name", sorted(synthetic_metadata.DISTORTION_WEIGHTS))
def test_mos_decreases_with_every_strength(name):
  grid = np.linspace(0.0, 1.0, 11)
  for other in ({}, {"noise" if name != "noise" else "jpeg": 0.6}):
    mos = [synthetic_metadata.mos_from_strengths({name: s, **other}) for s in grid]
    assert np.all(np.diff(mos) < 0)
    assert 1.0 <= min(mos) and max(mos) <= 5.0


# Spec.


def test_spec_presets_and_from_config():
  assert SyntheticSpec.demo() == SyntheticSpec()
  assert (TINY.num_train, TINY.num_test, TINY.num_cross) == (16, 8, 8)
  assert SyntheticSpec.from_config({}) == SyntheticSpec.demo()
  cfg = ml_collections.ConfigDict({"seed": 3, "num_train": 20, "height": 64})
  spec = SyntheticSpec.from_config(cfg)
  assert (spec.seed, spec.num_train, spec.height) == (3, 20, 64)
  assert spec.width == SyntheticSpec.demo().width
  with pytest.raises(ValueError, match="num_trian"):
    SyntheticSpec.from_config({"num_trian": 3})


# The generated tiny dataset.


def test_every_video_decodes_to_spec_size(tiny):
  for split, label_file in tiny.label_files.items():
    for entry in labels.read_labels(label_file, tiny.root):
      frames = _decode(entry.path)
      assert frames.shape == (TINY.num_frames, TINY.height, TINY.width, 3), (split, entry.path)


def test_label_files(tiny):
  assert set(tiny.label_files) == {"train", "test", "cross"}
  expected = {"train": 16, "test": 8, "cross": 8}
  for split, label_file in tiny.label_files.items():
    entries = labels.read_labels(label_file, tiny.root)
    assert len(entries) == expected[split]
    assert all(1.0 <= e.mos <= 5.0 for e in entries)
    assert all(os.path.isfile(e.path) for e in entries)
    with open(label_file, encoding="utf-8") as f:
      for line in f:
        relpath, duration, fps, _ = line.rstrip("\n").split(", ")
        assert not os.path.isabs(relpath)
        assert float(duration) == pytest.approx(16 / 16.0)
        assert float(fps) == 16.0


def test_metadata_matches_labels(tiny):
  meta = {m["relpath"]: m for m in _metadata(tiny.metadata_file)}
  assert len(meta) == 32
  for split, label_file in tiny.label_files.items():
    for entry in labels.read_labels(label_file, tiny.root):
      m = meta[os.path.relpath(entry.path, tiny.root)]
      assert m["split"] == split
      assert m["mos"] == entry.mos
      assert m["domain"] == ("B" if split == "cross" else "A")


def test_mos_follows_total_severity(tiny):
  meta = _metadata(tiny.metadata_file)
  mos = [m["mos"] for m in meta]
  severity = [sum(m["distortions"].values()) for m in meta]
  assert scipy.stats.spearmanr(mos, severity)[0] < -0.85
  pristine = [m["mos"] for m in meta if not m["distortions"]]
  assert all(m > 4.6 for m in pristine)


def test_domains_differ_in_content_and_distortions(tiny):
  tiny_meta = _metadata(tiny.metadata_file)
  tiny_contents = {d: {m["content"] for m in tiny_meta if m["domain"] == d} for d in "AB"}
  assert not tiny_contents["A"] & tiny_contents["B"]
  meta = synthetic_metadata.sample_metadata(SyntheticSpec.demo())  # Labels only, no videos.
  counts = {d: {} for d in "AB"}
  for m in meta:
    for name in m["distortions"]:
      counts[m["domain"]][name] = counts[m["domain"]].get(name, 0) + 1
  assert "banding" in counts["B"] and "banding" not in counts["A"]
  assert len(set(counts["A"]) & set(counts["B"])) >= 5
  frac = {d: counts[d].get("judder", 0) / sum(counts[d].values()) for d in "AB"}
  assert frac["B"] > 2 * frac["A"]
  for m in meta:
    assert not {"overexposure", "underexposure"} <= set(m["distortions"])
    assert not {"noise", "blur"} <= set(m["distortions"])


# Distortions measured in the decoded video.


def _decoded_clip(tmp_path, distortions: dict[str, float]) -> np.ndarray:
  """Fixed content with the given distortions, written and decoded back, as float grey frames."""
  frames = synthetic_video.render_video("shapes", distortions, height=64, width=80, num_frames=16,
                                        seed=7)
  path = str(tmp_path / "clip.avi")
  synthetic_video.write_video(path, frames, fps=16.0)
  decoded = _decode(path)
  return np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in decoded]).astype(np.float32)


def _laplacian_variance(grey: np.ndarray) -> float:
  return float(np.mean([cv2.Laplacian(f, cv2.CV_32F).var() for f in grey]))


def _high_frequency_residual(grey: np.ndarray) -> float:
  return float(np.mean([np.std(f - cv2.GaussianBlur(f, (0, 0), 1.0)) for f in grey]))


def _blockiness(grey: np.ndarray) -> float:
  """Mean jump across 8x8 block boundaries over the mean jump inside blocks."""
  jumps = np.abs(np.diff(grey, axis=2))
  at_boundary = (np.arange(jumps.shape[2]) % 8) == 7
  return float(jumps[..., at_boundary].mean() / jumps[..., ~at_boundary].mean())


def _repeated_fraction(grey: np.ndarray) -> float:
  return float(np.mean(np.abs(np.diff(grey, axis=0)).max(axis=(1, 2)) == 0))


@pytest.mark.parametrize("name, measure, sign", [
    ("blur", _laplacian_variance, -1),
    ("downscale", _laplacian_variance, -1),
    ("noise", _high_frequency_residual, +1),
    ("jpeg", _blockiness, +1),
    ("overexposure", lambda g: float(g.mean()), +1),
    ("underexposure", lambda g: float(g.mean()), -1),
    ("judder", _repeated_fraction, +1),
])
def test_measured_distortion_follows_strength(tmp_path, name, measure, sign):
  strengths = [0.0, 0.35, 0.7, 1.0]
  values = [measure(_decoded_clip(tmp_path, {name: s} if s else {})) for s in strengths]
  assert np.all(sign * np.diff(values) > 0), values


# Determinism and caching.


def test_same_seed_is_identical(tiny, tmp_path):
  again = synthetic_dataset.generate(str(tmp_path / "again"), TINY, num_workers=1)
  for split in synthetic_metadata.SPLITS:
    with open(tiny.label_files[split], "rb") as a, open(again.label_files[split], "rb") as b:
      assert a.read() == b.read()
  assert _metadata(tiny.metadata_file) == _metadata(again.metadata_file)
  for entry in labels.read_labels(tiny.label_files["train"], tiny.root)[:6]:
    relpath = os.path.relpath(entry.path, tiny.root)
    np.testing.assert_array_equal(_decode(entry.path), _decode(os.path.join(again.root, relpath)))


# The tiny spec's cache key and the SHA-256 of its metadata and of its MANIFEST.json (size and
# BLAKE2b of every generated file: videos, labels, spec, marker), recorded at commit a44b5f3, before
# data/synthetic.py became a package, with
#   python -c "from vqa_jax.data import synthetic; print(synthetic.ensure_dataset('/tmp/d',
#     synthetic.SyntheticSpec.tiny(), num_workers=1).root)"; sha256sum /tmp/d/synthetic_*/*.js*
# The videos' bytes also follow OpenCV's build (opencv-python-headless as pinned in requirements.txt).
TINY_SPEC_DIGEST = "fa6cdc49719f7c4b7dfbab00655c1de78fefee251bbb4f5455caace32e664413"
TINY_METADATA_SHA256 = "e8557a4fad0eb95c26725eb5bed89c5eb68386a666b9ae818b731ed4ae98395d"
TINY_MANIFEST_SHA256 = "c9615abdc74ab0326e96cc88b5c97bd735805eec6c7675e9d1178f513691342f"


def _sha256(path: str) -> str:
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def test_tiny_dataset_matches_the_recorded_bytes(tiny):
  """Cache key, draws and every generated byte as recorded (here with 2 workers, recorded with 1)."""
  assert synthetic_dataset.spec_digest(TINY) == TINY_SPEC_DIGEST
  assert os.path.basename(tiny.root) == f"synthetic_{TINY_SPEC_DIGEST[:16]}"
  assert _sha256(tiny.metadata_file) == TINY_METADATA_SHA256
  assert _sha256(os.path.join(tiny.root, synthetic_cache.MANIFEST_FILE)) == TINY_MANIFEST_SHA256


def test_different_seed_changes_mos():
  specs = [dataclasses.replace(TINY, seed=seed) for seed in (0, 1)]
  mos = [[m["mos"] for m in synthetic_metadata.sample_metadata(spec)] for spec in specs]
  assert mos[0] != mos[1]


def test_cache_is_reused(tiny, cache_dir):
  before = _mtimes(tiny.root)
  again = synthetic_dataset.ensure_dataset(cache_dir, TINY)
  assert again == tiny
  assert _mtimes(tiny.root) == before
  assert sorted(os.listdir(cache_dir)) == [os.path.basename(tiny.root)]  # No temp folders left.


def test_interrupted_generation_leaves_nothing_complete(tmp_path, monkeypatch):
  spec = dataclasses.replace(TINY, num_train=2, num_test=1, num_cross=1, seed=5)

  def fail(*args):
    raise KeyboardInterrupt

  monkeypatch.setattr(synthetic_dataset, "_run_jobs", fail)
  with pytest.raises(KeyboardInterrupt):
    synthetic_dataset.ensure_dataset(str(tmp_path), spec)
  assert os.listdir(tmp_path) == []
  monkeypatch.undo()
  dataset = synthetic_dataset.ensure_dataset(str(tmp_path), spec, num_workers=1)
  assert synthetic_dataset.is_complete(dataset.root, spec)
  assert not synthetic_dataset.is_complete(dataset.root, TINY)


@pytest.mark.integration
def test_cli_writes_where_the_trainer_looks(tiny, tmp_path):
  """--out is a cache folder as $VQA_JAX_CACHE: the CLI reuses (and prints) the trainer's copy."""
  out = tmp_path / "cache"
  shutil.copytree(tiny.root, out / synthetic_dataset.CACHE_SUBDIR / os.path.basename(tiny.root))
  result = subprocess.run(
      [sys.executable, "-m", "vqa_jax.data.synthetic", "--out", str(out), "--preset", "tiny"],
      cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=120)
  trainers = sources.load_splits(ml_collections.ConfigDict(
      {"source": "synthetic", "cache_dir": str(out),
       "synthetic": dataclasses.asdict(TINY)}))
  assert trainers["train"][0].path.startswith(str(out / synthetic_dataset.CACHE_SUBDIR) + os.sep)
  root = out / synthetic_dataset.CACHE_SUBDIR / os.path.basename(tiny.root)
  for split in synthetic_metadata.SPLITS:
    assert os.path.join(str(root), "labels", f"{split}.txt") in result.stdout
  assert "reused" in result.stdout


@pytest.mark.integration
def test_cli_images_go_where_the_trainer_looks(tmp_path):
  """--images writes the IQA image set under --out, where data.source='synthetic_images' finds it."""
  out = tmp_path / "cache"
  command = [sys.executable, "-m", "vqa_jax.data.synthetic", "--images", "--out", str(out),
             "--preset", "tiny"]
  first = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                         timeout=120)
  spec = ImageSpec.tiny()
  root = synthetic_images.dataset_root(str(out), spec)
  assert f"root: {root}" in first.stdout
  assert f"generated {spec.num_train + spec.num_test + spec.num_cross} images" in first.stdout
  splits = sources.load_splits(ml_collections.ConfigDict(
      {"source": "synthetic_images", "cache_dir": str(out),
       "synthetic_images": dataclasses.asdict(spec)}))
  assert {name: len(entries) for name, entries in splits.items()} == {
      "train": spec.num_train, "test": spec.num_test, "cross": spec.num_cross}
  assert all(e.path.startswith(root + os.sep) for e in splits["train"])
  again = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                         timeout=120)
  assert "reused" in again.stdout


def test_damaged_cache_file_is_named_and_regenerated(tiny, tmp_path, caplog):
  cache = tmp_path / "cache"
  copy = cache / os.path.basename(tiny.root)
  shutil.copytree(tiny.root, copy)
  assert synthetic_cache.manifest_problems(str(copy)) == []
  video = copy / tiny_relpath(tiny)
  intact = video.read_bytes()
  video.write_bytes(intact[:len(intact) // 2])
  assert synthetic_cache.manifest_problems(str(copy)) == [
      f"{video}: {len(intact) // 2} bytes, {len(intact)} when generated"]
  dataset = synthetic_dataset.ensure_dataset(str(cache), TINY, num_workers=1)
  assert f"cached data {copy} is damaged, regenerating it: {video}" in caplog.text
  assert video.read_bytes() == intact  # generation is deterministic
  assert synthetic_cache.manifest_problems(dataset.root) == []