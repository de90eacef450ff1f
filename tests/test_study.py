"""`python -m vqa_jax.study` (issue 21): pairing checked on the trainer's own inputs, the report,
and a tiny study end to end: pretraining, two seeds x {baseline, AWP}, both protocols."""

import json
import os

import numpy as np
import pytest

from tests.helpers import load_config
from tests.helpers import paper_config
from vqa_jax.training import finetune
from vqa_jax.data import sources
from vqa_jax.landscape import analysis
from vqa_jax.study import fingerprints
from vqa_jax.study import pretrain
from vqa_jax.study import protocols
from vqa_jax.study import comparisons
from vqa_jax.study import report
from vqa_jax.study import runner
from vqa_jax.study import variant_runs
from vqa_jax.runtime.compilation_cache import persistent_compilation_cache

pytestmark = pytest.mark.usefixtures("fast_compile")


def study_base():
  """The smoke config as a study's base: fine-tuning on domain B's 8 videos, 4 / 4."""
  config = load_config("smoke")
  config.perturb.kind = "none"
  config.finetune.dataset = "cross"
  config.finetune.train_fraction = 0.5
  return config


def test_variants_share_init_batches_and_rng_with_their_baseline(tmp_path, monkeypatch):
  """Fingerprints through the trainer's init and loader: equal within a seed, not across seeds."""
  monkeypatch.setenv("VQA_JAX_CACHE", str(tmp_path / "cache"))
  base = study_base()
  splits = sources.load_splits(base.data)
  prints = {(v, s): fingerprints.fingerprint(protocols.cross_config(base, v, s, 2, ""), splits)
            for v in ("baseline", "awp", "wd") for s in (0, 1)}
  fingerprints.check_pairs(prints)
  for field in fingerprints.FIELDS:
    assert prints["baseline", 0][field] != prints["baseline", 1][field], field
  # Fine-tuning: the split of a seed, its batches and keys are the variant's as the baseline's.
  ft = {(v, 0): fingerprints.fingerprint(*protocols.finetune_splits(protocols.finetune_config(
      base, v, 0, "", 2, 1, "variant"))) for v in ("baseline", "awp")}
  fingerprints.check_pairs(ft)
  other = fingerprints.fingerprint(*protocols.finetune_splits(protocols.finetune_config(
      base, "baseline", 1, "", 2, 1)))
  assert other["batches"] != ft["baseline", 0]["batches"]


def test_finetune_config_keeps_the_reference_plain_fine_tuning_by_default():
  base = study_base()
  plain = protocols.finetune_config(base, "awp", 3, "/init", 2, 1)
  assert (plain.perturb.kind, plain.finetune.seeds, plain.init.checkpoint) == ("none", (3,), "/init")
  assert protocols.finetune_config(base, "awp", 3, "/init", 2, 1, "variant").perturb.kind == "awp"


def _ft_record(variant, seed, srcc):
  final = {"raw": {"srcc": {"mean": srcc, "std": 0.0}, "plcc": {"mean": srcc, "std": 0.0}}}
  return {"name": f"{variant}_s{seed}", "variant": variant, "seed": seed,
          "result": {"final": final}, "pairing": {"init": variant, "batches": "b", "rng": "r"}}


def test_report_tables_and_plot_from_records(tmp_path):
  base = {0: 0.5, 1: 0.6, 2: 0.7, 3: 0.4, 4: 0.55}
  runs = {"finetune": {f"{v}_s{s}": _ft_record(v, s, x + (v == "awp") * 0.1)
                       for v in ("baseline", "awp") for s, x in base.items()}}
  meta = {"command": "cmd", "regime": "regime", "model": "raw", "confidence": 0.95}
  path = report.write_report(str(tmp_path), meta, runs)
  text = open(path).read()
  row = next(line for line in text.splitlines() if line.startswith(f"| awp | "
                                                                  f"{finetune.TEST_SPLIT}_srcc"))
  assert "+0.1000 [+0.1000, +0.1000]" in row and "variant higher" in row
  rel = sum(0.1 / x for x in base.values()) / 5 * 100
  assert f"{rel:+.2f}%" in row
  runs["finetune"] = {n: r for n, r in runs["finetune"].items() if r["seed"] < 2}
  report.write_report(str(tmp_path), meta, runs)
  assert "too few pairs (< 5)" in open(path).read()  # 2 pairs: no claim, whatever the interval
  assert os.path.exists(tmp_path / "figures" / "finetune_deltas.png")
  study = json.load(open(tmp_path / "study.json"))
  assert len(study["comparisons"]) == 2  # srcc and plcc
  runs["finetune"]["awp_s1"]["pairing"]["batches"] = "other"  # an unpaired run is an error
  with pytest.raises(ValueError, match="awp seed 1: batches differs"):
    report.write_report(str(tmp_path), meta, runs)


