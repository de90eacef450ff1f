"""The landscape records, figures and the study report, on a toy model (issue 7)."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqa_jax.landscape import analysis
from vqa_jax.landscape import gap
from vqa_jax.landscape import study
from vqa_jax.landscape import study_report
from tests.test_landscape import ToyVQA
from tests.test_landscape import toy_data


@pytest.mark.slow  # ~25 s of CPU: six compiled programs and about twenty PNGs
def test_checkpoint_record_and_study_report(tmp_path):
  """Analyzer.checkpoint gives JSON-ready grids of the configured shapes; the report links PNGs."""
  model = ToyVQA()
  sets = {"train": toy_data(seed=0), "test": toy_data(seed=1), "cross": toy_data(seed=2)}
  cfg = analysis.AnalysisConfig(line_points=5, plane_points=3, num_directions=2, power_iters=3,
                                hutchinson_probes=2, ball_steps=2)
  an = analysis.Analyzer(model, cfg, loss_batch=4, rank_weight=0.3, video_batch=4, point_chunk=3)
  runs = {}
  for i, variant in enumerate(["baseline", "awp", "baseline"]):
    params = model.init(jax.random.key(i), jnp.asarray(sets["train"].video[:, 0]),
                        train=False)["params"]
    record = json.loads(json.dumps(an.checkpoint(params, sets, "train")))  # JSON round trip
    trainer_results = {s: {m: {"srcc": 0.5} for m in ("raw", "ema")} for s in ("test", "cross")}
    record.update(name=f"{variant}_s{i}", variant=variant, seed=i, gaps=study.gaps(
        record["metrics"]), trainer_results=trainer_results)
    runs[record["name"]] = record
  landscape = record["landscape"]
  assert np.asarray(landscape["random"]["loss"]).shape == (2, 5)
  assert np.asarray(landscape["plane"]["one_minus_srcc"]).shape == (3, 3)
  assert len(landscape["awp"]["loss"]) == 5
  np.testing.assert_allclose(record["gaps"]["srcc_gap"], record["metrics"]["train"]["srcc"]
                             - record["metrics"]["test"]["srcc"])
  assert record["sharpness"]["worst_case_increase"] >= 0

  rows = [study.study_row(n, r) for n, r in runs.items()]
  line = np.asarray(record["landscape"]["random"]["loss"])  # alphas -1, -0.5, 0, 0.5, 1
  np.testing.assert_allclose(record["sharpness"]["loss_increase_line"],
                             np.mean((line[:, 1] + line[:, 3]) / 2 - line[:, 2]), rtol=1e-6)
  correlations = gap.correlation_table(rows, study.MEASURES, study.GAPS)
  report = study_report.write_report(str(tmp_path), {"command": "cmd", "steps": 1, "variants": {},
                                                     "fixed_sets": {}}, runs, rows, correlations,
                                     None, study.MEASURES, study.GAPS)
  text = open(report, encoding="utf-8").read()
  assert "| baseline | 2 |" in text and "| awp | 1 |" in text
  linked = [line[line.index("(") + 1:-1] for line in text.splitlines() if line.startswith("![")]
  assert len(linked) >= 8
  for path in linked:
    assert os.path.getsize(tmp_path / path) > 1000
