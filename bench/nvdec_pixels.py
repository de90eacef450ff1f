"""NVDEC's frames against OpenCV's on real clips: the maximum absolute pixel difference.

Usage (GPU host, PyNvVideoCodec installed):
  PYTHONPATH=. python3 bench/nvdec_pixels.py --videos=a.mp4,b.mp4 --out=pixels.json
For each clip, --frames frames spread over the video are decoded by OpenCV (`video_io.read_frames`)
and by a retained NVDEC decoder (`decoders/pynvc.py`), converted twice: with this project's
OpenCV-matching conversion of the native NV12 frames ('opencv') and with NVDEC's own RGB
('nvdec'). Reports max / mean absolute difference per clip and conversion, and the stream
metadata PyNvVideoCodec gives for the first clip (its colour fields choose the matrix and range).
--fake uses the fake decoder (OpenCV frames on the device; a dry run: differences 0).
"""

import json

from absl import app
from absl import flags
import numpy as np

from vqa_jax.data import video_io
from vqa_jax.data.decoders import frame_decoder

_VIDEOS = flags.DEFINE_list("videos", [], "Clips to compare.")
_FRAMES = flags.DEFINE_integer("frames", 16, "Frames compared per clip, spread over it.")
_FAKE = flags.DEFINE_bool("fake", False, "Fake decoder (dry run without NVDEC).")
_OUT = flags.DEFINE_string("out", "", "Write the results as JSON here.")


def _decoders() -> dict[str, frame_decoder.FrameDecoder]:
  """{conversion name: a retained decoder} (the fake one alone with --fake)."""
  if _FAKE.value:
    return {"fake": frame_decoder.OpenCVDeviceDecoder()}
  from vqa_jax.data.decoders import pynvc  # pylint: disable=g-import-not-at-top
  pynvc.check_available()
  return {c: pynvc.PyNvDecoder(colour_conversion=c) for c in pynvc.COLOUR_CONVERSIONS}


def _metadata(decoder) -> dict[str, str]:
  """The public attributes of the stream metadata of the decoder's current video, as text."""
  inner = getattr(decoder, "_decoder", None)
  if inner is None:
    return {}
  metadata = inner.get_stream_metadata()
  fields = {n: repr(getattr(metadata, n)) for n in dir(metadata) if not n.startswith("_")}
  return {"repr": repr(metadata), **fields}


def main(argv):
  """Compares the clips' frames and prints (and writes --out) the differences."""
  del argv
  decoders = _decoders()
  rows, metadata = [], {}
  for path in _VIDEOS.value:
    info = video_io.probe(path)
    indices = np.unique(np.linspace(0, info.num_frames - 1, _FRAMES.value).astype(np.int64))
    reference = video_io.read_frames(path, indices).astype(np.int16)
    row = {"video": path, "size": f"{info.width}x{info.height}", "frames": int(indices.size)}
    for name, decoder in decoders.items():
      try:
        frames, inverse = decoder.read_sampled_frames(path, lambda _: indices)
      except frame_decoder.NvdecUnsupported as e:
        row[name] = {"declined": e.reason}
        continue
      difference = np.abs(np.asarray(frames)[inverse].astype(np.int16) - reference)
      row[name] = {"max": int(difference.max()), "mean": float(difference.mean()),
                   "share_over_2": float((difference > 2).mean())}
      if not metadata:
        metadata = _metadata(decoder)
    rows.append(row)
    print(json.dumps(row), flush=True)
  worst = {name: max((r[name]["max"] for r in rows if "max" in r.get(name, {})), default=None)
           for name in decoders}
  print(f"max absolute pixel difference against OpenCV: {worst}", flush=True)
  if metadata:
    print(f"stream metadata of the first clip: {metadata.get('repr')}", flush=True)
  if _OUT.value:
    with open(_OUT.value, "w", encoding="utf-8") as f:
      json.dump({"rows": rows, "worst": worst, "metadata": metadata}, f, indent=1)


if __name__ == "__main__":
  app.run(main)
