"""PyTorch state dicts -> Flax variables, each format of `python -m vqa_jax.convert_weights`
(`FORMATS`; the program's docstring lists them and what the output folder holds).

FAST-VQA details. The Kinetics checkpoint lacks what the reference initialises fresh (paper
§6.1): fragment bias tables zero, the head PyTorch's default Conv3d init U(+-1/sqrt(fan_in)) (from
`--seed`), and, as the reference's loader drops keys whose shape does not fit (FAST-VQA-M's
(4,4,4) window), relative bias tables trunc_normal(0.02). FasterVQA has exactly FAST-VQA-B's
parameters. Every format: buffers are ignored, any other key without a Flax counterpart, a Flax
leaf without its key, or a shape that does not fit is an error listing all of them (shapes in the
PyTorch layout; `state_dicts.convert_tree`), and leaves initialised instead of read are printed.

Conversion works on numpy arrays. `.pth`/`.pyth` files are read without torch
(`vqa_jax.pretrained.pth_reader`: tensors and plain containers only); only `--trust_pickle`
(arbitrary objects) needs torch. A `.npz` written by `numpy.savez(path, **state_dict)` works too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import dataclasses
import logging
import pathlib
import re
from typing import Any

import flax
import ml_collections
import numpy as np

from vqa_jax import families
from vqa_jax.config import config_files
from vqa_jax.convert import convert_resnet
from vqa_jax.convert import convert_swin2d
from vqa_jax.config import run_config
from vqa_jax.convert import state_dicts
from vqa_jax.convert import swin_layout
from vqa_jax.models import simple_vqa

PyTree = Any

OFFICIAL_PREFIXES = {"backbone": "fragments_backbone", "head": "vqa_head"}
KINETICS_PREFIXES = {"backbone": "backbone", "head": None}
DROPPED_PREFIXES = ("cls_head.",)
REINIT_ON_MISMATCH_LEAVES = ("relative_position_bias_table",)
CONFIGS_DIR = config_files.configs_dir()
MODEL_CONFIGS = {name: CONFIGS_DIR / f"{name}.py"
                 for name in ("fast_vqa_b", "faster_vqa", "fast_vqa_m")}
IQA_CONFIG = CONFIGS_DIR / "iqa_swin_t.py"  # The swin2d format's default model.
# Relative table rows (2Wd-1)(2Wh-1)(2Ww-1) and fragment tables -> the model of `MODEL_CONFIGS`.
_MODEL_BY_TABLES = {(2535, True): "fast_vqa_b", (343, False): "fast_vqa_m"}
_SWIN_BLOCK_KEY = re.compile(r"^layers\.\d+\.blocks\.\d+\.")


def _layout(prefixes: Mapping[str, str | None]) -> state_dicts.Layout:
  """The FAST-VQA / Video Swin layout under `prefixes` (official or Kinetics)."""
  return state_dicts.Layout(lambda path: swin_layout.swin_key(path, prefixes),
                            swin_layout.BUFFER_SUFFIXES, DROPPED_PREFIXES)


def to_state_dict(params: PyTree, prefixes: Mapping[str, str | None] = None
                  ) -> dict[str, np.ndarray]:
  """Flax params -> PyTorch-layout state_dict (official FAST-VQA key names by default)."""
  prefixes = OFFICIAL_PREFIXES if prefixes is None else prefixes
  out = {}
  for path, value in flax.traverse_util.flatten_dict(params).items():
    key = swin_layout.swin_key(path, prefixes)
    if key is not None:
      out[key] = state_dicts.to_torch(path[-1], value)
  return out


def detect_layout(state_dict: Mapping[str, Any]) -> dict[str, str | None]:
  """The key prefixes of the checkpoint's layout (official FAST-VQA or Kinetics Video Swin)."""
  if any(k.startswith(OFFICIAL_PREFIXES["backbone"] + ".") for k in state_dict):
    return OFFICIAL_PREFIXES
  if any(k.startswith(KINETICS_PREFIXES["backbone"] + ".") for k in state_dict):
    return KINETICS_PREFIXES
  raise ValueError("no 'fragments_backbone.*' (FAST-VQA) or 'backbone.*' (Video Swin) keys; "
                   f"first keys: {sorted(state_dict)[:5]}")


