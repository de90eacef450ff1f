"""What each synthetic video holds: split, domain, content, distortions and MOS, drawn per seed.

Domains and splits:
  * Domain A ("train" and in-domain "test"): objects moving over static textured backgrounds
    (`sprites`: "shapes", "gratings", "checkers").
  * Domain B ("cross", the cross-dataset test): camera motion over procedural scenes (`camera`:
    "landscape_pan", "landscape_zoom", "noise_field").
  Both domains share blur, noise, jpeg, downscale and exposure at different proportions (see
  `DOMAINS`); "judder" is rare in A and common in B, and "banding" occurs only in B.
  * The shift in two parts, for a spec that asks for them (`SHIFT_SPLITS`): "cross_nuisance"
    (domain B_nuisance: B's content and camera motion, A's distortion mix) and "cross_distortion"
    (domain B_distortion: A's content, B's distortions).

Per video: 0 distortions (pristine) with probability 0.1, 1 with 0.6, 2 with 0.3
(`NUM_DISTORTIONS_PROBS`), drawn by the domain's frequencies, strengths uniform in [0, 1]; pairs
in `INCOMPATIBLE` (over+under exposure; noise with blur or downscale, which it would mask) are
never drawn together.

MOS (1-5, like KoNViD-1k): `mos_from_strengths` = 1 + 4 * prod_k (1 - w_k s_k) with the weights
`DISTORTION_WEIGHTS` (0.5-0.85, so MOS > 1 + 4 * 0.15**2), then Gaussian label noise (sd
`SyntheticSpec.label_noise` = 0.08), clipped to [1, 5] and rounded to 4 decimals.
"""

import dataclasses
import json
import os
from typing import Any, Mapping

import numpy as np

from vqa_jax.config.specs import SyntheticSpec
from vqa_jax.data import labels as labels_lib
from vqa_jax.data.synthetic import cache

SPLITS = ("train", "test", "cross")
# The split shift's test splits (video datasets only, present where the spec gives them videos):
# B's content and camera motion with A's distortion mix; A's content with B's distortions.
SHIFT_SPLITS = ("cross_nuisance", "cross_distortion")
SPLIT_DOMAIN = {"train": "A", "test": "A", "cross": "B", "cross_nuisance": "B_nuisance",
                "cross_distortion": "B_distortion"}
VIDEO_EXT = ".avi"
METADATA_FILE = "metadata.jsonl"  # one sampled video (or image) per line

DISTORTION_WEIGHTS = {
    "overexposure": 0.75,
    "underexposure": 0.75,
    "blur": 0.85,
    "noise": 0.85,
    "banding": 0.7,
    "downscale": 0.8,
    "jpeg": 0.85,
    "judder": 0.5,
}
# Pairs that never occur in one video: opposite exposures, and noise with the softening
# distortions (added noise restores the fine detail that blur and downscaling remove, masking them).
INCOMPATIBLE = (frozenset(("overexposure", "underexposure")), frozenset(("noise", "blur")),
                frozenset(("noise", "downscale")))
# Probabilities of 0, 1 and 2 distortions per video (0 = pristine).
NUM_DISTORTIONS_PROBS = (0.1, 0.6, 0.3)


@dataclasses.dataclass(frozen=True)
class DomainSpec:
  """Content kinds (drawn uniformly) and relative distortion frequencies of one domain."""

  contents: tuple[str, ...]
  distortion_probs: Mapping[str, float]


DOMAINS = {
    "A": DomainSpec(
        contents=("shapes", "gratings", "checkers"),
        distortion_probs={"blur": 0.22, "noise": 0.22, "jpeg": 0.22, "downscale": 0.14,
                          "overexposure": 0.08, "underexposure": 0.08, "judder": 0.04}),
    "B": DomainSpec(
        contents=("landscape_pan", "landscape_zoom", "noise_field"),
        distortion_probs={"blur": 0.12, "noise": 0.12, "jpeg": 0.18, "downscale": 0.18,
                          "overexposure": 0.05, "underexposure": 0.10, "judder": 0.13,
                          "banding": 0.12}),
}
# The shift split in its two parts: what flatness could act on (content, camera motion) and what
# no weight-space regulariser can (distortions never seen in training).
DOMAINS["B_nuisance"] = DomainSpec(DOMAINS["B"].contents, DOMAINS["A"].distortion_probs)
DOMAINS["B_distortion"] = DomainSpec(DOMAINS["A"].contents, DOMAINS["B"].distortion_probs)


