"""`python -m vqa_jax.landscape`: the command line of vqa_jax/landscape/cli.py (--help lists its flags)."""

from vqa_jax.runtime import entry_point
from vqa_jax.landscape import cli

if __name__ == "__main__":
  entry_point.run(cli.main, cli.chosen_config)
