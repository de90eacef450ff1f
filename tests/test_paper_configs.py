"""The paper's experiment configs (configs/paper/): they validate, point at the FAST-VQA label
layout, and their schedules follow paper §7.3 / §7.6."""

import os

import pytest

from tests.helpers import load_config
from tests.helpers import paper_config
from vqa_jax.config import validation

LSVQ_CONFIGS = ["lsvq_fast_vqa_b", "lsvq_fast_vqa_b_wd", "lsvq_fast_vqa_b_aua",
                "lsvq_fast_vqa_b_rwp", "lsvq_fast_vqa_b_awp", "sama_awp", "lsvq_simple_vqa_awp"]
FINETUNE_CONFIGS = ["finetune_konvid", "finetune_livevqc", "finetune_youtube_ugc"]


@pytest.mark.parametrize("name", LSVQ_CONFIGS + FINETUNE_CONFIGS)
def test_paper_configs_validate(name):
  validation.validate(paper_config(name))


def test_variants_differ_from_the_baseline_only_where_the_paper_says():
  base = paper_config("lsvq_fast_vqa_b")
  assert (base.perturb.kind, base.train.weight_decay, base.data.augment) == ("none", 0.05, "none")
  assert paper_config("lsvq_fast_vqa_b_wd").train.weight_decay == 5e-4
  assert paper_config("lsvq_fast_vqa_b_aua").data.augment == "autoaugment"
  for name, kind in [("lsvq_fast_vqa_b_rwp", "rwp"), ("lsvq_fast_vqa_b_awp", "awp")]:
    config = paper_config(name)
    assert (config.perturb.kind, config.perturb.gamma) == (kind, 1e-4)  # paper §1.1
  sama = paper_config("sama_awp")
  assert (sama.sampling.method, sama.perturb.kind, sama.train.batch_size) == ("sama", "awp", 12)


def test_lsvq_schedule_in_epochs():
  # 95% of LSVQ-train's 28,056 videos at batch 16: I = ceil(26653 / 16) = 1666 (paper §7.3 with
  # the validation hold-out); 30 epochs, warmup 2.5 epochs, evaluation once per epoch.
  c = paper_config("lsvq_fast_vqa_b_awp")
  assert (c.train.steps, c.train.cosine_steps, c.train.warmup_steps, c.train.eval_every) == (
      30 * 1666, 30 * 1666, 4165, 1666)
  assert c.data.eval_splits == ("lsvq_test", "lsvq_1080p", "konvid", "livevqc", "youtube_ugc")
  assert c.data.val_split == "lsvq_val" and c.data.val_fraction == 0.05


def test_label_files_resolve_against_the_shared_labels(shared_dir):
  c = paper_config("lsvq_fast_vqa_b_awp", f"{shared_dir}/labels,/data/videos")
  for name, spec in c.data.label_files.items():
    label_file, _, root = spec.partition(":")
    assert os.path.isfile(label_file), name
    assert root.startswith("/data/videos/")
  with pytest.raises(ValueError, match="LABELS_DIR,VIDEOS_DIR"):
    paper_config("lsvq_fast_vqa_b", "only_one_dir")


def test_simple_vqa_awp_follows_the_reference_recipe():
  # Upstream SimpleVQA (paper §6.3): 10 epochs of batch 8 on the 95% training part,
  # I = ceil(26653 / 8) = 3332; StepLR every 2 epochs x0.95; Adam 1e-5 with coupled L2 1e-7.
  c = paper_config("lsvq_simple_vqa_awp", "/l,/v,/m")
  assert (c.model.name, c.sampling.method, c.sampling.clip_len) == ("simple_vqa", "frames_1fps", 8)
  assert (c.sampling.short_side, c.sampling.crop) == (520, 448)
  assert (c.train.steps, c.train.lr_step_every, c.train.eval_every) == (33320, 6664, 3332)
  assert (c.train.optimizer, c.train.learning_rate, c.train.weight_decay) == ("adam_l2", 1e-5, 1e-7)
  assert (c.train.schedule, c.train.lr_step_gamma, c.train.ema_decay) == ("step", 0.95, 0.0)
  assert (c.perturb.kind, c.perturb.gamma) == ("awp", 1e-4)
  assert c.data.motion_dir == "/m" and c.data.label_files.konvid == "/l/KoNViD/labels.txt:/v/KoNViD"
  assert paper_config("lsvq_simple_vqa_awp", "/l,/v").data.motion_dir == "/v/simplevqa_motion"
  with pytest.raises(ValueError, match="MOTION_DIR"):
    paper_config("lsvq_simple_vqa_awp", "/l,/v,/m,/x")


@pytest.mark.parametrize("name", ["simple_vqa", "simple_vqa_demo"])
def test_simple_vqa_configs_validate_once_motion_features_are_given(name):
  config = load_config(name)
  with pytest.raises(ValueError, match="data.motion_dir"):
    validation.validate(config)
  config.data.motion_dir = "/m"
  validation.validate(config)
