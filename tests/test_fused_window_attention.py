"""The fused window attention (issue 30) against the formula it replaced, outputs and gradients.

The reference below is the attention as computed before issue 30 (an explicit float32 softmax of
q k^T plus the table-gathered gated bias and the shift mask, windows as the batch); the model now
calls `jax.nn.dot_product_attention` with windows folded into heads and a gather-free bias.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import assert_same_structure
from vqa_jax.models import video_swin as vs

WINDOW, HEADS, DIM, NUM_WINDOWS, BATCH = (2, 3, 2), 2, 16, 3, 2
N = 12


def _reference_attention(params, x, mask, gate, num_heads, window):
  """The pre-issue-30 window attention: (B*nW, N, C) -> (B*nW, N, C), float32."""
  b_, n, c = x.shape
  head_dim = c // num_heads
  qkv = x @ params["qkv"]["kernel"] + params["qkv"]["bias"]
  qkv = qkv.reshape(b_, n, 3, num_heads, head_dim).transpose(2, 0, 3, 1, 4)
  q, k, v = qkv[0] * head_dim ** -0.5, qkv[1], qkv[2]
  attn = jnp.einsum("bhqd,bhkd->bhqk", q, k)
  index = vs.relative_position_index(window)
  rpb = params["relative_position_bias_table"][index].transpose(2, 0, 1)[None]
  fpb = params["fragment_position_bias_table"][index].transpose(2, 0, 1)[None]
  g = jnp.asarray(gate, jnp.float32)[:, None]
  bias = rpb * g + fpb * (1 - g)  # nW, heads, N, N.
  num_windows = bias.shape[0]
  attn = attn.reshape(b_ // num_windows, num_windows, num_heads, n, n) + bias[None]
  attn = attn + jnp.asarray(mask)[None, :, None]
  attn = jax.nn.softmax(attn.reshape(b_, num_heads, n, n), axis=-1)
  out = jnp.einsum("bhqk,bhkd->bqhd", attn, v).reshape(b_, n, c)
  return out @ params["proj"]["kernel"] + params["proj"]["bias"]


@pytest.fixture(name="case")
def _case():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(BATCH * NUM_WINDOWS, N, DIM)).astype(np.float32)
  gate = rng.integers(0, 4, size=(NUM_WINDOWS, N, N)).astype(np.uint8)
  mask = np.where(rng.random((NUM_WINDOWS, N, N)) < 0.3, -100.0, 0.0).astype(np.float32)
  attn = vs.WindowAttention3D(DIM, WINDOW, HEADS, frag_bias=True)
  params = attn.init(jax.random.key(0), x, mask, gate)["params"]
  # A non-zero fragment table, so that the gate's mix really is tested.
  params["fragment_position_bias_table"] = jnp.asarray(
      rng.normal(size=params["fragment_position_bias_table"].shape), jnp.float32)
  return attn, params, x, mask, gate


def _relative_max_diff(got, expected) -> float:
  return float(np.abs(np.asarray(got) - np.asarray(expected)).max()
               / np.abs(np.asarray(expected)).max())


def test_fused_attention_outputs_equal_the_reference(case):
  attn, params, x, mask, gate = case
  got = attn.apply({"params": params}, x, mask, gate)
  expected = _reference_attention(params, x, mask, gate, HEADS, WINDOW)
  assert got.shape == expected.shape == x.shape
  assert _relative_max_diff(got, expected) <= 1e-6


def test_fused_attention_gradients_equal_the_reference(case):
  attn, params, x, mask, gate = case
  cotangent = jnp.asarray(np.random.default_rng(1).normal(size=x.shape), jnp.float32)

  def loss(fn):
    return lambda p, inputs: jnp.sum(fn(p, inputs) * cotangent)

  ours = jax.grad(loss(lambda p, inputs: attn.apply({"params": p}, inputs, mask, gate)),
                  (0, 1))(params, x)
  ref = jax.grad(loss(lambda p, inputs: _reference_attention(p, inputs, mask, gate, HEADS,
                                                             WINDOW)), (0, 1))(params, x)
  assert_same_structure(ours, ref)
  for got, expected in zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(ref)):
    assert _relative_max_diff(got, expected) <= 1e-6


def test_xla_and_auto_implementations_agree_on_the_cpu(case):
  """On the CPU 'auto' is XLA's path; naming 'xla' gives the same bits, an unknown name fails."""
  attn, params, x, mask, gate = case
  auto = attn.apply({"params": params}, x, mask, gate)
  xla = vs.WindowAttention3D(DIM, WINDOW, HEADS, frag_bias=True, implementation="xla").apply(
      {"params": params}, x, mask, gate)
  np.testing.assert_array_equal(auto, xla)
  with pytest.raises(ValueError, match="attention implementation must be one of"):
    vs.WindowAttention3D(DIM, WINDOW, HEADS, frag_bias=True, implementation="flash").apply(
        {"params": params}, x, mask, gate)


def test_attention_dropout_path_computes_the_same_attention_and_drops(case):
  """Training with attention dropout takes the explicit path: at a negligible rate it equals the
  fused one; at 0.5 it changes the output."""
  attn, params, x, mask, gate = case
  fused = attn.apply({"params": params}, x, mask, gate, train=True)
  outputs = {}
  for rate in (1e-9, 0.5):
    module = vs.WindowAttention3D(DIM, WINDOW, HEADS, frag_bias=True, attn_drop_rate=rate)
    outputs[rate] = module.apply({"params": params}, x, mask, gate, train=True,
                                 rngs={"dropout": jax.random.key(4)})
  assert _relative_max_diff(outputs[1e-9], fused) <= 1e-6
  assert float(jnp.abs(outputs[0.5] - fused).max()) > 1e-3
