"""bf16 compute and per-block remat through the trainer: the dtypes of the model's products in the
lowered step, and a run that trains with float32 params."""

import collections
import contextlib
import io
import re

import jax
import numpy as np
import pytest

from tests.helpers import load_config
from tests.helpers import saved_params
from tests.helpers import smoke_batch
from vqa_jax import families
from vqa_jax.config import perturb_config
from vqa_jax.runtime import sharding
from vqa_jax.training import optim
from vqa_jax.training import trainer

pytestmark = pytest.mark.usefixtures("fast_compile")

# One product op of StableHLO text: its kind, then (after the attributes) its type signature.
_PRODUCT = re.compile(r"stablehlo\.(dot_general|convolution)\b.*:\s*\(tensor<([^>]*)>,\s*"
                      r"tensor<([^>]*)>\)\s*->\s*tensor<([^>]*)>")
_PRECISION = re.compile(r"\b(DEFAULT|HIGHEST|HIGH)\b")
Product = collections.namedtuple("Product", "op lhs rhs result precision")


def _dtype(tensor_type: str) -> str:
  """The element type of a StableHLO tensor type's body, e.g. '8x16xbf16' -> 'bf16'."""
  return tensor_type.rsplit("x", 1)[-1]


def model_products(stablehlo: str) -> collections.Counter:
  """Counts of the dot_general / convolution ops with a non-scalar result, by operand and result
  dtype and precision: the model's products (scalar results are the norms' and the loss's dots)."""
  products = collections.Counter()
  for line in stablehlo.splitlines():
    match = _PRODUCT.search(line)
    if match is None:
      continue
    op, lhs, rhs, result = match.groups()
    if "x" not in result:  # a scalar result
      continue
    precision = _PRECISION.search(line[match.end(1):])
    products[Product(op, _dtype(lhs), _dtype(rhs), _dtype(result),
                     precision.group(1) if precision else None)] += 1
  return products


def test_model_products_parses_dots_and_convolutions():
  text = "\n".join([
      "%1 = stablehlo.dot_general %a, %b, contracting_dims = [2] x [0], precision = [DEFAULT, "
      "DEFAULT] : (tensor<32x16xbf16>, tensor<16x48xbf16>) -> tensor<32x48xbf16>",
      "%2 = stablehlo.dot_general %c, %d, contracting_dims = [0] x [0], precision = [DEFAULT, "
      "DEFAULT] : (tensor<256xf32>, tensor<256xf32>) -> tensor<f32>",
      "%3 = stablehlo.convolution(%e, %f) dim_numbers = [b, 0, f]x[0, i, o]->[b, 0, f], window = "
      "{stride = [2]} {precision_config = [#stablehlo<precision HIGHEST>, #stablehlo<precision "
      "HIGHEST>]} : (tensor<8x4x3xf32>, tensor<2x3x16xf32>) -> tensor<8x2x16xf32>",
      "%4 = stablehlo.add %g, %h : tensor<8x2x16xf32>"])
  assert model_products(text) == {Product("dot_general", "bf16", "bf16", "bf16", "DEFAULT"): 1,
                                  Product("convolution", "f32", "f32", "f32", "HIGHEST"): 1}


def lowered_step_products(precisions: tuple[str, ...]) -> list[collections.Counter]:
  """model_products of the smoke run's AWP train step lowered with bf16 compute, per
  perturb.precision (one initial state: it does not depend on the precision)."""
  config = load_config("smoke")
  config.model.dtype = "bfloat16"
  mesh = sharding.make_mesh()
  family = families.build(config)
  tx = optim.make_optimizer(config.train)
  state = trainer.init_state(family, tx, perturb_config.PerturbConfig(), config.seed, mesh)
  batch = sharding.shard_batch(smoke_batch(0), mesh)
  products = []
  for precision in precisions:
    config.perturb.precision = precision
    perturb_cfg = perturb_config.PerturbConfig.from_config(config.perturb, config.model.dtype)
    step = trainer.make_step_fn(config, family, tx, mesh, perturb_cfg)
    products.append(model_products(step.lower(state, batch, jax.random.key(0)).as_text()))
  return products


