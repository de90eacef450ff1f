"""The study's design, fixed before anything runs: seeds, variants, budgets, pre-registered claims.

`StudyOptions.from_config(config.study)` reads it from the study's config (configs/study.py), with
the command line's flags over it. `check_claims` refuses claims the data cannot answer (an outcome
that no test split gives, a model that is not 'raw' or 'ema') before anything trains. `register`
writes OUT/design.json at the first start; a resumed study (or `--report_only`) whose claims,
seeds, variants or budgets differ from the stored ones is refused, so the outcome cannot be chosen
after the results are in.
"""

import dataclasses
import json
import os
from typing import Any, Mapping

import ml_collections

from vqa_jax.landscape import analysis
from vqa_jax.study import flatness_rows
from vqa_jax.study import protocols
from vqa_jax.study import variant_runs
from vqa_jax.study import variants

DESIGN_FILE = "design.json"
FORMAT = 2  # 1: the issue-21 study (variants awp/rwp/wd, raw weights, no treatment check)
MODELS = ("raw", "ema")
CLAIMS = ("cross", "finetune", "flatness")
# An EMA model whose start weights still count for more than this at its last step is refused.
MAX_EMA_START_WEIGHT = 0.01


@dataclasses.dataclass(frozen=True)
class StudyOptions:
  """Everything a study does besides its base config."""

  seeds: tuple[int, ...]
  variants: tuple[str, ...]
  claims: Mapping[str, Mapping[str, str]]
  primary: str = "cross"
  protocols: tuple[str, ...] = protocols.PROTOCOLS
  steps: int = 600  # cross-dataset training steps
  pretrained: str = ""  # a given pretrained checkpoint ('' = the pretext stage, or none)
  pretext_steps: int = 600  # 0 with no `pretrained`: every run starts from random weights
  pretext_data_seed: int = 1
  pretext_videos: int = 480
  finetune_epochs: int = 6
  probe_epochs: int = 2
  finetune_perturb: str = "none"
  train_videos: int = 64  # the landscape's fixed train subset
  eval_videos: int = 0  # the landscape's fixed 'test' and 'cross' subsets (0: every video)
  analysis_config: analysis.AnalysisConfig = variant_runs.study_analysis_config(5, 0)
  alpha: float = 0.05
  power: float = 0.8
  target_relative_effect: float = 0.018
  # Perturbed runs update with their baseline's dropout masks (perturb.pair_dropout_rng).
  pair_dropout_rng: bool = False
  command: str = "python -m vqa_jax.study"

  def __post_init__(self):
    """Rejects options that cannot make a paired, pre-registered study."""
    if "baseline" not in self.variants:
      raise ValueError(f"the variants {self.variants} need 'baseline' (every pair's reference)")
    unknown = [v for v in self.variants if v not in variants.VARIANTS]
    if unknown:
      raise ValueError(f"unknown variants {unknown}; known: {list(variants.VARIANTS)}")
    unknown = set(self.protocols) - set(protocols.PROTOCOLS)
    if unknown or not self.protocols:
      raise ValueError(f"protocols must be among {protocols.PROTOCOLS}, got {self.protocols}")
    if set(self.claims) != set(CLAIMS) or self.primary not in ("cross", "finetune"):
      raise ValueError(f"study.claims must name {CLAIMS} and study.primary 'cross' or "
                       f"'finetune'; got {sorted(self.claims)}, primary {self.primary!r}")
    for name in ("cross", "finetune"):
      if self.claims[name]["model"] not in MODELS:
        raise ValueError(f"study.claims.{name}.model must be one of {MODELS}, got "
                         f"{self.claims[name]['model']!r}")
    if self.claims["flatness"]["gap"] not in flatness_rows.GAPS:
      raise ValueError(f"study.claims.flatness.gap must be one of {flatness_rows.GAPS}")
    flatness_rows.check_line_grid(self.analysis_config)

  @property
  def model(self) -> str:
    """The model ('ema' or 'raw') of the primary claim: the weights analysed and compared."""
    return self.claims[self.primary]["model"]

  @classmethod
  def from_config(cls, study: ml_collections.ConfigDict, **overrides) -> "StudyOptions":
    """The options of a config's `study` section, with `overrides` (the given flags) over them."""
    values = dict(
        seeds=tuple(study.seeds), variants=tuple(study.variants),
        claims=study.claims.to_dict(), primary=study.primary, protocols=tuple(study.protocols),
        steps=study.steps, pretext_steps=study.pretext_steps,
        pretext_data_seed=study.pretext_data_seed, pretext_videos=study.pretext_videos,
        finetune_epochs=study.finetune_epochs, probe_epochs=study.probe_epochs,
        finetune_perturb=study.finetune_perturb, train_videos=study.train_videos,
        eval_videos=study.eval_videos, alpha=study.alpha, power=study.power,
        target_relative_effect=study.target_relative_effect,
        pair_dropout_rng=bool(study.get("pair_dropout_rng", False)))
    lines = overrides.pop("line_points", study.line_points)
    plane = overrides.pop("plane_points", study.plane_points)
    values.update(overrides)
    return cls(analysis_config=variant_runs.study_analysis_config(lines, plane), **values)


