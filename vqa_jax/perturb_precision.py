"""How the perturbed pass's arithmetic resolves a weight perturbation δ.

A model that computes in bfloat16 casts its float32 kernels inside each Dense/Conv, so the
perturbed pass multiplies by bf16(w + δ): at AWP's γ = 1e-4 the realised perturbation
bf16(w + δ) − bf16(w) is mostly rounding noise. Modes of the perturbed pass (`PRECISIONS`):

  cast     params w + δ as they are; each layer casts them (the plain Flax behaviour).
  split    each perturbed Dense/Conv/DenseGeneral product as x·cast(w) + x·cast(δ), both
           accumulated in float32 and rounded once (as the clean product is): δ keeps its own
           exponent. The kernels stay w in the params (δ reaches the layers through a Flax
           method interceptor), so the gradient w.r.t. w is the gradient at w + δ (the product is
           linear in its kernel); other perturbed leaves (LayerNorm scales, float32) get w + δ.
  float32  the perturbed pass through `float32_loss_fn` (the same loss with the model in float32
           compute) at the highest matmul precision: the reference's arithmetic.

Imports only jax and flax (nothing from config), so that perturb.py stands alone; a config's
'auto' resolves in config/perturb_config.py. `realised_metrics` measures, over the perturbed leaves, the perturbation the perturbed pass
multiplies by against the intended δ (cosine and norm ratio), in the dtype each leaf is used in.
"""

import contextlib
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

PyTree = Any

# The modes above and jax.default_matmul_precision's names; a config chooses from the same names
# (config/choices.py, which stays free of jax; tests check that the two agree).
PRECISIONS = ("cast", "split", "float32")
MATMUL_PRECISIONS = ("default", "high", "highest")
# Leaves a layer casts to the model's compute dtype; other perturbed leaves (LayerNorm scales)
# are used in float32 by the models of this package.
CAST_LEAF_NAMES = frozenset({"kernel", "embedding"})
# Leaves the split mode carries beside the params (the kernels of the layers it intercepts).
SPLIT_LEAF_NAME = "kernel"
SPLIT_MODULES = (nn.Dense, nn.DenseGeneral, nn.Conv)
# Below this realised cosine the perturbed pass mostly sees rounding noise (the warning's bound).
UNRESOLVED_COSINE = 0.9


def check_precision(precision: str) -> None:
  """Raises ValueError unless `precision` is one of PRECISIONS."""
  if precision not in PRECISIONS:
    raise ValueError(f"perturb precision must be one of {PRECISIONS}, got {precision!r}")


def _leaf_name(path) -> str:
  last = path[-1]
  return str(getattr(last, "key", getattr(last, "name", last)))


