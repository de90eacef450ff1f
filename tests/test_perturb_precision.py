"""The perturbed pass's arithmetic: realised-perturbation metrics, split and float32
modes of `perturb.value_and_grad`, and `model.matmul_precision`."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import optax
import pytest

from tests.helpers import assert_same_structure
from tests.helpers import assert_trees_close
from tests.helpers import load_config
from vqa_jax import families
from vqa_jax import perturb
from vqa_jax import perturb_precision
from vqa_jax.config import perturb_config
from vqa_jax.config import validation
from vqa_jax.training import train_step

pytestmark = pytest.mark.usefixtures("fast_compile")


def hand_tree():
  """(params, delta, mask): a kernel, a LayerNorm scale (perturbed) and a bias (not perturbed)."""
  rng = np.random.default_rng(0)
  w = rng.normal(0, 0.05, (64, 32)).astype(np.float32)
  scale = (1 + rng.normal(0, 0.01, (32,))).astype(np.float32)
  params = {"dense": {"kernel": w, "bias": np.ones(32, np.float32)}, "norm": {"scale": scale}}
  delta = {"dense": {"kernel": (1e-4 * np.abs(w) * rng.choice([-1, 1], w.shape)).astype(np.float32),
                     "bias": np.zeros(32, np.float32)},
           "norm": {"scale": (1e-4 * rng.normal(size=32)).astype(np.float32)}}
  mask = {"dense": {"kernel": True, "bias": False}, "norm": {"scale": True}}
  return params, delta, mask


def np_cosine_ratio(realised, intended):
  r, d = np.concatenate([x.ravel() for x in realised]), np.concatenate([x.ravel() for x in intended])
  r, d = r.astype(np.float64), d.astype(np.float64)
  return r @ d / np.linalg.norm(r) / np.linalg.norm(d), np.linalg.norm(r) / np.linalg.norm(d)


def bf16(x):
  return x.astype(ml_dtypes.bfloat16).astype(np.float32)


@pytest.mark.parametrize("precision", ["cast", "split", "float32"])
def test_realised_metrics_equal_numpy_bfloat16(precision):
  """Kernels are multiplied in the compute dtype (bf16), the LayerNorm scale in float32; the bias
  is outside the mask. numpy with ml_dtypes' bfloat16 gives the expected cosine and norm ratio."""
  params, delta, mask = hand_tree()
  w, dw = params["dense"]["kernel"], delta["dense"]["kernel"]
  s, ds = params["norm"]["scale"], delta["norm"]["scale"]
  kernel = {"cast": bf16(w + dw) - bf16(w), "split": bf16(dw),
            "float32": (w + dw) - w}[precision]
  scale = (s + ds) - s
  cosine, ratio = np_cosine_ratio([kernel, scale], [dw, ds])
  got = perturb_precision.realised_metrics(params, delta, mask, jnp.bfloat16, precision)
  np.testing.assert_allclose(float(got["realised_cosine"]), cosine, rtol=1e-5)
  np.testing.assert_allclose(float(got["realised_norm_ratio"]), ratio, rtol=1e-5)
  if precision == "cast":  # the point: at 1e-4 bf16 mostly realises rounding noise
    assert cosine < 0.5 and ratio > 2


def test_realised_metrics_of_a_zero_delta_are_one():
  params, delta, mask = hand_tree()
  zero = jax.tree_util.tree_map(np.zeros_like, delta)
  got = perturb_precision.realised_metrics(params, zero, mask, jnp.bfloat16)
  assert float(got["realised_cosine"]) == 1.0 and float(got["realised_norm_ratio"]) == 1.0


class Small(nn.Module):
  """Dense, LayerNorm (float32), a remat'd DenseGeneral and a Conv in `dtype`; float32 params."""

  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    x = nn.Dense(16, dtype=self.dtype)(x)
    x = nn.LayerNorm(dtype=jnp.float32)(jax.nn.gelu(x)).astype(self.dtype)
    x = nn.remat(nn.DenseGeneral)((2, 8), dtype=self.dtype)(x).reshape(x.shape[0], 16)
    x = nn.Conv(4, (3,), dtype=self.dtype)(jnp.tanh(x)[:, :, None])
    return x.astype(jnp.float32).mean(axis=(1, 2))


