"""Reads PyTorch `.pth` checkpoints into numpy arrays without torch.

A `.pth` file written by `torch.save` (torch >= 1.6, the default format) is a zip archive:
`<archive>/data.pkl` is a pickle of the saved object in which every tensor is
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`
and every storage a persistent id `('storage', torch.<Type>Storage, key, location, numel)`, whose
bytes are the member `<archive>/data/<key>` (byte order in `<archive>/byteorder`, little-endian
when absent). The legacy format (`_use_new_zipfile_serialization=False`) is a plain stream of
pickles: a magic number, the protocol version, system info, the object (persistent ids
`('storage', type, key, location, numel, view_metadata)`), the list of storage keys, then each
storage as an int64 element count and its raw bytes (little-endian).

`load(path)` unpickles with `RestrictedUnpickler`, which, like `torch.load(weights_only=True)`,
rebuilds only tensors (as numpy arrays of the storage dtype, with their size, stride and offset:
views share nothing after loading, each array is a copy), `collections.OrderedDict`, `torch.Size`
(a tuple), numeric numpy scalars (FAST-VQA's releases store their validation SRCC / PLCC as
numpy floats next to the state_dict) and the plain containers and scalars of the pickle protocol;
any other global (a class, a function) is refused with an `UnsafeCheckpointError` naming it. bfloat16 tensors become
`ml_dtypes.bfloat16` arrays.

The format is torch's `torch/serialization.py` (`_save`, `_legacy_save`, `_load`,
`_legacy_load`) and `torch/_utils.py` (`_rebuild_tensor_v2`, `_rebuild_parameter`), read to match
their semantics; tests/test_pth_reader.py checks it against `torch.load` and fixture files.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import os
import pickle
import struct
import zipfile
from typing import Any, BinaryIO, Callable

import ml_dtypes
import numpy as np

# torch.<Name>Storage -> numpy dtype of its elements.
STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_, "UntypedStorage": np.uint8,
}
LEGACY_MAGIC = 0x1950a86a20f9469cfc6c  # torch.serialization.MAGIC_NUMBER
ZIP_MAGIC = b"PK\x03\x04"  # A zip archive's first local file header.


class UnsafeCheckpointError(pickle.UnpicklingError):
  """A checkpoint whose pickle names a global that is not a tensor or a plain container."""


class StorageType:
  """The `torch.<Name>Storage` marker a persistent id names: its numpy dtype."""

  def __init__(self, name: str):
    self.name = name
    self.dtype = np.dtype(STORAGE_DTYPES[name])


def rebuild_tensor(storage: np.ndarray, offset: int, size, stride, requires_grad=False,
                   backward_hooks=None, metadata=None) -> np.ndarray:  # pylint: disable=unused-argument
  """`torch._utils._rebuild_tensor_v2`: the strided view of a flat storage, as a copy."""
  size, stride = tuple(size), tuple(stride)
  if size and any(n == 0 for n in size):
    return np.zeros(size, storage.dtype)
  last = offset + sum((n - 1) * s for n, s in zip(size, stride))
  if offset < 0 or last >= storage.size or min(stride, default=0) < 0:
    raise pickle.UnpicklingError(f"tensor of size {size}, stride {stride}, offset {offset} "
                                 f"reaches beyond its storage of {storage.size} elements")
  item = storage.itemsize
  view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                         strides=tuple(s * item for s in stride), writeable=False)
  return np.array(view)


def rebuild_parameter(data: np.ndarray, requires_grad=False, backward_hooks=None,
                      *state) -> np.ndarray:  # pylint: disable=unused-argument
  """`torch._utils._rebuild_parameter(_with_state)`: a Parameter is its data."""
  return data


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
  """`_codecs.encode`, as protocol-2 pickles of `bytes` use it (latin1 only)."""
  if encoding != "latin1":
    raise UnsafeCheckpointError(f"_codecs.encode with encoding {encoding!r} is not allowed")
  return text.encode("latin1")


class NumpyDtype:
  """A pickled `numpy.dtype` (numeric kinds only), as numpy scalars in checkpoints name it.

  Not a real np.dtype: the pickle's BUILD step calls `__setstate__`, which must not touch numpy's
  shared built-in descriptors; only the byte order of the state is kept.
  """

  def __init__(self, spec, align=False, copy=False):  # pylint: disable=unused-argument
    self.spec, self.order = str(spec), "="

  def __setstate__(self, state):
    if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "=", "|"):
      self.order = state[1]

  def dtype(self) -> np.dtype:
    """The numpy dtype; an UnsafeCheckpointError for object or structured dtypes."""
    dtype = np.dtype(self.spec)
    if dtype.kind not in "biufc":
      raise UnsafeCheckpointError(f"refusing a numpy value of dtype {self.spec!r}")
    return dtype.newbyteorder(self.order) if self.order in "<>" else dtype


def numpy_scalar(dtype: NumpyDtype, data: bytes = b"") -> np.generic:
  """`numpy.core.multiarray.scalar`: a numeric numpy scalar (e.g. FAST-VQA's saved SRCC)."""
  if not isinstance(dtype, NumpyDtype) or not isinstance(data, bytes):
    raise UnsafeCheckpointError(f"refusing numpy scalar({type(dtype).__name__}, "
                                f"{type(data).__name__})")
  return np.frombuffer(data, dtype.dtype(), count=1)[0]


# (module, name) -> what the unpickler returns for that global.
ALLOWED_GLOBALS: dict[tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter,
    ("torch", "Size"): tuple,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): _latin1_bytes,
    ("numpy", "dtype"): NumpyDtype,
    ("numpy.core.multiarray", "scalar"): numpy_scalar,
    ("numpy._core.multiarray", "scalar"): numpy_scalar,
}


