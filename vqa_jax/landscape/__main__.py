"""`python -m vqa_jax.landscape`: see vqa_jax/landscape/cli.py."""

from absl import app

from vqa_jax.landscape import cli

if __name__ == "__main__":
  app.run(cli.main)
