"""The study's statistics: exact Wilcoxon, Holm, power, intervals, paired comparisons, digests."""

import math

import numpy as np
import pytest
from scipy import stats

from vqa_jax.study import comparisons
from vqa_jax.study import fingerprints
from vqa_jax.study import significance


def test_holm_against_a_hand_computation():
  # Sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> the running
  # maximum 0.06). Back in input order:
  assert significance.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
  # nan is outside the family: m = 2 here.
  adjusted = significance.holm([0.01, float("nan"), 0.02])
  assert adjusted[0] == pytest.approx(0.02) and adjusted[2] == pytest.approx(0.02)
  assert math.isnan(adjusted[1])
  assert significance.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_exact_wilcoxon_against_hand_counts_and_scipy():
  # n = 5, all positive: T- = 0 has probability 1/32; two-sided 2/32.
  assert significance.wilcoxon_exact([1, 2, 3, 4, 5]) == pytest.approx(2 / 32)
  # T- = 2 (the delta -2): subsets of {1..5} with rank sum <= 2 are {}, {1}, {2}: 3/32, twice.
  assert significance.wilcoxon_exact([1, -2, 3, 4, 5]) == pytest.approx(6 / 32)
  # n = 8, all one sign: 2 / 2^8, the smallest p eight pairs can give.
  assert significance.wilcoxon_exact(np.arange(1, 9) * -0.01) == pytest.approx(2 / 256)
  # Zero deltas are dropped before ranking (zero_method='wilcox').
  assert significance.wilcoxon_exact([0.0, 1, 2, 3, 4, 5]) == pytest.approx(2 / 32)
  x = np.random.default_rng(3).normal(0.1, 1, 9)
  assert significance.wilcoxon_exact(x) == pytest.approx(
      stats.wilcoxon(x, method="exact").pvalue)
  assert math.isnan(significance.wilcoxon_exact([0.0, 0.0, 0.3]))


def test_t_interval_and_test_by_hand():
  low, high = significance.t_interval([1.0, 2.0, 3.0])
  half = 4.302652729911275 / math.sqrt(3)  # t(0.975, 2) * sd 1 / sqrt(3)
  assert (low, high) == pytest.approx((2 - half, 2 + half))
  d = np.array([0.02, 0.01, 0.05, -0.01])
  t = d.mean() / (d.std(ddof=1) / 2.0)
  assert significance.t_test(d) == pytest.approx(2 * stats.t.sf(abs(t), 3))
  assert math.isnan(significance.t_test([0.1, 0.1]))


def test_minimum_detectable_effect_has_the_power_by_simulation():
  """At the MDE a simulated paired t-test rejects 80% of the time (independent of scipy.nct)."""
  n, sd = 8, 0.01
  mde = significance.minimum_detectable_effect(sd, n)
  rng = np.random.default_rng(0)
  draws = rng.normal(mde, sd, (40000, n))
  t = draws.mean(1) / (draws.std(1, ddof=1) / math.sqrt(n))
  rejected = np.mean(np.abs(t) > stats.t.ppf(0.975, n - 1))
  assert rejected == pytest.approx(0.8, abs=0.01)
  # Large n: the normal approximation (z_0.975 + z_0.8) sd / sqrt(n) = 2.8016 sd / sqrt(n).
  assert significance.minimum_detectable_effect(1.0, 2000) == pytest.approx(
      2.8016 / math.sqrt(2000), rel=2e-3)
  assert significance.seeds_needed(mde * 1.001, sd) == n
  assert significance.seeds_needed(mde * 0.99, sd) == n + 1
  assert math.isnan(significance.minimum_detectable_effect(0.0, 8))


def test_correlation_mde_by_fisher_z():
  z = (1.959964 + 0.841621) / math.sqrt(40 - 3)
  assert significance.correlation_mde(40) == pytest.approx(math.tanh(z), rel=1e-5)


def test_bca_interval_of_many_values_is_the_normal_interval():
  x = np.random.default_rng(0).normal(0.3, 1.0, 400)
  low, high = significance.bca_interval(x)
  half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)
  assert (low, high) == pytest.approx((x.mean() - half, x.mean() + half), abs=0.02)
  assert significance.bca_interval([0.2, 0.2, 0.2]) == pytest.approx((0.2, 0.2))
  assert all(math.isnan(v) for v in significance.bca_interval([0.2, 0.3]))


def test_paired_deltas_and_tests_against_scipy_and_hand_values():
  baseline = {0: 0.50, 1: 0.60, 2: 0.40, 3: 0.55}
  variant = {0: 0.52, 1: 0.61, 2: 0.45, 3: 0.54, 9: 0.99}  # seed 9 has no pair: left out
  result = significance.paired(baseline, variant)
  d = np.array([0.02, 0.01, 0.05, -0.01])
  assert result["seeds"] == [0, 1, 2, 3] and result["n"] == 4
  assert result["delta"]["mean"] == pytest.approx(0.0175)
  assert result["delta"]["std"] == pytest.approx(np.std(d, ddof=1))
  rel = d / np.array([0.50, 0.60, 0.40, 0.55])
  assert result["relative"]["mean"] == pytest.approx(rel.mean())
  assert result["t_p"] == pytest.approx(stats.ttest_rel(
      [variant[s] for s in range(4)], [baseline[s] for s in range(4)]).pvalue)
  # Ranks of |d|: 0.01 and -0.01 tie (1.5 each), 0.02 -> 3, 0.05 -> 4: T- = 1.5.
  assert result["wilcoxon_p"] == pytest.approx(stats.wilcoxon(d).pvalue)
  assert result["mde"] == pytest.approx(significance.minimum_detectable_effect(np.std(d, ddof=1),
                                                                              4))
  assert result["delta"]["t_low"] < result["delta"]["mean"] < result["delta"]["t_high"]
  with pytest.raises(ValueError, match="no common seeds"):
    significance.paired({0: 0.5}, {1: 0.5})


