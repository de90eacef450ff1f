"""The study's report: OUT/study.json and OUT/report.md, answering each pre-registered claim.

Per claim (cross-dataset, fine-tuning: one row per variant; flatness ↔ gap: one correlation) the
report says whether the treatment took (`treatment`), the effect with its Holm-corrected p-values
(paired t and exact Wilcoxon, the family being the claim's variants) and its t interval, and the
smallest effect the design could have detected (80% power). A variant whose treatment did not take
is reported as such, not as a null result. Every other outcome is secondary: its tables carry
Holm's correction within the table. The cross-dataset runs' landscape report
(`flatness_report.save_study`, OUT/cross/) is linked. `rebuild` redoes everything from the stored
records (`--report_only`).
"""

import json
import math
import os
from typing import Any, Mapping, Sequence

from vqa_jax.study import comparisons
from vqa_jax.study import design
from vqa_jax.study import flatness_report
from vqa_jax.study import flatness_rows
from vqa_jax.study import forest
from vqa_jax.study import significance
from vqa_jax.study import treatment

TITLES = {"cross": "Cross-dataset (train on the labelled set, test zero-shot)",
          "finetune": "Fine-tuning (from each variant's cross-dataset model; linear probe, then "
                      "full fine-tuning on the target's split of the same seed)"}
MODELS = ("ema", "raw")


def _number(x: float, fmt: str = "{:+.4f}") -> str:
  return "n/a" if x is None or math.isnan(x) else fmt.format(x)


def _interval(stats: Mapping[str, float], percent: bool = False) -> str:
  """'+m [t_lo, t_hi]' (4 decimals, or percent with 2)."""
  fmt = "{:+.2%}" if percent else "{:+.4f}"
  if math.isnan(stats["mean"]):
    return "n/a"
  return (f"{_number(stats['mean'], fmt)} [{_number(stats['t_low'], fmt)}, "
          f"{_number(stats['t_high'], fmt)}]")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  return lines + ["| " + " | ".join(r) + " |" for r in rows]


def with_holm(rows: Sequence[dict]) -> list[dict]:
  """The rows with 't_holm' and 'wilcoxon_holm': Holm's correction across these rows."""
  t_holm = significance.holm([r["t_p"] for r in rows])
  w_holm = significance.holm([r["wilcoxon_p"] for r in rows])
  return [{**r, "t_holm": t, "wilcoxon_holm": w} for r, t, w in zip(rows, t_holm, w_holm)]


def verdict(row: Mapping[str, Any], took: bool | None, alpha: float) -> str:
  """The answer of one comparison: treatment not taken, an effect, or none above the MDE."""
  if took is False:
    return "treatment did not take: not a test of the claim"
  if math.isnan(row["t_holm"]):
    return "no test (fewer than 2 pairs, or every pair's Δ the same)"
  if row["t_holm"] < alpha:
    return "variant higher" if row["delta"]["mean"] > 0 else "variant lower"
  return f"no effect ≥ {_number(row['mde'], '{:.4f}')} (80% power) shown"


def claim_rows(protocol: str, runs: Mapping[str, dict], claim: Mapping[str, str],
               took: Mapping[str, bool], alpha: float) -> list[dict]:
  """The claim's comparison per variant (its outcome and model), Holm across the variants."""
  rows = [r for r in comparisons.paired_comparisons(protocol, runs, claim["model"])
          if r["outcome"] == claim["outcome"]]
  rows = with_holm(rows)
  return [{**r, "took": took.get(r["variant"]), "verdict": verdict(r, took.get(r["variant"]),
                                                                   alpha)} for r in rows]


def claim_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
  """One line per variant: treatment, Δ [95% t CI], relative, Holm p (t, Wilcoxon), MDE, verdict."""
  header = ["variant", "pairs", "treatment took", "baseline", "Δ [95% t CI]", "Δ relative",
            "t p (Holm)", "Wilcoxon exact p (Holm)", "MDE (80%)", "answer"]
  took = {True: "yes", False: "**no**", None: "(no check)"}
  body = [[r["variant"], str(r["n"]), took[r["took"]], f"{r['baseline_mean']:.4f}",
           _interval(r["delta"]), _number(r["relative"]["mean"], "{:+.2%}"),
           f"{_number(r['t_p'], '{:.3g}')} ({_number(r['t_holm'], '{:.3g}')})",
           f"{_number(r['wilcoxon_p'], '{:.3g}')} ({_number(r['wilcoxon_holm'], '{:.3g}')})",
           _number(r["mde"], "{:.4f}"), r["verdict"]] for r in rows]
  return _table(header, body)


