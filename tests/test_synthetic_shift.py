"""The split shift's test domains and the pretext labels of the synthetic generator.

B_nuisance (B's content and camera motion, A's distortion mix) and B_distortion (A's content, B's
distortions) are checked from the sampled metadata; the pretext labels against what the renderer
actually does; the existing splits and cache keys against a spec without the shift splits.
"""

import collections
import dataclasses

import numpy as np
import pytest
from scipy import stats

from vqa_jax.config.specs import SyntheticSpec
from vqa_jax.data.synthetic import camera
from vqa_jax.data.synthetic import content
from vqa_jax.data.synthetic import dataset as synthetic_dataset
from vqa_jax.data.synthetic import metadata
from vqa_jax.data.synthetic import video

N = 3000  # videos per compared split: metadata only, nothing rendered


def _distortion_counts(lines, names):
  counts = collections.Counter(name for m in lines for name in m["distortions"])
  return np.array([counts[n] for n in names])


@pytest.fixture(scope="module")
def shift_metadata():
  spec = SyntheticSpec(num_train=N, num_test=1, num_cross=N, num_cross_nuisance=N,
                       num_cross_distortion=N)
  by_split = collections.defaultdict(list)
  for m in metadata.sample_metadata(spec):
    by_split[m["split"]].append(m)
  return by_split


def test_b_nuisance_has_a_distortion_mix_and_b_content(shift_metadata):
  names = sorted(metadata.DISTORTION_WEIGHTS)
  a = _distortion_counts(shift_metadata["train"], names)
  b = _distortion_counts(shift_metadata["cross"], names)
  nuisance = _distortion_counts(shift_metadata["cross_nuisance"], names)
  banding = names.index("banding")
  assert a[banding] == nuisance[banding] == 0 and b[banding] > 0.05 * N
  keep = (a + nuisance) > 0
  assert stats.chi2_contingency(np.stack([a[keep], nuisance[keep]])).pvalue > 0.01
  assert stats.chi2_contingency(np.stack([b, nuisance])).pvalue < 1e-6  # B's mix differs
  count = lambda split: collections.Counter(len(m["distortions"]) for m in shift_metadata[split])
  assert stats.chi2_contingency(np.array([[count("train")[k] for k in range(3)],
                                          [count("cross_nuisance")[k] for k in range(3)]])
                                ).pvalue > 0.01
  assert {m["content"] for m in shift_metadata["cross_nuisance"]} == set(
      metadata.DOMAINS["B"].contents)
  assert {m["domain"] for m in shift_metadata["cross_nuisance"]} == {"B_nuisance"}


def test_b_distortion_has_b_distortions_on_a_content(shift_metadata):
  names = sorted(metadata.DISTORTION_WEIGHTS)
  b = _distortion_counts(shift_metadata["cross"], names)
  shifted = _distortion_counts(shift_metadata["cross_distortion"], names)
  assert shifted[names.index("banding")] > 0.05 * N
  assert stats.chi2_contingency(np.stack([b, shifted])).pvalue > 0.01
  assert {m["content"] for m in shift_metadata["cross_distortion"]} == set(
      metadata.DOMAINS["A"].contents)


def test_shift_splits_leave_the_existing_splits_and_cache_keys_alone():
  plain = SyntheticSpec.tiny()
  shifted = dataclasses.replace(plain, num_cross_nuisance=3, num_cross_distortion=2)
  lines = metadata.sample_metadata(shifted)
  assert [m for m in lines if m["split"] in metadata.SPLITS] == metadata.sample_metadata(plain)
  assert [m["split"] for m in lines[-5:]] == ["cross_nuisance"] * 3 + ["cross_distortion"] * 2
  assert metadata.video_splits(plain) == metadata.SPLITS
  assert "num_cross_nuisance" not in plain.digest_fields()
  assert synthetic_dataset.spec_digest(shifted) != synthetic_dataset.spec_digest(plain)


def test_pretext_camera_motion_is_the_path_the_renderer_takes(monkeypatch):
  """The label is read from the generator's parameters: for each content kind, the camera path
  the renderer really calls (recorded), whatever the video's MOS."""
  taken = []
  pan, zoom = camera._pan_path, camera._zoom_path  # pylint: disable=protected-access
  monkeypatch.setattr(camera, "_pan_path", lambda *a: taken.append("pan") or pan(*a))
  monkeypatch.setattr(camera, "_zoom_path", lambda *a: taken.append("zoom") or zoom(*a))
  spec = SyntheticSpec(num_train=12, num_test=1, num_cross=24)
  seen = collections.Counter()
  for m in metadata.sample_metadata(spec):
    taken.clear()
    video.render_video(m["content"], {}, height=16, width=16, num_frames=4, seed=m["seed"])
    expected = taken[0] if taken else "static"
    assert content.camera_motion(m["content"], m["seed"]) == expected, m
    c, motion = content.pretext_labels({**m, "mos": 1.0, "distortions": {"blur": 1.0}})
    assert (content.CONTENT_CLASSES[c], content.CAMERA_MOTIONS[motion]) == (m["content"], expected)
    seen[(m["content"], expected)] += 1
  assert {k for k in seen if k[0] == "noise_field"} == {("noise_field", "pan"),
                                                        ("noise_field", "zoom")}
