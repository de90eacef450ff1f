"""YouTube-UGC: 20 s user-generated clips with MOS on a 1-5 scale (FAST-VQA's label file)."""

from vqa_jax.data.tfds_builders import base


class YoutubeUgc(base.LabelsTxtBuilder):
  """YouTube-UGC video paths and MOS (1-5): one split 'full' with the label file's videos."""

  name = "youtube_ugc"
  HOMEPAGE = "https://media.withyoutube.com/"
  LABEL_COLUMNS = "-1, -1, MOS"
  VIDEOS = ("*.mp4", "the videos, e.g. Sports_2160P-4e9f_crf_10_ss_00_t_20.0.mp4")
