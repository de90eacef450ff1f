"""Default config sections the library also builds from: the models, the motion extractor, TFDS.

Pure ml_collections, so that config files and validation build them without importing Flax or the
data modules; the model factories (models/fast_vqa.py, models/simple_vqa.py) take these sections.
"""

import ml_collections

# torchvision's ResNet-50 (and slowfast_r50's pathways): residual blocks per stage.
RESNET50_STAGE_SIZES = (3, 4, 6, 3)
# SimpleVQA's motion features per frame: SlowFast-R50's pooled slow (2048) and fast (256) pathways.
MOTION_DIM = 2048 + 256


def fast_vqa_b_config() -> ml_collections.ConfigDict:
  """FAST-VQA-B model config (Video Swin-T, GRPB in stages 1-3, head 64)."""
  cfg = ml_collections.ConfigDict()
  cfg.name = "fast_vqa"  # the model family (families/); 'simple_vqa' is simple_vqa_config()
  cfg.backbone = "video_swin"  # or "swin_v2" (IQA, see models/fast_vqa.py)
  cfg.patch_size = (2, 4, 4)
  cfg.embed_dim = 96
  cfg.depths = (2, 2, 6, 2)
  cfg.num_heads = (3, 6, 12, 24)
  cfg.window_size = (8, 7, 7)
  cfg.mlp_ratio = 4.0
  cfg.drop_path_rate = 0.1
  cfg.frag_biases = (True, True, True, False)
  cfg.fragments_grid = 7
  cfg.head_hidden = 64
  cfg.head_dropout = 0.5
  # Performance switches (no effect on the math): activation checkpointing per
  # Swin block (remat_policy: '' or a video_swin.REMAT_POLICIES name) and the
  # compute dtype ('float32' | 'bfloat16'; params stay float32).
  cfg.remat = False
  cfg.remat_policy = ""
  cfg.dtype = "float32"
  # jax.default_matmul_precision of the model's products: 'default' | 'high' | 'highest'
  # ('highest' makes float32 products exact on TPUs and TF32-capable GPUs).
  cfg.matmul_precision = "default"
  # The reference's adaptive window base clip (T, H, W), e.g. (32, 224, 224);
  # None keeps window_size. A no-op for FAST-VQA-B's 32x224x224 input.
  cfg.base_x_size = None
  return cfg


def simple_vqa_config() -> ml_collections.ConfigDict:
  """The reference SimpleVQA model config (ResNet-50, regressor hidden 128, motion 2304)."""
  cfg = ml_collections.ConfigDict()
  cfg.name = "simple_vqa"
  cfg.stage_sizes = RESNET50_STAGE_SIZES
  cfg.width = 64
  cfg.hidden = 128
  cfg.motion_dim = MOTION_DIM
  cfg.dtype = "float32"
  cfg.matmul_precision = "default"  # as fast_vqa_b_config's
  return cfg


def model_config(family: str) -> ml_collections.ConfigDict:
  """The default model section of a family ('fast_vqa': FAST-VQA-B, 'simple_vqa': SimpleVQA)."""
  return {"fast_vqa": fast_vqa_b_config, "simple_vqa": simple_vqa_config}[family]()


def motion_config() -> ml_collections.ConfigDict:
  """The SlowFast-R50 feature extractor (pytorchvideo `slowfast_r50`) and its chunking."""
  m = ml_collections.ConfigDict()
  m.weights = ""  # pytorchvideo SLOWFAST_8x8_R50.pyth, or an orbax dir {'params','batch_stats'}
  m.stage_sizes = RESNET50_STAGE_SIZES
  m.width = 64
  m.head_pool = ((8, 7, 7), (32, 7, 7))
  m.resize = 224  # upstream SimpleVQA's scripts; 112 cannot run slowfast_r50's 7x7 head pool
  m.chunk_len = 32  # frames per one-second chunk (fast pathway; the slow one takes 8)
  m.min_chunks = 8  # short videos repeat their last chunk up to this many (YouTube-UGC: 20)
  m.batch_chunks = 8  # chunks per forward pass
  return m


def tfds_config() -> ml_collections.ConfigDict:
  """The data.tfds section: builder name, manual_dir, data_dir and the split mapping."""
  c = ml_collections.ConfigDict()
  c.name = ""  # a builder of data/tfds_builders: konvid_1k, live_vqc, youtube_ugc, lsvq, koniq_10k
  c.manual_dir = ""  # the dataset's label files and videos, laid out as the builder documents
  c.data_dir = ""  # where TFDS writes the prepared dataset; '' -> <data cache>/tfds
  c.splits = ml_collections.ConfigDict()  # run split -> builder split; empty: the builder's own
  return c
