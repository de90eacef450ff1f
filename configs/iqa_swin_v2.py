"""IQA with AWP, SAMA-IQA's own recipe: Swin-V2-T on SAMA fragments of one image, SmoothL1 on MOS.

  python -m vqa_jax.convert_weights --src=swinv2_tiny_patch4_window8_256.pth --dst=/tmp/swin_v2_iqa \
      --format=swin2d --config=configs/iqa_swin_v2.py
  python -m vqa_jax.main --config=configs/iqa_swin_v2.py --workdir=/tmp/iqa_koniq_v2 \
      --config.init.checkpoint=/tmp/swin_v2_iqa \
      --config.data.label_files.train=koniq/train.csv:koniq/1024x768 \
      --config.data.label_files.test=koniq/test.csv:koniq/1024x768

SAMA's 10 splits: `python -m vqa_jax.finetune --config=configs/iqa_swin_v2.py:splits ...` exactly as
configs/iqa_swin_t.py documents (that file holds the protocol, the schedule and KonIQ-10k's csv).

Differences from configs/iqa_swin_t.py, each to match upstream (Sissuire/SAMA @ 38c02bf,
`IQA/options/fast-sama-iqa.yml`, `IQA/demo_train_iqa_baseline.py`):
  * backbone Swin-V2-T (`models/swin_v2.py`: cosine attention, log-spaced continuous position
    bias, res-post-norm), window 8, drop path 0.2, as `SwinTransformerV2(img_size=256,
    window_size=8, drop_path_rate=0.2)`;
  * 8x8 fragments of 32 px (256x256) cut by SAMA-IQA's sampler (`sampling.method='sama_iqa'`:
    native and short-side-256 patches on a checkerboard of 32x32 windows,
    `data/sampling/sama_iqa.py`);
  * loss SmoothL1 (beta 1) of the score against the label (`train.loss='smooth_l1'`), so label
    files should carry MOS_zscore (the KonIQ-10k csv reader's default).
Still different from upstream (see configs/iqa_swin_t.py): no flip / RandomRotation(45)
augmentation, and AWP gamma 1e-4 (the paper's IQA gamma is not given).
"""

from configs import iqa_swin_t


def get_config(protocol: str = "single"):
  """The IQA Swin-V2-T configuration: one run ('single') or SAMA's 10 splits ('splits')."""
  c = iqa_swin_t.get_config(protocol)
  c.sampling.method = "sama_iqa"
  c.sampling.grid = 8
  c.sampling.patch = 32

  c.model.backbone = "swin_v2"
  c.model.window_size = (1, 8, 8)
  c.model.drop_path_rate = 0.2
  c.model.fragments_grid = 8

  c.train.loss = "smooth_l1"
  return c
