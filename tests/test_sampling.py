"""The fragment samplers (data/sampling: clip_sampler, fragments, grid): paper §10 items 4-6."""

import hashlib
import pathlib

import cv2
import numpy as np
import pytest
from tests.video_files import coordinate_frames
from tests.video_files import counting_video
from tests.video_files import set_mp4_frame_durations
from tests.video_files import write_mp4
from tests.video_files import write_video

from vqa_jax.config import choices
from vqa_jax.data.sampling import clip_sampler
from vqa_jax.data.sampling import fragments as fragments_lib
from vqa_jax.data.sampling import grid as grid_lib
from vqa_jax.data import video_io


def patch_origins(fragments: np.ndarray, grid: int, patch: int) -> np.ndarray:
  """Source (y, x) of each output patch's top-left pixel, for coordinate frames: (T, G, G, 2)."""
  corners = fragments[:, ::patch, ::patch, :2]
  assert corners.shape[1:3] == (grid, grid)
  return corners.astype(np.int64)


# Temporal sampler.


def test_temporal_item5_four_clips_wrap():
  for rng in (None, np.random.default_rng(0)):
    got = fragments_lib.temporal_indices(240, 32, 2, 4, rng).reshape(4, 32)
    for k, start in enumerate((0, 60, 120, 180)):
      np.testing.assert_array_equal(got[k], [(start + 2 * m) % 240 for m in range(32)])
  np.testing.assert_array_equal(got[3, -3:], [238, 0, 2])


def test_temporal_item6_short_video_wraps():
  expected = list(range(0, 50, 2)) + list(range(0, 14, 2))
  np.testing.assert_array_equal(fragments_lib.temporal_indices(50, 32, 2, 1), expected)


def test_temporal_centred_offset_long_video():
  # N=1000, K=4: segments of 250, span 64, centred offset (250 - 64) // 2 = 93.
  got = fragments_lib.temporal_indices(1000, 32, 2, 4).reshape(4, 32)
  np.testing.assert_array_equal(got[:, 0], [93, 343, 593, 843])
  np.testing.assert_array_equal(got[0], np.arange(93, 157, 2))


def test_temporal_random_offsets_within_bounds():
  rng = np.random.default_rng(0)
  offsets = np.stack([fragments_lib.temporal_indices(1000, 32, 2, 4, rng).reshape(4, 32)[:, 0]
                      - np.array([0, 250, 500, 750]) for _ in range(500)])
  assert offsets.min() == 0 and offsets.max() == 185  # {0, ..., 250 - 64 - 1}
  assert len(np.unique(offsets)) > 100


# Grid.


@pytest.mark.parametrize("size, origins, bound", [
    (540, [0, 77, 154, 231, 308, 385, 462], 45),
    (960, [0, 137, 274, 411, 548, 685, 822], 105),
    (1080, [0, 154, 308, 462, 616, 770, 924], 122),
    (1920, [0, 274, 548, 822, 1096, 1370, 1644], 242),
    (720, [0, 102, 204, 306, 408, 510, 612], 70),
    (1280, [0, 182, 364, 546, 728, 910, 1092], 150),
    (224, [0, 32, 64, 96, 128, 160, 192], 0),
])
def test_grid_item4(size, origins, bound):
  got_origins, got_bound = grid_lib.grid_cells(size, 7, 32)
  np.testing.assert_array_equal(got_origins, origins)
  assert got_bound == bound


def test_grid_clamps_last_origin_and_rejects_tiny_sizes():
  np.testing.assert_array_equal(grid_lib.grid_cells(100, 4, 30)[0], [0, 25, 50, 70])
  with pytest.raises(ValueError, match="smaller than the patch"):
    grid_lib.grid_cells(20, 4, 32)


# Fragments.


