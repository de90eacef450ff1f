"""The paper's regime on the embedded data, demo-sized: `python -m vqa_jax.study` (issue 21).

The demo model; a small labelled set (160 domain-A videos of synthetic seed 0) for the
cross-dataset protocol, tested zero-shot on domain A 'test' and domain B 'cross'; fine-tuning on
domain B 'cross' (160 videos: 128 / 32 per split seed). The pretraining pool (`vqa_jax.study`'s
stage, synthetic seed 1) is set by the study's flags. Perturbation and regulariser come from the
study's variants (`vqa_jax.study.variant_runs.VARIANTS`). No evaluation during training, no
model selection: the final checkpoint is the one compared.
"""

from configs import demo
from vqa_jax.config import config_base
from vqa_jax.config.specs import SyntheticSpec

def get_config():
  """The study configuration."""
  c = demo.get_config()
  c.data.synthetic = config_base.synthetic_config(
      SyntheticSpec(seed=0, num_train=160, num_test=128, num_cross=160))
  c.perturb.kind = "none"
  c.finetune.dataset = "cross"
  c.finetune.seeds = (0,)
  c.finetune.epochs = 30
  c.finetune.probe_epochs = 10
  c.train.log_every = 50
  return c