def video_splits(spec: SyntheticSpec) -> tuple[str, ...]:
  """The splits of a video dataset: SPLITS, then the shift splits the spec gives videos."""
  return SPLITS + tuple(s for s in SHIFT_SPLITS if spec.num_videos(s) > 0)


def mos_from_strengths(strengths: Mapping[str, float]) -> float:
  """Noise-free MOS 1 + 4 * prod_k (1 - DISTORTION_WEIGHTS[k] * s_k) for strengths s_k in [0, 1]."""
  quality = 1.0
  for name, s in strengths.items():
    if name not in DISTORTION_WEIGHTS:
      raise ValueError(f"Unknown distortion {name!r}; known: {sorted(DISTORTION_WEIGHTS)}")
    if not 0.0 <= s <= 1.0:
      raise ValueError(f"Strength of {name!r} must be in [0, 1], got {s}")
    quality *= 1.0 - DISTORTION_WEIGHTS[name] * s
  return 1.0 + 4.0 * quality


def video_seed(seed: int, split: str, index: int) -> int:
  """The seed of video `index` of `split` in a dataset with seed `seed`."""
  split_index = (SPLITS + SHIFT_SPLITS).index(split)
  return int(np.random.SeedSequence([seed, split_index, index]).generate_state(1)[0])


def sample_distortions(domain: str, rng: np.random.Generator) -> dict[str, float]:
  """Draws 0-2 compatible distortions of `domain` with strengths uniform in [0, 1]."""
  probs = dict(DOMAINS[domain].distortion_probs)
  count = rng.choice(len(NUM_DISTORTIONS_PROBS), p=NUM_DISTORTIONS_PROBS)
  chosen = {}
  for _ in range(count):
    names = sorted(probs)
    p = np.array([probs[n] for n in names])
    name = names[rng.choice(len(names), p=p / p.sum())]
    chosen[name] = round(float(rng.uniform(0.0, 1.0)), 4)
    for pair in INCOMPATIBLE:
      if name in pair:
        for other in pair:
          probs.pop(other, None)
    probs.pop(name, None)
  return chosen


def sample_video(spec: SyntheticSpec, split: str, index: int) -> dict[str, Any]:
  """Metadata of one video: relpath, split, domain, content, seed, distortions, MOS."""
  seed = video_seed(spec.seed, split, index)
  rng = np.random.default_rng([seed, 0])
  domain = SPLIT_DOMAIN[split]
  contents = DOMAINS[domain].contents
  content = contents[rng.integers(len(contents))]
  distortions = sample_distortions(domain, rng)
  mos = mos_from_strengths(distortions) + spec.label_noise * rng.standard_normal()
  return {
      "relpath": f"videos/{domain}/{split}_{index:05d}{VIDEO_EXT}",
      "split": split,
      "domain": domain,
      "content": content,
      "seed": seed,
      "distortions": distortions,
      "mos": round(float(np.clip(mos, 1.0, 5.0)), 4),
  }


def sample_metadata(spec: SyntheticSpec) -> list[dict[str, Any]]:
  """Metadata of every video of the spec, split by split."""
  return [sample_video(spec, split, i) for split in video_splits(spec)
          for i in range(spec.num_videos(split))]


def write_index(root: str, label_files: Mapping[str, str], metadata: list[dict[str, Any]], *,
                duration: float, fps: float, digest: str) -> None:
  """Writes each split's label file, METADATA_FILE and, last, the completion marker of `digest`."""
  for split, label_file in label_files.items():
    labels_lib.write_labels(label_file, [(m["relpath"], duration, fps, m["mos"])
                                         for m in metadata if m["split"] == split])
  with open(os.path.join(root, METADATA_FILE), "w", encoding="utf-8") as f:
    f.writelines(json.dumps(m, sort_keys=True) + "\n" for m in metadata)
  with open(os.path.join(root, cache.MARKER_FILE), "w", encoding="utf-8") as f:
    f.write(digest + "\n")
