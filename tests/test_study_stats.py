"""The study's paired statistics (issue 21): deltas, bootstrap intervals, t-test, comparisons."""

import math

import numpy as np
import pytest
from scipy import stats

from vqa_jax.study import paired
from vqa_jax.study import pairing
from vqa_jax.study import records


def test_bootstrap_interval_of_two_values_by_hand():
  # Resampling [0, 1] with replacement: the mean is 0, 0.5 or 1 with probability 1/4, 1/2, 1/4,
  # so the 2.5% and 97.5% percentiles are 0 and 1.
  low, high = paired.bootstrap_ci([0.0, 1.0])
  assert (low, high) == (0.0, 1.0)


def test_bootstrap_interval_of_three_values_by_hand():
  # [0, 0, 3]: the resample mean is k (number of 3s drawn, binomial(3, 1/3)). P(k=0) = 8/27 > 2.5%
  # and P(k=3) = 1/27 > 2.5%, so the percentile interval is [0, 3]. With [0, 3, 3, 3, 3, 3, 3, 3]
  # P(no zero drawn) = (7/8)^8 = 0.34, so the upper end is the maximum 3 and the lower end is below.
  assert paired.bootstrap_ci([0.0, 0.0, 3.0]) == (0.0, 3.0)
  low, high = paired.bootstrap_ci([0.0] + [3.0] * 7)
  assert high == 3.0 and 0.0 < low < 3.0


def test_bootstrap_interval_covers_the_normal_interval_for_many_values():
  rng = np.random.default_rng(0)
  x = rng.normal(0.3, 1.0, 400)
  low, high = paired.bootstrap_ci(x)
  half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)  # the large-sample interval of the mean
  assert low == pytest.approx(x.mean() - half, abs=0.02)
  assert high == pytest.approx(x.mean() + half, abs=0.02)


def test_bootstrap_degenerate_and_single_values():
  assert paired.bootstrap_ci([0.2, 0.2, 0.2]) == pytest.approx((0.2, 0.2))
  assert all(math.isnan(v) for v in paired.bootstrap_ci([0.2]))


def test_paired_deltas_and_t_test_against_scipy_and_hand_values():
  baseline = {0: 0.50, 1: 0.60, 2: 0.40, 3: 0.55}
  variant = {0: 0.52, 1: 0.61, 2: 0.45, 3: 0.54, 9: 0.99}  # seed 9 has no pair: left out
  result = paired.paired(baseline, variant)
  d = np.array([0.02, 0.01, 0.05, -0.01])
  assert result["seeds"] == [0, 1, 2, 3] and result["n"] == 4
  assert result["delta"]["mean"] == pytest.approx(0.0175)
  assert result["delta"]["std"] == pytest.approx(np.std(d, ddof=1))
  rel = d / np.array([0.50, 0.60, 0.40, 0.55])
  assert result["relative"]["mean"] == pytest.approx(rel.mean())
  t = d.mean() / (d.std(ddof=1) / 2.0)  # paired t by hand, 3 degrees of freedom
  assert result["t_pvalue"] == pytest.approx(2 * stats.t.sf(abs(t), 3))
  assert result["t_pvalue"] == pytest.approx(stats.ttest_rel(
      [variant[s] for s in range(4)], [baseline[s] for s in range(4)]).pvalue)
  assert result["baseline_mean"] == pytest.approx(0.5125)
  assert result["delta"]["ci_low"] <= result["delta"]["mean"] <= result["delta"]["ci_high"]
  assert min(d) <= result["delta"]["ci_low"] and result["delta"]["ci_high"] <= max(d)


def test_excludes_zero_only_when_the_interval_does():
  assert paired.paired({0: 0.5, 1: 0.5, 2: 0.5}, {0: 0.6, 1: 0.7, 2: 0.65})["excludes_zero"]
  assert not paired.paired({0: 0.5, 1: 0.5}, {0: 0.6, 1: 0.4})["excludes_zero"]
  with pytest.raises(ValueError, match="no common seeds"):
    paired.paired({0: 0.5}, {1: 0.5})


def _cross_record(variant, seed, test_srcc, prints):
  results = {split: {"raw": {"srcc": test_srcc + (split == "cross"), "plcc": 0.1}}
             for split in ("test", "cross")}
  return {"name": f"{variant}_s{seed}", "variant": variant, "seed": seed,
          "trainer_results": results, "pairing": prints}


def test_comparisons_pair_each_variant_with_its_seed_baseline():
  fp = {"init": "a", "batches": "b", "rng": "c"}
  runs = {f"{v}_s{s}": _cross_record(v, s, x, fp)
          for v, s, x in [("baseline", 0, 0.5), ("baseline", 1, 0.7), ("awp", 0, 0.6),
                          ("awp", 1, 0.9)]}
  rows = records.comparisons("cross", runs, "raw")
  by_outcome = {r["outcome"]: r for r in rows}
  assert set(by_outcome) == {"test_srcc", "test_plcc", "cross_srcc", "cross_plcc"}
  assert by_outcome["test_srcc"]["delta"]["mean"] == pytest.approx(0.15)  # (0.1 + 0.2) / 2
  assert by_outcome["cross_srcc"]["relative"]["mean"] == pytest.approx((0.1 / 1.5 + 0.2 / 1.7) / 2)
  assert all(r["variant"] == "awp" for r in rows)


def test_check_pairs_names_the_differing_field():
  same = {"init": "a", "batches": "b", "rng": "c"}
  pairing.check_pairs({("baseline", 0): same, ("awp", 0): dict(same)})
  with pytest.raises(ValueError, match="awp seed 0: batches differs"):
    pairing.check_pairs({("baseline", 0): same, ("awp", 0): {**same, "batches": "x"}})
  with pytest.raises(ValueError, match="no baseline run of seed 1"):
    pairing.check_pairs({("baseline", 0): same, ("awp", 1): same})
  # Fine-tuning pairs start from different models by design: only batches and rng must match.
  pairing.check_pairs({("baseline", 0): same, ("awp", 0): {**same, "init": "z"}},
                      fields=("batches", "rng"))


def test_digest_depends_on_dtype_shape_and_bytes():
  a = np.arange(4, dtype=np.int32)
  assert pairing.digest([a]) == pairing.digest([a.copy()])
  assert pairing.digest([a]) != pairing.digest([a.astype(np.int64)])
  assert pairing.digest([a]) != pairing.digest([a.reshape(2, 2)])
  assert pairing.digest([a]) != pairing.digest([a + 1])


def test_relative_delta_of_a_zero_baseline_is_nan():
  result = paired.paired({0: 0.0, 1: 0.5}, {0: 0.1, 1: 0.6})
  assert math.isnan(result["relative"]["mean"]) and result["delta"]["mean"] == pytest.approx(0.1)