def check_claims(base: ml_collections.ConfigDict, options: StudyOptions) -> None:
  """Raises, before anything trains, unless every claim's outcome is one the study produces."""
  cross = options.claims["cross"]["outcome"]
  produced = {f"{split}_{m}" for split in base.data.eval_splits for m in ("srcc", "plcc")}
  if cross not in produced:
    raise ValueError(f"study.claims.cross.outcome {cross!r} is not among the outcomes of the "
                     f"test splits {list(base.data.eval_splits)}: {sorted(produced)}")
  finetune_outcome = options.claims["finetune"]["outcome"]
  if finetune_outcome not in protocols.FINETUNE_OUTCOMES:
    raise ValueError(f"study.claims.finetune.outcome {finetune_outcome!r} is not among "
                     f"{protocols.FINETUNE_OUTCOMES}")
  measure = options.claims["flatness"]["measure"]
  if measure not in flatness_rows.MEASURES:
    raise ValueError(f"study.claims.flatness.measure {measure!r} not in {flatness_rows.MEASURES}")
  for name, steps in (("cross", options.steps), ("finetune", finetune_steps(base, options))):
    start_weight = base.train.ema_decay ** steps
    if options.claims[name]["model"] == "ema" and start_weight > MAX_EMA_START_WEIGHT:
      raise ValueError(f"EMA decay {base.train.ema_decay} over the {steps} {name} steps keeps "
                       f"{start_weight:.2g} of the start weights (> {MAX_EMA_START_WEIGHT}): the "
                       "EMA model would be much the initial one; train longer or lower "
                       "train.ema_decay")


def finetune_steps(base: ml_collections.ConfigDict, options: StudyOptions) -> int:
  """The fine-tuning protocol's training steps (its epochs over the target's training part)."""
  if "finetune" not in options.protocols:
    return 1 << 30
  if base.data.source != "synthetic" or base.finetune.dataset != "cross":
    return 1 << 30  # label files: the size is known only once they are read
  videos = base.data.synthetic.num_cross
  per_epoch = -(-round(videos * base.finetune.train_fraction) // base.train.batch_size)
  return options.finetune_epochs * per_epoch


def preregistration(options: StudyOptions) -> dict[str, Any]:
  """What is fixed before the results: claims, primary claim, seeds, variants, budgets, α, power
  and whether the perturbed runs share their baseline's dropout masks.

  Not the protocols: a study may run its cross-dataset protocol first and its fine-tuning in a
  later invocation on the same OUT (the claims say what each answers).
  """
  return {"format": FORMAT, "claims": options.claims, "primary": options.primary,
          "seeds": list(options.seeds), "variants": list(options.variants),
          "steps": options.steps,
          "pretext_steps": options.pretext_steps, "finetune_epochs": options.finetune_epochs,
          "alpha": options.alpha, "power": options.power,
          "target_relative_effect": options.target_relative_effect,
          "pair_dropout_rng": options.pair_dropout_rng}


def load_design(out: str) -> dict[str, Any]:
  """OUT/design.json; a study without one (the issue-21 format) is refused with how to read it."""
  path = os.path.join(out, DESIGN_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"{path}: not found; a study of format 1 (the first design: variants awp/rwp/wd, raw weights, no "
        "treatment check, e.g. bench/results/study_embedded) is superseded: its report.md stays "
        "as written, and its records are read by the study code of commit a44b5f3")
  return flatness_rows.load_json(path)


def register(out: str, options: StudyOptions) -> None:
  """Writes OUT/design.json, or raises if a stored design differs (the study would change after
  its start)."""
  design = preregistration(options)
  path = os.path.join(out, DESIGN_FILE)
  if os.path.exists(path):
    stored = flatness_rows.load_json(path)
    changed = sorted(k for k in design if stored.get(k) != json.loads(json.dumps(design[k])))
    if changed:
      raise ValueError(f"{path}: the study in {out} was registered with other {changed}; "
                       "use another --out (a registered design is not changed after its start)")
    return
  os.makedirs(out, exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    json.dump(design, f, indent=1)