@pytest.fixture
def compilation_cache(tmp_path):
  """The study command's persistent compilation cache, in tmp_path (about a third of the time)."""
  with persistent_compilation_cache(str(tmp_path / "xla_cache")):
    yield


def test_tiny_study_end_to_end(tmp_path, monkeypatch, compilation_cache):
  """Pretraining, 2 seeds x {baseline, AWP}: cross-dataset (with flatness), fine-tuning, report.

  In the default run (issue 21): about 70-80 s on a 2-core CPU.
  """
  del compilation_cache
  monkeypatch.setenv("VQA_JAX_CACHE", str(tmp_path / "cache"))
  cfg = analysis.AnalysisConfig(line_points=5, plane_points=0, num_directions=1, power_iters=1,
                                hutchinson_probes=2, ball_steps=1)
  options = runner.StudyOptions(seeds=(0, 1), variants=("baseline", "awp"), steps=2,
                                pretrain_steps=2, pretrain_videos=16, finetune_epochs=2,
                                probe_epochs=1, train_videos=8, analysis_config=cfg)
  out = tmp_path / "study"
  path = runner.run_study(study_base(), str(out), options)
  text = open(path).read()
  for heading in ("## Cross-dataset", "## Fine-tuning", "## Flatness"):
    assert heading in text
  study = json.load(open(out / "study.json"))
  outcomes = {(r["protocol"], r["outcome"]) for r in study["comparisons"]}
  assert ("cross", "cross_srcc") in outcomes and ("finetune", "ft_test_srcc") in outcomes
  assert os.path.exists(out / "cross" / "report.md")
  assert os.path.exists(out / "figures" / "cross_deltas.png")
  # The pairing is checked independently of the digests: the first logged training step's clean
  # loss (same weights, batch and dropout key) is the baseline's exactly, and not the other seed's.
  first_loss = {}
  for name in ("baseline_s0", "awp_s0", "baseline_s1"):
    with open(out / "cross" / "work" / name / "metrics.jsonl") as f:
      first = json.loads(f.readline())
    assert first["step"] == 1
    first_loss[name] = first["loss"]
  assert first_loss["awp_s0"] == first_loss["baseline_s0"] != first_loss["baseline_s1"]
  # Every fine-tuning run starts from its own variant's cross-dataset model.
  ft = comparisons.load_protocol(str(out), "finetune")
  assert ft["awp_s1"]["init"].endswith(os.path.join("cross", "work", "awp_s1"))
  assert ft["awp_s1"]["pairing"]["init"] != ft["baseline_s1"]["pairing"]["init"]
  # The baseline -> AWP line of seed 0 ends at each run's own training loss on the same clips.
  line = json.load(open(out / "cross" / comparisons.INTERPOLATION_FILE))
  assert (line["a"], line["b"], line["seed"]) == ("baseline", "awp", 0)
  runs = comparisons.load_protocol(str(out), "cross")
  at = lambda t: line["loss"][line["t"].index(t)]
  np.testing.assert_allclose(at(0.0), runs["baseline_s0"]["sharpness"]["loss"], rtol=1e-5)
  np.testing.assert_allclose(at(1.0), runs["awp_s0"]["sharpness"]["loss"], rtol=1e-5)
  assert "interpolation_loss.png" in open(out / "cross" / "report.md").read()
  # The report is rebuilt from the records alone.
  os.remove(path)
  rebuilt = report.rebuild(str(out), "rebuild")
  assert open(rebuilt).read().count("| awp |") == open(out / "report.md").read().count("| awp |")


