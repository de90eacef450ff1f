"""vqa_jax: video quality assessment in JAX/Flax with adversarial weight perturbation (AWP).

The Python API (`vqa_jax.api`, imported on first use so that `import vqa_jax` stays light):

  from vqa_jax import Scorer
  result = Scorer.load("runs/demo")("video.mp4")   # .score, .mos, .score_01, .clips, .quality_map
  results = vqa_jax.train("smoke", "/tmp/run")     # a shipped config's name, a file or a ConfigDict
"""

__version__ = "0.1.0"
__all__ = ["Score", "Scorer", "train", "__version__"]
_API = ("Score", "Scorer", "train")


def __getattr__(name):
  """Loads the API names from vqa_jax.api on first access."""
  if name in _API:
    from vqa_jax import api  # pylint: disable=g-import-not-at-top
    return getattr(api, name)
  raise AttributeError(f"module 'vqa_jax' has no attribute {name!r}")


def __dir__():
  """The public names: the API and the version."""
  return sorted(__all__)