def small_problem(dtype=jnp.float32):
  model = Small(dtype)
  x = jax.random.normal(jax.random.key(0), (6, 12))
  y = jnp.linspace(0, 1, 6)
  params = model.init(jax.random.key(1), x)["params"]
  loss = lambda p, x, y, rng: jnp.mean((model.apply({"params": p}, x) - y) ** 2)
  return params, loss, x, y


def awp_pass(loss, params, x, y, precision, radius=1e-3, **options):
  fn = perturb.value_and_grad(loss, "awp", radius=radius, precision=precision, **options)
  return jax.jit(lambda p: fn(p, x, y, rng=jax.random.key(2)))(params)


def test_split_equals_cast_in_float32_compute():
  """With float32 compute x·w + x·δ is x·(w + δ) to rounding: same perturbed loss and gradient."""
  params, loss, x, y = small_problem()
  _, cast_grads, cast_info = awp_pass(loss, params, x, y, "cast")
  _, split_grads, split_info = awp_pass(loss, params, x, y, "split")
  np.testing.assert_allclose(split_info["perturbed_loss"], cast_info["perturbed_loss"], rtol=1e-6)
  assert_trees_close(split_grads, cast_grads, rtol=1e-5, atol=1e-6)
  assert float(cast_info["perturbed_loss"]) != float(awp_pass(loss, params, x, y, "cast",
                                                              radius=0.0)[2]["perturbed_loss"])


def test_float32_pass_in_float32_compute_equals_cast():
  params, loss, x, y = small_problem()
  _, cast_grads, cast_info = awp_pass(loss, params, x, y, "cast")
  _, f32_grads, f32_info = awp_pass(loss, params, x, y, "float32")
  np.testing.assert_allclose(f32_info["perturbed_loss"], cast_info["perturbed_loss"], rtol=1e-6)
  assert_trees_close(f32_grads, cast_grads, rtol=1e-5, atol=1e-7)


def test_split_in_bf16_realises_the_intended_perturbation():
  """bf16 compute at γ = 1e-4: cast realises mostly rounding noise, split the intended δ."""
  params, loss, x, y = small_problem(jnp.bfloat16)
  cast = awp_pass(loss, params, x, y, "cast", radius=1e-4, compute_dtype=jnp.bfloat16)[2]
  split = awp_pass(loss, params, x, y, "split", radius=1e-4, compute_dtype=jnp.bfloat16)[2]
  assert float(cast["realised_cosine"]) < 0.6
  assert float(split["realised_cosine"]) > 0.999


def test_split_keeps_the_train_state_and_its_checkpoint_layout():
  """The split step's state (what checkpoints hold) has the cast step's structure and dtypes."""
  params, loss, x, y = small_problem(jnp.bfloat16)
  batch_loss = lambda p, batch, rng: (loss(p, batch["x"], batch["y"], rng), batch["y"])
  tx = optax.adamw(1e-3)
  states = {}
  for precision in ("cast", "split"):
    cfg = perturb_config.PerturbConfig("awp", 1e-3, precision=precision)
    step = train_step.make_train_step(batch_loss, tx, cfg, 0.9, compute_dtype=jnp.bfloat16)
    state, metrics = jax.jit(step)(train_step.create_train_state(params, tx),
                                   {"x": x, "y": y}, jax.random.key(0))
    assert {"realised_cosine", "realised_norm_ratio"} <= set(metrics)
    states[precision] = state
  assert_same_structure(states["split"], states["cast"], train_step.create_train_state(params, tx))
  for a, b in zip(jax.tree.leaves(states["split"]), jax.tree.leaves(states["cast"])):
    assert a.dtype == b.dtype and a.shape == b.shape


def test_split_names_kernels_no_layer_used():
  """A kernel outside Dense/Conv (a bare self.param) cannot be split: a clear error, not a no-op."""

  class Bare(nn.Module):
    @nn.compact
    def __call__(self, x):
      return (x @ self.param("kernel", nn.initializers.ones, (3, 1))).sum()

  params = Bare().init(jax.random.key(0), jnp.ones((2, 3)))["params"]
  loss = lambda p, x, rng: Bare().apply({"params": p}, x)
  fn = perturb.value_and_grad(loss, "awp", radius=1e-3, precision="split")
  with pytest.raises(ValueError, match="no .*layer used the perturbed kernels \\['kernel'\\]"):
    fn(params, jnp.ones((2, 3)), rng=jax.random.key(1))