def test_relative_delta_of_a_zero_baseline_is_nan():
  result = significance.paired({0: 0.0, 1: 0.5}, {0: 0.1, 1: 0.6})
  assert math.isnan(result["relative"]["mean"]) and result["delta"]["mean"] == pytest.approx(0.1)


def _cross_record(variant, seed, test_srcc, prints):
  results = {split: {"ema": {"srcc": test_srcc + (split == "cross"), "plcc": 0.1}}
             for split in ("test", "cross")}
  return {"name": f"{variant}_s{seed}", "variant": variant, "seed": seed,
          "trainer_results": results, "pairing": prints}


def test_comparisons_pair_each_variant_with_its_seed_baseline():
  fp = {"init": "a", "batches": "b", "rng": "c"}
  runs = {f"{v}_s{s}": _cross_record(v, s, x, fp)
          for v, s, x in [("baseline", 0, 0.5), ("baseline", 1, 0.7), ("awp", 0, 0.6),
                          ("awp", 1, 0.9)]}
  rows = comparisons.paired_comparisons("cross", runs, "ema")
  by_outcome = {r["outcome"]: r for r in rows}
  assert set(by_outcome) == {"test_srcc", "test_plcc", "cross_srcc", "cross_plcc"}
  assert by_outcome["test_srcc"]["delta"]["mean"] == pytest.approx(0.15)  # (0.1 + 0.2) / 2
  assert by_outcome["cross_srcc"]["relative"]["mean"] == pytest.approx((0.1 / 1.5 + 0.2 / 1.7) / 2)
  assert all(r["variant"] == "awp" and r["model"] == "ema" for r in rows)


def test_check_pairs_names_the_differing_field():
  same = {"init": "a", "batches": "b", "rng": "c"}
  fingerprints.check_pairs({("baseline", 0): same, ("awp", 0): dict(same)})
  with pytest.raises(ValueError, match="awp seed 0: batches differs"):
    fingerprints.check_pairs({("baseline", 0): same, ("awp", 0): {**same, "batches": "x"}})
  with pytest.raises(ValueError, match="no baseline run of seed 1"):
    fingerprints.check_pairs({("baseline", 0): same, ("awp", 1): same})
  # Fine-tuning pairs start from different models by design: only batches and rng must match.
  fingerprints.check_pairs({("baseline", 0): same, ("awp", 0): {**same, "init": "z"}},
                           fields=("batches", "rng"))


def test_digest_depends_on_dtype_shape_and_bytes():
  a = np.arange(4, dtype=np.int32)
  assert fingerprints.digest([a]) == fingerprints.digest([a.copy()])
  assert fingerprints.digest([a]) != fingerprints.digest([a.astype(np.int64)])
  assert fingerprints.digest([a]) != fingerprints.digest([a.reshape(2, 2)])
  assert fingerprints.digest([a]) != fingerprints.digest([a + 1])


def test_per_distortion_srcc_over_the_videos_carrying_each():
  from vqa_jax.study import distortion_breakdown  # pylint: disable=g-import-not-at-top
  labels = [1.0, 2.0, 3.0, 4.0, 5.0, 1.5, 2.5]
  preds = [0.1, 0.2, 0.3, 0.4, 0.5, 0.9, 0.1]
  distortions = [{"blur": 0.1}, {"blur": 0.2, "jpeg": 0.5}, {"blur": 0.3}, {"blur": 0.4},
                 {"jpeg": 0.1}, {"jpeg": 0.2}, {"jpeg": 0.3}]
  table = distortion_breakdown.per_distortion_srcc(preds, labels, distortions)
  assert table["blur"] == {"n": 4, "srcc": pytest.approx(1.0)}  # videos 0-3: same order
  # jpeg: videos 1, 4, 5, 6: labels 2, 5, 1.5, 2.5 -> ranks 2, 4, 1, 3; preds .2, .5, .9, .1 ->
  # ranks 2, 3, 4, 1: d = 0, 1, -3, 2, rho = 1 - 6 * 14 / (4 * 15) = -0.4.
  assert table["jpeg"]["n"] == 4 and table["jpeg"]["srcc"] == pytest.approx(-0.4)
  few = distortion_breakdown.per_distortion_srcc(preds[:3], labels[:3], distortions[:3])
  assert few["blur"]["n"] == 3 and math.isnan(few["blur"]["srcc"])  # below MIN_VIDEOS
  with pytest.raises(KeyError, match="no generator metadata"):
    distortion_breakdown.distortions_of(["/a/x.avi"], {"/a/y.avi": {"distortions": {}}})
