"""PyTorch key lists and shapes of torchvision ResNet and pytorchvideo SlowFast, and fake weights.

Written out from the two libraries' naming schemes (torchvision `resnet.py`, pytorchvideo
`create_slowfast`), not from vqa_jax's converter, so the converter tests compare two independent
derivations. `tests/golden/make_simplevqa_goldens.py` loads these fake state_dicts into the real
PyTorch modules with `strict=True`, which checks the lists against the libraries themselves.
"""

from __future__ import annotations

import numpy as np

Shapes = dict[str, tuple[int, ...]]


def _bn(prefix: str, channels: int) -> Shapes:
  """A BatchNorm's state_dict entries."""
  return {f"{prefix}.{leaf}": (channels,) for leaf in ("weight", "bias", "running_mean",
                                                       "running_var")} | {
                                                           f"{prefix}.num_batches_tracked": ()}


def torchvision_resnet_shapes(stage_sizes=(3, 4, 6, 3), width: int = 64,
                              num_classes: int | None = 1000) -> Shapes:
  """torchvision ResNet (Bottleneck) state_dict shapes: conv1, bn1, layerS.B.*, fc."""
  shapes = {"conv1.weight": (width, 3, 7, 7)} | _bn("bn1", width)
  in_ch = width
  for s, depth in enumerate(stage_sizes, start=1):
    planes = width * 2**(s - 1)
    for b in range(depth):
      p = f"layer{s}.{b}"
      shapes |= {f"{p}.conv1.weight": (planes, in_ch, 1, 1)} | _bn(f"{p}.bn1", planes)
      shapes |= {f"{p}.conv2.weight": (planes, planes, 3, 3)} | _bn(f"{p}.bn2", planes)
      shapes |= {f"{p}.conv3.weight": (4 * planes, planes, 1, 1)} | _bn(f"{p}.bn3", 4 * planes)
      if b == 0:
        shapes |= {f"{p}.downsample.0.weight": (4 * planes, in_ch, 1, 1)}
        shapes |= _bn(f"{p}.downsample.1", 4 * planes)
      in_ch = 4 * planes
  if num_classes:
    shapes |= {"fc.weight": (num_classes, in_ch), "fc.bias": (num_classes,)}
  return shapes


def pytorchvideo_slowfast_shapes(stage_sizes=(3, 4, 6, 3), width: int = 64, beta_inv: int = 8,
                                 fusion_ratio: int = 2, fusion_kernel: int = 7,
                                 num_classes: int | None = 400) -> Shapes:
  """pytorchvideo `create_slowfast` state_dict shapes (blocks.0 stems ... blocks.6 head)."""
  conv_a_t = ((1, 1, 3, 3), (3, 3, 3, 3))  # stage_conv_a_kernel_sizes, slow then fast.
  stem_t = (1, 5)
  fast_w = width // beta_inv
  shapes: Shapes = {}
  for p, (w, t) in enumerate(zip((width, fast_w), stem_t)):
    shapes |= {f"blocks.0.multipathway_blocks.{p}.conv.weight": (w, 3, t, 7, 7)}
    shapes |= _bn(f"blocks.0.multipathway_blocks.{p}.norm", w)
  dim_in, dim_out = width, 4 * width
  for s, depth in enumerate(stage_sizes, start=1):
    fuse_in = dim_in // beta_inv  # The fusion after the previous block (stem or stage s-1).
    shapes |= {f"blocks.{s - 1}.multipathway_fusion.conv_fast_to_slow.weight":
               (fuse_in * fusion_ratio, fuse_in, fusion_kernel, 1, 1)}
    shapes |= _bn(f"blocks.{s - 1}.multipathway_fusion.norm", fuse_in * fusion_ratio)
    pathway_in = (dim_in + dim_in * fusion_ratio // beta_inv, dim_in // beta_inv)
    pathway_inner = (dim_out // 4, dim_out // 4 // beta_inv)
    pathway_out = (dim_out, dim_out // beta_inv)
    for p in range(2):
      cin = pathway_in[p]
      for b in range(depth):
        pre = f"blocks.{s}.multipathway_blocks.{p}.res_blocks.{b}"
        inner, out = pathway_inner[p], pathway_out[p]
        if b == 0:
          shapes |= {f"{pre}.branch1_conv.weight": (out, cin, 1, 1, 1)}
          shapes |= _bn(f"{pre}.branch1_norm", out)
        shapes |= {f"{pre}.branch2.conv_a.weight": (inner, cin, conv_a_t[p][s - 1], 1, 1)}
        shapes |= _bn(f"{pre}.branch2.norm_a", inner)
        shapes |= {f"{pre}.branch2.conv_b.weight": (inner, inner, 1, 3, 3)}
        shapes |= _bn(f"{pre}.branch2.norm_b", inner)
        shapes |= {f"{pre}.branch2.conv_c.weight": (out, inner, 1, 1, 1)}
        shapes |= _bn(f"{pre}.branch2.norm_c", out)
        cin = out
    dim_in, dim_out = dim_out, 2 * dim_out
  if num_classes:
    head_in = dim_in + dim_in // beta_inv
    shapes |= {"blocks.6.proj.weight": (num_classes, head_in), "blocks.6.proj.bias": (num_classes,)}
  return shapes


def fake_state_dict(shapes: Shapes, seed: int = 0) -> dict[str, np.ndarray]:
  """Deterministic float32 weights for `shapes` (keys in sorted order, one rng).

  Conv/Linear weights ~ N(0, 1/fan_in) (activations stay O(1) through 50 layers), BN gains
  U(0.5, 1.5), biases and running means N(0, 0.1), running variances U(0.5, 1.5);
  `num_batches_tracked` = 0 (int64).
  """
  rng = np.random.default_rng(seed)
  state = {}
  for key in sorted(shapes):
    shape = shapes[key]
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
      state[key] = np.zeros(shape, np.int64)
    elif leaf == "weight" and len(shape) > 1:
      state[key] = rng.normal(0.0, np.sqrt(1.0 / np.prod(shape[1:])), shape).astype(np.float32)
    elif leaf in ("weight", "running_var"):
      state[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    else:
      state[key] = rng.normal(0.0, 0.1, shape).astype(np.float32)
  return state
