"""`python -m vqa_jax.convert_weights --format=...`: format detection, the ResNet-50 -> SimpleVQA
variables, the command on a numpy `.npz` state_dict (no torch), and errors that list the keys."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy import stats

from tests import torch_layouts
from tests.helpers import REPO_ROOT
from tests.helpers import assert_trees_equal
from vqa_jax import families
from vqa_jax.convert import convert_weights
from vqa_jax.convert import pretrained
from vqa_jax.convert import state_dicts
from vqa_jax.models import simple_vqa
from vqa_jax.models.fast_vqa import build_model

TINY_RESNET = dict(stage_sizes=(1, 1, 1, 1), width=4)
# Pooled stages 2..4 of a width-4 trunk: 2 * (32 + 64 + 128) = 448 features, + 6 motion = 454.
TINY_IN_DIM, TINY_HIDDEN = 454, 8


def tiny_simple_vqa_config() -> ml_collections.ConfigDict:
  """A config whose model is a width-4, depth-(1,1,1,1) SimpleVQA with 6 motion features."""
  model = simple_vqa.simple_vqa_config()
  model.update(TINY_RESNET, hidden=TINY_HIDDEN, motion_dim=6)
  return ml_collections.ConfigDict({"model": model})


def imagenet_resnet(seed: int = 0) -> dict[str, np.ndarray]:
  """A torchvision ResNet state_dict (tiny, with its 10-class fc and the BN counters)."""
  return torch_layouts.fake_state_dict(
      torch_layouts.torchvision_resnet_shapes(**TINY_RESNET, num_classes=10), seed)


def regressor(seed: int = 5) -> dict[str, np.ndarray]:
  """SimpleVQA's `quality` nn.Sequential entries for the tiny model."""
  return torch_layouts.fake_state_dict(
      {"quality.0.weight": (TINY_HIDDEN, TINY_IN_DIM), "quality.0.bias": (TINY_HIDDEN,),
       "quality.1.weight": (1, TINY_HIDDEN), "quality.1.bias": (1,)}, seed)


def _zeros(shapes):
  return {k: np.zeros(s, np.float32) for k, s in shapes.items()}


SIGNATURES = {
    "fast_vqa": {"fragments_backbone.norm.weight": (8,), "vqa_head.fc_last.bias": (1,)},
    "fast_vqa (Kinetics)": {"backbone.norm.weight": (8,), "cls_head.fc_cls.bias": (400,)},
    "swin2d": {"patch_embed.proj.weight": (8, 3, 4, 4), "layers.0.blocks.0.norm1.weight": (8,),
               "head.weight": (1000, 8)},
    "resnet50": torch_layouts.torchvision_resnet_shapes(**TINY_RESNET, num_classes=10),
    "simple_vqa": torch_layouts.torchvision_resnet_shapes(**TINY_RESNET, num_classes=None)
                  | {"quality.0.weight": (8, 454), "quality.1.bias": (1,)},
    "slowfast_r50": torch_layouts.pytorchvideo_slowfast_shapes(stage_sizes=(1, 1, 1, 1),
                                                               width=16),
}


@pytest.mark.parametrize("label", sorted(SIGNATURES))
def test_detect_format(label):
  """Each family is told from its keys, also wrapped and with DataParallel's `module.` prefix."""
  state = _zeros(SIGNATURES[label])
  expected = label.split(" ")[0]
  assert convert_weights.detect_format(state) == expected
  wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}
  assert convert_weights.detect_format(wrapped) == expected


def test_undetectable_file_lists_what_was_seen():
  """A 3D Video Swin without the `backbone.` prefix (5-D patch embedding) fits no format."""
  state = _zeros({"patch_embed.proj.weight": (8, 3, 2, 4, 4),
                  "layers.0.blocks.0.norm1.weight": (8,), "encoder.w": (2,)})
  with pytest.raises(ValueError) as err:
    convert_weights.detect_format(state)
  message = str(err.value)
  assert "3 tensors, top-level names ['encoder', 'layers', 'patch_embed']" in message
  assert "first keys ['encoder.w', 'layers.0.blocks.0.norm1.weight', " in message
  for name in convert_weights.FORMATS:
    assert f"{name}: " in message
  assert "--format" in message


def test_ambiguous_keys_are_an_error():
  state = _zeros({"backbone.norm.weight": (8,),
                  "blocks.0.multipathway_blocks.0.conv.weight": (8, 3, 1, 7, 7)})
  with pytest.raises(ValueError, match=r"several formats \['fast_vqa', 'slowfast_r50'\]"):
    convert_weights.detect_format(state)


