"""The landscape records, figures and the study report, on a toy model."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scipy import stats

from tests.landscape_toys import ToyVQA
from tests.landscape_toys import ols_slope_p
from tests.landscape_toys import toy_data
from vqa_jax.landscape import analysis
from vqa_jax.study import flatness_rows
from vqa_jax.study import flatness_report


@pytest.mark.slow  # ~25 s of CPU: six compiled programs and about twenty PNGs
def test_checkpoint_record_and_study_report(tmp_path):
  """Analyzer.checkpoint gives JSON-ready grids of the configured shapes; the report links PNGs."""
  model = ToyVQA()
  sets = {"train": toy_data(seed=0), "test": toy_data(seed=1), "cross": toy_data(seed=2)}
  cfg = analysis.AnalysisConfig(line_points=5, plane_points=3, num_directions=2, power_iters=3,
                                hutchinson_probes=2, ball_steps=2)
  an = analysis.Analyzer(model, cfg, loss_batch=4, rank_weight=0.3, video_batch=4, point_chunk=3)
  runs = {}
  for i, (variant, seed) in enumerate([("baseline", 0), ("awp", 0), ("baseline", 1),
                                       ("awp", 1)]):
    params = model.init(jax.random.key(i), jnp.asarray(sets["train"].video[:, 0]),
                        train=False)["params"]
    record = json.loads(json.dumps(an.checkpoint(params, sets, "train")))  # JSON round trip
    trainer_results = {s: {m: {"srcc": 0.5} for m in ("raw", "ema")} for s in ("test", "cross")}
    record.update(name=f"{variant}_s{seed}", variant=variant, seed=seed, gaps=flatness_rows.gaps(
        record["metrics"]), trainer_results=trainer_results)
    runs[record["name"]] = record
  landscape = record["landscape"]
  assert np.asarray(landscape["random"]["loss"]).shape == (2, 5)
  assert np.asarray(landscape["plane"]["one_minus_srcc"]).shape == (3, 3)
  assert len(landscape["awp"]["loss"]) == 5
  np.testing.assert_allclose(record["gaps"]["srcc_gap"], record["metrics"]["train"]["srcc"]
                             - record["metrics"]["test"]["srcc"])
  assert record["sharpness"]["worst_case_increase"] >= 0

  rows = [flatness_rows.study_row(n, r) for n, r in runs.items()]
  line = np.asarray(record["landscape"]["random"]["loss"])  # alphas -1, -0.5, 0, 0.5, 1
  np.testing.assert_allclose(record["sharpness"]["loss_increase_line"],
                             np.mean((line[:, 1] + line[:, 3]) / 2 - line[:, 2]), rtol=1e-6)
  correlations = flatness_rows.correlations(rows)
  report = flatness_report.write_report(str(tmp_path), {"command": "cmd", "steps": 1, "variants": {},
                                                     "fixed_sets": {}}, runs, rows, correlations,
                                     None, flatness_rows.MEASURES, flatness_rows.GAPS)
  text = open(report, encoding="utf-8").read()
  assert "| baseline | 2 |" in text and "| awp | 2 |" in text
  linked = [line[line.index("(") + 1:-1] for line in text.splitlines() if line.startswith("![")]
  assert len(linked) >= 8
  for path in linked:
    assert os.path.getsize(tmp_path / path) > 1000


def fake_run(variant, seed, sharp, train_loss, test_loss):
  """A stored run record with hand-set numbers and tiny landscapes (what a study writes)."""
  line = [[0.3, 0.25, 0.2, 0.25 + sharp, 0.3 + sharp]] * 2  # alphas -1, -0.5, 0, 0.5, 1
  metrics = {"train": {"srcc": 0.9 + sharp, "loss": train_loss},
             "test": {"srcc": 0.7, "loss": test_loss},
             "cross": {"srcc": 0.4, "loss": test_loss + 0.1}}
  return {"name": f"{variant}_s{seed}", "variant": variant, "seed": seed, "metrics": metrics,
          "sharpness": {m: sharp for m in analysis.SHARPNESS_MEASURES},
          "gaps": {g: 99.0 for g in flatness_rows.GAPS},  # stale: rebuild recomputes them
          "landscape": {"alpha": [-1, -0.5, 0, 0.5, 1],
                        "random": {"loss": line, "one_minus_srcc": line},
                        "awp": {"alpha": [-0.1, 0, 0.1], "loss": [0.2, 0.2, 0.3],
                                "one_minus_srcc": [0.3, 0.3, 0.4]}},
          "trainer_results": {s: {m: {"srcc": 0.5 + 0.01 * seed} for m in ("raw", "ema")}
                              for s in ("test", "cross")}}


def test_rebuild_report_from_stored_runs(tmp_path):
  """--report_only: gaps recomputed (train - test), pooled and within-seed correlations, PNGs."""
  with pytest.raises(FileNotFoundError, match="study.json"):
    flatness_report.rebuild(str(tmp_path), "cmd")
  (tmp_path / "runs").mkdir()
  # Sharpness and loss gap share a seed offset; within a seed they are (x, y) of WITHIN_X/Y below.
  sharp = {(0, "baseline"): 0.01, (0, "awp"): 0.02, (0, "rwp"): 0.03,
           (1, "baseline"): 0.10, (1, "awp"): 0.11, (1, "rwp"): 0.12}
  loss_gap = {(0, "baseline"): -0.01, (0, "awp"): -0.03, (0, "rwp"): -0.02,
              (1, "baseline"): -0.05, (1, "awp"): -0.05, (1, "rwp"): -0.08}
  for (seed, variant), s in sharp.items():
    record = fake_run(variant, seed, s, train_loss=0.2, test_loss=0.2 - loss_gap[seed, variant])
    (tmp_path / "runs" / f"{variant}_s{seed}.json").write_text(json.dumps(record))
  meta = {"command": "train cmd", "steps": 3, "variants": {"baseline": {}, "awp": {}, "rwp": {}},
          "fixed_sets": {"train": 8}}
  (tmp_path / "study.json").write_text(json.dumps({"meta": meta, "interpolation": None}))

  report = flatness_report.rebuild(str(tmp_path), "rebuild cmd")

  study = json.loads((tmp_path / "study.json").read_text())
  assert [r["name"] for r in study["rows"]] == ["baseline_s0", "baseline_s1", "awp_s0", "awp_s1",
                                                "rwp_s0", "rwp_s1"]
  stored = json.loads((tmp_path / "runs" / "awp_s1.json").read_text())
  np.testing.assert_allclose(stored["gaps"]["loss_gap"], -0.05, atol=1e-12)  # 0.2 - 0.25
  np.testing.assert_allclose(stored["gaps"]["cross_srcc_gap"], 0.61, atol=1e-12)  # 1.01 - 0.4
  xs = [sharp[r["seed"], r["variant"]] for r in study["rows"]]
  ys = [loss_gap[r["seed"], r["variant"]] for r in study["rows"]]
  seeds = [r["seed"] for r in study["rows"]]
  pooled = study["correlations"]["pooled"]["worst_case_increase"]["loss_gap"]
  within = study["correlations"]["within_seed"]["worst_case_increase"]["loss_gap"]
  np.testing.assert_allclose(pooled["pearson_r"], stats.pearsonr(xs, ys).statistic, rtol=1e-9)
  # Within seed 0: x 1 2 3 (x 0.01), y -1 -3 -2 (x 0.01); seed 1: x 1 2 3, y 0 0 -3 (-0.05 offset).
  # Demeaned x -1 0 1 | -1 0 1, y 1 -1 0 | 1 1 -2: Sxy = -1 - 3 = -4, Sxx = 4, Syy = 2 + 6 = 8.
  np.testing.assert_allclose(within["pearson_r"], -4 / np.sqrt(32), rtol=1e-9)
  np.testing.assert_allclose(within["pearson_p"], ols_slope_p(np.asarray(xs), np.asarray(ys),
                                                              seeds), rtol=1e-6)
  assert (within["n"], within["groups"], within["dof"]) == (6, 2, 3)

  text = open(report, encoding="utf-8").read()
  assert "rebuild cmd" in text and "overfitting makes the loss gap negative" in text
  assert f"{within['pearson_r']:+.3f} ({within['pearson_p']:.2g})" in text
  assert "| awp | 2 |" in text  # per-variant and paired tables
  for measure in flatness_rows.MEASURES:
    for gap_name in flatness_rows.GAPS:
      png = tmp_path / "figures" / f"scatter_{measure}_vs_{gap_name}.png"
      assert png.stat().st_size > 1000 and f"]({png.relative_to(tmp_path)})" in text
