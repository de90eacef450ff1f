"""Images as 1-frame videos (video_io, sampling, tf.data) and the synthetic image dataset."""

import json
import os

import cv2
import numpy as np
import pytest

from vqa_jax.data import labels
from vqa_jax.data import sampling
from vqa_jax.config.specs import ImageSpec
from vqa_jax.data.synthetic import images as synthetic_images
from vqa_jax.data.synthetic import metadata as synthetic_metadata
from vqa_jax.data import video_io

IMAGE_SAMPLING = {"clip_len": 1, "frame_interval": 1, "grid": 2, "patch": 16}


def smooth_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
  """A smooth random RGB uint8 image (JPEG keeps it to within a few levels)."""
  rng = np.random.default_rng(seed)
  coarse = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3)).astype(np.float32)
  return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.uint8)


def write_rgb(path, rgb: np.ndarray) -> str:
  """Writes an RGB image with OpenCV (which takes BGR); returns the path as a string."""
  assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
  return str(path)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".PNG"])
def test_lossless_images_read_as_one_rgb_frame(tmp_path, ext):
  rgb = np.random.default_rng(1).integers(0, 256, (24, 40, 3), dtype=np.uint8)
  path = write_rgb(tmp_path / f"img{ext}", rgb)
  assert video_io.probe(path) == video_io.VideoInfo(num_frames=1, fps=0.0, height=24, width=40)
  frames = video_io.read_frames(path, [0, 0])
  assert frames.dtype == np.uint8 and frames.shape == (2, 24, 40, 3)
  np.testing.assert_array_equal(frames[0], rgb)
  np.testing.assert_array_equal(frames[1], rgb)


def test_jpeg_reads_as_rgb(tmp_path):
  rgb = smooth_rgb(48, 64)
  path = write_rgb(tmp_path / "img.jpg", rgb)
  frame = video_io.read_frames(path, [0])[0]
  assert np.abs(frame.astype(int) - rgb).mean() < 3  # RGB order kept (BGR would be far off).


def test_grayscale_and_alpha_give_three_channels(tmp_path):
  gray = np.arange(12 * 16, dtype=np.uint8).reshape(12, 16)
  cv2.imwrite(str(tmp_path / "gray.png"), gray)
  frame = video_io.read_frames(str(tmp_path / "gray.png"), [0])[0]
  np.testing.assert_array_equal(frame, np.repeat(gray[..., None], 3, axis=-1))
  rgba = np.zeros((8, 8, 4), np.uint8)
  rgba[..., 2] = 200  # red in BGRA
  rgba[..., 3] = 255
  cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
  frame = video_io.read_frames(str(tmp_path / "rgba.png"), [0])[0]
  assert frame.shape == (8, 8, 3) and np.all(frame == [200, 0, 0])


def test_exif_orientation_is_honoured(tmp_path):
  image_lib = pytest.importorskip("PIL.Image")
  rgb = smooth_rgb(32, 48, seed=2)
  exif = image_lib.Exif()
  exif[0x0112] = 6  # Orientation: the stored image is shown rotated 90 degrees clockwise.
  path = str(tmp_path / "rotated.jpg")
  image_lib.fromarray(rgb).save(path, quality=95, exif=exif)
  assert video_io.probe(path).height == 48 and video_io.probe(path).width == 32
  frame = video_io.read_frames(path, [0])[0]
  expected = np.rot90(rgb, k=-1)  # 90 degrees clockwise.
  assert frame.shape == expected.shape == (48, 32, 3)
  assert np.abs(frame.astype(int) - expected).mean() < 3


@pytest.mark.parametrize("content,reason", [
    (b"", "file is empty"),
    (b"this is not a jpeg at all" * 10, "cannot decode it as an image"),
])
def test_bad_images_raise_naming_the_file(tmp_path, content, reason):
  path = tmp_path / "bad.jpg"
  path.write_bytes(content)
  for read in (video_io.probe, lambda p: video_io.read_frames(p, [0])):
    with pytest.raises(video_io.VideoDecodeError, match=f"{path}: .*{reason}"):
      read(str(path))


