"""`python -m vqa_jax.convert_weights`: PyTorch checkpoints to Flax params (the program: `vqa_jax.convert.convert_weights`)."""

from vqa_jax.convert import convert_weights

if __name__ == "__main__":
  convert_weights.main()
