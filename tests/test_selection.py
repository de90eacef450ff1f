"""Random splits (the reference's seed-42 fine-tuning split) and selection over evaluations."""

import random

import pytest

from vqa_jax.evaluation import selection


def test_seed_42_split_reproduces_the_reference_shuffle():
  # The reference: random.seed(42); random.shuffle(labels); first floor(0.8 N) train (paper §7.6).
  labels = [f"video_{i}.mp4" for i in range(1200)]
  expected = list(labels)
  random.seed(42)
  random.shuffle(expected)
  train, test = selection.shuffled_split(labels, 0.8, 42)
  assert train == expected[:960] and test == expected[960:]
  assert labels == [f"video_{i}.mp4" for i in range(1200)]  # input untouched


@pytest.mark.parametrize("n,train_size", [(1200, 960), (585, 468), (1040, 832)])
def test_split_sizes_of_the_fine_tuning_datasets(n, train_size):
  # KoNViD 960/240, LIVE-VQC 468/117, YouTube-UGC 832/208 (paper §7.6).
  train, test = selection.shuffled_split(list(range(n)), 0.8, 42)
  assert (len(train), len(test)) == (train_size, n - train_size)
  assert sorted(train + test) == list(range(n))


def test_split_rejects_an_empty_side():
  with pytest.raises(ValueError, match="empty"):
    selection.shuffled_split([1, 2], 0.4, 0)
  with pytest.raises(ValueError, match="fraction"):
    selection.shuffled_split([1, 2, 3], 1.0, 0)


def test_best_per_metric_mixes_evaluations():
  evals = [
      {"step": 1, "results": {"t": {"ema": {"srcc": 0.5, "plcc": 0.9, "rmse": 0.4}}}},
      {"step": 2, "results": {"t": {"ema": {"srcc": 0.7, "plcc": 0.6, "rmse": 0.5}}}},
      {"step": 3, "results": {"t": {"ema": {"srcc": float("nan"), "plcc": 0.1, "rmse": 0.3}}}},
  ]
  assert selection.best_per_metric(evals) == {"t": {"ema": {"srcc": 0.7, "plcc": 0.9, "rmse": 0.3}}}
  assert selection.selection_score({"srcc": 0.7, "plcc": 0.6}) == pytest.approx(1.3)
