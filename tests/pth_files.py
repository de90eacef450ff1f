"""Writes numpy state_dicts as torch.save zip files without torch (test servers' payloads).

Written from torch's file format (a zip archive holding `archive/data.pkl`, a protocol-2 pickle
whose tensors are `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False,
OrderedDict())` over persistent ids `('storage', torch.<Type>Storage, key, 'cpu', numel)`, and
`archive/data/<key>`, each storage's little-endian bytes), independently of the reader in
`vqa_jax.pretrained.pth_reader`. `test_pth_reader.test_writer_output_is_what_torch_reads` checks
the result with torch.load where torch is installed.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile

import ml_dtypes
import numpy as np

STORAGE_NAMES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage",
                 np.dtype(np.float16): "HalfStorage", np.dtype(ml_dtypes.bfloat16): "BFloat16Storage",
                 np.dtype(np.int64): "LongStorage", np.dtype(np.int32): "IntStorage",
                 np.dtype(np.uint8): "ByteStorage", np.dtype(np.bool_): "BoolStorage"}


class TorchGlobal:
  """A name in torch, pickled as a GLOBAL opcode (torch itself need not be importable)."""

  def __init__(self, module: str, name: str):
    self.module, self.name = module, name

  def __reduce_ex__(self, protocol):
    return self.name  # pickle saves it as a global: see Pickler.save_global

  def __call__(self, *args):  # pickle requires a reduce function to be callable
    raise TypeError(f"{self.module}.{self.name} is only a name to pickle")


REBUILD = TorchGlobal("torch._utils", "_rebuild_tensor_v2")


class _Storage:
  """One tensor's storage: its key and contiguous array."""

  def __init__(self, key: str, array: np.ndarray):
    self.key, self.array = key, array


class _Pickler(pickle._Pickler):  # pylint: disable=protected-access  (the Python pickler)
  """Pickles numpy arrays as torch tensors over storages collected in `storages`."""

  def __init__(self, file):
    super().__init__(file, protocol=2)
    self.storages: list[_Storage] = []

  def save_global(self, obj, name=None):
    if isinstance(obj, TorchGlobal):
      self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
      self.memoize(obj)
      return
    super().save_global(obj, name)

  def persistent_id(self, obj):
    if isinstance(obj, _Storage):
      storage_type = TorchGlobal("torch", STORAGE_NAMES[obj.array.dtype])
      return ("storage", storage_type, obj.key, "cpu", obj.array.size)
    return None

  def reducer_override(self, obj):
    if not isinstance(obj, np.ndarray):
      return NotImplemented
    array = np.ascontiguousarray(obj)
    storage = _Storage(str(len(self.storages)), array)
    self.storages.append(storage)
    strides = tuple(s // array.itemsize for s in array.strides)
    return REBUILD, (storage, 0, tuple(array.shape), strides, False, collections.OrderedDict())


def pth_bytes(obj) -> bytes:
  """The bytes of a torch.save zip file of `obj` (dicts / lists of numpy arrays and scalars)."""
  data = io.BytesIO()
  pickler = _Pickler(data)
  pickler.dump(obj)
  out = io.BytesIO()
  with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
    archive.writestr("archive/data.pkl", data.getvalue())
    archive.writestr("archive/byteorder", "little")
    for storage in pickler.storages:
      archive.writestr(f"archive/data/{storage.key}", storage.array.astype(
          storage.array.dtype.newbyteorder("<")).tobytes())
    archive.writestr("archive/version", "3\n")
  return out.getvalue()


def save_pth(path, obj) -> None:
  """Writes `pth_bytes(obj)` to `path`."""
  with open(path, "wb") as f:
    f.write(pth_bytes(obj))


def random_fast_vqa_b_release(seed: int) -> bytes:
  """FAST_VQA_B_1_4.pth's layout (`{'state_dict': ...}`) holding random weights (std 0.02)."""
  import jax  # pylint: disable=g-import-not-at-top
  from tests.helpers import load_config  # pylint: disable=g-import-not-at-top
  from vqa_jax import families  # pylint: disable=g-import-not-at-top
  from vqa_jax.convert import convert_weights  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  abstract = families.abstract_variables(load_config("fast_vqa_b").model)["params"]
  params = jax.tree_util.tree_map(
      lambda leaf: (0.02 * rng.standard_normal(leaf.shape)).astype(np.float32), abstract)
  return pth_bytes({"state_dict": convert_weights.to_state_dict(params)})
