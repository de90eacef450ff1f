"""The study's variants as the reference runs them: config overrides per name.

baseline; AWP and RWP at every γ of the dose grid (1e-4, the paper's, and 1e-3, 3e-3, 1e-2); weight
decay both ways from the baseline's 0.05 (the reference README's 5e-4, and 0.5).
"""

import ml_collections

# As written in the variant names. The dose grid; 1e-4 is the paper's (its code and README).
GAMMAS = ("1e-4", "1e-3", "3e-3", "1e-2")
WEIGHT_DECAYS = ("5e-4", "0.5")  # the reference README's 5e-4, and the other way from 0.05


def _variants() -> dict[str, dict]:
  """Variant name -> config overrides ("section.field": value) on top of the study's config."""
  out = {"baseline": {"perturb.kind": "none"}}
  for kind in ("awp", "rwp"):
    out.update({f"{kind}_{g}": {"perturb.kind": kind, "perturb.gamma": float(g)} for g in GAMMAS})
  out.update({f"wd_{wd}": {"perturb.kind": "none", "train.weight_decay": float(wd)}
              for wd in WEIGHT_DECAYS})
  return out


# baseline, awp_1e-4 ... awp_1e-2, rwp_1e-4 ... rwp_1e-2 (the same radii), wd_5e-4, wd_0.5.
VARIANTS = _variants()


def gamma(variant: str) -> float | None:
  """The training radius γ of a perturbation variant (None for the others)."""
  overrides = VARIANTS[variant]
  return overrides.get("perturb.gamma") if overrides["perturb.kind"] != "none" else None


def apply_variant(base: ml_collections.ConfigDict, variant: str) -> ml_collections.ConfigDict:
  """A copy of the base config with the variant's overrides."""
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; known: {list(VARIANTS)}")
  config = ml_collections.ConfigDict(base.to_dict())
  for key, value in VARIANTS[variant].items():
    section, field = key.split(".")
    config[section][field] = value
  return config
