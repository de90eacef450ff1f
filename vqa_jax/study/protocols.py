"""The paper's two protocols for one (variant, seed): cross-dataset training, then fine-tuning.

cross-dataset (paper Table A): the variant's overrides (`variants.VARIANTS`) on the base
config, `seed` for init noise, data order and dropout keys, initial weights from the pretext
stage, trained on `data.train_split` and evaluated zero-shot on `data.eval_splits`; the final EMA
(or raw) params then get the flatness measures, gaps and treatment check (`variant_runs.run_one`),
so a cross-dataset record is a landscape run record plus its pairing fingerprint.

fine-tuning (paper Table B, §7.6): `vqa_jax.finetune` on the target split (`finetune.dataset`)
with the split seed `seed` (80/20 by default), starting from that variant's cross-dataset model:
linear probe, then full fine-tuning. The reference fine-tunes without perturbation ('none', its
X-AWP row is plain fine-tuning from the AWP model); `finetune_perturb='variant'` applies the
variant's overrides during fine-tuning too.
"""

import os

import ml_collections

from vqa_jax.training import finetune
from vqa_jax.evaluation import selection
from vqa_jax.data import sources
from vqa_jax.study import variant_runs
from vqa_jax.study import fingerprints
from vqa_jax.study import variants

PROTOCOLS = ("cross", "finetune")
FINETUNE_OUTCOMES = tuple(f"{finetune.TEST_SPLIT}_{m}" for m in ("srcc", "plcc"))
FINETUNE_PERTURB = ("none", "variant")


def run_name(variant: str, seed: int) -> str:
  """The record and workdir name of a (variant, seed)."""
  return f"{variant}_s{seed}"


def cross_config(base: ml_collections.ConfigDict, variant: str, seed: int, steps: int,
                 pretrained: str) -> ml_collections.ConfigDict:
  """The cross-dataset run's config: the variant on the base config, from `pretrained`."""
  config = variant_runs.variant_config(base, variant, seed, steps)
  config.init.checkpoint = pretrained
  return config


def run_cross(analyzer, flatness, base, variant: str, seed: int, steps: int, pretrained: str,
              sets: dict, out: str, gammas, use_ema: bool, metadata=None) -> dict:
  """Trains and analyses one cross-dataset run; returns its record (not yet written)."""
  config = cross_config(base, variant, seed, steps, pretrained)
  prints = fingerprints.fingerprint(config, sources.load_splits(config.data))
  name = run_name(variant, seed)
  record = variant_runs.run_one(analyzer, flatness, config, sets, os.path.join(out, "work", name),
                                gammas, use_ema, metadata)
  record.update(name=name, variant=variant, seed=seed, pairing=prints, pretrained=pretrained)
  return record


def finetune_config(base: ml_collections.ConfigDict, variant: str, seed: int, init: str,
                    epochs: int, probe_epochs: int, finetune_perturb: str = "none",
                    use_ema: bool = False) -> ml_collections.ConfigDict:
  """The fine-tuning config of one split seed, from the cross-dataset model in `init`.

  As the reference (§7.6): no validation hold-out, the final checkpoint's test metrics count.
  """
  if finetune_perturb not in FINETUNE_PERTURB:
    raise ValueError(f"finetune_perturb must be one of {FINETUNE_PERTURB}, got {finetune_perturb!r}")
  config = variants.apply_variant(
      base, variant if finetune_perturb == "variant" else "baseline")
  config.init.checkpoint, config.init.use_ema = init, use_ema
  config.data.val_split, config.data.val_fraction = "", 0.0
  config.finetune.seeds = (seed,)
  config.finetune.epochs, config.finetune.probe_epochs = epochs, probe_epochs
  config.finetune.warmup_epochs = min(config.finetune.warmup_epochs, epochs / 4)
  return config


def finetune_splits(config: ml_collections.ConfigDict) -> tuple[ml_collections.ConfigDict, dict]:
  """(the trainer config, {split: entries}) that `finetune.finetune` runs for its one seed."""
  (seed,) = config.finetune.seeds
  entries = sources.load_splits(config.data)[config.finetune.dataset]
  train, test = selection.shuffled_split(entries, config.finetune.train_fraction, seed)
  return (finetune.split_config(config, seed, len(train)),
          {finetune.TRAIN_SPLIT: train, finetune.TEST_SPLIT: test})


def run_finetune(base, variant: str, seed: int, init: str, epochs: int, probe_epochs: int,
                 out: str, finetune_perturb: str = "none", use_ema: bool = False) -> dict:
  """Fine-tunes from one cross-dataset model on split seed `seed`; returns its record."""
  config = finetune_config(base, variant, seed, init, epochs, probe_epochs, finetune_perturb,
                           use_ema)
  prints = fingerprints.fingerprint(*finetune_splits(config))
  name = run_name(variant, seed)
  result = finetune.finetune(config, os.path.join(out, "work", name))
  return {"name": name, "variant": variant, "seed": seed, "init": init, "result": result,
          "pairing": prints, "finetune_perturb": finetune_perturb}
