"""Records what the official FAST-VQA PyTorch code computes, as golden files for our parity tests.

  python3.11 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.13.0 numpy einops
  /tmp/torchenv/bin/python tools/parity/make_fast_vqa_golden.py \
      --official_repo=/path/to/FAST-VQA-and-FasterVQA [--out_dir=tests/golden] \
      [--models=small,fast_vqa_b,fast_vqa_m]

`--official_repo` is YOUR checkout of github.com/VQAssessment/FAST-VQA-and-FasterVQA; this script
imports `fastvqa/models/swin_backbone.py` and `fastvqa/models/head.py` from it (it contains none of
that code). timm / torchvision are not needed: the two names the files import from them
(`DropPath`, `trunc_normal_`; `roi_pool`, `roi_align`) are stubbed when absent (DropPath is the
identity in eval mode, and every weight is overwritten).

For each spec of `golden_rule.SPECS` it builds the official backbone + VQAHead (state_dict keys
`fragments_backbone.*` / `vqa_head.*`, as in the release checkpoints), sets every parameter by
`golden_rule.parameter_value`, runs the eval forward on `golden_rule.input_clip` in float64 and
float32, and writes `<out_dir>/<name>.npz` with:
  quality_map_f64, quality_map_f32  (B, T', H', W') official outputs
  state_dict_shapes                 JSON {key: shape} of the official state_dict (buffers too)
  buffer_keys                       JSON [key] of its buffers (relative_position_index)
  stage_shapes                      JSON [shape] of patch_embed and each stage output (B,C,T,H,W)
  attention_geometry                JSON per stage and block parity: window, shift, and crc32 of
                                    the relative position index (int32), fragment gate (uint8)
                                    and shifted-window mask (uint8 of mask != 0) actually used
  meta                              JSON: torch version, official commit, command line
  weight:<key>                      float16 parameters, only for specs with store_weights
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import subprocess
import sys
import types
import zlib

import numpy as np
import torch
from torch import nn

import golden_rule  # tools/parity/golden_rule.py, next to this script.

VIDEO_MEAN = (123.675, 116.28, 103.53)
VIDEO_STD = (58.395, 57.12, 57.375)
REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


class _EvalDropPath(nn.Module):
  """Stand-in for timm's DropPath: stochastic depth is the identity in eval mode."""

  def __init__(self, drop_prob=0.0):
    super().__init__()
    self.drop_prob = drop_prob

  def forward(self, x):
    """Identity (the generator only runs eval forwards)."""
    if self.training and self.drop_prob > 0:
      raise RuntimeError("the DropPath stub supports eval mode only")
    return x


def _stub_missing_modules() -> None:
  """Registers minimal timm / torchvision modules when the real ones are not installed."""
  if importlib.util.find_spec("timm") is None:
    layers = types.ModuleType("timm.models.layers")
    layers.DropPath = _EvalDropPath
    layers.trunc_normal_ = lambda tensor, mean=0.0, std=1.0, a=-2.0, b=2.0: (
        nn.init.trunc_normal_(tensor, mean, std, a, b))
    models = types.ModuleType("timm.models")
    models.layers = layers
    timm = types.ModuleType("timm")
    timm.models = models
    sys.modules.update({"timm": timm, "timm.models": models, "timm.models.layers": layers})
  if importlib.util.find_spec("torchvision") is None:
    ops = types.ModuleType("torchvision.ops")
    ops.roi_pool = ops.roi_align = None
    torchvision = types.ModuleType("torchvision")
    torchvision.ops = ops
    sys.modules.update({"torchvision": torchvision, "torchvision.ops": ops})


def load_official_module(official_repo: pathlib.Path, relpath: str, name: str):
  """Imports one file of the official checkout as a standalone module."""
  path = official_repo / relpath
  if not path.is_file():
    raise FileNotFoundError(f"{path} not found: is --official_repo a FAST-VQA checkout?")
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


class OfficialFastVqa(nn.Module):
  """The official DiViDeAddEvaluator with one `fragments` backbone and a shared vqa_head."""

  def __init__(self, swin, head, spec: golden_rule.GoldenSpec):
    super().__init__()
    self.fragments_backbone = swin.SwinTransformer3D(
        use_checkpoint=False, **spec.torch_backbone_kwargs())
    self.vqa_head = head.VQAHead(**spec.torch_head_kwargs())

  def forward(self, x):
    """(B, 3, T, H, W) normalized clip -> (B, 1, T', H', W') quality map."""
    return self.vqa_head(self.fragments_backbone(x))


def set_rule_weights(model: nn.Module) -> dict[str, np.ndarray]:
  """Overwrites every parameter by `golden_rule.parameter_value`; returns them as numpy."""
  values = {}
  with torch.no_grad():
    for key, param in model.named_parameters():
      values[key] = golden_rule.parameter_value(key, tuple(param.shape))
      param.copy_(torch.from_numpy(values[key]))
  return values


