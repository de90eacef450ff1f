"""vqa_jax.scoring.calibration: the fitted logistic and the upstream sigmoid, their scales and direction,
the per-checkpoint file, and which config is which upstream model."""

import json
import math

import numpy as np
import pytest
from scipy import optimize

from tests.helpers import load_config
from vqa_jax.scoring import calibration
from vqa_jax.convert import pretrained


def hand_logistic(x, b1, b2, b3, b4):
  """SimpleVQA's 4-parameter logistic, written out again here."""
  return b2 + (b1 - b2) / (1.0 + np.exp(-(np.asarray(x) - b3) / abs(b4)))


def test_fit_recovers_a_known_logistic_and_stays_in_the_label_range():
  raw = np.linspace(-0.3, 0.1, 40)
  label = hand_logistic(raw, 4.5, 1.5, -0.1, 0.05)  # MOS in (1.5, 4.5), increasing in raw
  fitted = calibration.fit(raw, label, (1.0, 5.0), "test", step=7)
  b1, b2, b3, b4 = fitted.beta  # the curve uses |b4|
  np.testing.assert_allclose((b1, b2, b3, abs(b4)), (4.5, 1.5, -0.1, 0.05), rtol=1e-4, atol=1e-6)
  # At raw = b3 the logistic is half-way: mos 3.0, and (3 - 1) / (5 - 1) = 0.5 on [0, 1].
  np.testing.assert_allclose(fitted.apply(-0.1)["mos"], 3.0, atol=1e-5)
  np.testing.assert_allclose(fitted.apply(-0.1)["score_01"], 0.5, atol=1e-5)
  wide = np.linspace(-5, 5, 201)  # far outside the fitted data
  mos, score_01 = fitted.mos(wide), fitted.score_01(wide)
  assert mos.min() >= 1.0 and mos.max() <= 5.0
  assert score_01.min() >= 0.0 and score_01.max() <= 1.0
  assert np.all(np.diff(mos) >= 0) and mos[-1] > mos[0]  # higher raw, higher MOS here


def test_negatively_correlated_raw_scores_give_decreasing_mos():
  raw = np.linspace(0.0, 1.0, 30)
  label = 80.0 - 60.0 * raw + np.random.default_rng(0).normal(0, 1.0, raw.size)
  fitted = calibration.fit(raw, label, (15.0, 85.0), "test")
  mos = fitted.mos(raw)
  assert np.all(np.diff(mos) <= 1e-9) and mos[0] - mos[-1] > 40  # better video, higher MOS
  # Least squares agrees with scipy's own fit of the same curve from the same start.
  beta, _ = optimize.curve_fit(hand_logistic, raw, label,
                               p0=[label.max(), label.min(), raw.mean(), 0.5], maxfev=100_000)
  np.testing.assert_allclose(mos, np.clip(hand_logistic(raw, *beta), 15, 85), atol=1e-3)


def test_upstream_rule_by_hand():
  rule = calibration.upstream("FAST-VQA")
  assert rule.apply(-0.110198185) == {"mos": None, "score_01": 0.5}
  # One std above the mean: 1 / (1 + e^-1).
  np.testing.assert_allclose(rule.apply(-0.110198185 + 0.04178565)["score_01"],
                             1 / (1 + math.e ** -1), rtol=1e-12)
  faster = calibration.upstream("FasterVQA")
  assert faster.score_01(0.14759505) == 0.5
  assert "vqa.py @9f264e4" in rule.describe()


@pytest.mark.parametrize("name,upstream", [("fast_vqa_b", "FAST-VQA"),
                                           ("faster_vqa", "FasterVQA"),
                                           ("fast_vqa_m", "FAST-VQA-M"), ("smoke", None),
                                           ("iqa_swin_t", None)])
def test_upstream_name_of_configs(name, upstream):
  assert calibration.upstream_name(load_config(name)) == upstream


def test_json_round_trip_and_file_entries(tmp_path):
  fitted = calibration.Calibration(calibration.LOGISTIC, (4.0, 1.0, 0.0, 0.1), (1.0, 5.0),
                                   "split 'val'", 12)
  calibration.save(str(tmp_path), "ema_params", fitted)
  calibration.save(str(tmp_path), "params", calibration.upstream("FAST-VQA-M"))
  entries = json.loads((tmp_path / calibration.FILE_NAME).read_text())
  assert set(entries) == {"ema_params", "params"}
  assert calibration.Calibration.from_json(entries["ema_params"]) == fitted


def trainer_location(item_dir, step):
  """A pretrained.Location of a trainer item dir."""
  return pretrained.Location(item_dir=str(item_dir), kind=pretrained.TRAINER, step=step,
                             keys=("ema_params", "opt_state", "params"))


def test_for_checkpoint_refuses_a_stale_or_missing_calibration(tmp_path, monkeypatch):
  item = tmp_path / "run" / "checkpoints" / "12" / "default"
  item.mkdir(parents=True)
  config = load_config("smoke")
  monkeypatch.setattr(pretrained, "locate", lambda path: trainer_location(item, 12))
  found, why = calibration.for_checkpoint(config, "x")
  assert found is None and "no calibration" in why and "calibration.json" in why
  fitted = calibration.Calibration(calibration.LOGISTIC, (4.0, 1.0, 0.0, 0.1), (1.0, 5.0), "v", 9)
  calibration.save(str(tmp_path / "run"), "ema_params", fitted)
  found, why = calibration.for_checkpoint(config, "x")
  assert found is None and "step 9" in why and "step 12" in why
  calibration.save(str(tmp_path / "run"), "ema_params",
                   calibration.Calibration(calibration.LOGISTIC, (4.0, 1.0, 0.0, 0.1),
                                           (1.0, 5.0), "v", 12))
  found, why = calibration.for_checkpoint(config, "x")
  assert found.step == 12 and "[1, 5]" in why
  assert calibration.for_checkpoint(config, "x", use_ema=False)[0] is None  # no 'params' entry
