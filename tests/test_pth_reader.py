"""The torch-free `.pth` reader against fixtures written by torch.save, and against torch.load.

The fixtures in tests/fixtures/pth/ were made by `tools/make_pth_fixtures.py` (torch 2.13.0):
  /tmp/torchvenv/bin/python tools/make_pth_fixtures.py
`expected_tensors` recomputes their values with numpy from the same arange formulas.
"""

import collections
import pathlib
import pickle
import sys
import zipfile

import ml_dtypes
import numpy as np
import pytest

from tests import pth_files
from vqa_jax.convert import state_dicts
from vqa_jax.pretrained import pth_reader

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "pth"


def expected_tensors() -> dict[str, np.ndarray]:
  """The tensors of `tools/make_pth_fixtures.tensors`, computed with numpy."""
  base = np.arange(24, dtype=np.float32).reshape(4, 6)
  shared = np.arange(10, dtype=np.float32) * 2 - 5
  return {
      "float32": np.arange(12, dtype=np.float32).reshape(3, 4) / 8,
      "float64": np.arange(5, dtype=np.float64) / 3,
      "float16": np.arange(6, dtype=np.float16) / 4 - 1,
      "bfloat16": (np.arange(8, dtype=np.float32) * 0.5 - 2).astype(ml_dtypes.bfloat16),
      "int64": np.arange(5, dtype=np.int64) - 2,
      "int32": np.arange(4, dtype=np.int32) * 1000,
      "uint8": np.arange(250, 256, dtype=np.uint8),
      "bool": np.arange(5) % 2 == 0,
      "base": base,
      "strided": base[1:, ::2],
      "transposed": base.T,
      "shared_slice": shared[2:7],
      "shared_matrix": shared.reshape(2, 5),
      "scalar": np.array(3.5, np.float32),
      "parameter": np.arange(4, dtype=np.float32) + 0.25,
      "empty": np.zeros((0, 3), np.float32),
  }


def assert_same_tensors(got: collections.abc.Mapping, want: collections.abc.Mapping):
  """Same keys in the same order, and per key the same dtype, shape and values."""
  assert list(got) == list(want)
  for key, value in want.items():
    assert got[key].dtype == value.dtype, key
    assert got[key].shape == value.shape, key
    np.testing.assert_array_equal(got[key], value, err_msg=key)


@pytest.mark.parametrize("name", ["state_dict.pth", "legacy.pth"])
def test_fixture_values(name):
  loaded = pth_reader.load(str(FIXTURES / name))
  assert sorted(loaded) == ["meta", "nested", "state_dict", "validation_results"]
  results = loaded["validation_results"]
  assert [type(v) for v in results] == [np.float64, np.float32, np.int64]
  assert results == [0.875, 0.5, 7]
  assert isinstance(loaded["state_dict"], collections.OrderedDict)
  assert_same_tensors(loaded["state_dict"], expected_tensors())
  assert loaded["meta"] == {"epoch": 3, "name": "fixture", "lr": 0.5, "ids": [1, 2],
                            "pair": (1, "a"), "blob": b"\x00\xff"}
  np.testing.assert_array_equal(loaded["nested"]["inner"]["w"],
                                np.arange(3, dtype=np.float32).reshape(3, 1))


def test_views_are_independent_copies():
  state = pth_reader.load(str(FIXTURES / "state_dict.pth"))["state_dict"]
  state["shared_slice"][0] = 100.0
  assert state["shared_matrix"][0, 2] == -1.0  # the saved value, not the edited one


def test_disallowed_global_is_refused():
  with pytest.raises(pth_reader.UnsafeCheckpointError, match=r"unsafe\.pth.*argparse\.Namespace"):
    pth_reader.load(str(FIXTURES / "unsafe.pth"))


def test_pickled_function_is_refused(tmp_path):
  """A protocol-2 pickle naming a function, in a zip laid out like torch's, is refused."""
  path = tmp_path / "evil.pth"
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("archive/data.pkl", pickle.dumps({"run": print, "s": {1}}, protocol=2))
  with pytest.raises(pth_reader.UnsafeCheckpointError, match="builtins.print"):
    pth_reader.load(str(path))
  with zipfile.ZipFile(path, "w") as archive:  # a set alone (a plain container) is fine
    archive.writestr("archive/data.pkl", pickle.dumps({"s": {1, 2}}, protocol=2))
  assert pth_reader.load(str(path)) == {"s": {1, 2}}


def test_numpy_scalars_of_both_numpy_generations(tmp_path):
  """numpy 2 pickles scalars as numpy._core.multiarray.scalar, numpy 1 (2022's upstream files) as
  numpy.core.multiarray.scalar; object dtypes are refused."""
  data = pickle.dumps({"srcc": np.float64(0.875), "n": np.int32(-3)}, protocol=2)
  for module in (b"numpy._core.multiarray", b"numpy.core.multiarray"):
    path = tmp_path / "scalars.pth"
    with zipfile.ZipFile(path, "w") as archive:
      archive.writestr("archive/data.pkl", data.replace(b"numpy._core.multiarray", module))
    loaded = pth_reader.load(str(path))
    assert loaded == {"srcc": 0.875, "n": -3} and type(loaded["srcc"]) is np.float64
  with pytest.raises(pth_reader.UnsafeCheckpointError, match="dtype 'O'"):
    pth_reader.NumpyDtype("O").dtype()


