"""The IQA configs: they validate, build a 2D Swin-T, and train end to end on synthetic images."""

import json
import os

import flax
import numpy as np
import pytest

from tests.helpers import load_config
from vqa_jax.config import validation
from vqa_jax import families

# timm / Microsoft swin_tiny_patch4_window7_224: 28,288,354 parameters, of which the ImageNet
# classifier holds 768 * 1000 + 1000 = 769,000.
SWIN_T_2D_TRUNK = 28_288_354 - 769_000
VQA_HEAD = 768 * 64 + 64 + 64 + 1  # paper §6.1: 49,281


def test_iqa_swin_t_is_the_2d_swin_t_with_the_vqa_head():
  config = load_config("iqa_swin_t")
  validation.validate(config)
  assert (config.sampling.clip_len, config.sampling.grid * config.sampling.patch) == (1, 224)
  assert (config.train.batch_size, config.train.steps, config.train.warmup_steps) == (64, 6250, 625)
  params = families.abstract_variables(config.model)["params"]
  counts = {top: sum(int(np.prod(v.shape))
                     for v in flax.traverse_util.flatten_dict(tree).values())
            for top, tree in params.items()}
  assert counts == {"backbone": SWIN_T_2D_TRUNK, "head": VQA_HEAD}


def test_iqa_demo_generates_its_images_and_validates(tmp_path, monkeypatch):
  from vqa_jax.data import sources  # pylint: disable=g-import-not-at-top
  monkeypatch.setenv("VQA_JAX_CACHE", str(tmp_path))
  config = load_config("iqa_demo:tiny")
  validation.validate(config)
  assert not os.listdir(tmp_path)  # loading the config generates nothing
  splits = sources.load_splits(config.data)
  assert {k: len(v) for k, v in splits.items()} == {"train": 16, "test": 8, "cross": 8}
  assert all(e.path.startswith(str(tmp_path)) and os.path.isfile(e.path) for e in splits["train"])
  with pytest.raises(ValueError, match="iqa_demo.py:huge: the preset must be one of"):
    load_config("iqa_demo:huge")


@pytest.mark.slow
@pytest.mark.usefixtures("fast_compile")
def test_iqa_demo_trains_end_to_end(tmp_path, monkeypatch):
  """4 AWP steps of a 1-stage-wide IQA model on the tiny synthetic image set; finite metrics."""
  from vqa_jax.training import trainer  # pylint: disable=g-import-not-at-top  (TensorFlow)
  monkeypatch.setenv("VQA_JAX_CACHE", str(tmp_path / "cache"))
  config = load_config("iqa_demo:tiny")
  config.model.embed_dim = 16
  config.model.depths = (1, 1)
  config.model.num_heads = (1, 2)
  config.train.update(steps=4, batch_size=8, log_every=2, checkpoint_every=4, warmup_steps=1,
                      cosine_steps=4)
  config.eval.batch_size = 8
  trainer.train(config, str(tmp_path / "work"))
  results = [json.loads(line) for line in open(tmp_path / "work" / "results.jsonl")]
  metrics = results[-1]["results"]
  assert set(metrics) == {"test", "cross"}
  for split in metrics.values():
    for model_metrics in split.values():
      assert all(np.isfinite(model_metrics[k]) for k in ("srcc", "plcc", "krcc", "rmse"))
  scalars = [json.loads(line) for line in open(tmp_path / "work" / "metrics.jsonl")]
  logged = [s for s in scalars if "loss" in s]
  assert logged and all(np.isfinite(s["loss"]) for s in logged)
  assert all(s["perturbation_norm"] > 0 for s in logged)  # AWP is on


def test_iqa_swin_t_splits_variant_is_samas_protocol():
  config = load_config("iqa_swin_t:splits")
  validation.validate(config)
  assert dict(config.data.label_files) == {"koniq": ""} and config.finetune.dataset == "koniq"
  # Upstream IQA/demo_train_iqa_baseline.py: random.Random(ii * 123) for ii in range(10), 80 %.
  assert list(config.finetune.seeds) == [0, 123, 246, 369, 492, 615, 738, 861, 984, 1107]
  assert (config.finetune.train_fraction, config.finetune.epochs,
          config.finetune.probe_epochs, config.finetune.warmup_epochs) == (0.8, 50, 0, 5)
