"""`python -m vqa_jax.study`: the design registered before anything runs, pairing checked on the
trainer's own inputs, the treatment check, the report's answer per claim, and a tiny study end to
end (pretext stage, 2 seeds x {baseline, AWP, weight decay}, both protocols)."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import REPO_ROOT
from tests.helpers import load_config
from tests.helpers import paper_config
from vqa_jax.data import sources
from vqa_jax.runtime.compilation_cache import persistent_compilation_cache
from vqa_jax.study import comparisons
from vqa_jax.study import design
from vqa_jax.study import fingerprints
from vqa_jax.study import protocols
from vqa_jax.study import report
from vqa_jax.study import runner
from vqa_jax.study import significance
from vqa_jax.study import treatment
from vqa_jax.study import variants

pytestmark = pytest.mark.usefixtures("fast_compile")


def study_base():
  """The smoke config as a study's base: fine-tuning on domain B's 8 videos, 4 / 4."""
  config = load_config("smoke")
  config.perturb.kind = "none"
  config.finetune.dataset = "cross"
  config.finetune.train_fraction = 0.5
  config.train.ema_decay = 0.05  # a short run's EMA (design.check_claims)
  config.study = load_config("study:tiny").study
  return config


def tiny_options(**changes):
  return design.StudyOptions.from_config(load_config("study:tiny").study, **changes)


def test_variants_are_the_references_at_every_radius():
  """AWP and RWP at each γ of the dose grid (the paper's 1e-4 included), weight decay both ways."""
  v = variants.VARIANTS
  for g in (1e-4, 1e-3, 3e-3, 1e-2):
    awp = [k for k in v if v[k] == {"perturb.kind": "awp", "perturb.gamma": g}]
    rwp = [k for k in v if v[k] == {"perturb.kind": "rwp", "perturb.gamma": g}]
    assert len(awp) == len(rwp) == 1, g
  assert {v[k].get("train.weight_decay") for k in v} == {None, 5e-4, 0.5}
  full = load_config("study")
  assert tuple(full.study.variants) == tuple(v)
  assert full.train.weight_decay == 0.05 and full.train.ema_decay == 0.97
  assert (full.model.head_dropout, full.model.drop_path_rate) == (0.5, 0.1)
  # The backbone at 0.1x only where it starts pretrained (the pretext stage, as the tiny scale);
  # the full scale starts from random weights (configs/study.py says why), all layers at 1x.
  assert (full.study.pretext_steps, full.train.backbone_lr_mult) == (0, 1.0)
  tiny = load_config("study:tiny")
  assert tiny.study.pretext_steps > 0 and tiny.train.backbone_lr_mult == 0.1
  # Perturbed runs update with their baseline's dropout masks at both scales, as registered.
  assert full.study.pair_dropout_rng and tiny.study.pair_dropout_rng
  assert design.preregistration(design.StudyOptions.from_config(full.study))["pair_dropout_rng"]
  assert len(full.study.seeds) >= 8
  assert full.study.claims.cross.to_dict() == {"protocol": "cross", "model": "ema",
                                               "outcome": "cross_srcc"}
  assert full.study.primary == "cross"


def test_variants_share_init_batches_and_rng_with_their_baseline(tmp_path, monkeypatch):
  """Fingerprints through the trainer's init and loader: equal within a seed, not across seeds."""
  monkeypatch.setenv("VQA_JAX_CACHE", str(tmp_path / "cache"))
  base = study_base()
  splits = sources.load_splits(base.data)
  prints = {(v, s): fingerprints.fingerprint(protocols.cross_config(base, v, s, 2, ""), splits)
            for v in ("baseline", "awp_1e-3", "wd_0.5") for s in (0, 1)}
  fingerprints.check_pairs(prints)
  for field in fingerprints.FIELDS:
    assert prints["baseline", 0][field] != prints["baseline", 1][field], field
  ft = {(v, 0): fingerprints.fingerprint(*protocols.finetune_splits(protocols.finetune_config(
      base, v, 0, "", 2, 1, "variant"))) for v in ("baseline", "awp_1e-3")}
  fingerprints.check_pairs(ft)


def test_finetune_config_keeps_the_reference_plain_fine_tuning_by_default():
  base = study_base()
  plain = protocols.finetune_config(base, "awp_1e-4", 3, "/init", 2, 1)
  assert (plain.perturb.kind, plain.finetune.seeds, plain.init.checkpoint) == ("none", (3,), "/init")
  assert protocols.finetune_config(base, "awp_1e-4", 3, "/init", 2, 1,
                                   "variant").perturb.kind == "awp"


def test_design_is_registered_before_running_and_cannot_change(tmp_path):
  options = tiny_options()
  design.register(str(tmp_path), options)
  stored = json.load(open(tmp_path / design.DESIGN_FILE))
  assert stored["claims"]["cross"] == {"protocol": "cross", "model": "ema", "outcome": "cross_srcc"}
  design.register(str(tmp_path), options)  # the same design resumes
  claims = {**options.claims, "cross": {**options.claims["cross"], "outcome": "test_srcc"}}
  with pytest.raises(ValueError, match=r"registered with other \['claims'\]"):
    design.register(str(tmp_path), tiny_options(claims=claims))
  with pytest.raises(ValueError, match=r"registered with other \['seeds'\]"):
    design.register(str(tmp_path), tiny_options(seeds=(0, 1, 2)))


def test_claims_are_checked_against_what_the_study_produces():
  base = study_base()
  design.check_claims(base, tiny_options())
  bad = {**tiny_options().claims, "cross": {"protocol": "cross", "model": "ema",
                                            "outcome": "konvid_srcc"}}
  with pytest.raises(ValueError, match="'konvid_srcc' is not among"):
    design.check_claims(base, tiny_options(claims=bad))
  with pytest.raises(ValueError, match="model must be one of"):
    tiny_options(claims={**bad, "cross": {**bad["cross"], "model": "best"}})
  base.train.ema_decay = 0.99  # 4 steps: the EMA would still be the start weights
  with pytest.raises(ValueError, match="EMA decay 0.99 over the 4 cross steps"):
    design.check_claims(base, tiny_options())
  with pytest.raises(ValueError, match="need 'baseline'"):
    tiny_options(variants=("awp_1e-4",))


def test_superseded_study_is_refused_with_how_to_read_it(tmp_path):
  with pytest.raises(FileNotFoundError, match="format 1 .* superseded"):
    report.rebuild(str(tmp_path), "rebuild")


def _treatment_run(variant, seed, worst, norm):
  t = {treatment.radius_key("worst_case_increase", 1e-2): worst,
       treatment.radius_key("random_increase", 1e-2): worst / 10, "param_norm": norm}
  return {"name": f"{variant}_s{seed}", "variant": variant, "seed": seed, "treatment": t}


def test_treatment_took_only_with_a_significant_change_in_the_intended_direction():
  runs = {}
  for s in range(6):
    runs[f"b{s}"] = _treatment_run("baseline", s, 1.0 + 0.1 * s, 10.0 + s)
    runs[f"a{s}"] = _treatment_run("awp_1e-2", s, 0.5 + 0.1 * s + 0.01 * (s % 2), 10.0 + s)
    runs[f"r{s}"] = _treatment_run("rwp_1e-2", s, 1.0 + 0.1 * s + 0.01 * (-1) ** s, 10.0 + s)
    runs[f"w{s}"] = _treatment_run("wd_0.5", s, 1.0, 9.0 + s + 0.01 * (s % 3))
    runs[f"x{s}"] = _treatment_run("wd_5e-4", s, 1.0, 9.0 + s + 0.01 * (s % 3))  # shrank: wrong way
  rows = treatment.treatment_rows(runs)
  check = {r["variant"]: r for r in rows if r["check"]}
  assert check["awp_1e-2"]["measure"] == "worst_case_increase@0.01"
  assert check["wd_0.5"]["measure"] == check["wd_5e-4"]["measure"] == "param_norm"
  assert treatment.took_by_variant(rows) == {"awp_1e-2": True, "rwp_1e-2": False, "wd_0.5": True,
                                             "wd_5e-4": False}
  assert check["awp_1e-2"]["delta"]["mean"] == pytest.approx(-0.5 + 0.01 * 3 / 6)


def _ft_record(variant, seed, srcc):
  final = {m: {"srcc": {"mean": srcc, "std": 0.0}, "plcc": {"mean": srcc, "std": 0.0}}
           for m in ("raw", "ema")}
  return {"name": f"{variant}_s{seed}", "variant": variant, "seed": seed,
          "result": {"final": final}, "pairing": {"init": variant, "batches": "b", "rng": "r"}}


def test_claim_rows_answer_with_holm_and_mde_and_name_untaken_treatments():
  base = {s: 0.5 + 0.02 * s for s in range(8)}
  noise = [0.003, -0.002, 0.001, 0.004, -0.001, 0.002, 0.000, 0.003]
  runs = {}
  for s, x in base.items():
    runs[f"baseline_s{s}"] = _ft_record("baseline", s, x)
    runs[f"awp_1e-2_s{s}"] = _ft_record("awp_1e-2", s, x + 0.05 + noise[s])
    runs[f"rwp_1e-2_s{s}"] = _ft_record("rwp_1e-2", s, x + noise[s])
  claim = {"protocol": "finetune", "model": "ema", "outcome": "ft_test_srcc"}
  rows = {r["variant"]: r for r in report.claim_rows("finetune", runs, claim,
                                                     {"awp_1e-2": True, "rwp_1e-2": False}, 0.05)}
  awp, rwp = rows["awp_1e-2"], rows["rwp_1e-2"]
  assert awp["t_holm"] == pytest.approx(min(1.0, 2 * min(awp["t_p"], rwp["t_p"])))
  assert awp["wilcoxon_p"] == pytest.approx(2 / 256)  # all 8 deltas positive
  assert awp["verdict"] == "variant higher"
  assert rwp["verdict"] == "treatment did not take: not a test of the claim"
  rows = report.claim_rows("finetune", runs, claim, {"awp_1e-2": True, "rwp_1e-2": True}, 0.05)
  rwp = next(r for r in rows if r["variant"] == "rwp_1e-2")
  sd = np.std(noise, ddof=1)
  assert rwp["mde"] == pytest.approx(significance.minimum_detectable_effect(sd, 8))
  assert rwp["verdict"] == f"no effect ≥ {rwp['mde']:.4f} (80% power) shown"


@pytest.fixture
def compilation_cache(tmp_path):
  """The study command's persistent compilation cache, in tmp_path."""
  with persistent_compilation_cache(str(tmp_path / "xla_cache")):
    yield


@pytest.mark.integration
def test_tiny_study_end_to_end(tmp_path, monkeypatch, compilation_cache):
  """configs/study.py:tiny, 2 seeds x {baseline, AWP 1e-2, wd 0.5}: every claim answered."""
  del compilation_cache
  monkeypatch.setenv("VQA_JAX_CACHE", str(tmp_path / "cache"))
  base = load_config("study:tiny")
  options = design.StudyOptions.from_config(base.study)
  out = tmp_path / "study"
  path = runner.run_study(base, str(out), options)
  text = open(path).read()
  for heading in ("## Answers", "### Cross-dataset", "(primary): cross_srcc, ema weights",
                  "### Fine-tuning", "### Flatness ↔ generalisation gap",
                  "## Did the treatment take?", "## Secondary outcomes"):
    assert heading in text, heading
  study = json.load(open(out / "study.json"))
  answers = study["answers"]
  for protocol in ("cross", "finetune"):
    rows = {r["variant"]: r for r in answers[protocol]}
    assert set(rows) == {"awp_1e-2", "wd_0.5"}
    for r in rows.values():  # treatment, corrected p, interval and MDE for every comparison
      assert r["took"] in (True, False) and r["n"] == 2
      assert {"t_holm", "wilcoxon_holm", "mde", "verdict"} <= set(r)
      assert r["delta"]["t_low"] <= r["delta"]["mean"] <= r["delta"]["t_high"]
  assert {"measure", "gap", "answer"} <= set(answers["flatness"])
  # The treatment check is measured per run at the grid's radii, and AWP's realised increase.
  runs = comparisons.load_protocol(str(out), "cross")
  awp = runs["awp_1e-2_s0"]["treatment"]
  assert set(awp) >= {"worst_case_increase@0.01", "random_increase@0.0001", "param_norm"}
  assert math.isfinite(awp["realised_increase"])
  assert math.isnan(runs["baseline_s0"]["treatment"]["realised_increase"])
  assert runs["baseline_s0"]["analysed_model"] == "ema"
  # Every run starts from the pretext stage's weights; a pair shares the first logged loss where
  # both runs' first pass draws the same masks (weight decay acts only after it; AWP's logged clean
  # pass draws the fresh key under pair_dropout_rng, its update pass the baseline's).
  pretext_record = json.load(open(out / "pretext" / "pretext.json"))
  assert pretext_record["videos"] == options.pretext_videos
  assert runs["awp_1e-2_s0"]["pretrained"].endswith(os.path.join("pretext", "weights"))
  first = {n: json.loads(open(out / "cross" / "work" / n / "metrics.jsonl").readline())["loss"]
           for n in ("baseline_s0", "wd_0.5_s0", "awp_1e-2_s0", "baseline_s1")}
  assert first["wd_0.5_s0"] == first["baseline_s0"] != first["baseline_s1"]
  assert first["awp_1e-2_s0"] != first["baseline_s0"]  # the clean pass's fresh masks
  # The report is rebuilt from the records alone.
  os.remove(path)
  rebuilt = report.rebuild(str(out), "rebuild")
  assert open(rebuilt).read().count("| awp_1e-2 |") == text.count("| awp_1e-2 |")


def test_study_configs_name_the_splits_the_study_reads():
  """configs/study.py and configs/paper/study_lsvq.py: 'train', 'test', 'cross' and a target."""
  from vqa_jax.config import validation  # pylint: disable=g-import-not-at-top
  lsvq = paper_config("study_lsvq", "/L,/V")
  validation.validate(lsvq)
  assert lsvq.data.label_files.cross == "/L/KoNViD/labels.txt:/V/KoNViD"
  assert (lsvq.data.train_split, lsvq.finetune.dataset) == ("train", "cross")
  for scale in ("study", "study:tiny"):
    embedded = load_config(scale)
    validation.validate(embedded)
    assert embedded.finetune.dataset in embedded.data.eval_splits
    assert embedded.perturb.kind == "none"  # the variants set it
  full = load_config("study")
  n = full.data.synthetic.num_cross
  assert (round(n * full.finetune.train_fraction), n - round(n * full.finetune.train_fraction)) == (
      512, 128)


def test_study_stops_at_the_first_unpaired_seed(tmp_path, monkeypatch):
  """Runs are stubbed; seed 1's AWP run read other batches: nothing after seed 1 runs."""
  made = []

  def fake_cross(analyzer, flatness, base, variant, seed, *args):
    del analyzer, flatness, base, args
    made.append((variant, seed))
    batches = "other" if (variant, seed) == ("awp_1e-2", 1) else f"b{seed}"
    return {"name": f"{variant}_s{seed}", "variant": variant, "seed": seed,
            "pairing": {"init": "i", "batches": batches, "rng": f"r{seed}"}}

  monkeypatch.setattr(protocols, "run_cross", fake_cross)
  monkeypatch.setattr(runner.analysis, "build_analyzer", lambda *a: type("A", (), {"ev": type(
      "E", (), {"loss_fn": None})})())
  monkeypatch.setattr(runner.treatment, "FlatnessAtRadii", lambda *a: None)
  monkeypatch.setattr(runner.variant_runs, "fixed_sets", lambda *a: {})
  monkeypatch.setattr(runner.distortion_breakdown, "load_metadata", lambda *a: {})
  options = tiny_options(seeds=(0, 1, 2), variants=("baseline", "awp_1e-2"), protocols=("cross",),
                         pretext_steps=0)
  with pytest.raises(ValueError, match="awp_1e-2 seed 1: batches differs"):
    runner.run_study(study_base(), str(tmp_path), options)
  assert made == [("baseline", 0), ("awp_1e-2", 0), ("baseline", 1), ("awp_1e-2", 1)]


@pytest.mark.integration
def test_help_lists_the_study_flags():
  """`python -m vqa_jax.study --help`: its own flags, from vqa_jax/study/__main__.py."""
  result = subprocess.run([sys.executable, "-m", "vqa_jax.study", "--help"], capture_output=True,
                          text=True, timeout=120, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  for flag in ("--out", "--config", "--seeds", "--variants", "--pretext_steps", "--report_only"):
    assert flag in result.stdout, flag


@pytest.mark.slow
@pytest.mark.integration
def test_shards_merge_into_one_report_of_every_seed(tmp_path):
  """launch/study_shards.sh: one seed per shard, the records copied unchanged, one report."""
  env = {**os.environ, "VQA_JAX_CACHE": str(tmp_path / "cache"), "CONFIG": "study:tiny",
         "SHARDS": "2", "PYTHON": sys.executable}
  out = tmp_path / "study"
  subprocess.run(["bash", str(REPO_ROOT / "launch" / "study_shards.sh"), str(out)], env=env,
                 check=True, cwd=REPO_ROOT, capture_output=True, text=True)
  tiny = load_config("study:tiny")
  for k, seed in enumerate(tiny.study.seeds):  # round-robin: shard k holds seed k of two
    for protocol in ("cross", "finetune"):
      names = sorted(p.name for p in (out / f"shard_{k}" / protocol / "runs").iterdir())
      assert names == sorted(f"{v}_s{seed}.json" for v in tiny.study.variants), (k, protocol)
      for name in names:
        assert ((out / protocol / "runs" / name).read_bytes()
                == (out / f"shard_{k}" / protocol / "runs" / name).read_bytes())
  merged = json.loads((out / "study.json").read_text())
  assert merged["meta"]["seeds"] == list(tiny.study.seeds)
  assert json.loads((out / "design.json").read_text())["seeds"] == list(tiny.study.seeds)
  assert {r["n"] for r in merged["answers"]["cross"]} == {len(tiny.study.seeds)}
  assert (out / "cross" / comparisons.INTERPOLATION_FILE).exists()


def _dealt_seeds(tmp_path, env_extra):
  """The `--out`/`--seeds` of each study launch that launch/study_shards.sh makes, with a python
  that records `-m vqa_jax.study` launches instead of running them (anything else runs as is)."""
  tmp_path.mkdir()
  calls = tmp_path / "calls.txt"
  fake = tmp_path / "python"
  fake.write_text(f'#!/usr/bin/env bash\nif [ "$1" = "-m" ]; then echo "$@" >> {calls}; exit 0; fi\n'
                  f'exec {sys.executable} "$@"\n')
  fake.chmod(0o755)
  out = tmp_path / "study"
  env = {**os.environ, "PYTHON": str(fake), **env_extra}
  subprocess.run(["bash", str(REPO_ROOT / "launch" / "study_shards.sh"), str(out)], env=env,
                 check=True, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
  launches = []
  for line in calls.read_text().splitlines():
    flags = dict(a.split("=", 1) for a in line.split() if a.startswith("--"))
    launches.append((flags["--out"].replace(str(out), "OUT"), flags.get("--seeds")))
  return launches


@pytest.mark.integration
def test_shard_script_deals_seeds_round_robin_or_as_given(tmp_path):
  """Round-robin over SHARDS by default; SHARD_SEEDS's lists as given; then one merge over all."""
  round_robin = _dealt_seeds(tmp_path / "rr", {"CONFIG": "study", "SHARDS": "3"})
  assert sorted(round_robin) == [("OUT", None), ("OUT/shard_0", "0,3,6"),
                                 ("OUT/shard_1", "1,4,7"), ("OUT/shard_2", "2,5")]
  assert round_robin[-1] == ("OUT", None)  # the merge comes after every shard
  given = _dealt_seeds(tmp_path / "given", {"CONFIG": "study", "SHARD_SEEDS": "0,1,2,3 4,5,6,7"})
  assert sorted(given) == [("OUT", None), ("OUT/shard_0", "0,1,2,3"), ("OUT/shard_1", "4,5,6,7")]
  assert given[-1] == ("OUT", None)
