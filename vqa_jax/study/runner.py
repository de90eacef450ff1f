"""The whole study: the design registered, the pretext stage, per seed every variant through both
protocols, then the report.

Seeds are the outer loop, so every finished seed adds complete pairs. A run whose record exists is
not repeated (a killed study resumes where it stopped; trainer workdirs resume mid-run).
"""

import json
import os
import time

from absl import logging
import ml_collections

from vqa_jax.landscape import analysis
from vqa_jax.study import comparisons
from vqa_jax.study import design
from vqa_jax.study import distortion_breakdown
from vqa_jax.study import flatness_rows
from vqa_jax.study import pretext
from vqa_jax.study import protocols
from vqa_jax.study import report
from vqa_jax.study import treatment
from vqa_jax.study import variant_runs
from vqa_jax.study import variants


def regime(base: ml_collections.ConfigDict, options: design.StudyOptions, pretrained: str) -> str:
  """One paragraph: where the weights start, what trains, what is tested."""
  if options.pretrained:
    start = f"every run starts from the given checkpoint {options.pretrained}"
  elif pretrained:
    start = (f"every run starts from a pretext stage: {options.pretext_steps} steps of content-"
             f"class and camera-motion classification (no quality labels) on a pool of "
             f"{options.pretext_videos} synthetic videos of data seed {options.pretext_data_seed}")
  else:
    start = "every run starts from random weights (no pretext stage)"
  t = base.train
  text = (f"Regime: {start}. Cross-dataset: {options.steps} steps of batch {t.batch_size} on "
          f"split '{base.data.train_split}', zero-shot tests on {list(base.data.eval_splits)}; "
          f"head dropout {base.model.head_dropout}, drop-path {base.model.drop_path_rate}, "
          f"lr {t.learning_rate} (backbone x{t.backbone_lr_mult}), weight decay "
          f"{t.weight_decay}, EMA {t.ema_decay}; perturbed runs update with "
          + ("their baseline's dropout masks (perturb.pair_dropout_rng)"
             if base.perturb.get("pair_dropout_rng") else "fresh dropout masks") + ".")
  if "finetune" in options.protocols:
    text += (f" Fine-tuning: split '{base.finetune.dataset}' cut {base.finetune.train_fraction:.0%}"
             f" / rest by each seed, {options.probe_epochs:g} linear-probe epochs of "
             f"{options.finetune_epochs:g}, from each variant's {options.model} model, "
             f"perturbation during fine-tuning: {options.finetune_perturb}.")
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
                        options: design.StudyOptions) -> None:
  """OUT/cross/interpolation.json: baseline to the first AWP variant of the first seed (once)."""
  awp = [v for v in options.variants if v.startswith("awp")]
  path = os.path.join(out, "cross", comparisons.INTERPOLATION_FILE)
  if not awp or os.path.exists(path):
    return
  work = lambda variant: os.path.join(out, "cross", "work",
                                      protocols.run_name(variant, options.seeds[0]))
  line = variant_runs.interpolation(analyzer, sets, work("baseline"), work(awp[0]),
                                    use_ema=options.model == "ema")
  line.update(a="baseline", b=awp[0], seed=options.seeds[0])
  with open(path, "w", encoding="utf-8") as f:
    json.dump(line, f)


def run_study(base: ml_collections.ConfigDict, out: str, options: design.StudyOptions) -> str:
  """Runs (or resumes) the study into `out`; returns the report's path."""
  t0 = time.monotonic()
  base = base.copy_and_resolve_references()
  base.perturb.pair_dropout_rng = options.pair_dropout_rng  # every run's, from the design
  design.check_claims(base, options)
  design.register(out, options)
  pretrained = options.pretrained
  if not pretrained and options.pretext_steps > 0:
    pretrained = pretext.pretext(base, out, options.pretext_steps, options.pretext_data_seed,
                                 options.pretext_videos)
  analyzer = analysis.build_analyzer(base, options.analysis_config)
  flatness = treatment.FlatnessAtRadii(analyzer.ev.loss_fn, options.analysis_config.ball_steps)
  gammas = treatment.radii(variants.VARIANTS)  # every run at every radius of the grid
  sets = variant_runs.fixed_sets(base, options.train_videos, options.eval_videos)
  metadata = distortion_breakdown.load_metadata(base.data)
  cross_out, ft_out = os.path.join(out, "cross"), os.path.join(out, "finetune")
  use_ema = options.model == "ema"
  runs = {p: {} for p in options.protocols}
  runs.setdefault("cross", {})
  for seed in options.seeds:
    for variant in options.variants:
      name = protocols.run_name(variant, seed)
      runs["cross"][name] = _stored_or_run(out, "cross", name, lambda: protocols.run_cross(
          analyzer, flatness, base, variant, seed, options.steps, pretrained, sets, cross_out,
          gammas, use_ema, metadata))
      if "finetune" in options.protocols:
        init = os.path.join(cross_out, "work", name)
        runs["finetune"][name] = _stored_or_run(out, "finetune", name, lambda: (
            protocols.run_finetune(base, variant, seed, init, options.finetune_epochs,
                                   options.probe_epochs, ft_out, options.finetune_perturb,
                                   use_ema=use_ema)))
    for protocol, protocol_runs in runs.items():  # stop at the first unpaired seed
      comparisons.check_pairing(protocol, protocol_runs)
  store_interpolation(out, analyzer, sets, options)
  meta = {"command": options.command, "regime": regime(base, options, pretrained),
          "design": design.preregistration(options), "variants": list(options.variants),
          "protocols": list(runs), "seeds": list(options.seeds), "pretrained": pretrained,
          "wall_seconds_this_invocation": time.monotonic() - t0,
          "landscape": {"command": options.command, "steps": options.steps,
                        "variants": {v: variants.VARIANTS[v] for v in options.variants},
                        "analysis": options.analysis_config.__dict__,
                        "fixed_sets": {k: len(v.label) for k, v in sets.items()}}}
  return report.write_report(out, meta, runs)