def normalized_input(clip: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
  """uint8 (B, T, H, W, 3) -> official (B, 3, T, H, W) (x - mean) / std in `dtype`."""
  x = torch.from_numpy(clip).to(dtype).permute(0, 4, 1, 2, 3)
  mean = torch.tensor(VIDEO_MEAN, dtype=dtype).view(1, 3, 1, 1, 1)
  std = torch.tensor(VIDEO_STD, dtype=dtype).view(1, 3, 1, 1, 1)
  return (x - mean) / std


def crc32(array) -> int:
  """crc32 of a contiguous numpy array's bytes."""
  return zlib.crc32(np.ascontiguousarray(array).tobytes())


def attention_geometry(swin, model: OfficialFastVqa, stage_shapes) -> list[dict]:
  """Window, shift and crc32s of the index / gate / mask the official blocks use, per stage."""
  backbone = model.fragments_backbone
  input_size = stage_shapes["input"][2:]
  resized = swin.get_adaptive_window_size(backbone.window_size, tuple(input_size),
                                          backbone.base_x_size)
  records = []
  for i, layer in enumerate(backbone.layers):
    d, h, w = stage_shapes["stage_inputs"][i][2:]
    for parity in range(min(2, len(layer.blocks))):
      block = layer.blocks[parity]
      window, shift = swin.get_window_size((d, h, w), resized, block.shift_size)
      padded = tuple(int(np.ceil(s / ws)) * ws for s, ws in zip((d, h, w), window))
      rpi = block.attn.relative_position_index.reshape(*block.window_size, *block.window_size)
      rpi = rpi[:window[0], :window[1], :window[2], :window[0], :window[1], :window[2]]
      n = int(np.prod(window))
      gpi = swin.global_position_index(*padded, fragments=(1,) + tuple(window[1:]),
                                       window_size=tuple(window), shift_size=tuple(shift),
                                       device="cpu")
      record = dict(stage=i, block=parity, size=[d, h, w], padded=list(padded),
                    window=list(window), shift=list(shift),
                    rpi_crc32=crc32(rpi.reshape(n, n).numpy().astype(np.int32)),
                    gate_crc32=crc32(gpi.abs().sum(-1).numpy().astype(np.uint8)),
                    gate_max=int(gpi.abs().sum(-1).max()))
      if any(s > 0 for s in shift):
        mask = swin.compute_mask(*padded, tuple(window), tuple(shift), "cpu")
        record["mask_crc32"] = crc32((mask.numpy() != 0).astype(np.uint8))
      records.append(record)
  return records


def run_spec(swin, head, spec: golden_rule.GoldenSpec) -> dict[str, np.ndarray]:
  """Builds, fills and runs the official model for `spec`; returns the npz entries."""
  torch.manual_seed(0)
  model = OfficialFastVqa(swin, head, spec).eval()
  weights = set_rule_weights(model)
  state_dict = model.state_dict()
  buffer_keys = sorted(k for k in state_dict if k not in weights)
  clip = golden_rule.input_clip(spec.input_shape)

  shapes = {"stage_inputs": [], "stages": []}

  def record_shapes(module, inputs, output):  # A forward hook; returning None keeps the output.
    if module is not model.fragments_backbone.patch_embed:
      shapes["stage_inputs"].append(list(inputs[0].shape))
    shapes["stages"].append(list(output.shape))

  hooks = [model.fragments_backbone.patch_embed.register_forward_hook(record_shapes)]
  hooks += [layer.register_forward_hook(record_shapes)
            for layer in model.fragments_backbone.layers]
  outputs = {}
  with torch.no_grad():
    outputs["quality_map_f32"] = model(normalized_input(clip, torch.float32))
    for hook in hooks:
      hook.remove()
    outputs["quality_map_f64"] = model.double()(normalized_input(clip, torch.float64))
  shapes["input"] = [clip.shape[0], 3, *clip.shape[1:4]]

  entries = {k: v[:, 0].numpy() for k, v in outputs.items()}  # (B, 1, T, H, W) -> (B, T, H, W).
  entries["state_dict_shapes"] = json.dumps({k: list(v.shape) for k, v in state_dict.items()})
  entries["buffer_keys"] = json.dumps(buffer_keys)
  entries["stage_shapes"] = json.dumps(shapes["stages"])
  entries["attention_geometry"] = json.dumps(attention_geometry(swin, model, shapes))
  if spec.store_weights:
    entries.update({f"weight:{k}": v.astype(np.float16) for k, v in weights.items()})
  return entries


def official_commit(official_repo: pathlib.Path) -> str:
  """The checkout's git commit, or 'unknown' (e.g. an exported tree)."""
  try:
    return subprocess.run(["git", "-C", str(official_repo), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "unknown"


def main(argv=None) -> None:
  """Command line: writes one golden npz per requested spec."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--official_repo", required=True, type=pathlib.Path,
                      help="checkout of VQAssessment/FAST-VQA-and-FasterVQA")
  parser.add_argument("--out_dir", type=pathlib.Path, default=REPO_ROOT / "tests" / "golden")
  parser.add_argument("--models", default=",".join(golden_rule.SPECS),
                      help=f"comma-separated subset of {sorted(golden_rule.SPECS)}")
  parser.add_argument("--official_commit", default=None,
                      help="recorded in meta (default: `git rev-parse HEAD` of the checkout)")
  args = parser.parse_args(argv)

  _stub_missing_modules()
  swin = load_official_module(args.official_repo, "fastvqa/models/swin_backbone.py",
                              "official_swin_backbone")
  head = load_official_module(args.official_repo, "fastvqa/models/head.py", "official_head")
  meta = dict(torch_version=torch.__version__, numpy_version=np.__version__,
              official_commit=args.official_commit or official_commit(args.official_repo),
              command=" ".join(["python", *sys.argv]))
  args.out_dir.mkdir(parents=True, exist_ok=True)
  for name in args.models.split(","):
    if name not in golden_rule.SPECS:
      raise SystemExit(f"unknown model {name!r}; choose from {sorted(golden_rule.SPECS)}")
    entries = run_spec(swin, head, golden_rule.SPECS[name])
    entries["meta"] = json.dumps(dict(meta, spec=name))
    path = args.out_dir / f"{name}.npz"
    np.savez_compressed(path, **entries)
    drift = np.abs(entries["quality_map_f32"] - entries["quality_map_f64"]).max()
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB); official f32 vs f64 max abs "
          f"diff {drift:.3g}; |map| max {np.abs(entries['quality_map_f64']).max():.3g}")


if __name__ == "__main__":
  main()
