"""Progress lines (steps/s, ETA) and the final results table / JSON line."""

import json

from tests.helpers import ManualClock
from vqa_jax.runtime import progress
from vqa_jax.evaluation import report


def test_progress_rate_and_eta():
  clock = ManualClock()
  meter = progress.Progress(total_steps=100, start_step=0, clock=clock)
  clock.now += 10.0  # 20 steps in 10 s -> 2 steps/s, 80 steps left -> 40 s
  line = meter.report(20, {"loss": 0.25})
  assert line == "step 20/100 [####................]  20% | loss 0.2500 | 2.00 steps/s | ETA 40s"
  clock.now += 5.0  # next 20 steps in 5 s -> 4 steps/s, 60 left -> 15 s
  assert meter.report(40, {"loss": 0.125}).endswith("4.00 steps/s | ETA 15s")


def test_format_duration():
  assert progress.format_duration(187) == "3m07s"
  assert progress.format_duration(3720) == "1h02m"


def test_table_and_json_hold_the_same_numbers():
  results = {"test": {"raw": {"srcc": 0.91, "plcc": 0.9, "krcc": 0.75, "rmse": 0.3}},
             "cross": {"ema": {"srcc": 0.5, "plcc": 0.55, "krcc": 0.35, "rmse": 0.7}}}
  table = report.results_table(results).splitlines()
  assert table[0].split() == ["eval", "set", "model", "SRCC", "PLCC", "KRCC", "RMSE"]
  assert table[2].split() == ["test", "raw", "0.9100", "0.9000", "0.7500", "0.3000"]
  assert table[3].split() == ["cross", "ema", "0.5000", "0.5500", "0.3500", "0.7000"]
  assert json.loads(report.results_json(results, 7)) == {"step": 7, "results": results}


def test_progress_bar():
  assert progress.progress_bar(0, 8, width=8) == "[........]   0%"
  assert progress.progress_bar(3, 8, width=8) == "[###.....]  38%"
  assert progress.progress_bar(9, 8, width=8) == "[########] 100%"


def test_table_has_logistic_columns_and_a_title_when_given():
  values = {"srcc": 0.9, "plcc": 0.8, "krcc": 0.7, "rmse": 0.3, "plcc_logistic": 0.85,
            "rmse_logistic": 0.25}
  table = report.results_table({"val": {"ema": values}}, "selected").splitlines()
  assert table[0] == "selected"
  assert table[1].split()[-2:] == ["PLCC-L4", "RMSE-L4"]
  assert table[3].split()[-2:] == ["0.8500", "0.2500"]


def test_progress_restart_leaves_out_the_paused_time():
  clock = ManualClock()
  meter = progress.Progress(total_steps=100, start_step=0, clock=clock)
  clock.now += 10.0
  meter.report(20, {})
  clock.now += 50.0  # an evaluation
  meter.restart(20)
  clock.now += 5.0
  assert "4.00 steps/s | ETA 15s" in meter.report(40, {})
