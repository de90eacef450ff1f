"""Writes the small torch.save fixtures of tests/test_pth_reader.py into tests/fixtures/pth/.

Needs torch (kept out of the project's environment):
  python3 -m venv --system-site-packages /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.13.0
  /tmp/torchvenv/bin/python tools/make_pth_fixtures.py

The tensors are arange-based, so the test recomputes every value with numpy (see
`expected_tensors` in tests/test_pth_reader.py, which mirrors `tensors` below):

  state_dict.pth   {'state_dict': OrderedDict(tensors), 'meta': {...}, 'nested': {...},
                   'validation_results': [numpy scalars]} (zip)
  legacy.pth       the same object, torch's legacy (non-zip) format
  unsafe.pth       {'w': tensor, 'args': argparse.Namespace(lr=0.1)}: a global the reader refuses
"""

import argparse
import collections
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "pth")


def tensors() -> "collections.OrderedDict[str, torch.Tensor]":
  """Every dtype and layout case (views of one base share its storage in the file)."""
  base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
  shared = torch.arange(10, dtype=torch.float32) * 2 - 5
  return collections.OrderedDict([
      ("float32", torch.arange(12, dtype=torch.float32).reshape(3, 4) / 8),
      ("float64", torch.arange(5, dtype=torch.float64) / 3),
      ("float16", torch.arange(6, dtype=torch.float16) / 4 - 1),
      ("bfloat16", torch.arange(8, dtype=torch.bfloat16) * 0.5 - 2),
      ("int64", torch.arange(5, dtype=torch.int64) - 2),
      ("int32", torch.arange(4, dtype=torch.int32) * 1000),
      ("uint8", torch.arange(250, 256, dtype=torch.uint8)),
      ("bool", torch.arange(5) % 2 == 0),
      ("base", base),
      ("strided", base[1:, ::2]),  # offset 6, stride (6, 2)
      ("transposed", base.t()),  # stride (1, 6)
      ("shared_slice", shared[2:7]),
      ("shared_matrix", shared.view(2, 5)),
      ("scalar", torch.tensor(3.5)),
      ("parameter", torch.nn.Parameter(torch.arange(4, dtype=torch.float32) + 0.25)),
      ("empty", torch.zeros(0, 3)),
  ])


def fixture_object() -> dict:
  """The saved object: FAST-VQA's {'state_dict': ...} wrapper plus plain metadata."""
  return {"state_dict": tensors(),
          "meta": {"epoch": 3, "name": "fixture", "lr": 0.5, "ids": [1, 2], "pair": (1, "a"),
                   "blob": b"\x00\xff"},
          "nested": {"inner": {"w": torch.arange(3, dtype=torch.float32).reshape(3, 1)}},
          # As FAST-VQA's new_train.py saves its best SRCC / PLCC (scipy's numpy floats):
          "validation_results": [np.float64(0.875), np.float32(0.5), np.int64(7)]}


def main() -> None:
  """Writes the three fixtures."""
  os.makedirs(OUT, exist_ok=True)
  torch.save(fixture_object(), os.path.join(OUT, "state_dict.pth"))
  torch.save(fixture_object(), os.path.join(OUT, "legacy.pth"),
             _use_new_zipfile_serialization=False)
  torch.save({"w": torch.ones(2), "args": argparse.Namespace(lr=0.1)},
             os.path.join(OUT, "unsafe.pth"))
  print("wrote", sorted(os.listdir(OUT)), "with torch", torch.__version__)


if __name__ == "__main__":
  main()
