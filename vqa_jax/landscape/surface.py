"""Loss surfaces: the fixed set's predictions at many perturbed weights in ONE jitted program.

Points are evaluated with `jax.lax.map(..., batch_size=point_chunk)`: a vmap over `point_chunk`
points at a time inside a scan over chunks, so memory is bounded by point_chunk x video_batch videos
while the whole grid is one compiled program (no Python loop over points). Each point's predictions
come from `loss_and_predict.make_predict_fn` (families) in eval mode (train=False: no dropout, no
drop path), so the surface is deterministic. From the (points, videos) predictions the host derives, per
point, the training loss (PLCC + rank_weight·rank averaged over consecutive minibatches of
`loss_batch` videos, the quantity training minimises) and 1 − SRCC over the whole set.

The jitted functions take params, directions and data as arguments, so one `SurfaceEvaluator` serves
every checkpoint of a model without recompiling.
"""

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from vqa_jax.families import losses
from vqa_jax import perturb
from vqa_jax.landscape import directions as directions_lib
from vqa_jax.landscape.fixed_set import FixedSet

PyTree = Any
# predict_fn(params, video (B, clips, T, H, W, 3)) -> (B,) scores
# (families.loss_and_predict.make_predict_fn).
PredictFn = Callable[[PyTree, jax.Array], jax.Array]