def test_bf16_step_multiplies_in_bf16_and_the_float32_perturbed_pass_in_float32():
  """model.dtype bf16: with perturb.precision 'cast' the clean and the perturbed pass run the same
  products, so each count is even and half of it is one pass. That pass multiplies in bf16: its
  dots and convolutions take bf16 (the attention logits, which jax.nn.dot_product_attention
  accumulates in float32, and their gradients give float32), and its only float32 x float32
  products are the exact one-hot reads of the relative-position bias table at HIGHEST. With
  'auto' (= 'float32' in bf16) the perturbed pass runs every other product of that pass in float32
  at HIGHEST, one for one (the table reads stay), and the clean pass stays as it is."""
  products, cast = lowered_step_products(("auto", "cast"))
  assert all(count % 2 == 0 for count in cast.values()), cast
  one_pass = collections.Counter({product: count // 2 for product, count in cast.items()})
  bf16 = {op: Product(op, "bf16", "bf16", "bf16", "DEFAULT") for op in ("dot_general",
                                                                         "convolution")}
  f32 = {op: Product(op, "f32", "f32", "f32", "HIGHEST") for op in ("dot_general", "convolution")}
  assert one_pass[bf16["dot_general"]] > 0 and one_pass[bf16["convolution"]] > 0, one_pass
  in_float32 = [p for p in one_pass if p.lhs == p.rhs == "f32" and p not in f32.values()]
  assert not in_float32, f"the bf16 pass multiplies in float32: {in_float32}"
  assert all(p.result == "f32" for p in one_pass
             if "f32" in (p.lhs, p.rhs) and p not in f32.values()), one_pass
  lowered = collections.Counter({p: n for p, n in one_pass.items() if p not in f32.values()})
  expected = lowered + collections.Counter(
      {f32[op]: 2 * one_pass[f32[op]] + sum(n for p, n in lowered.items() if p.op == op)
       for op in f32})
  assert products == +expected, products


@pytest.mark.slow  # ~15 s; bf16 and remat gradients are checked in test_model
def test_bf16_remat_run_trains_with_float32_params(tmp_path, monkeypatch):
  """`model.dtype='bfloat16'` + `model.remat` from the config: the step the run compiles multiplies
  in bf16 with rematerialised blocks, while params, EMA and checkpoints stay float32 and the run is
  finite."""
  monkeypatch.setenv("VQA_JAX_CACHE", str(tmp_path / "cache"))
  config = load_config("smoke")
  config.model.dtype = "bfloat16"
  config.model.remat = True
  config.train.steps = 3
  config.train.checkpoint_every = 3
  lowered_text = []
  original = trainer.compile_step

  def recording_compile(step_fn, state, device_batch, rng):
    lowered_text.append(step_fn.lower(state, device_batch, rng).as_text())
    return original(step_fn, state, device_batch, rng)

  monkeypatch.setattr(trainer, "compile_step", recording_compile)
  with contextlib.redirect_stdout(io.StringIO()):
    results = trainer.train(config, str(tmp_path / "work"))

  # The clean pass multiplies in bf16; the perturbed pass ('auto' = 'float32') in float32.
  products = model_products(lowered_text[0])
  assert {(p.lhs, p.rhs, p.result) for p in products} == {("bf16", "bf16", "bf16"),
                                                          ("f32", "f32", "f32")}, products
  saved = saved_params(str(tmp_path / "work"))
  dtypes = {leaf.dtype for leaf in jax.tree_util.tree_leaves(saved)}
  assert dtypes == {np.dtype(np.float32)}
  assert all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(saved))
  for model_results in results["test"].values():
    assert np.isfinite(model_results["srcc"])