def infer_model_name(state_dict: Mapping[str, Any]) -> str:
  """The `MODEL_CONFIGS` name whose model a checkpoint fits (FasterVQA reads as fast_vqa_b)."""
  state_dict = state_dicts.unwrap_state_dict(state_dict)
  prefix = detect_layout(state_dict)["backbone"] + ".layers.0.blocks.0.attn."
  table = state_dict.get(prefix + "relative_position_bias_table")
  if table is None:
    raise ValueError(f"cannot infer the model: no {prefix}relative_position_bias_table; "
                     "pass --model or --config")
  has_fragment_tables = (prefix + "fragment_position_bias_table" in state_dict
                         or detect_layout(state_dict) is KINETICS_PREFIXES)
  name = _MODEL_BY_TABLES.get((int(np.shape(table)[0]), has_fragment_tables))
  if name is None:
    raise ValueError(f"cannot infer the model from a relative table of shape {np.shape(table)} "
                     f"(fragment tables: {has_fragment_tables}); pass --model or --config")
  return name


def load_config_file(path: pathlib.Path) -> ml_collections.ConfigDict:
  """`get_config()` of a shipped config file (`config_files.load`)."""
  if not path.is_file():
    raise FileNotFoundError(f"{path} not found: the default model needs the shipped configs "
                            "(or pass --config)")
  return config_files.load(str(path))


def model_config(name: str) -> ml_collections.ConfigDict:
  """The model section of the repo config `configs/<name>.py` (a key of `MODEL_CONFIGS`)."""
  if name not in MODEL_CONFIGS:
    raise ValueError(f"unknown model {name!r}; choose from {sorted(MODEL_CONFIGS)}")
  return load_config_file(MODEL_CONFIGS[name]).model


def convert_fast_vqa(state_dict: Mapping[str, Any], model_cfg: ml_collections.ConfigDict,
                     seed: int = 0) -> state_dicts.Converted:
  """Numpy FAST-VQA / Kinetics state_dict -> params of `build_model(model_cfg)` and what was filled.

  `seed` initialises what a Kinetics (backbone-only) checkpoint lacks; an official checkpoint
  must provide every leaf.
  """
  state_dict = state_dicts.unwrap_state_dict(state_dict)
  prefixes = detect_layout(state_dict)
  fill = None
  if prefixes is KINETICS_PREFIXES:
    fill = swin_layout.backbone_only_fill(swin_layout.init_head(model_cfg, seed),
                                          REINIT_ON_MISMATCH_LEAVES, seed)
  converted = state_dicts.convert_tree(state_dict, families.abstract_variables(model_cfg)["params"],
                                       _layout(prefixes), fill)
  resized = {k: v for k, v in converted.filled.items() if v != "absent"}
  if resized:
    logging.warning("re-initialised %d relative tables of another window size, as the "
                    "reference's loader does: %s", len(resized), resized)
  return converted


def convert_state_dict(state_dict: Mapping[str, Any], model_cfg: ml_collections.ConfigDict,
                       seed: int = 0) -> PyTree:
  """Numpy PyTorch state_dict -> Flax params of `build_model(model_cfg)`; raises on mismatch.

  The ValueError lists every missing key, unknown key and shape mismatch (PyTorch layout).
  `seed` initialises what a Kinetics (backbone-only) checkpoint lacks.
  """
  return convert_fast_vqa(state_dict, model_cfg, seed).tree


# ---------------------------------------------------------------------------------------------
# Formats: how each checkpoint family is recognised and what the command makes of it.


@dataclasses.dataclass(frozen=True)
class Options:
  """The command's model choices: `--config` (whole config), `--model` (FAST-VQA), `--seed`."""

  config: ml_collections.ConfigDict | None = None
  model: str = "auto"
  seed: int = 0


@dataclasses.dataclass(frozen=True)
class Result:
  """A conversion: its format, the model it fits, the variables, and the leaves not read."""

  format: str
  model: str
  variables: dict[str, PyTree]
  filled: dict[str, str]  # 'collection/.../leaf' -> why it was initialised ('absent', shape)


def _config_model(options: Options, family: str) -> ml_collections.ConfigDict | None:
  """`--config`'s model section (None without --config); an error for another model family."""
  if options.config is None:
    return None
  model_cfg = options.config.model
  if model_cfg.name != family:
    raise ValueError(f"--config's model is {model_cfg.name!r}, this format "
                     f"converts to a {family!r} model")
  return model_cfg


