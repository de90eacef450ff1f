"""A run's perturbation settings (the config's `perturb` section) as the arguments of the train step.

Pure Python like the rest of config/: the step (training/train_step.py) passes these fields to
`perturb.value_and_grad` / `perturb.every_k`, which take plain arguments.
"""

import dataclasses

import ml_collections
import ml_dtypes  # pylint: disable=unused-import  (registers 'bfloat16' with numpy's np.dtype)
import numpy as np

from vqa_jax.config import choices
from vqa_jax.config import validation


def resolve_precision(precision: str, compute_dtype) -> str:
  """A config's perturb.precision as a mode: 'auto' is BF16_PERTURB_PRECISION ('float32') below
  float32 compute, 'cast' in float32 compute (where the modes agree)."""
  if precision != choices.AUTO_PRECISION:
    return precision
  low = np.dtype(compute_dtype) != np.float32
  return choices.BF16_PERTURB_PRECISION if low else "cast"


@dataclasses.dataclass(frozen=True)
class PerturbConfig:
  """How a run perturbs the weights before each update (the config's `perturb` section).

  kind: 'none' | 'awp' | 'rwp' | 'sam' | 'asam'. radius: γ, relative to each layer's norm, for
  awp/rwp; ρ, absolute, for sam/asam (the config's `perturb.gamma` / `perturb.rho`).
  steps: ascent steps of radius/steps, each projected back. every_k: recompute the perturbation
  every k steps and reuse the last one in between. combine: the update gradient is
  (1 − combine)·g_perturbed + combine·g_clean (0: the reference). reuse_dropout_rng: every pass
  uses the clean pass's dropout key (the reference draws fresh masks per pass). precision: how
  the perturbed pass carries δ, 'cast' | 'split' | 'float32' (perturb_precision).
  pair_dropout_rng: the perturbed (update) pass uses the key the plain step would, the clean pass
  a fresh one: masks still differ per pass, and a paired unperturbed run sees the same masks.
  """

  kind: str = "awp"
  radius: float = 1e-4
  reuse_dropout_rng: bool = False
  steps: int = 1
  every_k: int = 1
  combine: float = 0.0
  precision: str = "cast"
  pair_dropout_rng: bool = False

  def __post_init__(self):
    validation.check_perturbation(self.kind, self.radius, self.steps, self.every_k, self.combine)
    if self.reuse_dropout_rng and self.pair_dropout_rng:
      raise ValueError("perturb.reuse_dropout_rng and perturb.pair_dropout_rng exclude each other")
    if self.precision not in choices.PERTURB_PRECISIONS:
      raise ValueError(f"perturb precision must be one of {choices.PERTURB_PRECISIONS}, "
                       f"got {self.precision!r}")

  @classmethod
  def from_config(cls, perturb_cfg: ml_collections.ConfigDict,
                  compute_dtype="float32") -> "PerturbConfig":
    """The PerturbConfig of a config's `perturb` section (radius: gamma or rho by kind).

    precision 'auto' resolves by the model's `compute_dtype` (`resolve_precision`).
    """
    kind = str(perturb_cfg.kind)
    radius = validation.radius_field(kind)
    precision = str(perturb_cfg.get("precision", choices.AUTO_PRECISION))
    return cls(kind=kind, radius=float(perturb_cfg[radius]) if radius else 0.0,
               reuse_dropout_rng=bool(perturb_cfg.reuse_dropout_rng),
               steps=int(perturb_cfg.steps), every_k=int(perturb_cfg.every_k),
               combine=float(perturb_cfg.combine),
               precision=resolve_precision(precision, compute_dtype),
               pair_dropout_rng=bool(perturb_cfg.get("pair_dropout_rng", False)))

  @property
  def active(self) -> bool:
    """Whether the step runs the second (perturbed) pass at all."""
    return self.kind != "none" and self.radius > 0

