"""The pretext stage: the backbone learns another task on other videos, as Kinetics-400 stands for.

The paper's backbone starts from Kinetics-400 action classification: a different task on a
different pool. Here the pool is a second synthetic dataset (data seed `data_seed`, so other videos
than the labelled set's) holding both domains' contents, and the task is to classify each video's
content class and camera motion, read from the generator's own parameters in the metadata
(`synthetic.content.pretext_labels`); no quality label is read. The classifier is the study model's
backbone, a global mean pool and two linear heads, trained with the summed cross-entropy by AdamW
(the config's learning rate and weight decay, no perturbation). Its backbone then goes into the
VQA model, whose head starts fresh (`init_variables` of the run's family, key `HEAD_SEED`), saved as
converted weights (`state_dicts.save_variables`) that every study run starts from.
On real label files there is no pool: give the study a pretrained checkpoint (`--pretrained`).
"""

import dataclasses
import json
import os
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vqa_jax import families
from vqa_jax.convert import state_dicts
from vqa_jax.config.specs import SyntheticSpec
from vqa_jax.data import cache_location
from vqa_jax.data.sampling import clip_sampler
from vqa_jax.data.synthetic import content as synthetic_content
from vqa_jax.data.synthetic import dataset as synthetic_dataset
from vqa_jax.models import fast_vqa as model_lib

CLIPS_PER_VIDEO = 2  # random clips decoded once per pool video
HELD_OUT_FRACTION = 0.2  # of the pool, for the reported accuracy
HEAD_SEED = 0
RECORD_FILE = "pretext.json"
WEIGHTS_DIR = "weights"


class PretextClassifier(nn.Module):
  """The VQA backbone, a global mean pool and one linear head per pretext task."""

  backbone: nn.Module
  num_contents: int
  num_motions: int

  @nn.compact
  def __call__(self, video, *, train: bool):
    """Raw video (B, T, S, S, 3) -> (content logits, motion logits)."""
    feats = self.backbone(model_lib.normalize_video(video), train=train)
    pooled = jnp.mean(feats.astype(jnp.float32), axis=(1, 2, 3))
    return (nn.Dense(self.num_contents, name="content")(pooled),
            nn.Dense(self.num_motions, name="motion")(pooled))


