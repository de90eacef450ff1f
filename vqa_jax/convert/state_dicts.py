"""PyTorch state_dicts as numpy: reading, unwrapping, mapping onto Flax variables, saving.

The format-independent half of every weight converter (`convert_weights` and the format modules
it dispatches to). A format describes itself as a `Layout`: the PyTorch key of each Flax leaf,
plus the buffers and classifier heads its checkpoints carry that have no Flax counterpart.
`convert_tree` walks the Flax tree to fill (its `eval_shape`), takes each leaf's tensor from the
state_dict, transposes kernels (PyTorch (out, in, *k) -> Flax (*k, in, out)), and raises ONE
ValueError listing every missing key, every unknown key and every shape mismatch (shapes in the
PyTorch layout). What a checkpoint does not provide (a fresh head, zero bias tables) comes from
the caller's `fill` hook, and is reported back.

Files: `.pth` / `.pyth` are read without torch by `vqa_jax.pretrained.pth_reader` (tensors and
plain containers only; `trust_pickle` alone uses torch, imported lazily here); `.npz` (numpy's
`np.savez`, keys are the state_dict's) needs no torch either.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import dataclasses
import os
import pickle
from typing import Any

import flax
import jax
import numpy as np
import orbax.checkpoint as ocp

PyTree = Any
Path = tuple[str, ...]
# fill(flax path, abstract leaf, checkpoint tensor or None) -> array, or None to report a problem.
Fill = Callable[[Path, jax.ShapeDtypeStruct, "np.ndarray | None"], "np.ndarray | None"]

# Entries that wrap the tensors in released checkpoints: FAST-VQA and most PyTorch code
# ('state_dict'), Microsoft's Swin releases ('model'), pytorchvideo ('model_state').
WRAPPER_KEYS = ("state_dict", "model", "model_state")
NUMPY_SUFFIX = ".npz"
TORCH_LEAVES = {"kernel": "weight", "scale": "weight", "bias": "bias",
                "mean": "running_mean", "var": "running_var"}


def unwrap_state_dict(checkpoint: Mapping[str, Any]) -> Mapping[str, Any]:
  """The state_dict inside a checkpoint, without torch.nn.DataParallel's `module.` key prefix.

  That is its first `WRAPPER_KEYS` entry holding a mapping, or the checkpoint itself.
  """
  for key in WRAPPER_KEYS:
    if isinstance(checkpoint.get(key), Mapping):
      checkpoint = checkpoint[key]
      break
  if checkpoint and all(k.startswith("module.") for k in checkpoint):
    return {k.removeprefix("module."): v for k, v in checkpoint.items()}
  return checkpoint


def load_torch_state_dict(path: str, trust_pickle: bool = False) -> dict[str, np.ndarray]:
  """Reads a `.pth` file's tensors into float32 numpy arrays (no torch needed).

  `pretrained.pth_reader` rebuilds only tensors, OrderedDicts and plain containers, as
  `torch.load(weights_only=True)` does. `trust_pickle` unpickles arbitrary objects with torch
  itself (an optional dependency, imported only then): use it only for files you trust.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such checkpoint file")
  if trust_pickle:
    checkpoint = _torch_load_untrusted(path)
  else:
    from vqa_jax.pretrained import pth_reader  # pylint: disable=g-import-not-at-top
    try:
      checkpoint = pth_reader.load(path)
    except pth_reader.UnsafeCheckpointError as e:
      raise ValueError(f"{e} (if it holds non-tensor objects and you trust it: "
                       "--trust_pickle, which needs torch)") from e
    except pickle.UnpicklingError as e:
      raise ValueError(str(e)) from e
  if not isinstance(checkpoint, Mapping):
    raise ValueError(f"{path}: expected a dict of tensors, got {type(checkpoint).__name__}")
  return {k: np.asarray(v, np.float32) for k, v in unwrap_state_dict(checkpoint).items()
          if isinstance(v, np.ndarray)}


def _torch_load_untrusted(path: str) -> Mapping[str, Any]:
  """`torch.load(weights_only=False)` of `path`, tensors as numpy (needs torch)."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f"reading {path} with --trust_pickle needs PyTorch: pip install "
                      "torch==2.13.0") from e
  try:
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
  except Exception as e:  # pylint: disable=broad-except  (torch raises many kinds here)
    raise ValueError(f"{path}: not a readable PyTorch checkpoint: {e}") from e
  if not isinstance(checkpoint, Mapping):
    return checkpoint
  return {k: (v.detach().float().numpy() if isinstance(v, torch.Tensor) else v)
          for k, v in unwrap_state_dict(checkpoint).items()}


def load_numpy_state_dict(path: str) -> dict[str, np.ndarray]:
  """Reads a state_dict saved with `numpy.savez(path, **state_dict)` (no pickles, no torch)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such checkpoint file")
  try:
    with np.load(path, allow_pickle=False) as arrays:
      return dict(unwrap_state_dict({k: arrays[k] for k in arrays.files}))
  except (OSError, ValueError) as e:
    raise ValueError(f"{path}: not a readable numpy .npz state_dict: {e}") from e


def read_state_dict(path: str, trust_pickle: bool = False) -> dict[str, np.ndarray]:
  """The numpy state_dict of a `.npz` (numpy) or any other (PyTorch) file; never empty."""
  if path.endswith(NUMPY_SUFFIX):
    arrays = load_numpy_state_dict(path)
  else:
    arrays = load_torch_state_dict(path, trust_pickle)
  if not arrays:
    raise ValueError(f"{path}: no tensors found")
  return arrays


