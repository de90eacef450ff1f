"""Metrics against hand values and the RMSE identity of paper §10 item 9."""

import numpy as np
import pytest

from vqa_jax.evaluation import metrics


def test_monotone_nonlinear_prediction_is_perfectly_ranked():
  label = np.array([1.0, 2.0, 3.5, 4.0, 4.5])
  m = metrics.quality_metrics(np.exp(label), label)
  assert m["srcc"] == pytest.approx(1.0)
  assert m["krcc"] == pytest.approx(1.0)
  assert m["plcc"] < 1.0


def test_hand_computed_ranks():
  # One swapped adjacent pair among 4: SRCC = 1 - 6*2/(4*15) = 0.8, KRCC = (5-1)/6.
  m = metrics.quality_metrics([1, 3, 2, 4], [1, 2, 3, 4])
  assert m["srcc"] == pytest.approx(0.8)
  assert m["krcc"] == pytest.approx(4 / 6)


def test_rmse_identity_after_rescale():
  rng = np.random.default_rng(1)
  label = rng.normal(3.0, 0.64, size=200)
  pred = 10 * label + rng.normal(0, 4.0, size=200) - 7
  m = metrics.quality_metrics(pred, label)
  np.testing.assert_allclose(m["rmse"], label.std() * np.sqrt(2 * (1 - m["plcc"])), rtol=1e-9)


def test_rmse_identity_reproduces_sama_log():
  # Paper §10 item 9: KoNViD sigma 0.6408, PLCC 0.8614 -> RMSE 0.3374 in SAMA's log.
  assert 0.6408 * np.sqrt(2 * (1 - 0.8614)) == pytest.approx(0.3374, abs=1e-4)


def test_rescale_matches_label_moments_and_keeps_order():
  pred, label = np.array([0.1, 0.5, 0.2]), np.array([10.0, 50.0, 30.0])
  scaled = metrics.rescale(pred, label)
  assert scaled.mean() == pytest.approx(label.mean())
  assert scaled.std() == pytest.approx(label.std())
  assert list(np.argsort(scaled)) == list(np.argsort(pred))


def test_bad_input_is_rejected():
  with pytest.raises(ValueError, match="not finite"):
    metrics.quality_metrics([1.0, np.nan, 2.0], [1.0, 2.0, 3.0])
  with pytest.raises(ValueError, match="matching"):
    metrics.quality_metrics([1.0, 2.0], [1.0, 2.0, 3.0])


def test_logistic_fit_is_exact_when_labels_are_a_logistic_of_the_predictions():
  # Labels made by f(x) = b2 + (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) with known betas: the fit
  # recovers them, so PLCC after the fit is 1 and RMSE 0, while the linear PLCC is below 1.
  beta = (4.5, 1.2, 0.3, 0.2)
  pred = np.linspace(-0.5, 1.1, 40)
  label = beta[1] + (beta[0] - beta[1]) / (1 + np.exp(-(pred - beta[2]) / beta[3]))
  np.testing.assert_allclose(metrics.logistic_4(pred, *beta), label, rtol=1e-12)
  fitted = metrics.fit_logistic(pred, label)
  np.testing.assert_allclose(fitted[:3], beta[:3], rtol=1e-5)
  assert abs(fitted[3]) == pytest.approx(beta[3], rel=1e-5)
  m = metrics.quality_metrics(pred, label)
  assert m["plcc_logistic"] == pytest.approx(1.0, abs=1e-9)
  assert m["rmse_logistic"] == pytest.approx(0.0, abs=1e-6)
  assert m["plcc"] < 0.99


def test_logistic_fit_on_predictions_far_from_the_start_scale():
  # Predictions on a 1e-4 scale: SimpleVQA's start (beta4 = 0.5) is flat there; the standardised
  # retry still finds the exact curve, expressed on the raw scale.
  beta = (80.0, 20.0, 3e-4, 5e-5)
  pred = np.linspace(1e-4, 5e-4, 30)
  label = metrics.logistic_4(pred, *beta)
  m = metrics.logistic_metrics(pred, label)
  assert m["plcc_logistic"] == pytest.approx(1.0, abs=1e-8)
  assert m["rmse_logistic"] == pytest.approx(0.0, abs=1e-4)


def test_logistic_metrics_can_be_left_out():
  assert set(metrics.quality_metrics([1, 3, 2, 4], [1, 2, 3, 4], logistic=False)) == set(
      metrics.METRIC_NAMES)
