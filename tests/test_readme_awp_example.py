"""README's "AWP in your own train step" example runs as written and makes the AWP update."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tests.helpers import REPO_ROOT
from vqa_jax import perturb


def readme_example() -> str:
  """The python block that follows the README's 'AWP in your own train step' paragraph."""
  text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
  section = text[text.index("AWP in your own train step"):]
  return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def loss_fn(params, batch, rng):
  """Squared error of a linear model whose predictions carry dropout-like noise keyed by rng."""
  noise = 1.0 + 0.1 * jax.random.normal(rng, batch["y"].shape)
  return jnp.mean((batch["x"] @ params["dense"]["kernel"] * noise - batch["y"]) ** 2)


def test_readme_example_is_one_sgd_step_at_the_awp_gradient():
  rng = np.random.default_rng(0)
  params = {"dense": {"kernel": jnp.array(rng.normal(size=3), jnp.float32)}}
  batch = {"x": jnp.array(rng.normal(size=(8, 3)), jnp.float32),
           "y": jnp.array(rng.normal(size=8), jnp.float32)}
  tx = optax.sgd(0.1)
  namespace = {"jax": jax, "optax": optax, "perturb": perturb, "loss_fn": loss_fn, "tx": tx}
  exec(readme_example(), namespace)  # pylint: disable=exec-used
  key = jax.random.key(2)
  new_params, _, loss = namespace["train_step"](params, tx.init(params), batch, key)
  # By hand: the AWP step along the clean gradient (radius 1e-3 of |w|, boxed), the gradient there
  # with the perturbed pass's key, and w - 0.1 * that gradient applied at the unperturbed w.
  clean_key, perturbed_key, _ = jax.random.split(key, 3)
  w = np.asarray(params["dense"]["kernel"], np.float64)
  g = np.asarray(jax.grad(loss_fn)(params, batch, clean_key)["dense"]["kernel"])
  r = 1e-3 * g / (np.linalg.norm(g) + 1e-6) * (np.linalg.norm(w) + 1e-6)
  r = np.clip(r, -1e-3 * np.abs(w), 1e-3 * np.abs(w))
  moved = {"dense": {"kernel": jnp.array(w + r, jnp.float32)}}
  g_adv = np.asarray(jax.grad(loss_fn)(moved, batch, perturbed_key)["dense"]["kernel"])
  np.testing.assert_allclose(new_params["dense"]["kernel"], w - 0.1 * g_adv, rtol=1e-5)
  np.testing.assert_allclose(loss, loss_fn(params, batch, clean_key), rtol=1e-6)