@pytest.mark.parametrize("rng", [None, np.random.default_rng(1)])
def test_each_patch_is_contiguous_and_inside_its_cell(rng):
  grid, patch, (cell_h, cell_w) = 4, 8, (17, 25)
  frames = coordinate_frames(6, 70, 100)
  out = fragments_lib.sample_fragments(frames, grid, patch, aligned=3, rng=rng)
  assert out.shape == (6, 32, 32, 3) and out.dtype == np.uint8
  blocks = out.reshape(6, grid, patch, grid, patch, 3)
  for i in range(grid):
    for j in range(grid):
      block = blocks[:, i, :, j, :, :].astype(np.int64)  # (T, patch, patch, 3)
      y0, x0 = block[:, :1, :1, 0], block[:, :1, :1, 1]
      t, y, x = np.meshgrid(np.arange(6), np.arange(patch), np.arange(patch), indexing="ij")
      np.testing.assert_array_equal(block, np.stack([y0 + y, x0 + x, t], axis=-1))
      assert np.all(block[..., 0] // cell_h == i) and np.all(block[..., 1] // cell_w == j)


def test_offsets_are_aligned_within_chunks_and_redrawn_between():
  frames = coordinate_frames(8, 70, 100)
  out = fragments_lib.sample_fragments(frames, 4, 8, aligned=4, rng=np.random.default_rng(3))
  origins = patch_origins(out, 4, 8)
  for chunk in (origins[:4], origins[4:]):
    assert np.all(chunk == chunk[:1])
  assert np.any(origins[0] != origins[4])


def test_centred_offsets_are_deterministic_and_centred():
  frames = coordinate_frames(2, 70, 100)
  first = fragments_lib.sample_fragments(frames, 4, 8, aligned=2)
  np.testing.assert_array_equal(first, fragments_lib.sample_fragments(frames, 4, 8, aligned=2))
  # Cells 17 x 25, bounds 9 and 17: centred offsets int(0.5 * bound) = 4 and 8.
  origins = patch_origins(first, 4, 8)
  np.testing.assert_array_equal(origins[0, :, 0, 0], [4, 21, 38, 55])
  np.testing.assert_array_equal(origins[0, 0, :, 1], [8, 33, 58, 83])


def test_small_video_grid_uses_upsampled_size():
  # 100x150 -> 128x192. Rows: cells of 32 = patch, origins 0, 32, 64, 96. Columns: cells of 48,
  # origins 0, 48, 96, 144, centred offset 8. Source of upsampled row r: (r + 0.5) * 100/128 - 0.5.
  frames = coordinate_frames(1, 100, 150)
  out = fragments_lib.sample_fragments(frames, 4, 32, aligned=1).astype(np.int64)
  assert out.shape == (1, 128, 128, 3)
  last_row, last_col = out[0, 96:, :, 0], out[0, :, 96:, 1]
  assert last_row.min() >= 74 and last_row.max() == 99  # Bottom edge region of the frame.
  assert last_col.min() >= 118 and last_col.max() >= 142  # Right edge region (cols 152..183).
  expected = cv2.resize(frames[0], (192, 128), interpolation=cv2.INTER_LINEAR)
  np.testing.assert_array_equal(out[0, 96:, 96:], expected[96:128, 152:184])


def naive_fragments(frames, grid, patch, aligned, rng, frame_index):
  """The fragment definition written out one frame and one patch at a time, for comparison.

  Upsample (cv2 bilinear, short side to grid * patch, long side floored) when the short side is
  smaller; cell c of an axis starts at min(cell * c, size - patch) plus an offset in
  {0, ..., cell - patch - 1} (h offsets drawn before w, each (chunks, grid, grid), int64), centred
  int(0.5 * bound) without `rng`, 0 when cell <= patch; one offset per chunk of `aligned` frames.
  """
  size, channels = grid * patch, frames.shape[-1]
  height, width = frames.shape[1:3]
  short = min(height, width)
  if short < size:
    height, width = height * size // short, width * size // short
    frames = [cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR).reshape(
        height, width, channels) for f in frames]
  num_chunks = -(-len(frame_index) // aligned)

  def offsets(bound):
    if bound <= 0:
      return np.zeros((num_chunks, grid, grid), np.int64)
    if rng is None:
      return np.full((num_chunks, grid, grid), int(0.5 * bound), np.int64)
    return rng.integers(0, bound, size=(num_chunks, grid, grid), dtype=np.int64)

  h_cell, w_cell = height // grid, width // grid
  dh, dw = offsets(h_cell - patch), offsets(w_cell - patch)
  out = np.zeros((len(frame_index), size, size, channels), np.uint8)
  for t, source in enumerate(frame_index):
    for i in range(grid):
      for j in range(grid):
        top = min(h_cell * i, height - patch) + dh[t // aligned, i, j]
        left = min(w_cell * j, width - patch) + dw[t // aligned, i, j]
        out[t, patch * i:patch * (i + 1), patch * j:patch * (j + 1)] = (
            frames[source][top:top + patch, left:left + patch])
  return out


@pytest.mark.parametrize("size, grid, patch", [((40, 60), 4, 16), ((70, 100), 2, 16),
                                               ((33, 21), 3, 10)])
@pytest.mark.parametrize("frame_index", [
    [0, 1, 2, 3, 4, 5, 6, 7],  # consecutive, each once (a long video)
    [0, 0, 1, 2, 2, 3, 4, 4],  # sorted repeats
    [5, 1, 2, 0, 5, 1, 7, 0],  # unordered repeats, frames 3, 4 and 6 unused
    [6, 7, 0, 1, 6, 7, 0, 1],  # wrap-around
])
@pytest.mark.parametrize("aligned, seed", [(8, None), (8, 4), (2, None), (2, 4), (3, 4)])
@pytest.mark.parametrize("channels", [3, 1])
def test_fragments_match_the_frame_by_frame_definition(size, grid, patch, frame_index, aligned,
                                                       seed, channels):
  frames = np.random.default_rng(0).integers(0, 256, (8, *size, channels), np.uint8)
  rng = None if seed is None else np.random.default_rng(seed)
  expected = naive_fragments(frames, grid, patch, aligned,
                             None if seed is None else np.random.default_rng(seed), frame_index)
  got = fragments_lib.sample_fragments(frames, grid, patch, aligned, rng, np.array(frame_index))
  assert got.shape == expected.shape and got.dtype == np.uint8
  np.testing.assert_array_equal(got, expected)


# SHA-256 prefixes of sample_clips on ../shared/videos/tiny_192x144.mp4 (FAST-VQA-B sampling),
# recorded with the implementation of git 7ae02e8, before the fragment fast path (see the test).
TINY_GOLDEN = {
    ("fragments", 1, None): "60fdcaa4ff10c573",
    ("fragments", 1, 0): "91169df3b7021b8a",
    ("fragments", 4, None): "6a7ddcba0ed37a0a",
    ("fragments", 4, 0): "2c04ba7fc8ad7803",
    ("fragments_t", 4, None): "1b641d0b2d633946",
    ("fragments_t", 4, 0): "fca015017802e66a",
}


@pytest.mark.parametrize("method, num_clips, seed", sorted(TINY_GOLDEN, key=str))
def test_shared_tiny_video_clips_match_recorded_golden(shared_dir, method, num_clips, seed):
  """Bit-identical to the pre-fast-path clips. The goldens were printed at git 7ae02e8 by

  for each key: hashlib.sha256(clip_sampler.sample_clips(TINY, dict(clip_len=32, frame_interval=2,
  grid=7, patch=32, method=method, **({'t_frag': 8, 'aligned': 8} if method == 'fragments_t'
  else {})), num_clips, None if seed is None else np.random.default_rng(seed)).tobytes())
  .hexdigest()[:16]
  """
  extra = {"t_frag": 8, "aligned": 8} if method == "fragments_t" else {}
  cfg = {"clip_len": 32, "frame_interval": 2, "grid": 7, "patch": 32, "method": method, **extra}
  rng = None if seed is None else np.random.default_rng(seed)
  clips = clip_sampler.sample_clips(str(shared_dir / "videos" / "tiny_192x144.mp4"), cfg, num_clips,
                                rng)
  assert clips.shape == (num_clips, 32, 224, 224, 3)
  digest = hashlib.sha256(clips.tobytes()).hexdigest()[:16]
  assert digest == TINY_GOLDEN[(method, num_clips, seed)]


# Clips from files.


SMALL = {"clip_len": 4, "frame_interval": 2, "grid": 2, "patch": 8}


def test_sample_clips_shape_and_frames(tmp_path):
  path = counting_video(tmp_path, 20)
  clips = clip_sampler.sample_clips(path, SMALL, num_clips=2)
  assert clips.shape == (2, 4, 16, 16, 3) and clips.dtype == np.uint8
  # N=20, K=2: segments of 10, span 8, centred offset 1.
  np.testing.assert_array_equal(clips[:, :, 0, 0, 0], [[1, 3, 5, 7], [11, 13, 15, 17]])
  assert np.all(clips == clips[:, :, :1, :1, :1])


def test_sample_clips_resamples_when_frame_count_is_overreported(tmp_path):
  path = counting_video(tmp_path, 30)
  data = pathlib.Path(path).read_bytes()
  truncated = tmp_path / "truncated.mkv"
  truncated.write_bytes(data[:len(data) // 2])
  cap = cv2.VideoCapture(str(truncated))
  reported = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
  decodable = sum(1 for _ in iter(cap.grab, False))
  assert decodable < reported, "the truncated file should over-report its frame count"
  with pytest.raises(video_io.FrameIndexError):
    video_io.read_frames(str(truncated), fragments_lib.temporal_indices(reported, 4, 2, 1))
  clips = clip_sampler.sample_clips(str(truncated), SMALL, num_clips=1)
  start = (decodable - 8) // 2
  np.testing.assert_array_equal(clips[0, :, 0, 0, 0], np.arange(start, start + 8, 2))
  # Recorded for counting and for output records (score's `warning` field).
  assert video_io.SHORTFALLS.get(str(truncated)) == (reported, decodable)
  assert video_io.SHORTFALLS.warning(str(truncated)) == (
      f"decoded {decodable} of the {reported} frames its container lists (truncated or damaged "
      "file); sampled from those")
  assert f"{truncated} ({decodable}/{reported})" in video_io.SHORTFALLS.summary()
  assert video_io.SHORTFALLS.warning(path) == ""


def test_shared_tiny_video_fragments(shared_dir):
  path = str(shared_dir / "videos" / "tiny_192x144.mp4")
  frames = video_io.read_frames(path, fragments_lib.temporal_indices(
      video_io.probe(path).num_frames, 32, 2, 1))
  assert frames.shape == (32, 144, 192, 3)
  assert fragments_lib.sample_fragments(frames, 7, 32, aligned=32).shape == (32, 224, 224, 3)
  clips = clip_sampler.sample_clips(path, {"clip_len": 32, "frame_interval": 2, "grid": 7,
                                       "patch": 32}, num_clips=4, rng=np.random.default_rng(0))
  assert clips.shape == (4, 32, 224, 224, 3)


# FasterVQA's temporal fragments, SAMA's clamping, methods on odd / short / VFR videos.


def test_segment_indices_fastervqa_centred_and_random():
  # f3dvqa-b.yml: clip_len 32, t_frag 8, interval 2. N=240: segments of 30, span 8, centre 11.
  got = fragments_lib.segment_indices(240, 32, 8, 2, 1).reshape(8, 4)
  np.testing.assert_array_equal(got, [[30 * k + 11 + 2 * m for m in range(4)] for k in range(8)])
  rng = np.random.default_rng(0)
  starts = np.stack([fragments_lib.segment_indices(240, 32, 8, 2, 2, rng).reshape(2, 8, 4)[:, :, 0]
                     - 30 * np.arange(8) for _ in range(300)])
  assert starts.min() == 0 and starts.max() == 21  # {0, ..., 30 - 8 - 1}
  assert np.any(starts[:, 0] != starts[:, 1])  # each clip redraws its offsets
  # Short video (N=20): segments of 2 <= span, offsets 0, wrap-around past the end.
  np.testing.assert_array_equal(fragments_lib.segment_indices(20, 8, 2, 4, 1),
                                [0, 4, 8, 12, 10, 14, 18, 2])


def test_temporal_clamp_overflow_for_sama():
  np.testing.assert_array_equal(fragments_lib.temporal_indices(50, 32, 2, 1, overflow="clamp"),
                                list(range(0, 50, 2)) + [49] * 7)


def test_distinct_frames_give_the_same_fragments_as_repeated_frames():
  frames = coordinate_frames(3, 40, 60)
  frame_index = np.array([0, 1, 2, 0, 1, 2, 2, 2])
  for rng_seed in (None, 5):
    rng_a = None if rng_seed is None else np.random.default_rng(rng_seed)
    rng_b = None if rng_seed is None else np.random.default_rng(rng_seed)
    np.testing.assert_array_equal(
        fragments_lib.sample_fragments(frames, 4, 16, 4, rng_a, frame_index=frame_index),
        fragments_lib.sample_fragments(frames[frame_index], 4, 16, 4, rng_b))


def test_fragments_t_clip_from_file_shares_positions_per_aligned_chunk(tmp_path):
  path = counting_video(tmp_path, 40)
  cfg = {"method": "fragments_t", "clip_len": 8, "t_frag": 4, "aligned": 4, "frame_interval": 2,
         "grid": 2, "patch": 8}
  clips = clip_sampler.sample_clips(path, cfg, num_clips=1)
  # N=40, 4 segments of 10, 2 frames at interval 2 (span 4), centred offset 3.
  np.testing.assert_array_equal(clips[0, :, 0, 0, 0], [3, 5, 13, 15, 23, 25, 33, 35])


@pytest.mark.parametrize("method", choices.SAMPLING_METHODS)
@pytest.mark.parametrize("num_frames, size", [(1, (17, 23)), (3, (31, 45)), (9, (25, 33))])
def test_methods_on_odd_sizes_and_very_short_videos(tmp_path, method, num_frames, size):
  frames = np.random.default_rng(0).integers(0, 256, (num_frames, *size, 3), np.uint8)
  path = write_video(tmp_path / "odd.mkv", frames)
  clip_len = 1 if method == "sama_iqa" else 4  # the IQA sampler takes single frames
  cfg = {"method": method, "clip_len": clip_len, "t_frag": 2 if clip_len > 1 else 1,
         "frame_interval": 2, "grid": 2, "patch": 16, "short_side": 32, "crop": 32}
  for rng in (None, np.random.default_rng(1)):
    clips = clip_sampler.sample_clips(path, cfg, num_clips=2, rng=rng)
    assert clips.shape == (2, clip_len, 32, 32, 3) and clips.dtype == np.uint8
    assert clips.std() > 0  # real pixels, not zeros


def test_variable_frame_rate_video_samples_by_decoded_frames(tmp_path):
  """A VFR .mp4 (irregular frame durations): clips take frames by decode index, ignoring time."""
  values = 20 * np.arange(12, dtype=np.uint8)
  frames = np.ascontiguousarray(np.broadcast_to(values[:, None, None, None], (12, 24, 32, 3)))
  cfr = write_mp4(tmp_path / "cfr.mp4", frames, fps=10.0)
  vfr = set_mp4_frame_durations(cfr, tmp_path / "vfr.mp4",
                                [10, 90, 5, 200, 33, 33, 400, 1, 60, 70, 20, 50])
  clips = clip_sampler.sample_clips(vfr, SMALL, num_clips=1)
  np.testing.assert_array_equal(clips, clip_sampler.sample_clips(cfr, SMALL, num_clips=1))
  # N=12, K=1: a segment of 12, span 8, centred offset 2: frames 2, 4, 6, 8 (values 40 ... 160,
  # moved a few levels by the lossy coding).
  np.testing.assert_allclose(clips[0].mean(axis=(1, 2, 3)), [40, 80, 120, 160], atol=8)