def test_float32_pass_with_bf16_compute_needs_a_float32_loss():
  with pytest.raises(ValueError, match="needs float32_loss_fn"):
    perturb.value_and_grad(lambda p, rng: 0.0, "awp", radius=1e-4, precision="float32",
                           compute_dtype=jnp.bfloat16)


def test_bad_precisions_are_named():
  with pytest.raises(ValueError, match="perturb precision must be one of"):
    perturb_config.PerturbConfig("awp", 1e-4, precision="bf16")
  config = load_config("smoke")
  config.perturb.precision = "exact"
  with pytest.raises(ValueError, match="perturb.precision must be one of"):
    validation.validate(config)
  config = load_config("smoke")
  config.model.matmul_precision = "fast"
  with pytest.raises(ValueError, match="model.matmul_precision must be one of"):
    validation.validate(config)


def test_unresolved_warning_fires_once():
  warn = perturb_precision.UnresolvedWarning()
  assert warn.message(1, {"realised_cosine": 0.95}) is None
  assert "cosine 0.300" in warn.message(2, {"realised_cosine": 0.3, "realised_norm_ratio": 3.0})
  assert warn.message(3, {"realised_cosine": 0.2}) is None
  assert warn.message(4, {"loss": 1.0}) is None


def dot_precisions(fn, *args) -> set:
  jaxpr = jax.make_jaxpr(fn)(*args)
  return {str(e.params["precision"]) for e in jaxpr.eqns if e.primitive.name == "dot_general"}


@pytest.mark.parametrize("name, expected", [("highest", "Precision.HIGHEST"),
                                            ("high", "Precision.HIGH"), ("default", "None")])
def test_with_matmul_precision_sets_every_product(name, expected):
  fn = perturb_precision.with_matmul_precision(lambda a, b: jnp.tanh(a @ b) @ b, name)
  precisions = dot_precisions(fn, jnp.ones((2, 2)), jnp.ones((2, 2)))
  assert len(precisions) == 1 and expected in precisions.pop()


def test_matmul_precision_reaches_the_family_loss():
  """`model.matmul_precision` is the precision of every product the family's loss traces."""
  config = load_config("smoke")
  config.model.matmul_precision = "highest"
  family = families.build(config)
  params, model_state = family.init_variables(jax.random.key(0))
  (video,) = family.init_inputs
  batch = {"video": jnp.zeros((2,) + video.shape[1:], video.dtype), "label": jnp.arange(2.0)}
  precisions = dot_precisions(
      lambda p: family.loss_fn(p, model_state, batch, jax.random.key(1))[0], params)
  assert precisions and all("Precision.HIGHEST" in p for p in precisions), precisions


class ResidualNet(nn.Module):
  """Two pre-norm residual MLP blocks and a Dense readout: bf16 products, float32 residual."""

  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    for _ in range(2):
      y = nn.LayerNorm(dtype=jnp.float32)(x).astype(self.dtype)
      y = nn.Dense(64, dtype=self.dtype)(jax.nn.gelu(nn.Dense(256, dtype=self.dtype)(y)))
      x = x + y.astype(jnp.float32)
    return nn.Dense(1, dtype=self.dtype)(x).astype(jnp.float32)[:, 0]


def residual_problem():
  """(params, {dtype name: loss}, x, y) of ResidualNet on a fixed regression batch of 128."""
  kx, kp = jax.random.split(jax.random.key(0))
  x = jax.random.normal(kx, (128, 64))
  y = jnp.sin(x[:, 0]) + 0.5 * x[:, 1]
  params = ResidualNet().init(kp, x)["params"]
  losses_by_dtype = {}
  for dtype in (jnp.float32, jnp.bfloat16):
    model = ResidualNet(dtype)
    losses_by_dtype[jnp.dtype(dtype).name] = (
        lambda p, x, y, rng, model=model: jnp.mean((model.apply({"params": p}, x) - y) ** 2))
  return params, losses_by_dtype, x, y


