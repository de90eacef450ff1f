"""The synthetic datasets' specs: the `data.synthetic` and `data.synthetic_images` config sections.

Pure dataclasses (no numpy, no OpenCV), so that config files build their sections from them without
importing the generators. The generators (data/synthetic/dataset.py, data/synthetic/images.py) take
these specs and key their caches by `digest(spec)`.
"""

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class _SplitSpec:
  """The fields both specs start with: the seed and each split's size."""

  seed: int = 0
  num_train: int = 480
  num_test: int = 128
  num_cross: int = 96

  def _check_sizes(self, *names: str) -> None:
    """Raises unless every split size and each field of `names` is at least 1."""
    for name in ("num_train", "num_test", "num_cross") + names:
      if getattr(self, name) < 1:
        raise ValueError(f"{type(self).__name__}.{name} must be >= 1, got {getattr(self, name)}")

  def _split_size(self, split: str) -> int:
    """Number of examples in `split`."""
    return {"train": self.num_train, "test": self.num_test, "cross": self.num_cross}[split]


@dataclasses.dataclass(frozen=True)
class SyntheticSpec(_SplitSpec):
  """Everything that determines a synthetic video dataset (its cache key)."""

  height: int = 64
  width: int = 80
  num_frames: int = 32
  fps: float = 16.0
  codec_quality: int = 95
  label_noise: float = 0.08
  # The split shift's test domains (`synthetic.metadata.SHIFT_SPLITS`): B's content and camera
  # motion with A's distortion mix, and A's content with B's distortions. 0: no such split.
  num_cross_nuisance: int = 0
  num_cross_distortion: int = 0

  def __post_init__(self):
    """Rejects sizes that cannot make a dataset."""
    self._check_sizes("height", "width", "num_frames")
    if min(self.num_cross_nuisance, self.num_cross_distortion) < 0:
      raise ValueError(f"split sizes must be >= 0 in {self}")
    if self.fps <= 0 or not 1 <= self.codec_quality <= 100 or self.label_noise < 0:
      raise ValueError(f"Invalid fps, codec_quality or label_noise in {self}")

  @classmethod
  def demo(cls) -> "SyntheticSpec":
    """The default dataset of the demo training job."""
    return cls()

  @classmethod
  def tiny(cls) -> "SyntheticSpec":
    """A few small videos, generated in seconds, for tests."""
    return cls(num_train=16, num_test=8, num_cross=8, height=64, width=80, num_frames=16)

  @classmethod
  def from_config(cls, cfg: Any) -> "SyntheticSpec":
    """Spec from a ConfigDict or dict of these field names; missing fields take demo defaults."""
    values = dict(cfg.to_dict() if hasattr(cfg, "to_dict") else cfg)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
      raise ValueError(f"Unknown SyntheticSpec fields {unknown}; known: {sorted(known)}")
    return cls(**values)

  @property
  def duration(self) -> float:
    """Video length in seconds."""
    return self.num_frames / self.fps

  def num_videos(self, split: str) -> int:
    """Number of videos in `split`."""
    shift = {"cross_nuisance": self.num_cross_nuisance,
             "cross_distortion": self.num_cross_distortion}
    return shift[split] if split in shift else self._split_size(split)

  def digest_fields(self) -> dict[str, Any]:
    """The fields that key the dataset: all, but the shift splits only when not 0 (so datasets
    made before those fields existed keep their cache keys and spec files)."""
    fields = dataclasses.asdict(self)
    for name in ("num_cross_nuisance", "num_cross_distortion"):
      if fields[name] == 0:
        del fields[name]
    return fields


@dataclasses.dataclass(frozen=True)
class ImageSpec(_SplitSpec):
  """Everything that determines a synthetic image dataset (its cache key)."""

  height: int = 128
  width: int = 160
  label_noise: float = 0.08

  def __post_init__(self):
    """Rejects sizes that cannot make a dataset."""
    self._check_sizes("height", "width")
    if self.label_noise < 0:
      raise ValueError(f"ImageSpec.label_noise must be >= 0, got {self.label_noise}")

  @classmethod
  def tiny(cls) -> "ImageSpec":
    """A few small images, generated in well under a second, for tests."""
    return cls(num_train=16, num_test=8, num_cross=8, height=64, width=80)

  def video_spec(self) -> SyntheticSpec:
    """The synthetic video spec whose videos' first frames these images are."""
    return SyntheticSpec(seed=self.seed, num_train=self.num_train, num_test=self.num_test,
                         num_cross=self.num_cross, height=self.height, width=self.width,
                         num_frames=1, label_noise=self.label_noise)

  def num_images(self, split: str) -> int:
    """Number of images in `split`."""
    return self._split_size(split)
