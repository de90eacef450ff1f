"""The shared test helpers themselves: tree comparisons fail on a structure mismatch."""

import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import assert_trees_close
from tests.helpers import assert_trees_equal
from tests.helpers import zip_leaves

TREE = {"backbone": {"kernel": np.ones((2, 3), np.float32), "bias": np.zeros(3, np.float32)},
        "head": {"bias": np.full((), 0.5, np.float32)}}


def without_head():
  return {"backbone": dict(TREE["backbone"])}


def test_equal_trees_pass_and_a_changed_leaf_is_named():
  assert_trees_equal(TREE, {k: dict(v) for k, v in TREE.items()})
  assert_trees_close(TREE, {"backbone": {"kernel": jnp.ones((2, 3)) * (1 + 1e-8),
                                         "bias": jnp.zeros(3)}, "head": {"bias": jnp.float32(0.5)}},
                     rtol=1e-6)
  moved = {"backbone": dict(TREE["backbone"], bias=np.full(3, 1e-3, np.float32)),
           "head": TREE["head"]}
  with pytest.raises(AssertionError, match=r"\['backbone'\]\['bias'\]"):
    assert_trees_close(moved, TREE, atol=1e-4)
  with pytest.raises(AssertionError, match=r"\['backbone'\]\['bias'\]"):
    assert_trees_equal(moved, TREE)


@pytest.mark.parametrize("assert_fn", [assert_trees_equal, assert_trees_close])
def test_a_missing_subtree_fails_either_way_round(assert_fn):
  # A zip over the leaves would compare backbone's two leaves and pass.
  for actual, expected in ((without_head(), TREE), (TREE, without_head())):
    with pytest.raises(AssertionError, match="structure differs"):
      assert_fn(actual, expected)


def test_same_leaves_under_other_keys_fail():
  renamed = {"trunk": TREE["backbone"], "head": TREE["head"]}
  with pytest.raises(AssertionError, match="structure differs"):
    assert_trees_equal(renamed, TREE)


def test_zip_leaves_checks_the_structures_it_zips():
  mask = {"backbone": {"kernel": True, "bias": False}, "head": {"bias": False}}
  assert [m for m, _ in zip_leaves(mask, TREE)] == [False, True, False]  # sorted keys
  with pytest.raises(AssertionError, match="structure differs"):
    zip_leaves(mask, without_head())


def test_equal_values_of_another_shape_or_dtype_fail():
  with pytest.raises(AssertionError):
    assert_trees_equal({"a": np.zeros((1, 3))}, {"a": np.zeros(3)})
  with pytest.raises(AssertionError):
    assert_trees_equal({"a": np.zeros(3, np.float32)}, {"a": np.zeros(3, np.float64)})