def power_line(rows: Sequence[Mapping[str, Any]], target_relative: float, alpha: float,
               power: float) -> str:
  """How many seeds the claim needs for the paper's effect, from the deltas' observed spread."""
  parts = []
  for r in rows:
    effect = target_relative * abs(r["baseline_mean"])
    sd = r["delta"]["std"]
    if not (effect > 0 and sd > 0):
      continue
    try:
      needed = significance.seeds_needed(effect, sd, alpha, power)
    except ValueError:
      needed = "> 1000"
    parts.append(f"{r['variant']} {needed}")
  return (f"Pairs needed for a {target_relative:.1%} relative effect at {power:.0%} power "
          f"(α = {alpha}, uncorrected; the observed sd of each variant's deltas): "
          + (", ".join(parts) if parts else "n/a (fewer than 2 pairs)") + ".")


def treatment_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
  """Per variant and measure: the paired change [t CI], paired t p, exact Wilcoxon p, took."""
  header = ["variant", "measure", "intended", "Δ vs baseline [95% t CI]", "t p",
            "Wilcoxon exact p", "took"]
  body = [[r["variant"], r["measure"] + (" (check)" if r["check"] else ""), r["intended"],
           _interval(r["delta"]), _number(r["t_p"], "{:.3g}"),
           _number(r["wilcoxon_p"], "{:.3g}"), "yes" if r["took"] else "**no**"] for r in rows]
  return _table(header, body)


def flatness_claim(runs: Mapping[str, dict], claim: Mapping[str, str], alpha: float,
                   power: float) -> dict:
  """The within-seed Pearson correlation of the claim's measure with its gap, with its MDE."""
  rows = [flatness_rows.study_row(name, dict(run)) for name, run in runs.items()]
  table = flatness_rows.correlations(rows).get("within_seed")
  if not table:
    return {"measure": claim["measure"], "gap": claim["gap"], "answer": "too few runs per seed"}
  c = table[claim["measure"]][claim["gap"]]
  mde = significance.correlation_mde(c["n"], c["dof"], alpha, power)
  if math.isnan(c["pearson_p"]):
    answer = "no test (the measure or the gap is constant within seeds)"
  elif c["pearson_p"] < alpha:
    answer = f"correlated (r {c['pearson_r']:+.3f}, p {c['pearson_p']:.3g})"
  else:
    answer = f"no correlation with |r| ≥ {mde:.3f} (80% power) shown"
  return {"measure": claim["measure"], "gap": claim["gap"], "r": c["pearson_r"],
          "p": c["pearson_p"], "rho": c["spearman_rho"], "rho_p": c["spearman_p"], "n": c["n"],
          "dof": c["dof"], "mde_r": mde, "answer": answer}


def secondary_lines(protocol: str, runs: Mapping[str, dict]) -> tuple[list, list]:
  """(rows, lines): every outcome of both models, Holm within each model's table (exploratory)."""
  all_rows, lines = [], []
  for model in MODELS:
    rows = with_holm(comparisons.paired_comparisons(protocol, runs, model))
    all_rows += rows
    header = ["variant", "outcome", "pairs", "baseline", "Δ [95% t CI]", "Δ [95% BCa]",
              "t p (Holm)", "Wilcoxon p (Holm)", "MDE"]
    body = [[r["variant"], r["outcome"], str(r["n"]), f"{r['baseline_mean']:.4f}",
             _interval(r["delta"]), f"[{_number(r['delta']['bca_low'])}, "
             f"{_number(r['delta']['bca_high'])}]",
             f"{_number(r['t_p'], '{:.3g}')} ({_number(r['t_holm'], '{:.3g}')})",
             f"{_number(r['wilcoxon_p'], '{:.3g}')} ({_number(r['wilcoxon_holm'], '{:.3g}')})",
             _number(r["mde"], "{:.4f}")] for r in rows]
    lines += [f"#### {model} weights", ""] + _table(header, body) + [""]
  return all_rows, lines


def _mean(values: Sequence[float]) -> float:
  finite = [v for v in values if v is not None and not math.isnan(v)]
  return sum(finite) / len(finite) if finite else float("nan")


