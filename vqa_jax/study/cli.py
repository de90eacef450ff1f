"""Command line of the study: flags -> StudyOptions -> runner.run_study, or --report_only."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from vqa_jax.config import config_files
from vqa_jax.runtime.compilation_cache import persistent_compilation_cache
from vqa_jax.study import variant_runs
from vqa_jax.study import protocols
from vqa_jax.study import report
from vqa_jax.study import runner

FLAGS = flags.FLAGS
DEFAULTS = runner.StudyOptions()


def define_flags() -> None:
  """The study's flags (defined only when it runs, so importing the module defines none)."""
  flags.DEFINE_string("out", "/tmp/vqa_study", "Output folder (runs, report, PNGs).")
  flags.DEFINE_string("config", "configs/study.py", "Base config: a file or shipped name, "
                      "'FILE:ARGS' for get_config(ARGS) (configs/paper/study_lsvq.py:LABELS,VIDEOS).")
  flags.DEFINE_list("seeds", [str(s) for s in DEFAULTS.seeds],
                    "Seeds: init noise, data order, dropout keys and the fine-tuning split.")
  flags.DEFINE_list("variants", list(DEFAULTS.variants),
                    f"Variants among {list(variant_runs.VARIANTS)}; 'baseline' is required.")
  flags.DEFINE_list("protocols", list(DEFAULTS.protocols),
                    f"Among {list(protocols.PROTOCOLS)} (fine-tuning starts from the cross runs).")
  flags.DEFINE_integer("steps", DEFAULTS.steps, "Cross-dataset training steps per run.")
  flags.DEFINE_string("pretrained", "", "A pretrained checkpoint (convert_weights dir or trainer "
                      "workdir): replaces the pretraining stage (needed on label files).")
  flags.DEFINE_integer("pretrain_steps", DEFAULTS.pretrain_steps,
                       "Steps of the synthetic pretraining stage (0: random init).")
  flags.DEFINE_integer("pretrain_data_seed", DEFAULTS.pretrain_data_seed,
                       "Synthetic data seed of the pretraining pool.")
  flags.DEFINE_integer("pretrain_videos", DEFAULTS.pretrain_videos, "Pretraining pool size.")
  flags.DEFINE_integer("finetune_epochs", DEFAULTS.finetune_epochs, "Fine-tuning epochs in all.")
  flags.DEFINE_integer("probe_epochs", DEFAULTS.probe_epochs, "Linear-probe epochs among them.")
  flags.DEFINE_enum("finetune_perturb", DEFAULTS.finetune_perturb, list(protocols.FINETUNE_PERTURB),
                    "'none': plain fine-tuning (the reference); 'variant': the variant's too.")
  flags.DEFINE_integer("train_videos", DEFAULTS.train_videos,
                       "Landscape train subset (a multiple of the batch size).")
  flags.DEFINE_integer("eval_videos", DEFAULTS.eval_videos,
                       "Landscape 'test' / 'cross' subsets (0: all; cap it on real data).")
  flags.DEFINE_integer("line_points", 21, "Points per 1-D landscape.")
  flags.DEFINE_integer("plane_points", 9, "Points per axis of the 2-D landscape (0: none).")
  flags.DEFINE_enum("model", DEFAULTS.model, ["raw", "ema"], "Model whose test metrics are compared.")
  flags.DEFINE_string("xla_cache", "", "XLA's persistent compilation cache (programs that every "
                      "seed and variant repeat are compiled once): a folder, or '' for OUT/xla_cache.")
  flags.DEFINE_bool("report_only", False, "Rebuild the report from OUT's records; train nothing.")


def command() -> str:
  """The command line that reproduces this invocation (its non-default flags)."""
  names = ("out", "config", "seeds", "variants", "protocols", "steps", "pretrained",
           "pretrain_steps", "pretrain_data_seed", "pretrain_videos", "finetune_epochs",
           "probe_epochs", "finetune_perturb", "train_videos", "eval_videos", "line_points",
           "plane_points", "model")
  parts = []
  for name in names:
    flag = FLAGS[name]
    if flag.present or name == "out":
      value = ",".join(flag.value) if isinstance(flag.value, list) else flag.value
      parts.append(f"--{name}={value}")
  return " ".join(["python -m vqa_jax.study"] + parts)


def main(argv):
  """Runs the study of the flags, or rebuilds its report."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if FLAGS.report_only:
    print(report.rebuild(FLAGS.out, command() + " --report_only"), flush=True)
    return
  options = runner.StudyOptions(
      seeds=tuple(int(s) for s in FLAGS.seeds), variants=tuple(FLAGS.variants),
      protocols=tuple(FLAGS.protocols), steps=FLAGS.steps, pretrained=FLAGS.pretrained,
      pretrain_steps=FLAGS.pretrain_steps, pretrain_data_seed=FLAGS.pretrain_data_seed,
      pretrain_videos=FLAGS.pretrain_videos, finetune_epochs=FLAGS.finetune_epochs,
      probe_epochs=FLAGS.probe_epochs, finetune_perturb=FLAGS.finetune_perturb,
      train_videos=FLAGS.train_videos, eval_videos=FLAGS.eval_videos,
      analysis_config=variant_runs.study_analysis_config(FLAGS.line_points, FLAGS.plane_points),
      model=FLAGS.model, command=command())
  with persistent_compilation_cache(FLAGS.xla_cache or os.path.join(FLAGS.out, "xla_cache")):
    path = runner.run_study(config_files.load(FLAGS.config), FLAGS.out, options)
  print(path, flush=True)


def run() -> None:
  """Entry point: defines the flags and runs `main`."""
  define_flags()
  app.run(main)
