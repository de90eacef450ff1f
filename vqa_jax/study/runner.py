"""The whole study: pretraining, then per seed every variant through both protocols, then the report.

Seeds are the outer loop, so every finished seed adds complete pairs. A run whose record exists is
not repeated (a killed study resumes where it stopped; trainer workdirs resume mid-run).
"""

import dataclasses
import json
import os
import time

from absl import logging
import ml_collections

from vqa_jax.landscape import analysis
from vqa_jax.study import variant_runs
from vqa_jax.study import flatness_rows
from vqa_jax.study import significance
from vqa_jax.study import pretrain
from vqa_jax.study import protocols
from vqa_jax.study import comparisons
from vqa_jax.study import report

DEFAULT_VARIANTS = ("baseline", "awp_1e-4", "awp", "rwp", "wd")


@dataclasses.dataclass(frozen=True)
class StudyOptions:
  """Everything a study does besides its base config (the command line's flags)."""

  seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
  variants: tuple[str, ...] = DEFAULT_VARIANTS
  protocols: tuple[str, ...] = protocols.PROTOCOLS
  steps: int = 300  # cross-dataset training steps
  pretrained: str = ""  # a given pretrained checkpoint ('' = the pretraining stage, or none)
  pretrain_steps: int = 600  # 0 with no `pretrained`: every run starts from random weights
  pretrain_data_seed: int = 1
  pretrain_videos: int = 480
  finetune_epochs: int = 30
  probe_epochs: int = 10
  finetune_perturb: str = "none"
  train_videos: int = 64  # the landscape's fixed train subset
  eval_videos: int = 0  # the landscape's fixed 'test' and 'cross' subsets (0: every video)
  analysis_config: analysis.AnalysisConfig = variant_runs.study_analysis_config(21, 9)
  model: str = "raw"
  confidence: float = significance.CONFIDENCE
  command: str = "python -m vqa_jax.study"

  def __post_init__(self):
    """Rejects options that cannot make a paired study."""
    if "baseline" not in self.variants:
      raise ValueError(f"the variants {self.variants} need 'baseline' (every pair's reference)")
    unknown = set(self.protocols) - set(protocols.PROTOCOLS)
    if unknown or not self.protocols:
      raise ValueError(f"protocols must be among {protocols.PROTOCOLS}, got {self.protocols}")
    flatness_rows.check_line_grid(self.analysis_config)


def regime(base: ml_collections.ConfigDict, options: StudyOptions, pretrained: str) -> str:
  """One paragraph: where the weights start, what trains, what is tested."""
  if options.pretrained:
    start = f"every run starts from the given checkpoint {options.pretrained}"
  elif pretrained:
    start = (f"every run starts from a pretraining stage: {options.pretrain_steps} steps on a pool "
             f"of {options.pretrain_videos} synthetic domain-A videos of data seed "
             f"{options.pretrain_data_seed} (other videos than the labelled set's)")
  else:
    start = "every run starts from random weights (no pretraining)"
  text = (f"Regime: {start}. Cross-dataset: {options.steps} steps on split "
          f"'{base.data.train_split}', zero-shot tests on {list(base.data.eval_splits)}.")
  if "finetune" in options.protocols:
    text += (f" Fine-tuning: split '{base.finetune.dataset}' cut {base.finetune.train_fraction:.0%}"
             f" / rest by each seed, {options.probe_epochs:g} linear-probe epochs of "
             f"{options.finetune_epochs:g}, perturbation during fine-tuning: "
             f"{options.finetune_perturb}.")
  return text + f" Seeds {list(options.seeds)}; variants {list(options.variants)}."


def _stored_or_run(out: str, protocol: str, name: str, make) -> dict:
  """The stored record of a run, else `make()`'s (then stored)."""
  path = comparisons.record_path(out, protocol, name)
  if os.path.exists(path):
    return flatness_rows.load_json(path)
  logging.info("study: %s run %s", protocol, name)
  record = make()
  comparisons.save_record(out, protocol, record)
  return record


def store_interpolation(out: str, analyzer: analysis.Analyzer, sets: dict,
                        options: StudyOptions) -> None:
  """OUT/cross/interpolation.json: baseline to the first AWP variant of the first seed (once)."""
  awp = [v for v in options.variants if v.startswith("awp")]
  path = os.path.join(out, "cross", comparisons.INTERPOLATION_FILE)
  if not awp or os.path.exists(path):
    return
  work = lambda variant: os.path.join(out, "cross", "work",
                                      protocols.run_name(variant, options.seeds[0]))
  line = variant_runs.interpolation(analyzer, sets, work("baseline"), work(awp[0]))
  line.update(a="baseline", b=awp[0], seed=options.seeds[0])
  with open(path, "w", encoding="utf-8") as f:
    json.dump(line, f)


def run_study(base: ml_collections.ConfigDict, out: str, options: StudyOptions) -> str:
  """Runs (or resumes) the study into `out`; returns the report's path."""
  t0 = time.monotonic()
  os.makedirs(out, exist_ok=True)
  pretrained = options.pretrained
  if not pretrained and options.pretrain_steps > 0:
    pretrained = pretrain.pretrain(base, out, options.pretrain_steps, options.pretrain_data_seed,
                                   options.pretrain_videos)
  analyzer = analysis.build_analyzer(base, options.analysis_config)
  sets = variant_runs.fixed_sets(base, options.train_videos, options.eval_videos)
  cross_out, ft_out = os.path.join(out, "cross"), os.path.join(out, "finetune")
  runs = {p: {} for p in options.protocols}
  runs.setdefault("cross", {})
  for seed in options.seeds:
    for variant in options.variants:
      name = protocols.run_name(variant, seed)
      runs["cross"][name] = _stored_or_run(out, "cross", name, lambda: protocols.run_cross(
          analyzer, base, variant, seed, options.steps, pretrained, sets, cross_out))
      if "finetune" in options.protocols:
        init = os.path.join(cross_out, "work", name)
        runs["finetune"][name] = _stored_or_run(out, "finetune", name, lambda: (
            protocols.run_finetune(base, variant, seed, init, options.finetune_epochs,
                                   options.probe_epochs, ft_out, options.finetune_perturb,
                                   use_ema=options.model == "ema")))
    for protocol, protocol_runs in runs.items():  # stop at the first unpaired seed
      comparisons.check_pairing(protocol, protocol_runs)
  store_interpolation(out, analyzer, sets, options)
  meta = {"command": options.command, "regime": regime(base, options, pretrained),
          "model": options.model, "confidence": options.confidence,
          "variants": list(options.variants), "protocols": list(runs),
          "seeds": list(options.seeds), "pretrained": pretrained,
          "wall_seconds_this_invocation": time.monotonic() - t0,
          "landscape": {"command": options.command, "steps": options.steps,
                        "variants": {v: variant_runs.VARIANTS[v] for v in options.variants},
                        "analysis": dataclasses.asdict(options.analysis_config),
                        "fixed_sets": {k: len(v.label) for k, v in sets.items()}}}
  return report.write_report(out, meta, runs)
