"""SlowFast-R50 motion-feature extractor against pytorchvideo (paper §6.3)."""

import functools
import json

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from tests import torch_layouts
from tests import video_files
from tests.helpers import load_config
from vqa_jax.config import sections
from vqa_jax.convert import convert_resnet
from vqa_jax.convert import convert_weights
from vqa_jax.convert import pretrained
from vqa_jax.data import motion_chunks
from vqa_jax.models import slowfast
from vqa_jax.scoring import motion_features


GOLDENS = "tests/golden/simplevqa_goldens.npz"

pytestmark = pytest.mark.usefixtures("fast_compile")  # Cheaper XLA compiles.
TINY = dict(stage_sizes=(1, 1, 1, 1), width=16, head_pool=((2, 2, 2), (8, 2, 2)))


def _count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _upsample(lowres):
  """The goldens store (B, T, h, w, 3) clips; the model saw them repeated 8x in h and w."""
  return np.repeat(np.repeat(lowres, 8, axis=2), 8, axis=3)


def _features_of_golden(model, state, lowres):
  params, stats = convert_resnet.convert_slowfast_r50_state_dict(state, model)
  features = jax.jit(functools.partial(slowfast.chunk_features, model))(
      {"params": params, "batch_stats": stats}, _upsample(lowres))
  return np.asarray(features)


def test_slowfast_r50_parameter_count():
  """pytorchvideo slowfast_r50 has 34,566,488 parameters (model zoo: 34.57 M); without its head
  Linear(2304 -> 400) (922,000) the trunk has 33,644,488, plus 60,688 running statistics.

  Recorded with torch 2.13.0 + pytorchvideo 0.1.5: sum(p.numel() for p in
  slowfast_r50(pretrained=False).parameters()) and the same over `blocks.6.*` and the buffers.
  """
  variables = convert_resnet.abstract_slowfast(slowfast.slowfast_r50())
  assert _count(variables["params"]) == 34_566_488 - (2304 * 400 + 400) == 33_644_488
  assert _count(variables["batch_stats"]) == 60_688
  shapes = torch_layouts.pytorchvideo_slowfast_shapes(num_classes=None)
  assert _count(variables["params"]) == sum(
      int(np.prod(s)) for k, s in shapes.items() if k.endswith(("weight", "bias")))


def test_slowfast_r50_feature_dims():
  """Slow 2048 + fast 256 = 2304 per one-second chunk of 32 frames at 224x224."""
  model = slowfast.slowfast_r50()
  variables = convert_resnet.abstract_slowfast(model)
  chunks = jax.ShapeDtypeStruct((3, 32, 224, 224, 3), jnp.uint8)
  out = jax.eval_shape(functools.partial(slowfast.chunk_features, model), variables, chunks)
  assert out.shape == (3, 2304)


def test_pool_window_larger_than_map_is_an_error():
  """At 112x112 the final 4x4 map is smaller than the (8, 7, 7) AvgPool3d window (PyTorch fails too)."""
  model = slowfast.slowfast_r50()
  variables = convert_resnet.abstract_slowfast(model)
  chunks = jax.ShapeDtypeStruct((1, 32, 112, 112, 3), jnp.uint8)
  with pytest.raises(ValueError, match="too small"):
    jax.eval_shape(functools.partial(slowfast.chunk_features, model), variables, chunks)


def test_slow_indices():
  """torch.linspace(0, 31, 8).long() = 0, 4.43, 8.86, 13.3, 17.7, 22.1, 26.6, 31 truncated."""
  np.testing.assert_array_equal(slowfast.slow_indices(32), [0, 4, 8, 13, 17, 22, 26, 31])
  np.testing.assert_array_equal(slowfast.slow_indices(8), [0, 7])


def test_pool_features_is_avgpool_then_mean():
  """A 3x3 map pooled by a 2x2 window (stride 1) weighs the centre 4x, the corners 1x."""
  x = jnp.arange(9.0).reshape(1, 1, 3, 3, 1)
  window_means = [(0 + 1 + 3 + 4) / 4, (1 + 2 + 4 + 5) / 4, (3 + 4 + 6 + 7) / 4, (4 + 5 + 7 + 8) / 4]
  np.testing.assert_allclose(slowfast.pool_features(x, (1, 2, 2)), [[np.mean(window_means)]])


