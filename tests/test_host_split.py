"""Per-host split of the element stream (vqa_jax/data/host_split.py), with fake process indices."""

import numpy as np
import pytest

from vqa_jax.data import host_split


@pytest.mark.parametrize("process_count", [1, 2, 4])
def test_hosts_concatenate_to_the_global_batches(process_count):
  global_batch, steps = 8, 5
  per_host = [host_split.host_positions(2, steps, global_batch, p, process_count)
              for p in range(process_count)]
  local = global_batch // process_count
  assert all(len(h) == (steps - 2) * local for h in per_host)
  # Step s of host p is its slice; concatenated in process order it is the global batch.
  for step in range(steps - 2):
    merged = np.concatenate([h[step * local:(step + 1) * local] for h in per_host])
    np.testing.assert_array_equal(merged, np.arange((step + 2) * 8, (step + 3) * 8))


def test_hand_computed_layout():
  # B = 6 over 3 hosts: host 1 reads slots 2, 3 of each global batch.
  np.testing.assert_array_equal(host_split.host_positions(0, 2, 6, 1, 3), [2, 3, 8, 9])


@pytest.mark.parametrize("num_entries", [1, 7, 8, 13])
def test_eval_split_is_disjoint_padded_and_gathers_in_order(num_entries):
  global_batch, hosts = 4, 2
  per_host = [host_split.eval_positions(num_entries, global_batch, p, hosts) for p in range(hosts)]
  assert len({len(h) for h in per_host}) == 1  # the same number of batches on every host
  assert len(per_host[0]) % (global_batch // hosts) == 0
  union = np.concatenate(per_host)
  assert len(set(union.tolist())) == len(union)  # disjoint
  assert set(range(num_entries)) <= set(union.tolist())
  # Each host's result for position q is q % N (what eval_dataset computes); gathering restores
  # the file order.
  values = [(h % num_entries) * 10 for h in per_host]
  np.testing.assert_array_equal(host_split.gather_in_order(values, global_batch, num_entries),
                                np.arange(num_entries) * 10)


def test_errors():
  with pytest.raises(ValueError, match="not divisible by the 3 processes"):
    host_split.local_batch_size(8, 3)
  with pytest.raises(ValueError, match=r"process_index 2 is not in \[0, 2\)"):
    host_split.host_positions(0, 1, 4, 2, 2)
