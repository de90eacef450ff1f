"""Records the SimpleVQA / SlowFast goldens with the PyTorch reference code (run once, offline).

  python tests/golden/make_simplevqa_goldens.py \
      --simplevqa_model=SimpleVQA/model/UGC_BVQA_model.py --out=tests/golden/simplevqa_goldens.npz

Needs torch (2.13.0 CPU) and pytorchvideo 0.1.5 (its head module imports torchvision only for
RoIAlign, which is stubbed here) and upstream SimpleVQA's `model/UGC_BVQA_model.py`
(github.com/sunwei925/SimpleVQA @ 017edda). Weights are `tests/torch_layouts.fake_state_dict`,
loaded with strict=True (which also checks the key lists of `tests/torch_layouts.py`), so only
inputs and outputs are stored. The torch code is never imported by vqa_jax or the tests.
"""

import argparse
import importlib.util
import pathlib
import sys
import types

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import torch_layouts  # pylint: disable=g-import-not-at-top,wrong-import-position

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def upsample(lowres: np.ndarray) -> np.ndarray:
  """(B, T, h, w, 3) -> (B, T, 8h, 8w, 3) by pixel repetition (the stored goldens are low-res)."""
  return np.repeat(np.repeat(lowres, 8, axis=2), 8, axis=3)


def _torch_state(shapes, seed):
  import torch  # pylint: disable=g-import-not-at-top
  return {k: torch.from_numpy(v) for k, v in torch_layouts.fake_state_dict(shapes, seed).items()}


def simplevqa_goldens(model_file):
  """Reference SimpleVQA (ResNet-50 + regressor) on 2 videos x 2 frames of 64x64, eval and train."""
  import torch  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location("ugc_bvqa_model", model_file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  model = module.resnet50(pretrained=False)
  shapes = torch_layouts.torchvision_resnet_shapes(num_classes=None) | {
      "quality.0.weight": (128, 9472), "quality.0.bias": (128,),
      "quality.1.weight": (1, 128), "quality.1.bias": (1,)}
  model.load_state_dict(_torch_state(shapes, seed=1), strict=True)
  rng = np.random.default_rng(10)
  frames = rng.integers(0, 256, (2, 2, 64, 64, 3), dtype=np.uint8)
  motion = rng.normal(0, 1, (2, 2, 2304)).astype(np.float32)
  x = (frames.astype(np.float32) / 255 - IMAGENET_MEAN) / IMAGENET_STD
  x = torch.from_numpy(x.transpose(0, 1, 4, 2, 3).copy())
  out = {"simplevqa_frames": frames, "simplevqa_motion": motion}
  with torch.no_grad():
    model.eval()
    out["simplevqa_eval_score"] = model(x, torch.from_numpy(motion)).numpy()
    model.train()
    out["simplevqa_train_score"] = model(x, torch.from_numpy(motion)).numpy()
  out["simplevqa_train_bn1_mean"] = model.bn1.running_mean.numpy()
  out["simplevqa_train_bn1_var"] = model.bn1.running_var.numpy()
  return out


def _slowfast_features(model, fast):
  """SimpleVQA's extractor: blocks 0-4, the head's AvgPool3d per pathway, AdaptiveAvgPool3d(1)."""
  import torch  # pylint: disable=g-import-not-at-top
  slow = torch.index_select(fast, 2, torch.linspace(0, fast.shape[2] - 1,
                                                    fast.shape[2] // 4).long())
  x = [slow, fast]
  for i in range(5):
    x = model.blocks[i](x)
  feats = [model.blocks[6].output_pool(model.blocks[5].pool[p](x[p])).flatten(1) for p in range(2)]
  return torch.cat(feats, 1).numpy()


def slowfast_goldens(full):
  """pytorchvideo SlowFast: a tiny variant on 96x96 clips (and `slowfast_r50` at 224 if `full`)."""
  import torch  # pylint: disable=g-import-not-at-top
  tv = types.ModuleType("torchvision")
  tv.ops = types.ModuleType("torchvision.ops")
  tv.ops.RoIAlign = object
  sys.modules.setdefault("torchvision", tv)
  sys.modules.setdefault("torchvision.ops", tv.ops)
  from pytorchvideo.models.hub.slowfast import slowfast_r50  # pylint: disable=g-import-not-at-top
  from pytorchvideo.models.slowfast import create_slowfast  # pylint: disable=g-import-not-at-top

  out = {}
  configs = {"tiny": (dict(model_depth=18, stem_dim_outs=(16, 2), model_num_class=10,
                           head_pool_kernel_sizes=((2, 2, 2), (8, 2, 2))),
                      (2, 8, 12, 12), dict(stage_sizes=(1, 1, 1, 1), width=16, num_classes=10))}
  if full:
    configs["r50"] = (None, (1, 32, 28, 28), {})
  for name, (kwargs, shape, layout) in configs.items():
    model = slowfast_r50(pretrained=False) if kwargs is None else create_slowfast(**kwargs)
    shapes = torch_layouts.pytorchvideo_slowfast_shapes(**layout)
    model.load_state_dict(_torch_state(shapes, seed=2), strict=True)
    model.eval()
    lowres = np.random.default_rng(20).integers(0, 256, shape + (3,), dtype=np.uint8)
    clips = upsample(lowres)
    fast = (clips.astype(np.float32) / 255 - 0.45) / 0.225
    with torch.no_grad():
      out[f"slowfast_{name}_features"] = _slowfast_features(
          model, torch.from_numpy(fast.transpose(0, 4, 1, 2, 3).copy()))
    out[f"slowfast_{name}_clips_lowres"] = lowres
  return out


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--simplevqa_model", required=True)
  parser.add_argument("--out", required=True)
  parser.add_argument("--no_full_slowfast", action="store_true")
  args = parser.parse_args()
  goldens = simplevqa_goldens(args.simplevqa_model) | slowfast_goldens(not args.no_full_slowfast)
  np.savez_compressed(args.out, **goldens)
  for k, v in goldens.items():
    print(k, v.shape, v.dtype)


if __name__ == "__main__":
  main()
