"""vqa_jax: video quality assessment in JAX/Flax with adversarial weight perturbation (AWP)."""

__version__ = "0.1.0"