def _path_names(path) -> tuple[str, ...]:
  return tuple(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def _leaf_dtype(path, compute_dtype) -> Any:
  """The dtype the model multiplies this leaf in: the compute dtype for kernels, else float32."""
  return compute_dtype if _leaf_name(path) in CAST_LEAF_NAMES else jnp.float32


def realised_delta(params: PyTree, delta: PyTree, mask: PyTree, compute_dtype=jnp.float32,
                   precision: str = "cast") -> PyTree:
  """The perturbation the perturbed pass multiplies by, as float32 (zeros off the mask).

  cast: cast(w + δ) − cast(w); split: cast(δ) on kernels; float32: (w + δ) − w in float32.
  """
  check_precision(precision)

  def leaf(path, m, w, d):
    if not m:
      return jnp.zeros(w.shape, jnp.float32)
    w32, d32 = w.astype(jnp.float32), d.astype(jnp.float32)
    dtype = jnp.float32 if precision == "float32" else _leaf_dtype(path, compute_dtype)
    if precision == "split" and _leaf_name(path) == SPLIT_LEAF_NAME:
      return d32.astype(dtype).astype(jnp.float32)
    return (w32 + d32).astype(dtype).astype(jnp.float32) - w32.astype(dtype).astype(jnp.float32)

  return jax.tree_util.tree_map_with_path(leaf, mask, params, delta)


def realised_metrics(params: PyTree, delta: PyTree, mask: PyTree, compute_dtype=jnp.float32,
                     precision: str = "cast") -> dict[str, jax.Array]:
  """{'realised_cosine', 'realised_norm_ratio'} of the realised vs the intended δ (masked leaves).

  Both are global over the masked leaves; a zero δ gives cosine 1 and ratio 1 (nothing intended,
  nothing lost).
  """
  realised = realised_delta(params, delta, mask, compute_dtype, precision)
  pairs = [(r, d.astype(jnp.float32)) for m, r, d in zip(
      jax.tree_util.tree_leaves(mask), jax.tree_util.tree_leaves(realised),
      jax.tree_util.tree_leaves(delta)) if m]
  dot = sum((jnp.vdot(r, d) for r, d in pairs), jnp.zeros((), jnp.float32))
  rr = sum((jnp.vdot(r, r) for r, _ in pairs), jnp.zeros((), jnp.float32))
  dd = sum((jnp.vdot(d, d) for _, d in pairs), jnp.zeros((), jnp.float32))
  nonzero = dd > 0
  safe = lambda x: jnp.where(nonzero, x, 1.0)
  cosine = jnp.where(nonzero, dot / safe(jnp.sqrt(rr) * jnp.sqrt(dd)), 1.0)
  ratio = jnp.where(nonzero, jnp.sqrt(rr) / safe(jnp.sqrt(dd)), 1.0)
  return {"realised_cosine": cosine, "realised_norm_ratio": ratio}


def _split_op(op: Callable, delta: jax.Array) -> Callable:
  """`op(lhs, rhs, ...)` (lax.dot_general or conv_general_dilated) as op(lhs, rhs) + op(lhs, δ).

  Both products accumulate in float32 and their sum is rounded once to the product's dtype, as
  the clean pass's single product is: the perturbed and the clean pass differ by δ's product, not
  by a different rounding path.
  """

  def split(lhs, rhs, *args, **kwargs):
    if delta.shape != rhs.shape:
      raise ValueError(f"perturb precision 'split': the layer's kernel operand {rhs.shape} is not "
                       f"the perturbed kernel's shape {delta.shape}")
    kwargs = {**kwargs, "preferred_element_type": jnp.float32}
    y = op(lhs, rhs, *args, **kwargs) + op(lhs, delta.astype(rhs.dtype), *args, **kwargs)
    return y.astype(jnp.result_type(lhs.dtype, rhs.dtype))

  return split


class _SplitProducts:
  """A Flax method interceptor running each layer whose kernel δ holds with a split product."""

  def __init__(self, kernel_deltas: dict[tuple[str, ...], jax.Array]):
    self.kernel_deltas = kernel_deltas
    self.used: set[tuple[str, ...]] = set()
    self._inside = False  # the split layer's own apply is not intercepted again

  def __call__(self, next_fun, args, kwargs, context):
    module = context.module
    if (self._inside or context.method_name != "__call__"
        or not isinstance(module, SPLIT_MODULES)):
      return next_fun(*args, **kwargs)
    path = tuple(module.path)
    delta = self.kernel_deltas.get(path)
    if delta is None:
      return next_fun(*args, **kwargs)
    self.used.add(path)
    if isinstance(module, nn.Conv):
      split = module.clone(parent=None, conv_general_dilated=_split_op(
          jax.lax.conv_general_dilated, delta))
    else:
      split = module.clone(parent=None, dot_general=_split_op(jax.lax.dot_general, delta))
    self._inside = True
    try:  # the layer's own params (w, bias): its gradient reaches them as in the clean layer
      return split.apply({"params": module.variables["params"]}, *args, **kwargs)
    finally:
      self._inside = False


def _split_params(params: PyTree, delta: PyTree, mask: PyTree):
  """(params with w + δ on masked non-kernel leaves and w on masked kernels, {path: δ kernel})."""
  kernel_deltas = {}

  def leaf(path, m, w, d):
    if not m:
      return w
    if _leaf_name(path) == SPLIT_LEAF_NAME:
      kernel_deltas[_path_names(path)[:-1]] = jax.lax.stop_gradient(d)
      return w
    return (w.astype(jnp.float32) + d).astype(w.dtype)

  return jax.tree_util.tree_map_with_path(leaf, mask, params, delta), kernel_deltas


def split_value_and_grad(loss_fn: Callable, params: PyTree, delta: PyTree, mask: PyTree, *args,
                         has_aux: bool = False):
  """(value, grads) of the perturbed pass in split mode (module docstring), grads w.r.t. w."""
  moved, kernel_deltas = _split_params(jax.lax.stop_gradient(params), delta, mask)
  products = _SplitProducts(kernel_deltas)
  with nn.intercept_methods(products):
    out = jax.value_and_grad(loss_fn, has_aux=has_aux)(moved, *args)
  missing = sorted("/".join(p + (SPLIT_LEAF_NAME,)) for p in set(kernel_deltas) - products.used)
  if missing:
    raise ValueError(f"perturb precision 'split': no {[m.__name__ for m in SPLIT_MODULES]} "
                     f"layer used the perturbed kernels {missing[:5]}{' ...' if len(missing) > 5 else ''}"
                     "; the loss must apply the model to the params it is given at their root, "
                     "or use precision 'cast'")
  return out


class UnresolvedWarning:
  """Warns once (per instance, i.e. per run) when a step's realised cosine is below the bound."""

  def __init__(self, bound: float = UNRESOLVED_COSINE):
    self.bound = bound
    self.warned = False

  def message(self, step: int, scalars: dict) -> str | None:
    """The warning for this step's scalars the first time the cosine is below the bound."""
    cosine = scalars.get("realised_cosine")
    if self.warned or cosine is None or not cosine < self.bound:
      return None
    self.warned = True
    return (f"step {step}: the perturbed pass realises the weight perturbation with cosine "
            f"{cosine:.3f} < {self.bound} (norm ratio {scalars.get('realised_norm_ratio', 0):.2f}):"
            " it mostly sees rounding noise; set perturb.precision to 'split' or 'float32', or a "
            "float32 model.dtype (warned once per run)")


def matmul_precision(name: str):
  """A context making the products traced inside it run at `name` (MATMUL_PRECISIONS)."""
  if name not in MATMUL_PRECISIONS:
    raise ValueError(f"model.matmul_precision must be one of {MATMUL_PRECISIONS}, got {name!r}")
  if name == "default":
    return contextlib.nullcontext()
  return jax.default_matmul_precision(name)


def with_matmul_precision(fn: Callable, name: str) -> Callable:
  """`fn` traced under `matmul_precision(name)` ('default': `fn` itself)."""
  if name == "default":
    matmul_precision(name)
    return fn

  def wrapped(*args, **kwargs):
    with matmul_precision(name):
      return fn(*args, **kwargs)

  return wrapped