def test_convert_round_trip_tiny():
  """Stems, lateral fusions and both pathways' blocks map to their Flax leaves; the head is dropped."""
  model = slowfast.SlowFast(**TINY)
  shapes = torch_layouts.pytorchvideo_slowfast_shapes(stage_sizes=(1, 1, 1, 1), width=16,
                                                      num_classes=10)
  state = torch_layouts.fake_state_dict(shapes)
  params, stats = convert_resnet.convert_slowfast_r50_state_dict(state, model)
  np.testing.assert_array_equal(
      params["stem_fast"]["conv"]["kernel"],
      state["blocks.0.multipathway_blocks.1.conv.weight"].transpose(2, 3, 4, 1, 0))
  np.testing.assert_array_equal(
      params["fusion_2"]["conv"]["kernel"][:, 0, 0],
      state["blocks.2.multipathway_fusion.conv_fast_to_slow.weight"][:, :, :, 0, 0].transpose(
          2, 1, 0))
  np.testing.assert_array_equal(
      params["stage3_slow"]["block_0"]["conv_a"]["kernel"].shape, (3, 1, 1, 160, 64))
  np.testing.assert_array_equal(
      stats["stage4_fast"]["block_0"]["branch1_norm"]["var"],
      state["blocks.4.multipathway_blocks.1.res_blocks.0.branch1_norm.running_var"])
  kept = [k for k in shapes if not k.startswith("blocks.6.") and "num_batches" not in k]
  assert len(jax.tree.leaves((params, stats))) == len(kept)


def test_convert_rejects_unknown_keys():
  """A key of a fifth fusion (pytorchvideo has none after stage 4) is reported."""
  shapes = torch_layouts.pytorchvideo_slowfast_shapes(stage_sizes=(1, 1, 1, 1), width=16)
  state = torch_layouts.fake_state_dict(shapes)
  state["blocks.4.multipathway_fusion.norm.weight"] = np.ones(4, np.float32)
  with pytest.raises(ValueError, match=r"unknown keys \['blocks.4.multipathway_fusion"):
    convert_resnet.convert_slowfast_r50_state_dict(state, slowfast.SlowFast(**TINY))