def test_pretraining_pool_is_other_videos_of_domain_a_only():
  base = study_base()
  config = pretrain.pretrain_config(base, 7, data_seed=1, num_videos=48)
  assert (config.data.synthetic.seed, config.data.synthetic.num_train) == (1, 48)
  assert config.data.eval_splits == ("test",) and config.perturb.kind == "none"
  assert config.train.steps == 7 and not config.init.checkpoint
  assert base.data.synthetic.seed == 0 and base.data.eval_splits == ("test", "cross")  # untouched
  with pytest.raises(ValueError, match="same videos"):
    pretrain.pretrain_config(base, 7, data_seed=0, num_videos=48)
  base.data.source = "label_files"
  with pytest.raises(ValueError, match="--pretrained"):
    pretrain.pretrain_config(base, 7, data_seed=1, num_videos=48)


def test_study_options_need_a_baseline_and_known_protocols():
  with pytest.raises(ValueError, match="need 'baseline'"):
    runner.StudyOptions(variants=("awp", "rwp"))
  with pytest.raises(ValueError, match="protocols"):
    runner.StudyOptions(protocols=("cross", "iqa"))


@pytest.mark.parametrize("line_points, on_grid", [(5, True), (9, True), (21, True), (11, False),
                                                  (7, False), (3, False)])
def test_study_options_need_the_line_measure_on_the_grid(line_points, on_grid):
  """α = ±0.5 (loss_increase_line) is on linspace(-1, 1, n) exactly when n = 4k + 1."""
  make = lambda: runner.StudyOptions(analysis_config=variant_runs.study_analysis_config(
      line_points, 0))
  if on_grid:
    make()
  else:
    with pytest.raises(ValueError, match=f"line_points={line_points} puts"):
      make()


def test_study_configs_name_the_splits_the_study_reads():
  """configs/study.py and configs/paper/study_lsvq.py: 'train', 'test', 'cross' and a target."""
  from vqa_jax.config import validation  # pylint: disable=g-import-not-at-top
  lsvq = paper_config("study_lsvq", "/L,/V")
  validation.validate(lsvq)
  assert lsvq.data.label_files.train == "/L/LSVQ/train_labels.txt:/V/LSVQ"
  assert lsvq.data.label_files.test == "/L/LSVQ/labels_test.txt:/V/LSVQ"
  assert lsvq.data.label_files.cross == "/L/KoNViD/labels.txt:/V/KoNViD"
  assert lsvq.data.eval_splits == ("test", "lsvq_1080p", "cross", "livevqc", "youtube_ugc")
  assert (lsvq.data.train_split, lsvq.finetune.dataset) == ("train", "cross")
  embedded = load_config("study")
  validation.validate(embedded)
  assert embedded.finetune.dataset in embedded.data.eval_splits
  assert embedded.perturb.kind == "none"  # the variants set it


def test_study_stops_at_the_first_unpaired_seed(tmp_path, monkeypatch):
  """Runs are stubbed; seed 1's AWP run read other batches: nothing after seed 1 runs."""
  made = []

  def fake_cross(analyzer, base, variant, seed, *args):
    del analyzer, base, args
    made.append((variant, seed))
    batches = "other" if (variant, seed) == ("awp", 1) else f"b{seed}"
    return {"name": f"{variant}_s{seed}", "variant": variant, "seed": seed,
            "pairing": {"init": "i", "batches": batches, "rng": f"r{seed}"}}

  monkeypatch.setattr(protocols, "run_cross", fake_cross)
  monkeypatch.setattr(runner.analysis, "build_analyzer", lambda *a: None)
  monkeypatch.setattr(runner.variant_runs, "fixed_sets", lambda *a: {})
  options = runner.StudyOptions(seeds=(0, 1, 2), variants=("baseline", "awp"),
                                protocols=("cross",), pretrain_steps=0)
  with pytest.raises(ValueError, match="awp seed 1: batches differs"):
    runner.run_study(study_base(), str(tmp_path), options)
  assert made == [("baseline", 0), ("awp", 0), ("baseline", 1), ("awp", 1)]