def _params_result(name: str, model: str, converted: state_dicts.Converted) -> Result:
  """A Result of a params-only conversion (its filled paths get the 'params/' prefix)."""
  return Result(name, model, {"params": converted.tree},
                {f"params/{path}": why for path, why in converted.filled.items()})


def _fast_vqa(state_dict: Mapping[str, Any], options: Options) -> Result:
  """fast_vqa: --config's model, else --model, else inferred from the tables."""
  model_cfg = _config_model(options, "fast_vqa")
  if model_cfg is not None:
    name = "config"
  else:
    name = options.model if options.model != "auto" else infer_model_name(state_dict)
    model_cfg = model_config(name)
  return _params_result("fast_vqa", name, convert_fast_vqa(state_dict, model_cfg, options.seed))


def _swin2d(state_dict: Mapping[str, Any], options: Options) -> Result:
  """swin2d: --config's model, else configs/iqa_swin_t.py's."""
  model_cfg = _config_model(options, "fast_vqa")
  name = "config" if model_cfg is not None else IQA_CONFIG.stem
  model_cfg = model_cfg if model_cfg is not None else load_config_file(IQA_CONFIG).model
  return _params_result("swin2d", name, convert_swin2d.convert(state_dict, model_cfg, options.seed))


def _simple_vqa_config(options: Options) -> tuple[str, ml_collections.ConfigDict]:
  """(name, model config) of the SimpleVQA target: --config's, else the reference's."""
  model_cfg = _config_model(options, "simple_vqa")
  if model_cfg is None:
    return "simple_vqa", simple_vqa.simple_vqa_config()
  return "config", model_cfg


def _resnet50(state_dict: Mapping[str, Any], options: Options) -> Result:
  """resnet50: the ImageNet trunk as SimpleVQA's backbone, its regressor fresh from --seed."""
  name, model_cfg = _simple_vqa_config(options)
  converted = convert_resnet.simple_vqa_from_resnet50(state_dict, model_cfg, options.seed)
  return Result("resnet50", name, converted.tree, converted.filled)


def _simple_vqa(state_dict: Mapping[str, Any], options: Options) -> Result:
  """simple_vqa: a trained SimpleVQA, every leaf from the file."""
  if not _has_prefix(state_dict, "quality."):
    raise ValueError("no SimpleVQA regressor keys 'quality.*'; an ImageNet ResNet-50 is "
                     "--format=resnet50 (its regressor is then freshly initialised)")
  name, model_cfg = _simple_vqa_config(options)
  return Result("simple_vqa", name,
                convert_resnet.convert_simple_vqa_state_dict(state_dict, model_cfg), {})


def _slowfast_r50(state_dict: Mapping[str, Any], options: Options) -> Result:
  """slowfast_r50: the motion extractor of --config's `motion` section, else slowfast_r50."""
  model, name = None, "slowfast_r50"
  if options.config is not None:
    if "motion" not in options.config:
      raise ValueError("--config has no 'motion' section (the SlowFast extractor's fields)")
    model, name = convert_resnet.slowfast_from_config(options.config.motion), "config.motion"
  params, batch_stats = convert_resnet.convert_slowfast_r50_state_dict(state_dict, model)
  return Result("slowfast_r50", name, {"params": params, "batch_stats": batch_stats}, {})


def _has_prefix(state_dict: Mapping[str, Any], *prefixes: str) -> bool:
  """Whether any key starts with one of `prefixes`."""
  return any(k.startswith(prefixes) for k in state_dict)


def _is_torchvision_resnet(state_dict: Mapping[str, Any]) -> bool:
  """torchvision ResNet trunk keys: `conv1.weight` and `layer4.*`."""
  return "conv1.weight" in state_dict and _has_prefix(state_dict, "layer4.")


@dataclasses.dataclass(frozen=True)
class Format:
  """A checkpoint family: its keys' signature (for errors), detector and converter."""

  name: str
  signature: str
  detect: Callable[[Mapping[str, Any]], bool]
  convert: Callable[[Mapping[str, Any], Options], Result]