def test_tiny_slowfast_matches_pytorchvideo():
  """Features of a depth-18, width-16 pytorchvideo SlowFast with the same fake weights (golden).

  Golden: python tests/golden/make_simplevqa_goldens.py --simplevqa_model=... --out=...
  (pytorchvideo 0.1.5 create_slowfast, eval mode, SimpleVQA's pooling).
  """
  goldens = np.load(GOLDENS)
  shapes = torch_layouts.pytorchvideo_slowfast_shapes(stage_sizes=(1, 1, 1, 1), width=16,
                                                      num_classes=10)
  features = _features_of_golden(slowfast.SlowFast(**TINY), torch_layouts.fake_state_dict(
      shapes, seed=2), goldens["slowfast_tiny_clips_lowres"])
  np.testing.assert_allclose(features, goldens["slowfast_tiny_features"], rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_slowfast_r50_matches_pytorchvideo():
  """The full slowfast_r50 on one 32x224x224 chunk with fake weights (golden, as above)."""
  goldens = np.load(GOLDENS)
  state = torch_layouts.fake_state_dict(torch_layouts.pytorchvideo_slowfast_shapes(), seed=2)
  features = _features_of_golden(slowfast.slowfast_r50(), state, goldens["slowfast_r50_clips_lowres"])
  np.testing.assert_allclose(features, goldens["slowfast_r50_features"], rtol=1e-3, atol=1e-3)


def test_chunk_indices_follow_the_reference():
  """Chunk i = frames i*round(fps) .. +len-1, past-end frames clamped, short videos padded."""
  np.testing.assert_array_equal(
      motion_chunks.chunk_indices(25, 10.0, chunk_len=8, min_chunks=3),
      [list(range(0, 8)), list(range(10, 18)), list(range(10, 18))])
  np.testing.assert_array_equal(
      motion_chunks.chunk_indices(12, 5.2, chunk_len=8, min_chunks=1),
      [list(range(0, 8)), [5, 6, 7, 8, 9, 10, 11, 11]])
  np.testing.assert_array_equal(  # Shorter than a second: one chunk (the reference crashes).
      motion_chunks.chunk_indices(5, 9.6, chunk_len=8, min_chunks=2),
      [[0, 1, 2, 3, 4, 4, 4, 4]] * 2)


def _motion_config():
  cfg = sections.motion_config()
  cfg.update(stage_sizes=(1, 1, 1, 1), width=16, head_pool=((1, 1, 1), (4, 1, 1)), resize=32,
             chunk_len=8, min_chunks=3, batch_chunks=2)
  return cfg


def test_feature_command_writes_one_file_per_video(tmp_path):
  """Two lossless videos -> <rel>.npy of (chunks, 512 + 64) and index.json; reruns keep files."""
  frames_a = video_files.random_frames(25, 20, 24, seed=1)
  (tmp_path / "videos" / "sub").mkdir(parents=True)
  video_files.write_video(tmp_path / "videos" / "sub" / "a.mkv", frames_a, fps=10.0)
  video_files.write_video(tmp_path / "videos" / "b.mkv", video_files.random_frames(5, 20, 24),
                          fps=10.0)
  labels = tmp_path / "labels.txt"
  labels.write_text("sub/a.mkv, 2.5, 10, 50.0\nb.mkv, 0.5, 10, 20.0\n")
  config = load_config("simple_vqa")
  config.data.label_files = ml_collections.ConfigDict(
      {"train": f"{labels}:{tmp_path / 'videos'}"})
  config.motion = _motion_config()
  out = tmp_path / "out"
  out.mkdir()
  extractor = motion_features.make_extractor(config.motion)
  index = motion_features.extract_features(config, str(out), extractor)
  assert sorted(index.values()) == ["b.npy", "sub/a.npy"]
  assert json.loads((out / "index.json").read_text()) == index
  features_a = np.load(out / "sub" / "a.npy")
  assert features_a.shape == (3, 576) and np.load(out / "b.npy").shape == (3, 576)
  resized = motion_chunks.resize_frames(frames_a, 32)
  expected = extractor(resized[np.array([range(0, 8), range(10, 18)])])
  np.testing.assert_allclose(features_a, expected[[0, 1, 1]], rtol=1e-5, atol=1e-6)
  (out / "b.npy").write_bytes(b"kept")
  motion_features.extract_features(config, str(out))
  assert (out / "b.npy").read_bytes() == b"kept"


def test_converted_slowfast_dir_is_what_the_feature_command_loads(tmp_path):
  """convert_weights (auto -> slowfast_r50, --config's motion section) writes the orbax dir that
  `config.motion.weights` reads; the .npz itself loads to the same variables; a dir of another
  model is an error naming it."""
  shapes = torch_layouts.pytorchvideo_slowfast_shapes(stage_sizes=(1, 1, 1, 1), width=16,
                                                      num_classes=10)
  state = torch_layouts.fake_state_dict(shapes, seed=4)
  np.savez(tmp_path / "slowfast.npz", **state)
  motion = _motion_config()
  options = convert_weights.Options(config=ml_collections.ConfigDict({"motion": motion}))
  result = convert_weights.convert_file(str(tmp_path / "slowfast.npz"), str(tmp_path / "sf"),
                                        options=options)
  assert (result.format, result.model, result.filled) == ("slowfast_r50", "config.motion", {})
  model = motion_features.build_extractor(motion)
  params, batch_stats = convert_resnet.convert_slowfast_r50_state_dict(state, model)
  np.testing.assert_array_equal(batch_stats["stem_slow"]["norm"]["mean"],
                                state["blocks.0.multipathway_blocks.0.norm.running_mean"])
  expected = {"params": params, "batch_stats": batch_stats}
  for weights in (tmp_path / "sf", tmp_path / "slowfast.npz"):
    motion.weights = str(weights)
    loaded = motion_features.load_extractor_variables(motion, model)
    chex.assert_trees_all_equal(loaded, expected)
  motion.weights = str(tmp_path / "sf")
  with pytest.raises(pretrained.CheckpointError, match=r"sf \['params'\] does not fit.*"
                     r"fusion_0/conv/kernel: saved \(7, 1, 1, 2, 4\) vs model \(7, 1, 1, 1, 2\)"):
    motion_features.load_extractor_variables(motion, slowfast.SlowFast(
        (1, 1, 1, 1), 8, head_pool=((1, 1, 1), (4, 1, 1))))