def changes_vs_float32_highest(gamma):
  """{mode: figures} of the perturbed pass in bf16 compute against float32-highest's, one δ.

  δ is the float32 reference's AWP step. Figures: 'own': the loss change's relative error and the
  gradient change's cosine with each mode's own clean pass (bf16); 'from_f32': the same with the
  reference's clean loss and gradient (what the perturbed pass adds to the float32 clean point);
  'grad_err': ‖g(w+δ) − g_ref(w+δ)‖ / ‖g_ref(w+δ)‖.
  """
  params, loss_by, x, y = residual_problem()
  rng = jax.random.key(1)
  mask = perturb.weight_mask(params)
  flat = lambda tree: jnp.concatenate([g.ravel() for g in jax.tree.leaves(tree)])
  cos = lambda a, b: float(a @ b / jnp.linalg.norm(a) / jnp.linalg.norm(b))

  def clean(loss):
    value, grads = jax.value_and_grad(loss)(params, x, y, rng)
    return value, flat(grads)

  def at(loss, delta, precision):
    value, grads = perturb.value_and_grad_at(loss, params, delta, x, y, rng=rng, mask=mask,
                                             precision=precision,
                                             float32_loss_fn=loss_by["float32"])
    return value, flat(grads)

  with jax.default_matmul_precision("highest"):
    _, _, info = perturb.value_and_grad(loss_by["float32"], "awp", radius=gamma)(
        params, x, y, rng=rng)
    ref_loss, ref_grad = clean(loss_by["float32"])
    ref_moved_loss, ref_moved_grad = at(loss_by["float32"], info["delta"], "cast")
  ref_dl, ref_dg = ref_moved_loss - ref_loss, ref_moved_grad - ref_grad
  low_loss, low_grad = clean(loss_by["bfloat16"])
  out = {}
  for precision in perturb_precision.PRECISIONS:
    moved_loss, moved_grad = at(loss_by["bfloat16"], info["delta"], precision)
    out[precision] = {
        "own": (float(abs(moved_loss - low_loss - ref_dl) / abs(ref_dl)),
                cos(moved_grad - low_grad, ref_dg)),
        "from_f32": (float(abs(moved_loss - ref_loss - ref_dl) / abs(ref_dl)),
                     cos(moved_grad - ref_grad, ref_dg)),
        "grad_err": float(jnp.linalg.norm(moved_grad - ref_moved_grad)
                          / jnp.linalg.norm(ref_moved_grad))}
  return out


# Measured by changes_vs_float32_highest on the 2-core CPU (jax 0.10.2; BENCHMARKS.md),
# 'own' figures (loss-change rel. error, gradient-change cosine):
#   1e-4: cast (0.196, 0.347), split (0.161, 0.496), float32 (0.391, 0.684)
#   1e-3: cast (0.069, 0.9815), split (0.017, 0.9853), float32 (0.039, 0.9896)
# and g(w+δ)'s rel. error: cast 0.0061 / 0.0054, split 0.0056 / 0.0062, float32 0 / 0.
# The default for bf16 ('auto' -> float32) runs the perturbed pass in float32 at the highest
# precision, so measured from the float32 clean point its changes are the reference's (to float32
# rounding); cast's are bf16's. The bounds are those figures with margins.
FROM_F32_BOUNDS = {1e-4: (1e-3, 0.9999), 1e-3: (1e-4, 0.99999)}


@pytest.mark.parametrize("gamma", [1e-4, 1e-3])
def test_default_bf16_mode_reproduces_float32_awp_better_than_cast(gamma):
  """bf16 compute, one δ: the default mode's perturbed loss and gradient changes are closer to
  float32-highest's than cast's, and the split mode's own changes are closer than cast's."""
  figures = changes_vs_float32_highest(gamma)
  default = perturb_config.resolve_precision("auto", jnp.bfloat16)
  assert default == "float32"
  loss_err, grad_cosine = figures[default]["from_f32"]
  cast_loss_err, cast_grad_cosine = figures["cast"]["from_f32"]
  assert loss_err < cast_loss_err and grad_cosine > cast_grad_cosine, figures
  max_loss_err, min_grad_cosine = FROM_F32_BOUNDS[gamma]
  assert loss_err < max_loss_err and grad_cosine > min_grad_cosine, figures
  assert figures[default]["grad_err"] < 1e-5 < figures["cast"]["grad_err"], figures
  # split: the realised δ is exact; its own loss and gradient changes beat cast's (measured above)
  (split_loss, split_cos), (cast_loss, cast_cos) = figures["split"]["own"], figures["cast"]["own"]
  assert split_loss < cast_loss and split_cos > cast_cos, figures


