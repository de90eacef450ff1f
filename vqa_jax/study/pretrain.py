"""The pretraining stage: the backbone starts pretrained, as the paper's Kinetics-400 Swin does.

On the embedded data the pretraining pool is a second synthetic dataset (its own `seed`, so other
videos than the labelled set's) of `num_videos` domain-A videos, trained with the quality loss and
no perturbation; its own in-domain 'test' split is its only evaluation. The labelled set, the
cross-domain sets and the fine-tuning target never enter it. On real label files there is no pool:
the study is given a pretrained checkpoint (`--pretrained`, e.g. converted Kinetics-400 weights).
"""

import os

import ml_collections

from vqa_jax.training import trainer

POOL_TEST_VIDEOS = 32


def pretrain_config(base: ml_collections.ConfigDict, steps: int, data_seed: int,
                    num_videos: int) -> ml_collections.ConfigDict:
  """The base config trained `steps` steps on a `num_videos` pool of synthetic seed `data_seed`."""
  if base.data.source != "synthetic":
    raise ValueError(f"pretraining needs data.source='synthetic' (got {base.data.source!r}); "
                     "give a pretrained checkpoint instead (--pretrained)")
  if data_seed == base.data.synthetic.seed:
    raise ValueError(f"the pretraining pool's seed {data_seed} is the labelled set's: "
                     "they would hold the same videos")
  config = ml_collections.ConfigDict(base.to_dict())
  config.data.synthetic.seed = data_seed
  config.data.synthetic.num_train = num_videos
  config.data.synthetic.num_test = POOL_TEST_VIDEOS
  config.data.synthetic.num_cross = 1  # unused: domain B stays out of the pool
  config.data.eval_splits = ("test",)
  config.data.val_split, config.data.val_fraction = "", 0.0
  config.perturb.kind = "none"
  config.init.checkpoint = ""
  config.train.steps = config.train.cosine_steps = config.train.checkpoint_every = steps
  config.train.log_every = max(steps // 6, 1)
  config.train.eval_every = 0
  return config


def pretrain(base: ml_collections.ConfigDict, out: str, steps: int, data_seed: int,
             num_videos: int) -> str:
  """Trains (or resumes, or finds finished) the pretraining run; returns its workdir."""
  workdir = os.path.join(out, "pretrain")
  trainer.train(pretrain_config(base, steps, data_seed, num_videos), workdir)
  return workdir
