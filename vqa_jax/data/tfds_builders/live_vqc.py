"""LIVE-VQC: 585 smartphone videos (~10 s, mixed resolutions) with MOS on a 0-100 scale."""

from vqa_jax.data.tfds_builders import base


class LiveVqc(base.LabelsTxtBuilder):
  """LIVE-VQC video paths and MOS (0-100): one split 'full' of 585 videos."""

  name = "live_vqc"
  HOMEPAGE = "https://live.ece.utexas.edu/research/LIVEVQC/"
  VIDEOS = ("Video/*.mp4", "the 585 videos, e.g. Video/A001.mp4")