class RestrictedUnpickler(pickle.Unpickler):
  """Rebuilds tensors from `read_storage(key, dtype, numel)`; refuses every other global."""

  def __init__(self, file: BinaryIO, read_storage: Callable[[str, np.dtype, int], np.ndarray],
               source: str):
    super().__init__(file)
    self._read_storage = read_storage
    self._source = source
    self._storages: dict[str, np.ndarray] = {}

  def find_class(self, module: str, name: str):
    """The allowed global `module.name`; an UnsafeCheckpointError for any other."""
    if (module, name) in _compat_pickle.NAME_MAPPING:  # Python 2 names of protocol <= 2
      module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    if module == "torch" and name in STORAGE_DTYPES:
      return StorageType(name)
    if (module, name) in ALLOWED_GLOBALS:
      return ALLOWED_GLOBALS[(module, name)]
    raise UnsafeCheckpointError(
        f"{self._source}: refusing to unpickle the global {module}.{name}: only tensors, "
        "OrderedDicts and plain containers are read (as torch.load(weights_only=True) does); "
        "a file that needs more is not a plain state_dict")

  def persistent_load(self, pid):
    """The flat numpy storage a persistent id names (each key read once: views share it)."""
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
            and isinstance(pid[1], StorageType)):
      raise UnsafeCheckpointError(f"{self._source}: unsupported persistent id {pid!r}")
    _, storage_type, key, _, numel = pid[:5]
    key = str(key)
    if key not in self._storages:
      self._storages[key] = self._read_storage(key, storage_type.dtype, int(numel))
    storage = self._storages[key]
    if len(pid) > 5 and pid[5] is not None:  # legacy view: (view_key, offset, view_size)
      _, view_offset, view_size = pid[5]
      storage = storage[view_offset:view_offset + view_size]
    return storage


def _from_bytes(data: bytes, dtype: np.dtype, numel: int, big_endian: bool,
                where: str) -> np.ndarray:
  """A flat storage of `numel` `dtype` elements from its raw bytes."""
  if len(data) < numel * dtype.itemsize:
    raise pickle.UnpicklingError(f"{where}: {len(data)} bytes, the storage needs "
                                 f"{numel * dtype.itemsize} (file truncated?)")
  array = np.frombuffer(data, dtype, count=numel)
  return array.byteswap() if big_endian and dtype.itemsize > 1 else array