def kernel_to_flax(value: np.ndarray) -> np.ndarray:
  """A PyTorch Conv/Linear weight (out, in, *k) in Flax's layout (*k, in, out)."""
  return value.transpose(tuple(range(2, value.ndim)) + (1, 0))


def kernel_to_torch(value: np.ndarray) -> np.ndarray:
  """Inverse of `kernel_to_flax`: a Flax kernel (*k, in, out) as PyTorch's (out, in, *k)."""
  n = value.ndim
  return value.transpose((n - 1, n - 2) + tuple(range(n - 2)))


def to_flax(leaf: str, value: np.ndarray) -> np.ndarray:
  """A PyTorch tensor as the float32 Flax leaf named `leaf` (kernels transposed; others as is)."""
  value = np.asarray(value, np.float32)
  return kernel_to_flax(value) if leaf == "kernel" and value.ndim >= 2 else value


def to_torch(leaf: str, value: np.ndarray) -> np.ndarray:
  """Inverse of `to_flax`: a Flax leaf as a float32 PyTorch tensor."""
  value = np.asarray(value, np.float32)
  return kernel_to_torch(value) if leaf == "kernel" and value.ndim >= 2 else value


def torch_shape(leaf: str, flax_shape: tuple[int, ...]) -> tuple[int, ...]:
  """The PyTorch shape of a Flax leaf of shape `flax_shape`."""
  shape = tuple(flax_shape)
  if leaf == "kernel" and len(shape) >= 2:
    return (shape[-1], shape[-2]) + shape[:-2]
  return shape


def torch_leaf(leaf: str) -> str:
  """Flax leaf name -> PyTorch's ('kernel'/'scale' -> 'weight', 'mean' -> 'running_mean', ...)."""
  return TORCH_LEAVES.get(leaf, leaf)


@dataclasses.dataclass(frozen=True)
class Layout:
  """How one family of PyTorch checkpoints names and stores the leaves of a Flax tree.

  key: Flax path -> PyTorch key (None: the checkpoint never holds this leaf).
  to_flax / torch_shape: (Flax leaf name, tensor / Flax shape) -> Flax value / PyTorch shape.
  ignored_suffixes: buffers without a Flax counterpart; dropped_prefixes: parts not converted
  (classifier heads).
  """

  key: Callable[[Path], str | None]
  ignored_suffixes: tuple[str, ...] = ()
  dropped_prefixes: tuple[str, ...] = ()
  to_flax: Callable[[str, np.ndarray], np.ndarray] = to_flax
  torch_shape: Callable[[str, tuple[int, ...]], tuple[int, ...]] = torch_shape

  def kept(self, state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """The unwrapped entries that must map onto Flax leaves (buffers and dropped parts removed)."""
    return {k: v for k, v in unwrap_state_dict(state_dict).items()
            if not k.endswith(self.ignored_suffixes) and not k.startswith(self.dropped_prefixes)}


def mismatch_error(missing: list[str], unknown: list[str], mismatched: list[str]) -> ValueError:
  """The one error of every converter: all missing keys, unknown keys and shape mismatches."""
  return ValueError("checkpoint does not match the model: "
                    f"{len(missing)} missing keys {sorted(missing)}; "
                    f"{len(unknown)} unknown keys {sorted(unknown)}; "
                    f"{len(mismatched)} shape mismatches {mismatched}")


@dataclasses.dataclass(frozen=True)
class Converted:
  """A converted tree and the leaves `fill` supplied: '/'-joined path -> why (absent or shape)."""

  tree: PyTree
  filled: dict[str, str]


def convert_tree(state_dict: Mapping[str, Any], abstract: PyTree, layout: Layout,
                 fill: Fill | None = None) -> Converted:
  """Numpy state_dict -> a tree shaped like `abstract` (eval_shape of init); raises on mismatch.

  `fill(path, abstract_leaf, tensor)` is asked for every leaf the checkpoint does not provide
  (tensor None) or provides with another shape (the tensor); it returns the array to use, or None,
  which makes the leaf a missing key or a shape mismatch of the ValueError (see `mismatch_error`).
  """
  remaining = layout.kept(state_dict)
  flat, filled, missing, mismatched = {}, {}, [], []
  for path, leaf in flax.traverse_util.flatten_dict(flax.core.unfreeze(abstract)).items():
    key = layout.key(path)
    expected = layout.torch_shape(path[-1], tuple(leaf.shape))
    value = None if key is None else remaining.pop(key, None)
    if value is not None and np.shape(value) == expected:
      flat[path] = layout.to_flax(path[-1], value)
      continue
    supplied = None if fill is None else fill(path, leaf, value)
    if supplied is not None:
      flat[path] = np.asarray(supplied, np.float32)
      filled["/".join(path)] = "absent" if value is None else f"checkpoint shape {np.shape(value)}"
    elif value is None:
      missing.append(key or f"<{'/'.join(path)}: not stored in this format>")
    else:
      mismatched.append(f"{key}: checkpoint {np.shape(value)}, model expects {expected}")
  if missing or remaining or mismatched:
    raise mismatch_error(missing, list(remaining), mismatched)
  return Converted(flax.traverse_util.unflatten_dict(flat), filled)


def save_variables(directory: str, variables: Mapping[str, PyTree]) -> None:
  """Saves Flax collections ({'params'[, 'batch_stats']}) as an orbax checkpoint in `directory`.

  Replaces `directory`; `pretrained.load_variables` / `load_params` read it back.
  """
  if "params" not in variables:
    raise ValueError(f"variables need a 'params' collection, got {sorted(variables)}")
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.abspath(directory), dict(variables), force=True)
  checkpointer.wait_until_finished()