def domain_lines(runs: Mapping[str, dict], model: str) -> list[str]:
  """Zero-shot SRCC per test split and per distortion (generator metadata), mean over seeds."""
  by_variant: dict[str, list[dict]] = {}
  for run in runs.values():
    by_variant.setdefault(run["variant"], []).append(run)
  splits = list(next(iter(runs.values()))["trainer_results"])
  body = [[v, str(len(rs))] + [f"{_mean([r['trainer_results'][s][model]['srcc'] for r in rs]):.4f}"
                               for s in splits] for v, rs in by_variant.items()]
  lines = [f"SRCC of the {model} weights per test split (trainer evaluation), mean over seeds:",
           ""] + _table(["variant", "seeds"] + splits, body) + [""]
  first = next(iter(runs.values())).get("per_distortion") or {}
  for split, table in first.items():
    names = list(table)
    body = [[v] + [_number(_mean([r["per_distortion"][split][n]["srcc"] for r in rs]), "{:.3f}")
                   for n in names] for v, rs in by_variant.items()]
    counts = ", ".join(f"{n} {table[n]['n']}" for n in names)
    lines += [f"Per distortion on '{split}' (videos carrying it: {counts}; SRCC of the analysed "
              "model on the fixed clips, mean over seeds):", ""]
    lines += _table(["variant"] + names, body) + [""]
  return lines


def pairing_lines(protocol: str, runs: Mapping[str, Mapping[str, Any]]) -> list[str]:
  """Per run its fingerprint digests (8 hex digits) and what it must share with its baseline."""
  shared = comparisons.PAIRED_FIELDS[protocol]
  body = [[name, run["pairing"]["init"][:8], run["pairing"]["batches"][:8],
           run["pairing"]["rng"][:8]] for name, run in runs.items()]
  return [f"Shared with the same seed's baseline (checked before the report was written): "
          f"{', '.join(shared)}.", ""] + _table(["run", "init", "batches", "rng"], body)


def _landscape_link(out: str, meta: Mapping[str, Any], runs: Mapping[str, dict]) -> list[str]:
  """Writes the landscape report of the cross-dataset runs; the line that links it."""
  cross_out = os.path.join(out, "cross")
  interpolation_path = os.path.join(cross_out, comparisons.INTERPOLATION_FILE)
  interpolation = (flatness_rows.load_json(interpolation_path)
                   if os.path.exists(interpolation_path) else None)
  path = flatness_report.save_study(cross_out, meta["landscape"], runs, interpolation)
  rel = os.path.relpath(path, out)
  return [f"Landscapes, sharpness per variant and every correlation: [{rel}]({rel}).", ""]