def _load_zip(path: str) -> Any:
  """The object of a zip-format `.pth` file."""
  with zipfile.ZipFile(path) as archive:
    pickles = [n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
    if len(pickles) != 1:
      raise pickle.UnpicklingError(f"{path}: expected one data.pkl in the archive, found "
                                   f"{pickles or 'none'}")
    prefix = pickles[0][:-len("data.pkl")]
    names = set(archive.namelist())
    order = archive.read(prefix + "byteorder").decode() if prefix + "byteorder" in names \
        else "little"

    def read_storage(key: str, dtype: np.dtype, numel: int) -> np.ndarray:
      member = f"{prefix}data/{key}"
      if member not in names:
        raise pickle.UnpicklingError(f"{path}: storage {member} missing from the archive")
      return _from_bytes(archive.read(member), dtype, numel, order == "big", f"{path}:{member}")

    with archive.open(pickles[0]) as data:
      return RestrictedUnpickler(io.BytesIO(data.read()), read_storage, path).load()


def _load_legacy(path: str) -> Any:
  """The object of a legacy (non-zip) `torch.save` file."""
  with open(path, "rb") as f:

    def plain() -> Any:
      return RestrictedUnpickler(f, _no_storage, path).load()

    if plain() != LEGACY_MAGIC:
      raise pickle.UnpicklingError(f"{path}: neither a zip archive nor a legacy torch file")
    plain()  # protocol version
    sys_info = plain()
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
      raise pickle.UnpicklingError(f"{path}: big-endian legacy files are not supported")
    wanted: dict[str, tuple[np.dtype, int]] = {}
    placeholders: dict[str, np.ndarray] = {}

    def record(key: str, dtype: np.dtype, numel: int) -> np.ndarray:
      wanted[key] = (dtype, numel)
      placeholders[key] = np.zeros(numel, dtype)  # filled in below, once the bytes are read
      return placeholders[key]

    # Tensors are rebuilt after the storages are read: unpickle with placeholders, then again.
    start = f.tell()
    RestrictedUnpickler(f, record, path).load()
    keys = plain()
    storages = {}
    for key in keys:
      dtype, numel = wanted[str(key)]
      (count,) = struct.unpack("<q", f.read(8))
      storages[str(key)] = _from_bytes(f.read(count * dtype.itemsize), dtype, numel, False,
                                       f"{path}:storage {key}")
    f.seek(start)
    return RestrictedUnpickler(f, lambda key, dtype, numel: storages[key], path).load()


def _no_storage(key: str, dtype: np.dtype, numel: int) -> np.ndarray:
  """The header pickles of a legacy file hold no storages."""
  raise pickle.UnpicklingError(f"unexpected storage {key} in a legacy file's header")


def load(path: str) -> Any:
  """The object `torch.save` wrote to `path`, tensors as numpy arrays (no torch needed).

  Raises FileNotFoundError for a missing file, UnsafeCheckpointError for a disallowed global,
  and pickle.UnpicklingError (naming `path`) for a file that is neither format or is damaged.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such checkpoint file")
  try:
    if zipfile.is_zipfile(path):
      return _load_zip(path)
    with open(path, "rb") as f:
      if f.read(4) == ZIP_MAGIC:
        raise pickle.UnpicklingError(f"{path}: a damaged zip archive (truncated download?)")
    return _load_legacy(path)
  except UnsafeCheckpointError:
    raise
  except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, KeyError, ValueError,
          struct.error, TypeError, AttributeError, IndexError) as e:
    message = str(e) if str(e).startswith(path) else f"{path}: {type(e).__name__}: {e}"
    raise pickle.UnpicklingError(f"not a readable PyTorch checkpoint: {message}") from e
