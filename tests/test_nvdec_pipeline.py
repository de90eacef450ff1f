"""NVDEC beside the CPU workers, on the CPU: the fake decoder drives the pool, the hybrid split,
the ordering, the fallback, the bad-video policy and the start-up errors."""

import ctypes
import threading

import jax
import ml_collections
import numpy as np
import pytest
from tests.video_files import labelled_videos
from tests.video_files import mixed_entries

from vqa_jax.data import element_plan
from vqa_jax.data import grain_pipeline
from vqa_jax.data import loaders
from vqa_jax.data import nvdec_pipeline
from vqa_jax.data import video_io
from vqa_jax.data.decoders import frame_decoder
from vqa_jax.data.decoders import pool as pool_lib
from vqa_jax.data.decoders import pynvc
from vqa_jax.data.labels import Entry

SAMPLING = ml_collections.ConfigDict({"clip_len": 4, "frame_interval": 2, "grid": 2, "patch": 8})


class FakeDecoders:
  """A factory of fake NVDEC decoders that remembers what it made."""

  def __init__(self, **kwargs):
    self.made, self.kwargs = [], kwargs

  def __call__(self):
    decoder = frame_decoder.OpenCVDeviceDecoder(**self.kwargs)
    self.made.append(decoder)
    return decoder


def cpu_batches(plan):
  return grain_pipeline.batches(plan, workers=0)


def nvdec_batches(plan, decoding, make_decoder, fallbacks=None):
  return list(nvdec_pipeline.batches(plan, decoding, cpu_batches, make_decoder, fallbacks))


def assert_batches_equal(expected, actual, device_video):
  assert len(expected) == len(actual)
  for want, got in zip(expected, actual):
    assert list(want) == list(got)
    for key in want:
      assert isinstance(got[key], jax.Array) == (device_video and key == "video"), key
      assert np.asarray(got[key]).dtype == want[key].dtype
      np.testing.assert_array_equal(np.asarray(got[key]), want[key])


TRAIN = lambda entries: element_plan.train_plan(entries, SAMPLING, 5, seed=3, num_steps=4,
                                                on_bad_video="skip")
EVAL = lambda entries: element_plan.eval_plan(entries, SAMPLING, 4, num_clips=2,
                                              on_bad_video="skip")


@pytest.mark.parametrize("make_plan", [TRAIN, EVAL], ids=["train", "eval"])
@pytest.mark.parametrize("decoder,share", [("nvdec", 0.6), ("hybrid", 0.6), ("hybrid", 0.2)])
def test_nvdec_and_hybrid_batches_equal_the_opencv_batches(good_and_bad_videos, make_plan,
                                                           decoder, share):
  entries, bad_indices = mixed_entries(good_and_bad_videos)
  cpu_plan = make_plan(entries)
  expected = list(cpu_batches(cpu_plan))
  plan = make_plan(entries)
  decoders = FakeDecoders()
  got = nvdec_batches(plan, nvdec_pipeline.Decoding(decoder, share, threads=2), decoders)
  assert_batches_equal(expected, got, device_video=True)
  # Skipped bad videos: the same ones, with the same reasons, on both paths.
  assert plan.bad_videos.reasons == cpu_plan.bad_videos.reasons
  assert set(plan.bad_videos.reasons) <= {entries[i].path for i in bad_indices}


def test_pool_retains_one_decoder_per_thread_reconfigured_per_video(tmp_path):
  entries = labelled_videos(tmp_path, 6)
  plan = element_plan.train_plan(entries, SAMPLING, 4, seed=1, num_steps=6)
  decoders = FakeDecoders()
  nvdec_batches(plan, nvdec_pipeline.Decoding("nvdec", threads=3), decoders)
  assert 1 <= len(decoders.made) <= 3  # one per pool thread, never one per clip
  assert len({d.thread for d in decoders.made}) == len(decoders.made)
  assert sum(d.videos for d in decoders.made) == plan.positions.size  # 24 clips, all reused


def test_pool_keeps_input_order_and_raises_where_due():
  done = []

  def work(decoder, item):
    if item == 5:
      raise KeyError("item 5")
    done.append(item)
    return item * 10, decoder

  with pool_lib.DecoderPool(lambda: threading.get_ident(), threads=4) as pool:
    results = pool.imap(work, range(5))
    assert [r for r, _ in results] == [0, 10, 20, 30, 40]
    with pytest.raises(KeyError, match="item 5"):
      list(pool.imap(work, range(8)))
  with pytest.raises(ValueError, match="at least one thread"):
    pool_lib.DecoderPool(lambda: None, threads=0)


def test_declined_videos_fall_back_to_the_cpu_counted_and_logged(tmp_path, caplog):
  entries = labelled_videos(tmp_path, 4)  # 20x24 frames
  (tmp_path / "small").mkdir()
  small = labelled_videos(tmp_path / "small", 1, size=(12, 14))  # needs upsampling
  entries = entries + small
  make = lambda: element_plan.train_plan(entries, SAMPLING, 5, seed=2, num_steps=3)
  expected = list(cpu_batches(make()))
  fallbacks = nvdec_pipeline.FallbackLog()
  decoders = FakeDecoders(unsupported=[entries[1].path], max_width=1920)
  got = nvdec_batches(make(), nvdec_pipeline.Decoding("nvdec", threads=2), decoders, fallbacks)
  assert_batches_equal(expected, got, device_video=True)
  assert set(fallbacks.reasons) == {entries[1].path, small[0].path}
  assert "codec not supported" in fallbacks.reasons[entries[1].path]
  assert "upsampled on the CPU" in fallbacks.reasons[small[0].path]
  assert fallbacks.decodes == 6  # each of the two videos is drawn 3 times in 3 epochs of 5
  assert sum("NVDEC declined" in r.getMessage() for r in caplog.records) == 2