def pool_spec(base: ml_collections.ConfigDict, data_seed: int, num_videos: int):
  """The pool's SyntheticSpec: `num_videos` split between domain A ('train') and B ('cross')."""
  if base.data.source != "synthetic":
    raise ValueError(f"the pretext stage needs data.source='synthetic' (got "
                     f"{base.data.source!r}); give a pretrained checkpoint instead (--pretrained)")
  if data_seed == base.data.synthetic.seed:
    raise ValueError(f"the pretext pool's seed {data_seed} is the labelled set's: they would "
                     "hold the same videos")
  spec = SyntheticSpec.from_config(base.data.synthetic)
  half = max(num_videos // 2, 1)
  return dataclasses.replace(spec, seed=data_seed, num_train=half, num_test=1,
                             num_cross=max(num_videos - half, 1), num_cross_nuisance=0,
                             num_cross_distortion=0)


def load_pool(base: ml_collections.ConfigDict, data_seed: int, num_videos: int,
              seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(clips uint8 (N, CLIPS_PER_VIDEO, T, S, S, 3), content labels (N,), motion labels (N,))."""
  spec = pool_spec(base, data_seed, num_videos)
  dataset = synthetic_dataset.ensure_in_cache(cache_location.cache_dir(base.data), spec)
  with open(dataset.metadata_file, encoding="utf-8") as f:
    metadata = [json.loads(line) for line in f if line.strip()]
  metadata = [m for m in metadata if m["split"] in ("train", "cross")]
  rng = np.random.default_rng(seed)
  clips = np.stack([clip_sampler.sample_clips(os.path.join(dataset.root, m["relpath"]),
                                              base.sampling, CLIPS_PER_VIDEO, rng=rng)
                    for m in metadata])
  labels = np.array([synthetic_content.pretext_labels(m) for m in metadata], np.int32)
  return clips, labels[:, 0], labels[:, 1]


def classifier(base: ml_collections.ConfigDict) -> PretextClassifier:
  """The pretext classifier around the study model's backbone."""
  return PretextClassifier(backbone=model_lib.build_model(base.model).backbone,
                           num_contents=len(synthetic_content.CONTENT_CLASSES),
                           num_motions=len(synthetic_content.CAMERA_MOTIONS))


def train(base: ml_collections.ConfigDict, clips: np.ndarray, contents: np.ndarray,
          motions: np.ndarray, steps: int, seed: int) -> tuple[dict, dict]:
  """(classifier params, {'content_accuracy', 'motion_accuracy', 'held_out'}) after `steps`."""
  model = classifier(base)
  n = clips.shape[0]
  order = np.random.default_rng(seed).permutation(n)
  held = order[:max(int(n * HELD_OUT_FRACTION), 1)]
  fit = order[len(held):]
  batch = min(base.train.batch_size, len(fit))
  key = jax.random.key(seed)
  params = model.init({"params": key, "dropout": key}, jnp.asarray(clips[:1, 0]),
                      train=False)["params"]
  schedule = optax.warmup_cosine_decay_schedule(0.0, base.train.learning_rate,
                                                max(steps // 20, 1), max(steps, 2))
  tx = optax.adamw(schedule, weight_decay=base.train.weight_decay)
  opt_state = tx.init(params)

  def loss_fn(p, video, content, motion, rng):
    content_logits, motion_logits = model.apply({"params": p}, video, train=True,
                                                rngs={"dropout": rng})
    return (optax.softmax_cross_entropy_with_integer_labels(content_logits, content).mean()
            + optax.softmax_cross_entropy_with_integer_labels(motion_logits, motion).mean())

  @jax.jit
  def step(p, s, video, content, motion, rng):
    loss, grads = jax.value_and_grad(loss_fn)(p, video, content, motion, rng)
    updates, s = tx.update(grads, s, p)
    return optax.apply_updates(p, updates), s, loss

  rng = np.random.default_rng(seed + 1)
  for i in range(steps):
    pick = rng.choice(fit, batch, replace=False)
    video = clips[pick, rng.integers(CLIPS_PER_VIDEO, size=batch)]
    params, opt_state, _ = step(params, opt_state, video, contents[pick], motions[pick],
                                jax.random.fold_in(key, i))
  predict = jax.jit(lambda p, v: model.apply({"params": p}, v, train=False))
  content_logits, motion_logits = predict(params, clips[held, 0])
  accuracy = {"content_accuracy": float(np.mean(np.argmax(content_logits, -1) == contents[held])),
              "motion_accuracy": float(np.mean(np.argmax(motion_logits, -1) == motions[held])),
              "held_out": int(len(held))}
  return params, accuracy


def vqa_variables(base: ml_collections.ConfigDict, backbone_params) -> dict:
  """The VQA model's params: the pretext backbone and a fresh head (key HEAD_SEED)."""
  params, _ = families.build(base).init_variables(jax.random.key(HEAD_SEED))
  params = dict(params)
  if jax.tree_util.tree_structure(params["backbone"]) != jax.tree_util.tree_structure(
      backbone_params):
    raise ValueError("the pretext backbone's params do not have the VQA backbone's structure")
  params["backbone"] = backbone_params
  return {"params": params}


def pretext(base: ml_collections.ConfigDict, out: str, steps: int, data_seed: int,
            num_videos: int) -> str:
  """Trains the pretext stage (or finds it done) in OUT/pretext; returns its weights' folder."""
  folder = os.path.join(out, "pretext")
  weights = os.path.join(folder, WEIGHTS_DIR)
  record_path = os.path.join(folder, RECORD_FILE)
  if os.path.exists(record_path):
    return weights
  t0 = time.monotonic()
  clips, contents, motions = load_pool(base, data_seed, num_videos, seed=data_seed)
  params, accuracy = train(base, clips, contents, motions, steps, seed=data_seed)
  state_dicts.save_variables(weights, vqa_variables(base, jax.device_get(params["backbone"])))
  os.makedirs(folder, exist_ok=True)
  record = {"steps": steps, "data_seed": data_seed, "videos": int(len(contents)),
            "content_classes": list(synthetic_content.CONTENT_CLASSES),
            "camera_motions": list(synthetic_content.CAMERA_MOTIONS),
            "content_counts": np.bincount(contents, minlength=len(synthetic_content.CONTENT_CLASSES)
                                          ).tolist(),
            "motion_counts": np.bincount(motions, minlength=len(synthetic_content.CAMERA_MOTIONS)
                                         ).tolist(),
            "seconds": time.monotonic() - t0, **accuracy}
  with open(record_path, "w", encoding="utf-8") as f:  # written last: the stage's done marker
    json.dump(record, f, indent=1)
  return weights