@pytest.fixture(scope="module")
def resnet50_result(fast_compile):  # pylint: disable=unused-argument
  """`convert` of a tiny ImageNet ResNet (auto format) onto the tiny SimpleVQA, seed 3."""
  options = convert_weights.Options(config=tiny_simple_vqa_config(), seed=3)
  return convert_weights.convert(imagenet_resnet(), "auto", options)


def test_resnet50_gives_full_simple_vqa_variables(resnet50_result):
  """The trunk lands, transposed, under params/backbone; running stats under batch_stats."""
  state = imagenet_resnet()
  result = resnet50_result
  assert (result.format, result.model) == ("resnet50", "config")
  variables = result.variables
  assert set(variables) == {"params", "batch_stats"}
  assert set(variables["params"]) == {"backbone", "head"} and set(variables["batch_stats"]) == {
      "backbone"}
  trunk, running = variables["params"]["backbone"], variables["batch_stats"]["backbone"]
  np.testing.assert_array_equal(trunk["conv1"]["kernel"],
                                state["conv1.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(trunk["layer3_0"]["downsample_conv"]["kernel"],
                                state["layer3.0.downsample.0.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(trunk["layer4_0"]["bn2"]["scale"], state["layer4.0.bn2.weight"])
  np.testing.assert_array_equal(running["bn1"]["mean"], state["bn1.running_mean"])
  np.testing.assert_array_equal(running["layer2_0"]["downsample_bn"]["var"],
                                state["layer2.0.downsample.1.running_var"])
  # Every kept tensor, and nothing else, is in the trunk (transposes keep the multiset of values).
  kept = [v for k, v in state.items() if not k.startswith("fc.") and "num_batches" not in k]
  trunk_leaves = jax.tree.leaves((trunk, running))
  assert len(trunk_leaves) == len(kept)
  np.testing.assert_array_equal(np.sort(np.concatenate([np.ravel(v) for v in trunk_leaves])),
                                np.sort(np.concatenate([np.ravel(v) for v in kept])))
  model = simple_vqa.build_simple_vqa(tiny_simple_vqa_config().model)
  abstract = families.abstract_variables(tiny_simple_vqa_config().model)
  assert jax.tree.map(np.shape, variables) == jax.tree.map(lambda s: s.shape, abstract)
  frames = np.full((1, 2, 64, 64, 3), 128, np.uint8)  # layer4 2x2: a defined std.
  scores = model.apply(variables, frames, np.zeros((1, 2, 6), np.float32), train=False)
  assert scores.shape == (1, 2) and np.all(np.isfinite(scores))


def test_resnet50_head_is_fresh_pytorch_linear_init(resnet50_result):
  """Regressor Linear(454 -> 8) -> Linear(8 -> 1) ~ U(+-1/sqrt(fan_in)), reported as initialised."""
  head = resnet50_result.variables["params"]["head"]
  assert jax.tree.map(np.shape, head) == {"hidden": {"kernel": (TINY_IN_DIM, TINY_HIDDEN),
                                                     "bias": (TINY_HIDDEN,)},
                                          "out": {"kernel": (TINY_HIDDEN, 1), "bias": (1,)}}
  bound = 1 / np.sqrt(TINY_IN_DIM)
  values = np.concatenate([np.ravel(head["hidden"]["kernel"]), np.ravel(head["hidden"]["bias"])])
  assert stats.kstest(values, stats.uniform(-bound, 2 * bound).cdf).pvalue > 1e-3
  out = np.concatenate([np.ravel(head["out"]["kernel"]), np.ravel(head["out"]["bias"])])
  assert np.all(np.abs(out) <= 1 / np.sqrt(TINY_HIDDEN)) and np.unique(out).size == 9
  assert resnet50_result.filled == {f"params/head/{layer}/{leaf}": "absent"
                                    for layer in ("hidden", "out") for leaf in ("kernel", "bias")}
  printed = convert_weights.summary(resnet50_result, "DIR", seed=3).splitlines()
  assert printed == [
      "saved DIR: format resnet50, model config, collections ['batch_stats', 'params']",
      "initialised, not read from the checkpoint (seed 3): 4 leaves: params/head/hidden/bias "
      "(absent), params/head/hidden/kernel (absent), params/head/out/bias (absent), "
      "params/head/out/kernel (absent)"]
  again = convert_weights.convert(imagenet_resnet(), "resnet50", convert_weights.Options(
      config=tiny_simple_vqa_config(), seed=3)).variables["params"]["head"]
  other = convert_weights.convert(imagenet_resnet(), "resnet50", convert_weights.Options(
      config=tiny_simple_vqa_config(), seed=4)).variables["params"]["head"]
  np.testing.assert_array_equal(again["hidden"]["kernel"], head["hidden"]["kernel"])
  assert not np.array_equal(other["hidden"]["kernel"], head["hidden"]["kernel"])


def test_simple_vqa_checkpoint_keeps_its_regressor():
  state = imagenet_resnet() | regressor()
  del state["fc.weight"], state["fc.bias"]
  result = convert_weights.convert(state, "auto", convert_weights.Options(
      config=tiny_simple_vqa_config()))
  assert result.format == "simple_vqa" and result.filled == {}
  head = result.variables["params"]["head"]
  np.testing.assert_array_equal(head["hidden"]["kernel"], state["quality.0.weight"].T)
  np.testing.assert_array_equal(head["out"]["bias"], state["quality.1.bias"])


def test_errors_list_every_key_and_name_the_file(tmp_path):
  """Missing, unknown and mis-shaped tensors of a ResNet file, all in one error naming it."""
  state = imagenet_resnet()
  del state["layer2.0.bn1.running_var"]
  state["layer5.0.conv1.weight"] = np.zeros((4, 4, 1, 1), np.float32)
  state["layer1.0.conv2.weight"] = np.zeros((4, 4, 1, 1), np.float32)
  np.savez(tmp_path / "bad.npz", **state)
  options = convert_weights.Options(config=tiny_simple_vqa_config())
  with pytest.raises(ValueError) as err:
    convert_weights.convert_file(str(tmp_path / "bad.npz"), str(tmp_path / "out"), "auto", options)
  message = str(err.value)
  assert message.startswith(f"{tmp_path / 'bad.npz'}: checkpoint does not match the model: ")
  assert "1 missing keys ['layer2.0.bn1.running_var']" in message
  assert "1 unknown keys ['layer5.0.conv1.weight']" in message
  assert "layer1.0.conv2.weight: checkpoint (4, 4, 1, 1), model expects (4, 4, 3, 3)" in message
  assert not (tmp_path / "out").exists()


def test_options_that_do_not_apply_are_errors():
  with pytest.raises(ValueError, match="--model=fast_vqa_m applies to fast_vqa"):
    convert_weights.convert(imagenet_resnet(), "auto", convert_weights.Options(model="fast_vqa_m"))
  smoke = ml_collections.ConfigDict({"model": {"name": "fast_vqa"}})
  with pytest.raises(ValueError, match="model is 'fast_vqa', this format converts to a "
                     "'simple_vqa' model"):
    convert_weights.convert(imagenet_resnet(), "resnet50", convert_weights.Options(config=smoke))
  with pytest.raises(ValueError, match="no SimpleVQA regressor keys.*--format=resnet50"):
    convert_weights.convert(imagenet_resnet(), "simple_vqa")
  with pytest.raises(ValueError, match="unknown format 'resnet18'"):
    convert_weights.convert(imagenet_resnet(), "resnet18")


def test_npz_reader_unwraps_and_names_bad_files(tmp_path):
  np.savez(tmp_path / "sd.npz", **{"module.conv1.weight": np.ones((2, 3), np.float32)})
  assert list(state_dicts.read_state_dict(str(tmp_path / "sd.npz"))) == ["conv1.weight"]
  (tmp_path / "broken.npz").write_bytes(b"not a zip")
  with pytest.raises(ValueError, match="broken.npz: not a readable numpy .npz"):
    state_dicts.read_state_dict(str(tmp_path / "broken.npz"))
  np.savez(tmp_path / "empty.npz")
  with pytest.raises(ValueError, match="empty.npz: no tensors found"):
    state_dicts.read_state_dict(str(tmp_path / "empty.npz"))


@pytest.mark.integration
def test_cli_converts_an_npz_without_torch(tmp_path):
  """`python -m vqa_jax.convert_weights` on a numpy state_dict of the smoke model (official
  FAST-VQA keys), then `pretrained.load_variables`; the printout names the format and model."""
  cfg = convert_weights.load_config_file(REPO_ROOT / "configs" / "smoke.py").model
  video = jnp.zeros((1, 4, 32, 32, 3), jnp.uint8)
  params = jax.tree.map(np.asarray, build_model(cfg).init(jax.random.key(2), video,
                                                          train=False)["params"])
  np.savez(tmp_path / "fast.npz", **convert_weights.to_state_dict(params))
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), *sys.path]))
  result = subprocess.run(
      [sys.executable, "-m", "vqa_jax.convert_weights", f"--src={tmp_path / 'fast.npz'}",
       f"--dst={tmp_path / 'out'}", "--format=auto", "--config=configs/smoke.py"],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"saved {tmp_path / 'out'}: format fast_vqa, model config, collections ['params']" in (
      result.stdout)
  loaded = pretrained.load_variables(str(tmp_path / "out"))
  assert list(loaded) == ["params"]
  assert_trees_equal(loaded["params"], params)