def test_videos_over_the_decoder_size_fall_back(tmp_path):
  entries = labelled_videos(tmp_path, 3)
  fallbacks = nvdec_pipeline.FallbackLog()
  make = lambda: element_plan.train_plan(entries, SAMPLING, 3, seed=0, num_steps=1)
  got = nvdec_batches(make(), nvdec_pipeline.Decoding("nvdec", threads=1),
                      FakeDecoders(max_width=23), fallbacks)
  assert_batches_equal(list(cpu_batches(make())), got, device_video=True)
  assert fallbacks.count == 3 and all("exceeds" in r for r in fallbacks.reasons.values())


def test_error_policy_names_the_bad_file_on_the_nvdec_path(good_and_bad_videos):
  good, bad = good_and_bad_videos
  plan = element_plan.train_plan(good[:2] + [Entry(bad["text"], 1.0)], SAMPLING, 3, seed=0,
                                 num_steps=2)
  with pytest.raises(video_io.VideoDecodeError, match="cannot open") as e:
    nvdec_batches(plan, nvdec_pipeline.Decoding("hybrid", 0.5, threads=2), FakeDecoders())
  assert e.value.path == bad["text"]


@pytest.mark.parametrize("local_batch,decoder,share,slots", [
    (16, "nvdec", 0.6, 16), (16, "hybrid", 0.6, 10), (16, "hybrid", 0.01, 1),
    (16, "hybrid", 0.99, 15), (1, "hybrid", 0.5, 1), (8, "opencv", 0.6, 0)])
def test_nvdec_slots(local_batch, decoder, share, slots):
  assert nvdec_pipeline.Decoding(decoder, share).nvdec_slots(local_batch) == slots


def test_decoding_from_config_defaults():
  assert nvdec_pipeline.Decoding.from_config({}) == nvdec_pipeline.Decoding("opencv", 0.6, 8)
  data = ml_collections.ConfigDict({"decoder": "hybrid", "nvdec_share": 0.5, "nvdec_threads": 4})
  assert nvdec_pipeline.Decoding.from_config(data) == nvdec_pipeline.Decoding("hybrid", 0.5, 4)


def test_missing_driver_fails_at_start_naming_it(tmp_path, monkeypatch):
  def no_library(name, *args, **kwargs):
    raise OSError(f"{name}: cannot open shared object file")

  monkeypatch.setattr(ctypes, "CDLL", no_library)
  plan = element_plan.train_plan(labelled_videos(tmp_path, 2), SAMPLING, 2, seed=0, num_steps=1)
  batches = loaders.batches(plan, "grain", 0, nvdec_pipeline.Decoding("nvdec"))
  with pytest.raises(RuntimeError, match="NVIDIA GPU driver with NVDEC: libnvcuvid.so.1"):
    next(batches)


def test_missing_package_fails_naming_the_extra(monkeypatch):
  real_import = pynvc.importlib.import_module

  def no_package(name, *args):
    if name == "PyNvVideoCodec":
      raise ModuleNotFoundError("No module named 'PyNvVideoCodec'")
    return real_import(name, *args)

  monkeypatch.setattr(pynvc.importlib, "import_module", no_package)
  with pytest.raises(ImportError, match=r"PyNvVideoCodec.*pip install vqa-jax\[nvdec\]"):
    pynvc.import_pynvvideocodec()
  monkeypatch.setattr(ctypes, "CDLL", lambda name: None)  # a driver, but jax sees no GPU here
  if not any(d.platform == "gpu" for d in jax.devices()):
    with pytest.raises(RuntimeError, match="needs jax on an NVIDIA GPU"):
      pynvc.check_available()


def test_opencv_decoder_leaves_batches_numpy(tmp_path):
  plan = element_plan.train_plan(labelled_videos(tmp_path, 2), SAMPLING, 2, seed=0, num_steps=1)
  batch = next(iter(loaders.batches(plan, "grain", 0, nvdec_pipeline.Decoding("opencv"))))
  assert isinstance(batch["video"], np.ndarray)


@pytest.mark.parametrize("decoder", ["nvdec", "hybrid"])
def test_trainer_batches_with_nvdec_equal_the_opencv_ones(tmp_path, monkeypatch, decoder):
  from tests.helpers import load_config  # pylint: disable=g-import-not-at-top
  from vqa_jax.runtime import sharding  # pylint: disable=g-import-not-at-top
  from vqa_jax.training import trainer  # pylint: disable=g-import-not-at-top
  monkeypatch.setenv(nvdec_pipeline.FAKE_NVDEC_ENV, "1")
  entries = labelled_videos(tmp_path, 5, size=(36, 40))
  config = load_config("smoke")
  config.data.loader, config.data.workers, config.train.steps = "grain", 0, 2
  config.data.nvdec_threads = 2
  mesh = sharding.make_mesh()
  expected = [host for host, _ in trainer.train_batches(config, entries, mesh)]
  config.data.decoder = decoder
  got = list(trainer.train_batches(config, entries, mesh))
  assert_batches_equal(expected, [host for host, _ in got], device_video=True)
  for host, device in got:
    np.testing.assert_array_equal(np.asarray(device["video"]), np.asarray(host["video"]))
    assert device["video"].sharding == sharding.batch_sharding(mesh)
