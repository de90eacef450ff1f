"""`python -m vqa_jax.study`: see vqa_jax/study/__init__.py."""

from vqa_jax.study import cli

if __name__ == "__main__":
  cli.run()
