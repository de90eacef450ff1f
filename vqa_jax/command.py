"""The `vqa-jax` console script: `vqa-jax COMMAND [flags]`, each command a `python -m` program.

  vqa-jax train --config=smoke --workdir=/tmp/run          # python -m vqa_jax.main
  vqa-jax score --checkpoint=/tmp/run VIDEO                # config read from the run
  vqa-jax score --model=fast-vqa-b VIDEO                   # a named model (vqa-jax models)
  vqa-jax COMMAND --help                                   # that program's flags

A command runs its module exactly as `python -m MODULE` does (`runpy`, as `__main__`), so flags,
exit codes and the grain loader's worker processes behave the same either way.
"""

from __future__ import annotations

import runpy
import sys

# command -> (module run as __main__, what it does)
COMMANDS = {
    "train": ("vqa_jax.main", "train and evaluate a run in --workdir (resumes it)"),
    "score": ("vqa_jax.score", "score videos / images / folders with a run or converted weights"),
    "convert": ("vqa_jax.convert_weights", "PyTorch weights (.pth, .npz) -> a Flax checkpoint"),
    "models": ("vqa_jax.pretrained", "named pretrained models: source, cache state; --download"),
    "sweep": ("vqa_jax.sweep", "train several perturbation radii at once (vmapped population)"),
    "finetune": ("vqa_jax.finetune", "paper §7.6 fine-tuning over random splits"),
    "landscape": ("vqa_jax.landscape", "loss landscape, sharpness and generalization gap"),
    "study": ("vqa_jax.study", "the paper's claims tested: paired variants over seeds, report"),
    "export": ("vqa_jax.export", "the scorer as jax.export / TensorFlow SavedModel"),
    "features": ("vqa_jax.simple_vqa_features", "SimpleVQA motion features of a dataset"),
    "inspect": ("vqa_jax.show_fragments", "the fragments a video gives the model (npy + PNG)"),
    "synthetic": ("vqa_jax.data.synthetic", "generate the synthetic dataset"),
}


def usage() -> str:
  """The command list printed by `vqa-jax` / `vqa-jax --help`."""
  lines = ["usage: vqa-jax COMMAND [flags]   (vqa-jax COMMAND --help: its flags)", "",
           "commands:"]
  lines += [f"  {name:<10} {what}  [python -m {module}]"
            for name, (module, what) in COMMANDS.items()]
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
  """Runs `argv[1]`'s module as `__main__` with the remaining arguments."""
  argv = list(sys.argv if argv is None else argv)
  if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
    print(usage())
    sys.exit(0 if len(argv) >= 2 else 2)
  if argv[1] in ("--version", "version"):
    from vqa_jax import __version__  # pylint: disable=g-import-not-at-top
    print(f"vqa-jax {__version__}")
    sys.exit(0)
  if argv[1] not in COMMANDS:
    sys.exit(f"vqa-jax: unknown command {argv[1]!r}\n\n{usage()}")
  module = COMMANDS[argv[1]][0]
  sys.argv = [f"vqa-jax {argv[1]}", *argv[2:]]
  runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
  main()