FORMATS = {f.name: f for f in (
    Format("fast_vqa", "'fragments_backbone.*' (FAST-VQA) or 'backbone.*' (Kinetics Video Swin)",
           lambda sd: _has_prefix(sd, "fragments_backbone.", "backbone."), _fast_vqa),
    Format("swin2d", "'layers.N.blocks.*' and a 4-D 'patch_embed.proj.weight'",
           lambda sd: (np.ndim(sd.get("patch_embed.proj.weight")) == 4
                       and any(_SWIN_BLOCK_KEY.match(k) for k in sd)), _swin2d),
    Format("resnet50", "'conv1.weight', 'layer4.*' and 'fc.*', no 'quality.*'",
           lambda sd: (_is_torchvision_resnet(sd) and _has_prefix(sd, "fc.")
                       and not _has_prefix(sd, "quality.")), _resnet50),
    Format("simple_vqa", "'conv1.weight', 'layer4.*' and 'quality.*'",
           lambda sd: _is_torchvision_resnet(sd) and _has_prefix(sd, "quality."), _simple_vqa),
    Format("slowfast_r50", "'blocks.N.multipathway_blocks.*'",
           lambda sd: any(k.startswith("blocks.") and ".multipathway_" in k for k in sd),
           _slowfast_r50),
)}


def detect_format(state_dict: Mapping[str, Any]) -> str:
  """The one `FORMATS` name whose signature the keys show; else a ValueError saying what it saw."""
  state_dict = state_dicts.unwrap_state_dict(state_dict)
  matches = [f.name for f in FORMATS.values() if f.detect(state_dict)]
  if len(matches) == 1:
    return matches[0]
  tops = sorted({k.split(".", 1)[0] for k in state_dict})
  seen = (f"{len(state_dict)} tensors, top-level names {tops[:20]}, first keys "
          f"{sorted(state_dict)[:8]}")
  if matches:
    raise ValueError(f"the keys fit several formats {matches} ({seen}); pass --format")
  expected = "; ".join(f"{f.name}: {f.signature}" for f in FORMATS.values())
  raise ValueError(f"cannot tell the checkpoint format from its keys: {seen}. Expected one of: "
                   f"{expected}. Pass --format if it is one of these under other names")


def convert(state_dict: Mapping[str, Any], fmt: str = "auto",
            options: Options = Options()) -> Result:
  """Converts a numpy state_dict of format `fmt` ('auto': `detect_format`) to Flax variables."""
  if fmt != "auto" and fmt not in FORMATS:
    raise ValueError(f"unknown format {fmt!r}; choose from {['auto', *FORMATS]}")
  fmt = detect_format(state_dict) if fmt == "auto" else fmt
  if options.model != "auto" and fmt != "fast_vqa":
    raise ValueError(f"--model={options.model} applies to fast_vqa checkpoints, not {fmt}")
  return FORMATS[fmt].convert(state_dicts.unwrap_state_dict(state_dict), options)


def convert_file(src: str, dst: str, fmt: str = "auto", options: Options = Options(),
                 trust_pickle: bool = False) -> Result:
  """Reads `src` (.pth/.pyth or .npz), converts it, saves the variables in `dst`.

  Errors name `src`.
  """
  state_dict = state_dicts.read_state_dict(src, trust_pickle)
  try:
    result = convert(state_dict, fmt, options)
  except ValueError as e:
    raise ValueError(f"{src}: {e}") from e
  state_dicts.save_variables(dst, result.variables)
  config = output_config(result, options)
  if config is not None:  # `score --checkpoint=DST` and `Scorer.load(DST)` need no --config
    run_config.write_config(dst, config)
  return result


def output_config(result: Result, options: Options) -> ml_collections.ConfigDict | None:
  """The whole config stored beside converted weights: --config's, else the shipped config of
  the model built (fast_vqa: --model / inferred; swin2d: iqa_swin_t); None when there is none."""
  if options.config is not None:
    return options.config
  if result.model in MODEL_CONFIGS:
    return load_config_file(MODEL_CONFIGS[result.model])
  return load_config_file(IQA_CONFIG) if result.format == "swin2d" else None


def summary(result: Result, dst: str, seed: int) -> str:
  """What the command prints: where, which format and model, and the leaves initialised."""
  lines = [f"saved {dst}: format {result.format}, model {result.model}, collections "
           f"{sorted(result.variables)}"]
  if result.filled:
    listed = ", ".join(f"{path} ({why})" for path, why in result.filled.items())
    lines.append(f"initialised, not read from the checkpoint (seed {seed}): "
                 f"{len(result.filled)} leaves: {listed}")
  return "\n".join(lines)
