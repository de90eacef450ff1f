"""TFDS builders (manual_dir) for KoNViD-1k, LIVE-VQC, YouTube-UGC, LSVQ and KonIQ-10k: paths and MOS."""

from vqa_jax.data.tfds_builders.base import VqaLabelFileBuilder
from vqa_jax.data.tfds_builders.koniq_10k import Koniq10k
from vqa_jax.data.tfds_builders.konvid_1k import Konvid1k
from vqa_jax.data.tfds_builders.live_vqc import LiveVqc
from vqa_jax.data.tfds_builders.lsvq import Lsvq
from vqa_jax.data.tfds_builders.youtube_ugc import YoutubeUgc

BUILDERS = (Konvid1k, LiveVqc, YoutubeUgc, Lsvq, Koniq10k)
