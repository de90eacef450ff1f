"""KoNViD-1k: 1,200 in-the-wild videos (960x540, ~8 s) with MOS on a 1-5 scale."""

from vqa_jax.data.tfds_builders import base


class Konvid1k(base.LabelsTxtBuilder):
  """KoNViD-1k video paths and MOS (1-5): one split 'full' of 1,200 videos."""

  name = "konvid_1k"
  HOMEPAGE = "http://database.mmsp-kn.de/konvid-1k-database.html"
  VIDEOS = ("KoNViD_1k_videos/*.mp4", "the 1,200 videos, e.g. KoNViD_1k_videos/4542323058.mp4")
