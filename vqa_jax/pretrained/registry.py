"""Named pretrained models: where each upstream file is, what it converts to, what upstream reports.

Sources (read 2026-12-07):

* FAST-VQA / FasterVQA weights: the table "Step 1: Get Pretrained Weights" of the README of
  github.com/VQAssessment/FAST-VQA-and-FasterVQA @9f264e4 (README.md lines 198-206), which links
  the release assets of github.com/TimothyHTimothy/FAST-VQA (tag v2.0.0) and lists each model's
  zero-shot PLCC after training on LSVQ_train (columns PLCC@LSVQ_1080p, PLCC@LSVQ_test,
  PLCC@LIVE_VQC, PLCC@KoNViD). FAST-VQA-B's and FAST-VQA-M's figures are the ECCV 2022 models'.
* Video Swin-T, Kinetics-400: the table "Kinetics 400" of the README of
  github.com/SwinTransformer/Video-Swin-Transformer @db018fb (README.md line 28), release v1.0.4
  of github.com/SwinTransformer/storage; its Kinetics-400 top-1 / top-5 accuracy. The FAST-VQA
  README (line 228) names the same file as the weights training starts from.

Neither upstream publishes a checksum, so every entry's `sha256` is None and the download records
the hash of the first copy fetched (trust on first use), then checks it on every later use
(`vqa_jax.pretrained.download`). `register` adds entries (tests, private weights).
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
import types

SCORER = "scorer"  # A whole quality model: scores videos as it is.
BACKBONE = "backbone"  # Initial weights for training (its head is initialised fresh).
TOFU = ("no checksum published upstream: the SHA-256 of the first download is recorded and "
        "checked on every later use (trust on first use)")
FAST_VQA_README = ("https://github.com/VQAssessment/FAST-VQA-and-FasterVQA/blob/"
                   "9f264e436a97b23f5efb477b048bfbff83565032/README.md#step-1-get-pretrained-weights")
FAST_VQA_RELEASE = "https://github.com/TimothyHTimothy/FAST-VQA/releases/download/v2.0.0/"
FAST_VQA_METRICS = ("FAST-VQA README @9f264e4, 'Step 1: Get Pretrained Weights' table: PLCC after "
                    "training on LSVQ_train")
SWIN_README = ("https://github.com/SwinTransformer/Video-Swin-Transformer/blob/"
               "db018fb8896251711791386bbd2127562fd8d6a6/README.md#kinetics-400")


@dataclasses.dataclass(frozen=True)
class Entry:
  """One named model: upstream file, its documentation, the config and converter it takes."""

  name: str
  file_name: str  # The upstream file name (also what a mirror serves: MIRROR/<file_name>).
  url: str
  documented_at: str  # The upstream page that lists `url`.
  kind: str  # SCORER or BACKBONE.
  family: str  # The model family (families.family_name).
  config: str  # Shipped config (configs/<config>.py) of the model it converts to.
  converter: str  # convert_weights.FORMATS name.
  metrics: Mapping[str, float]  # Upstream's reported figures, name -> value.
  metrics_source: str
  sha256: str | None = None  # Published checksum; None: trust on first use.
  sha256_note: str = TOFU
  description: str = ""


def make_entry(**fields) -> Entry:
  """An Entry from its fields (metrics as a plain dict, stored read-only)."""
  fields["metrics"] = types.MappingProxyType(dict(fields["metrics"]))
  return Entry(**fields)


def _fast_vqa(name: str, file_name: str, config: str, metrics: dict, description: str) -> Entry:
  """A FAST-VQA release asset of tag v2.0.0."""
  return make_entry(name=name, file_name=file_name, url=FAST_VQA_RELEASE + file_name,
                documented_at=FAST_VQA_README, kind=SCORER, family="fast_vqa", config=config,
                converter="fast_vqa", metrics=metrics, metrics_source=FAST_VQA_METRICS,
                description=description)


def _plcc(lsvq_1080p: float, lsvq_test: float, live_vqc: float, konvid: float) -> dict:
  """The four PLCC columns of the FAST-VQA README table."""
  return {"plcc_lsvq_1080p": lsvq_1080p, "plcc_lsvq_test": lsvq_test,
          "plcc_live_vqc": live_vqc, "plcc_konvid": konvid}


ENTRIES: dict[str, Entry] = {e.name: e for e in (
    _fast_vqa("fast-vqa-b", "FAST_VQA_B_1_4.pth", "fast_vqa_b", _plcc(0.814, 0.877, 0.844, 0.855),
              "FAST-VQA-B (ECCV 2022): 7x7 fragments of 32 px, 4 clips of 32 frames"),
    _fast_vqa("faster-vqa", "FAST_VQA_3D_1_1.pth", "faster_vqa", _plcc(0.811, 0.874, 0.837, 0.864),
              "FasterVQA (FAST-VQA-B-3D): 7x7 fragments, 8x4 temporal fragments"),
    _fast_vqa("fast-vqa-m", "FAST_VQA_M_1_4.pth", "fast_vqa_m", _plcc(0.773, 0.854, 0.810, 0.832),
              "FAST-VQA-M (ECCV 2022): 4x4 fragments of 32 px, 16 frames"),
    make_entry(name="swin-t-k400", file_name="swin_tiny_patch244_window877_kinetics400_1k.pth",
           url=("https://github.com/SwinTransformer/storage/releases/download/v1.0.4/"
                "swin_tiny_patch244_window877_kinetics400_1k.pth"),
           documented_at=SWIN_README, kind=BACKBONE, family="fast_vqa", config="fast_vqa_b",
           converter="fast_vqa", metrics={"k400_top1": 78.8, "k400_top5": 93.6},
           metrics_source="Video Swin Transformer README @db018fb, 'Kinetics 400' table, Swin-T "
           "(ImageNet-1K pretrained, 30 epochs, 224 crop)",
           description="Video Swin-T trained on Kinetics-400: the backbone training starts "
           "from (init.pretrained); the VQA head is initialised fresh"),
)}


def names() -> list[str]:
  """The registered names, in registration order."""
  return list(ENTRIES)


def get(name: str) -> Entry:
  """The entry called `name`; a KeyError listing the known names otherwise."""
  if name not in ENTRIES:
    raise KeyError(f"unknown pretrained model {name!r}; known: {', '.join(ENTRIES)} "
                   "(vqa-jax models lists them)")
  return ENTRIES[name]


def register(entry: Entry, replace: bool = False) -> Entry:
  """Adds `entry` (e.g. private weights on an internal server); `replace` overrides a name."""
  if entry.name in ENTRIES and not replace:
    raise ValueError(f"a pretrained model named {entry.name!r} exists; pass replace=True")
  ENTRIES[entry.name] = entry
  return entry


def unregister(name: str) -> None:
  """Removes the entry called `name` (if any)."""
  ENTRIES.pop(name, None)