def predict_all(predict_fn: PredictFn, params: PyTree, video: jax.Array,
                video_batch: int) -> jax.Array:
  """(N,) predictions for all N videos, `video_batch` at a time (the last batch padded, cut)."""
  n = video.shape[0]
  batches = -(-n // video_batch)
  padded = jnp.concatenate([video, jnp.repeat(video[-1:], batches * video_batch - n, axis=0)])
  chunks = padded.reshape((batches, video_batch) + video.shape[1:])
  return jax.lax.map(lambda chunk: predict_fn(params, chunk), chunks).reshape(-1)[:n]


def set_loss(pred: jax.Array, label: jax.Array, loss_batch: int, rank_weight: float) -> jax.Array:
  """The training loss over a set: vqa_loss averaged over consecutive `loss_batch` minibatches."""
  n = pred.shape[-1]
  if loss_batch < 2 or n % loss_batch:
    raise ValueError(f"the set's {n} videos must split into minibatches of loss_batch="
                     f"{loss_batch} >= 2 (choose num_videos as a multiple of it)")
  per_batch = jax.vmap(lambda p, y: losses.vqa_loss(p, y, rank_weight))(
      pred.reshape(-1, loss_batch), label.reshape(-1, loss_batch))
  return per_batch.mean()


def one_minus_srcc(pred: np.ndarray, label: np.ndarray) -> np.ndarray:
  """1 − SRCC of each row of `pred` (P, N) with `label` (N,) (scipy.stats.spearmanr)."""
  pred = np.atleast_2d(np.asarray(pred, np.float64))
  return np.asarray([1.0 - stats.spearmanr(row, label).statistic for row in pred])


class SurfaceEvaluator:
  """Jitted evaluation of one model on fixed sets at many weight points (see the module doc)."""

  def __init__(self, predict_fn: PredictFn, *, video_batch: int, point_chunk: int,
               loss_batch: int, rank_weight: float):
    self.loss_batch = loss_batch
    self.rank_weight = rank_weight
    predict = lambda params, video: predict_all(predict_fn, params, video, video_batch)

    def on_points(point_params: Callable[[Any], PyTree], coords, video):
      return jax.lax.map(lambda c: predict(point_params(c), video), coords,
                         batch_size=point_chunk)

    def linear(params, stacked, coords, video):
      return on_points(lambda c: directions_lib.combine(params, stacked, c), coords, video)

    def awp(params, grads, alphas, video):
      mask = perturb.weight_mask(params)
      return on_points(lambda a: perturb.awp(params, jax.tree_util.tree_map(
          lambda g: jnp.sign(a) * g, grads), jnp.abs(a), mask), alphas, video)

    self.loss_fn = lambda params, video, label: set_loss(predict(params, video), label,
                                                         loss_batch, rank_weight)
    self._predict = jax.jit(predict)
    self._linear = jax.jit(linear)
    self._awp = jax.jit(awp)
    self._loss_and_grad = jax.jit(jax.value_and_grad(self.loss_fn))

  def predictions(self, params: PyTree, data: FixedSet) -> np.ndarray:
    """(N,) predictions at `params`."""
    return np.asarray(self._predict(params, data.video))

  def loss_and_grad(self, params: PyTree, data: FixedSet) -> tuple[float, PyTree]:
    """The set loss at `params` and its gradient."""
    loss, grads = self._loss_and_grad(params, data.video, data.label)
    return float(loss), grads

  def values(self, preds: np.ndarray, data: FixedSet) -> dict[str, np.ndarray]:
    """Per point: 'loss' (the training loss) and 'one_minus_srcc', from (P, N) predictions."""
    preds = np.atleast_2d(preds)
    loss = jax.vmap(lambda p: set_loss(p, jnp.asarray(data.label), self.loss_batch,
                                       self.rank_weight))(jnp.asarray(preds))
    return {"loss": np.asarray(loss, np.float64),
            "one_minus_srcc": one_minus_srcc(preds, data.label)}

  def linear(self, params: PyTree, stacked: PyTree, coords,
             data: FixedSet) -> dict[str, np.ndarray]:
    """Values at params + Σ_i coords[p, i]·stacked[i] for every row p of coords (P, k)."""
    preds = self._linear(params, stacked, jnp.asarray(coords, jnp.float32), data.video)
    return self.values(np.asarray(preds), data)

  def awp_points(self, params: PyTree, grads: PyTree, alphas, data: FixedSet
                 ) -> dict[str, np.ndarray]:
    """Values at perturb.awp(params, sign(α)·grads, |α|) for each α: the exact AWP perturbation."""
    preds = self._awp(params, grads, jnp.asarray(alphas, jnp.float32), data.video)
    return self.values(np.asarray(preds), data)


def _record(axes: dict[str, np.ndarray], values: dict[str, np.ndarray], shape) -> dict[str, Any]:
  """A JSON-ready record: the axes and each value reshaped to the grid."""
  out = {name: np.asarray(a, np.float64).tolist() for name, a in axes.items()}
  out.update({name: np.asarray(v).reshape(shape).tolist() for name, v in values.items()})
  return out


def line(ev: SurfaceEvaluator, params: PyTree, direction: PyTree, alphas,
         data: FixedSet) -> dict[str, Any]:
  """1-D landscape L(w + α·d) over `alphas`."""
  alphas = np.asarray(alphas, np.float32)
  values = ev.linear(params, directions_lib.stack([direction]), alphas[:, None], data)
  return _record({"alpha": alphas}, values, alphas.shape)


def plane(ev: SurfaceEvaluator, params: PyTree, d1: PyTree, d2: PyTree, alphas, betas,
          data: FixedSet) -> dict[str, Any]:
  """2-D landscape L(w + α·d1 + β·d2); values indexed [i_alpha][j_beta]."""
  alphas, betas = np.asarray(alphas, np.float32), np.asarray(betas, np.float32)
  grid = np.stack(np.meshgrid(alphas, betas, indexing="ij"), axis=-1).reshape(-1, 2)
  values = ev.linear(params, directions_lib.stack([d1, d2]), grid, data)
  return _record({"alpha": alphas, "beta": betas}, values, (alphas.size, betas.size))


def awp_line(ev: SurfaceEvaluator, params: PyTree, alphas, data: FixedSet) -> dict[str, Any]:
  """L(AWP(w, γ=|α|)) along the set-loss gradient (α < 0: against it), the reference's step."""
  alphas = np.asarray(alphas, np.float32)
  _, grads = ev.loss_and_grad(params, data)
  return _record({"alpha": alphas}, ev.awp_points(params, grads, alphas, data), alphas.shape)


def interpolation(ev: SurfaceEvaluator, params_a: PyTree, params_b: PyTree, ts,
                  data: FixedSet) -> dict[str, Any]:
  """L((1 − t)·w_a + t·w_b) over `ts` (t = 0: checkpoint a, t = 1: checkpoint b)."""
  return line(ev, params_a, directions_lib.difference(params_b, params_a), ts, data) | {
      "t": np.asarray(ts, np.float64).tolist()}
