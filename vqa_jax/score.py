"""`python -m vqa_jax.score`: scores videos and images (the program: `vqa_jax.scoring.score`)."""

from vqa_jax.scoring import score

if __name__ == "__main__":
  score.main()
