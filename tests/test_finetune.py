"""Fine-tuning protocol (paper §7.6): per-split schedules, mean ± std, an end-to-end run."""

import json

import jax
import numpy as np
import pytest

from tests.helpers import assert_trees_equal
from tests.helpers import load_config
from tests.helpers import paper_config
from tests.helpers import saved_params
from vqa_jax import families
from vqa_jax.config import perturb_config
from vqa_jax.training import checkpointing
from vqa_jax.training import finetune
from vqa_jax.training import optim
from vqa_jax.runtime import sharding
from vqa_jax.training import trainer


@pytest.mark.parametrize("name,num_train,iters", [("finetune_konvid", 960, 60),
                                                  ("finetune_livevqc", 468, 30),
                                                  ("finetune_youtube_ugc", 832, 52)])
def test_split_schedule_matches_the_reference(name, num_train, iters):
  # Paper §7.6: I = 60 / 30 / 52, warmup 2.5 I, cosine M = 30 I, 10 linear-probe epochs.
  cfg = finetune.split_config(paper_config(name), 42, num_train)
  assert cfg.train.steps == cfg.train.cosine_steps == 30 * iters
  assert cfg.train.warmup_steps == int(2.5 * iters)
  assert cfg.train.freeze_backbone_steps == 10 * iters
  assert cfg.train.eval_every == iters
  assert (cfg.seed, cfg.data.train_split, cfg.data.eval_splits) == (42, "ft_train", ("ft_test",))
  if name == "finetune_konvid":
    assert (cfg.train.warmup_steps, cfg.train.cosine_steps) == (150, 1800)  # paper §10 item 10


def test_mean_and_sample_std_over_splits():
  per_split = [{"ema": {"srcc": 0.8}}, {"ema": {"srcc": 0.9}}, {"ema": {"srcc": 0.85}}]
  summary = finetune.aggregate(per_split)
  assert summary["ema"]["srcc"]["mean"] == pytest.approx(0.85)
  assert summary["ema"]["srcc"]["std"] == pytest.approx(np.std([0.8, 0.9, 0.85], ddof=1))
  assert finetune.aggregate(per_split[:1])["ema"]["srcc"]["std"] == 0.0


@pytest.mark.slow
@pytest.mark.usefixtures("fast_compile")
def test_two_split_linear_probe_from_a_checkpoint(tmp_path, monkeypatch):
  """Smoke model on the tiny synthetic 'train' split (16 videos): two seeds, 2 linear-probe steps.

  Starts from a saved state of other weights (seed 7); the probe leaves its backbone bit for bit.
  """
  monkeypatch.setenv("VQA_JAX_CACHE", str(tmp_path / "cache"))
  config = load_config("smoke")
  mesh = sharding.make_mesh()
  other = config.copy_and_resolve_references()
  other.seed = 7
  init = trainer.init_state(families.build(other), optim.make_optimizer(config.train),
                            perturb_config.PerturbConfig.from_config(other.perturb), other.seed, mesh)
  manager = checkpointing.checkpoint_manager(str(tmp_path / "lsvq_run"))
  checkpointing.save(manager, 0, init)
  manager.wait_until_finished()

  config.init.checkpoint = str(tmp_path / "lsvq_run")
  config.finetune.dataset = "train"
  config.finetune.seeds = (1, 2)
  config.finetune.train_fraction = 0.5  # 8 train (one batch = one epoch) / 8 test videos
  config.finetune.epochs = 2
  config.finetune.probe_epochs = 2
  config.finetune.warmup_epochs = 1
  result = finetune.finetune(config, str(tmp_path / "ft"))
  assert result["seeds"] == [1, 2] and set(result["final"]) == {"raw", "ema"}
  srcc = result["final"]["ema"]["srcc"]
  per_seed = []
  for seed in (1, 2):
    results_file = tmp_path / "ft" / f"seed_{seed}" / "results.jsonl"
    records = [json.loads(line) for line in open(results_file)]
    assert records[-1]["step"] == 2
    per_seed.append(records[-1]["results"]["ft_test"]["ema"]["srcc"])
  assert srcc["mean"] == pytest.approx(np.mean(per_seed))
  assert srcc["std"] == pytest.approx(np.std(per_seed, ddof=1))
  assert json.load(open(tmp_path / "ft" / "finetune_summary.json")) == result
  logged = [json.loads(line) for line in open(tmp_path / "ft" / "seed_1" / "metrics.jsonl")]
  assert [(r["step"], r["lr_backbone"]) for r in logged] == [(2, 0.0)]
  tuned = saved_params(str(tmp_path / "ft" / "seed_1"))["params"]
  start = jax.device_get(init.params)
  assert_trees_equal(tuned["backbone"], start["backbone"])
  assert not np.array_equal(tuned["head"]["fc_last"]["kernel"],
                            start["head"]["fc_last"]["kernel"])

