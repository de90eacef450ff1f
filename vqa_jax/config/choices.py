"""The names a config may choose from, in one place: what validation checks and the library uses.

Pure Python (no jax, no data or model modules), so that loading and validating a config stays
light. The modules that implement each choice import its names from here.
"""

# data.source (data/sources.py).
SOURCES = ("synthetic", "synthetic_images", "label_files", "tfds")
# data.loader (data/loaders.py).
LOADERS = ("tf_data", "grain")
# data.decoder (data/nvdec_pipeline.py): CPU OpenCV workers, NVDEC threads, or both per batch.
DECODERS = ("opencv", "nvdec", "hybrid")
# The sampling methods whose fragments the device cutter takes (data/decoders/device_fragments.py).
NVDEC_METHODS = ("fragments", "fragments_t")
# data.on_bad_video (data/element_plan.py).
BAD_VIDEO_POLICIES = ("error", "skip")
# data.augment (data/augment.py).
AUGMENT_POLICIES = ("none", "autoaugment")

# sampling.method (data/sampling/clip_sampler.py); FRAMES_1FPS is SimpleVQA's whole-frame sampler.
FRAMES_1FPS = "frames_1fps"
SAMPLING_METHODS = ("fragments", "fragments_t", "sama", "sama_iqa", FRAMES_1FPS)
# sampling.eval_offsets.
EVAL_OFFSETS = ("centred", "random")
# sampling.sama_mask (data/sampling/sama.py).
SAMA_MASKS = ("none", "patch", "window")

# model.name (families/).
FAMILIES = ("fast_vqa", "simple_vqa")
# train.loss of the FAST-VQA family (families/losses.py).
LOSSES = ("plcc_rank", "smooth_l1")
# train.optimizer and train.schedule (training/optim.py).
OPTIMIZERS = ("adamw", "adam_l2")
SCHEDULES = ("warmup_cosine", "step")
# train.warmup_steps / train.cosine_steps = FOLLOW_STEPS: derived from train.steps (validation.
# schedule_steps).
FOLLOW_STEPS = -1
# FAST-VQA's warmup share: 2.5 of 30 epochs (paper §7.3), the default train.warmup_fraction.
REFERENCE_WARMUP_FRACTION = 2.5 / 30

# perturb.kind (perturb.py): 'none' (the plain step), then the kinds that move the weights.
# perturb.py and perturb_precision.py import nothing from config: they hold the same names as
# PERTURBATION_KINDS, PERTURB_PRECISIONS and MATMUL_PRECISIONS (test_perturb*.py check this).
PERTURBATION_KINDS = ("none", "awp", "rwp", "sam", "asam")
# Kinds whose radius is relative to each layer's norm (perturb.gamma); the others take the
# absolute perturb.rho.
RELATIVE_KINDS = ("awp", "rwp")
# perturb.precision (perturb_precision.py): how the perturbed pass carries the perturbation;
# a config may also say 'auto' (BF16_PERTURB_PRECISION below float32 compute, else 'cast').
PERTURB_PRECISIONS = ("cast", "split", "float32")
AUTO_PRECISION = "auto"
# The mode 'auto' picks for a compute dtype below float32 (chosen by measurement, BENCHMARKS.md).
BF16_PERTURB_PRECISION = "float32"
# model.matmul_precision: jax.default_matmul_precision of the model's products.
MATMUL_PRECISIONS = ("default", "high", "highest")

# eval.models: the raw params and their EMA.
EVAL_MODELS = ("raw", "ema")
