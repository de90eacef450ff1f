"""`python -m vqa_jax.export`: exports the scorer as jax.export and a SavedModel (the program: `vqa_jax.scoring.export`)."""

from vqa_jax.scoring import export

if __name__ == "__main__":
  export.main()