def test_truncated_png_and_missing_image_raise(tmp_path):
  path = write_rgb(tmp_path / "cut.png", np.zeros((64, 64, 3), np.uint8))
  data = open(path, "rb").read()
  with open(path, "wb") as f:
    f.write(data[:len(data) // 2])
  with pytest.raises(video_io.VideoDecodeError, match="cut.png"):
    video_io.read_frames(path, [0])
  with pytest.raises(video_io.VideoDecodeError, match="absent.png: file does not exist"):
    video_io.probe(str(tmp_path / "absent.png"))


def test_frame_past_the_image_is_a_frame_index_error(tmp_path):
  path = write_rgb(tmp_path / "img.png", np.zeros((8, 8, 3), np.uint8))
  with pytest.raises(video_io.FrameIndexError) as info:
    video_io.read_frames(path, [0, 2])
  assert info.value.num_decodable == 1 and info.value.index == 2


def test_sample_clips_cuts_centred_fragments_of_an_image(tmp_path):
  rgb = np.random.default_rng(3).integers(0, 256, (100, 120, 3), dtype=np.uint8)
  path = write_rgb(tmp_path / "img.png", rgb)
  clips = sampling.sample_clips(path, IMAGE_SAMPLING, num_clips=1)
  assert clips.shape == (1, 1, 32, 32, 3)
  # Hand computation (SAMA-IQA / FAST-VQA rule): cells of 50 x 60 px, centred offsets
  # int((50 - 16) / 2) = 17 and int((60 - 16) / 2) = 22; tops 0 + 17, 50 + 17; lefts 22, 82.
  for i, top in enumerate((17, 67)):
    for j, left in enumerate((22, 82)):
      np.testing.assert_array_equal(clips[0, 0, 16 * i:16 * (i + 1), 16 * j:16 * (j + 1)],
                                    rgb[top:top + 16, left:left + 16])


def test_sample_clips_upsamples_small_images(tmp_path):
  path = write_rgb(tmp_path / "small.png", smooth_rgb(20, 24))
  clips = sampling.sample_clips(path, IMAGE_SAMPLING, num_clips=2,
                                rng=np.random.default_rng(0))
  assert clips.shape == (2, 1, 32, 32, 3)


# ---------------------------------------------------------------------------------------------
# Synthetic images.


@pytest.fixture(scope="module")
def image_root(tmp_path_factory) -> str:
  """The tiny synthetic image set, generated once for the module."""
  root = str(tmp_path_factory.mktemp("images"))
  synthetic_images.generate(root, ImageSpec.tiny())
  return root


def test_synthetic_images_labels_and_content(image_root):
  spec = ImageSpec.tiny()
  metadata = [json.loads(line) for line in open(os.path.join(image_root, "metadata.jsonl"))]
  assert len(metadata) == 16 + 8 + 8
  for split, label_file in synthetic_images.label_files(image_root).items():
    entries = labels.read_labels(label_file, image_root)
    rows = [m for m in metadata if m["split"] == split]
    assert len(entries) == spec.num_images(split)
    for entry, meta in zip(entries, rows):
      assert entry.path == os.path.join(image_root, meta["relpath"])
      assert entry.path.endswith(".png") and entry.mos == meta["mos"]
      assert "judder" not in meta["distortions"]
      noise_free = synthetic_metadata.mos_from_strengths(meta["distortions"])
      assert abs(meta["mos"] - noise_free) < 5 * 0.08
      image = video_io.read_frames(entry.path, [0])[0]
      assert image.shape == (64, 80, 3)
  # Image i is frame 0 of synthetic video i: same content, seed and (non-temporal) distortions.
  video = synthetic_metadata.sample_video(spec.video_spec(), "test", 3)
  meta = [m for m in metadata if m["split"] == "test"][3]
  assert (meta["content"], meta["seed"]) == (video["content"], video["seed"])


def test_synthetic_images_are_deterministic_and_cached(image_root, tmp_path):
  spec = ImageSpec.tiny()
  root = synthetic_images.ensure_dataset(str(tmp_path), spec)
  assert root == synthetic_images.dataset_root(str(tmp_path), spec)
  assert synthetic_images.ensure_dataset(str(tmp_path), spec) == root
  for relpath in ("labels/train.txt", "images/A/train_00005.png", "images/B/cross_00002.png"):
    assert open(os.path.join(root, relpath), "rb").read() == open(
        os.path.join(image_root, relpath), "rb").read(), relpath


def test_eval_pipeline_over_images(image_root):
  from tests import tf_datasets  # pylint: disable=g-import-not-at-top  (TensorFlow)
  from vqa_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top  (TensorFlow)
  entries = labels.read_labels(synthetic_images.label_files(image_root)["test"], image_root)
  sampling_cfg = {**IMAGE_SAMPLING, "num_clips_eval": 1}
  batches = list(input_pipeline.as_numpy(tf_datasets.eval_dataset(entries[:6], sampling_cfg,
                                                                  batch_size=4, num_clips=1)))
  assert [b["video"].shape for b in batches] == [(4, 1, 1, 32, 32, 3)] * 2
  assert batches[1]["valid"].tolist() == [True, True, False, False]
  first = sampling.sample_clips(entries[0].path, IMAGE_SAMPLING, num_clips=1)
  np.testing.assert_array_equal(batches[0]["video"][0], first)
  np.testing.assert_allclose(batches[0]["label"], [e.mos for e in entries[:4]], rtol=1e-6)
