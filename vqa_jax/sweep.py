"""`python -m vqa_jax.sweep`: perturbation radii trained at once (the program: `vqa_jax.training.sweep`)."""

from vqa_jax.training import sweep

if __name__ == "__main__":
  sweep.main()