def test_truncated_and_foreign_files_name_the_file(tmp_path):
  data = (FIXTURES / "state_dict.pth").read_bytes()
  (tmp_path / "half.pth").write_bytes(data[:len(data) // 2])
  with pytest.raises(pickle.UnpicklingError, match=r"half\.pth: a damaged zip archive"):
    pth_reader.load(str(tmp_path / "half.pth"))
  (tmp_path / "text.pth").write_bytes(b"not a checkpoint")
  with pytest.raises(pickle.UnpicklingError, match=r"text\.pth"):
    pth_reader.load(str(tmp_path / "text.pth"))
  with pytest.raises(FileNotFoundError, match=r"absent\.pth"):
    pth_reader.load(str(tmp_path / "absent.pth"))


def test_state_dicts_reads_pth_without_torch(monkeypatch):
  """`load_torch_state_dict` unwraps {'state_dict': ...} into float32 arrays, torch blocked."""
  monkeypatch.setitem(sys.modules, "torch", None)
  state = state_dicts.read_state_dict(str(FIXTURES / "state_dict.pth"))
  want = expected_tensors()
  assert list(state) == list(want)
  for key, value in want.items():
    assert state[key].dtype == np.float32
    np.testing.assert_array_equal(state[key], value.astype(np.float32))


@pytest.mark.parametrize("legacy", [False, True])
def test_equals_torch_load(tmp_path, legacy):
  """Files torch saves now (random values, every dtype) read as torch.load reads them."""
  torch = pytest.importorskip("torch")
  generator = torch.Generator().manual_seed(0)
  big = torch.randn(7, 9, generator=generator)
  state = collections.OrderedDict(
      [("w", big), ("view", big[2:, 1::3]), ("t", big.t()), ("h", big.half()),
       ("b", big.bfloat16()[::2]), ("i", torch.randint(-9, 9, (4, 4), generator=generator)),
       ("conv", torch.randn(8, 3, 2, 4, 4, generator=generator))])
  path = tmp_path / "random.pth"
  torch.save({"state_dict": state}, path, _use_new_zipfile_serialization=not legacy)
  reference = torch.load(path, weights_only=True)["state_dict"]
  got = pth_reader.load(str(path))["state_dict"]
  assert list(got) == list(reference)
  for key, tensor in reference.items():
    want = tensor.float().numpy() if tensor.dtype == torch.bfloat16 else tensor.numpy()
    assert got[key].shape == tuple(tensor.shape), key
    np.testing.assert_array_equal(np.asarray(got[key], want.dtype), want, err_msg=key)
  assert_same_tensors(pth_reader.load(str(FIXTURES / "state_dict.pth"))["state_dict"],
                      {k: (v.float().numpy().astype(ml_dtypes.bfloat16)
                           if v.dtype == torch.bfloat16 else v.detach().numpy())
                       for k, v in torch.load(FIXTURES / "state_dict.pth",  # (numpy scalars)
                                              weights_only=False)["state_dict"].items()})


def _writer_payload() -> dict:
  """Arrays of several dtypes and a non-contiguous view, as tests/pth_files.py writes them."""
  base = np.arange(20, dtype=np.float32).reshape(4, 5)
  return {"state_dict": {"w": base, "view": base[:, ::2], "h": np.arange(3, dtype=np.float16),
                         "b": np.arange(4, dtype=np.float32).astype(ml_dtypes.bfloat16),
                         "i": np.arange(3, dtype=np.int64)}, "epoch": 2}


def test_test_writer_round_trips(tmp_path):
  """The test payload writer (no torch) gives files the reader reads back exactly."""
  pth_files.save_pth(tmp_path / "w.pth", _writer_payload())
  loaded = pth_reader.load(str(tmp_path / "w.pth"))
  assert loaded["epoch"] == 2
  assert_same_tensors(loaded["state_dict"], _writer_payload()["state_dict"])


def test_writer_output_is_what_torch_reads(tmp_path):
  torch = pytest.importorskip("torch")
  pth_files.save_pth(tmp_path / "w.pth", _writer_payload())
  loaded = torch.load(tmp_path / "w.pth", weights_only=True)
  for key, value in _writer_payload()["state_dict"].items():
    np.testing.assert_array_equal(loaded["state_dict"][key].float().numpy(),
                                  value.astype(np.float32), err_msg=key)


def test_no_module_of_the_package_imports_torch():
  package = pathlib.Path(pth_reader.__file__).parent
  for module in sorted(package.glob("*.py")):
    assert "import torch" not in module.read_text(), module.name
