"""PyTorch checkpoints -> orbax Flax variables: the one weight-import command of vqa_jax.

  python -m vqa_jax.convert_weights --src=FILE --dst=DIR [--format=auto] [--config=CONFIG.py]
      [--model=auto|fast_vqa_b|faster_vqa|fast_vqa_m] [--seed=0] [--trust_pickle]

`--format` (default `auto`: told from the keys, see `FORMATS`):

  fast_vqa      FAST-VQA / FasterVQA release (`fragments_backbone.*`, `vqa_head.*`) or the Kinetics
                Video Swin-T (`backbone.*`, `cls_head.*` dropped) -> {'params'} of `build_model`
                (`--config`'s model, `--model`, or inferred from the window size and tables)
  swin2d        ImageNet 2D Swin-T (`layers.N.blocks.*`, 4-D `patch_embed.proj.weight`) ->
                {'params'} of the 1-frame IQA model (`--config`'s model; default
                configs/iqa_swin_t.py)
  resnet50      torchvision ImageNet ResNet-50 (`conv1.weight`, `layer4.*`, `fc.*`) -> the FULL
                SimpleVQA variables {'params': {backbone, head}, 'batch_stats': {backbone}}, the
                regressor head freshly initialised (`--config`'s model; default the reference's)
  simple_vqa    a trained SimpleVQA (ResNet keys + `quality.{0,1}`) -> the same variables
  slowfast_r50  pytorchvideo SlowFast-R50 (`blocks.N.multipathway_*`, head `blocks.6.*` dropped)
                -> {'params', 'batch_stats'} of the motion extractor (`--config`'s `motion`
                section; default slowfast_r50), what `config.motion.weights` reads

The output directory is an orbax checkpoint of a dict of Flax collections, read by
`pretrained.load_variables` (all collections) or `pretrained.load_params` (params), plus the
config of the model built (`config.json`, `.yaml`; `output_config`) when one is known, which
`score` and `vqa_jax.Scorer` read when no config is given.

`.pth`/`.pyth` files are read without torch; only --trust_pickle (arbitrary objects) needs torch.
A `.npz` written by `numpy.savez(path, **state_dict)` works too.
"""

from __future__ import annotations

from absl import app
from absl import flags
from ml_collections import config_flags

from vqa_jax.convert import convert_weights
from vqa_jax.runtime import entry_point

_SRC = flags.DEFINE_string("src", None, "PyTorch checkpoint (.pth/.pyth), or a numpy .npz "
                           "state_dict.")
_DST = flags.DEFINE_string("dst", None, "Output orbax checkpoint directory.")
_FORMAT = flags.DEFINE_enum("format", "auto", ["auto", *convert_weights.FORMATS],
                            "Checkpoint family; 'auto' tells it from the keys.")
_MODEL = flags.DEFINE_enum("model", "auto", ["auto", *convert_weights.MODEL_CONFIGS],
                           "fast_vqa: the model to build; 'auto' infers it from the checkpoint.")
_CONFIG = config_flags.DEFINE_config_file("config", None, "Config whose model (slowfast_r50: "
                                          "motion section) to build (overrides --model).")
_SEED = flags.DEFINE_integer("seed", 0, "Init seed of what the file lacks (a fresh head).")
_TRUST_PICKLE = flags.DEFINE_bool("trust_pickle", False, "Unpickle non-tensor objects too, with "
                                  "torch (only for trusted files).")
flags.mark_flags_as_required(["src", "dst"])


def main(argv):
  """Converts --src into --dst and prints what was read and what was initialised."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  options = convert_weights.Options(_CONFIG.value, _MODEL.value, _SEED.value)
  result = convert_weights.convert_file(_SRC.value, _DST.value, _FORMAT.value, options,
                                        _TRUST_PICKLE.value)
  print(convert_weights.summary(result, _DST.value, _SEED.value))


if __name__ == "__main__":
  entry_point.run(main)