def write_report(out: str, meta: Mapping[str, Any], runs: Mapping[str, Mapping[str, dict]]) -> str:
  """Writes OUT/study.json, OUT/report.md and OUT/figures/; returns the report's path."""
  fig_dir = os.path.join(out, "figures")
  os.makedirs(fig_dir, exist_ok=True)
  reg = meta["design"]
  alpha, power = reg["alpha"], reg["power"]
  claims = reg["claims"]
  lines = ["# The paper's claims tested: cross-dataset, fine-tuning, flatness ↔ gap", "",
           f"Command: `{meta['command']}`", ""]
  if meta.get("report_command"):
    lines += [f"Report rebuilt from the stored runs by `{meta['report_command']}`", ""]
  lines += [meta["regime"], "",
            f"Pre-registered (OUT/{design.DESIGN_FILE}, written before the first run): primary "
            f"claim '{reg['primary']}'; " + "; ".join(
                f"{k}: {', '.join(f'{a}={b}' for a, b in v.items())}" for k, v in claims.items())
            + f". Tests two-sided at α = {alpha}: paired t (the answer) and exact Wilcoxon "
            "signed-rank, each Holm-corrected across the claim's variants. Intervals: 95% t "
            "(descriptive). MDE: the smallest mean paired Δ the paired t-test detects with "
            f"{power:.0%} power at this n and the deltas' observed sd (noncentral t). A variant "
            "whose treatment did not take (its weights not flatter than its baseline's at its "
            "own γ, or for weight decay its weight norm not moved) is not a test of the claim.",
            ""]
  for protocol in ("cross", "finetune"):
    if runs.get(protocol):
      comparisons.check_pairing(protocol, runs[protocol])
  treat_rows = treatment.treatment_rows(runs["cross"], alpha) if runs.get("cross") else []
  took = treatment.took_by_variant(treat_rows)
  answers, secondary = {}, []
  lines += ["## Answers", ""]
  for protocol in ("cross", "finetune"):
    if not runs.get(protocol):
      continue
    rows = claim_rows(protocol, runs[protocol], claims[protocol], took, alpha)
    answers[protocol] = rows
    c = claims[protocol]
    primary = " (primary)" if reg["primary"] == protocol else ""
    lines += [f"### {TITLES[protocol]}{primary}: {c['outcome']}, {c['model']} weights", ""]
    lines += claim_table(rows) + [""]
    lines += [power_line(rows, reg["target_relative_effect"], alpha, power), ""]
    if rows:
      path = forest.forest_plot(rows, os.path.join(fig_dir, f"{protocol}_deltas.png"),
                                f"{TITLES[protocol].split(' (')[0]}: {c['outcome']} ({c['model']})")
      lines += [f"![{protocol} deltas]({os.path.relpath(path, out)})", ""]
  if runs.get("cross"):
    flat = flatness_claim(runs["cross"], claims["flatness"], alpha, power)
    answers["flatness"] = flat
    lines += ["### Flatness ↔ generalisation gap (within seed)", "",
              f"{flat['measure']} vs {flat['gap']} over the cross-dataset runs, each seed's mean "
              f"removed: {flat['answer']}."]
    if "r" in flat and not math.isnan(flat["r"]):
      lines[-1] += (f" Pearson r {flat['r']:+.3f} (p {flat['p']:.3g}), Spearman ρ "
                    f"{flat['rho']:+.3f} (p {flat['rho_p']:.3g}); n = {flat['n']}, "
                    f"{flat['dof']} degrees of freedom; smallest |r| detectable with "
                    f"{power:.0%} power: {flat['mde_r']:.3f}.")
    lines += ["", "## Did the treatment take? (cross-dataset runs, at each variant's own γ)", "",
              "worst_case_increase@γ / random_increase@γ: the training-loss increase in the "
              "layer-relative ball of radius γ (worst case found by projected ascent) and along "
              f"{treatment.RANDOM_DIRECTIONS} RWP-scaled random directions, on the train subset, "
              f"for the {claims['cross']['model']} weights; param_norm for weight decay. "
              "The realised perturbation during training (mean over logged steps of the perturbed "
              "minus the clean loss, which includes fresh dropout masks; mean ± sd over seeds): "
              + ", ".join(f"{v} {m:+.4g} ± {sd:.2g}" for v, (m, sd) in
                          treatment.realised_by_variant(runs["cross"]).items()) + ".", ""]
    lines += treatment_table(treat_rows) + [""]
  if runs.get("cross"):
    lines += ["## The shift split: content and camera motion vs distortions", "",
              "'cross_nuisance': B's content and camera motion with A's distortion mix (the part "
              "weight-space flatness could act on); 'cross_distortion': A's content with B's "
              "distortions (banding never occurs in A). Paired tests of these outcomes are among "
              "the secondary outcomes.", ""] + domain_lines(runs["cross"],
                                                               claims["cross"]["model"])
  lines += ["## Secondary outcomes (exploratory; Holm within each table)", ""]
  for protocol in ("cross", "finetune"):
    if runs.get(protocol):
      rows, table = secondary_lines(protocol, runs[protocol])
      secondary += rows
      lines += [f"### {TITLES[protocol]}", ""] + table
      lines += ["#### Pairing", ""] + pairing_lines(protocol, runs[protocol]) + [""]
  if runs.get("cross"):
    lines += ["## Flatness of the cross-dataset runs", ""] + _landscape_link(out, meta,
                                                                            runs["cross"])
  with open(os.path.join(out, "study.json"), "w", encoding="utf-8") as f:
    json.dump({"meta": meta, "answers": answers, "treatment": treat_rows,
               "secondary": secondary}, f, indent=1)
  path = os.path.join(out, "report.md")
  with open(path, "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
  return path


def rebuild(out: str, command: str) -> str:
  """Rebuilds the report from OUT/study.json's meta and the stored run records."""
  design.load_design(out)  # a superseded (format 1) study is refused with how to read it
  meta = {**flatness_rows.load_json(os.path.join(out, "study.json"))["meta"],
          "report_command": command}
  order = meta.get("variants", [])
  return write_report(out, meta, {p: comparisons.load_protocol(out, p, order)
                                  for p in meta.get("protocols", comparisons.PAIRED_FIELDS)})