def test_auto_precision_is_float32_below_float32_and_cast_in_float32():
  config = load_config("smoke")
  assert config.perturb.precision == "auto"
  assert perturb_config.PerturbConfig.from_config(config.perturb, "bfloat16").precision == "float32"
  assert perturb_config.PerturbConfig.from_config(config.perturb, "float32").precision == "cast"
  config.model.dtype = "bfloat16"
  options = families.perturbed_pass_options(config)
  assert options["compute_dtype"] == jnp.bfloat16 and callable(options["float32_loss_fn"])
  config.perturb.precision = "split"
  assert families.perturbed_pass_options(config)["float32_loss_fn"] is None


def test_realised_metrics_reach_metrics_jsonl_and_the_progress_line_with_one_warning(tmp_path,
                                                                                    caplog):
  """trainer.log_training writes realised_* to metrics.jsonl, shows the cosine on the progress
  line and warns once per run (UnresolvedWarning) when it is below 0.9."""
  import logging  # pylint: disable=g-import-not-at-top
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  from tests.helpers import learning_scalars  # pylint: disable=g-import-not-at-top
  from vqa_jax.runtime import progress  # pylint: disable=g-import-not-at-top
  from vqa_jax.training import run_log  # pylint: disable=g-import-not-at-top
  from vqa_jax.training import throughput  # pylint: disable=g-import-not-at-top
  from vqa_jax.training import trainer  # pylint: disable=g-import-not-at-top
  config = load_config("smoke")
  logger = run_log.RunLog(str(tmp_path), 0, tensorboard=False)
  meter, bar = throughput.InputMeter(2), progress.Progress(10)
  unresolved = perturb_precision.UnresolvedWarning()
  absl_logging.get_absl_handler()  # route absl through logging for caplog
  verbosity = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.INFO)  # an earlier test in the process may have raised it
  try:
    with caplog.at_level(logging.INFO):
      for step, cosine in ((1, 0.5), (2, 0.4)):
        metrics = {"loss": 0.3, "perturbed_loss": 0.31, "realised_cosine": cosine,
                   "realised_norm_ratio": 3.0}
        trainer.log_training(config, step, metrics, meter, bar, logger, unresolved)
  finally:
    absl_logging.set_verbosity(verbosity)
    logger.close()
  rows = learning_scalars(tmp_path / "metrics.jsonl")
  assert [r["realised_cosine"] for r in rows] == [0.5, 0.4]
  assert any("realised_cosine 0.5000" in r.getMessage() for r in caplog.records)
  warnings = [r for r in caplog.records if "realises the weight perturbation" in r.getMessage()]
  assert len(warnings) == 1 and "cosine 0.500" in warnings[0].getMessage()


def test_every_k_reuse_step_takes_the_precision():
  """every_k's reuse call (no clean pass) runs its perturbed pass in the given mode: with bf16
  compute at γ = 1e-4 the realised cosine says which mode ran."""
  params, loss, x, y = small_problem(jnp.bfloat16)
  out = {}
  for precision in ("cast", "split"):
    reuse = perturb.every_k(loss, "awp", radius=1e-4, k=2, precision=precision,
                            compute_dtype=jnp.bfloat16)
    state = reuse.init(params)
    _, _, _, state = reuse.apply(params, state, x, y, rng=jax.random.key(0))
    _, grads, info, _ = reuse.apply(params, state, x, y, rng=jax.random.key(1))
    assert float(info["recomputed"]) == 0.0
    out[precision] = float(info["realised_cosine"])
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
  assert out["cast"] < 0.6 and out["split"] > 0.999
