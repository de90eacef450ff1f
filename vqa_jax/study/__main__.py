"""`python -m vqa_jax.study`: the paper's claims tested, pre-registered, paired over seeds.

  python -m vqa_jax.study --out=/tmp/vqa_study                        # the full study (configs/study.py)
  python -m vqa_jax.study --config=study:tiny --out=/tmp/vqa_tiny     # the test suite's version
  python -m vqa_jax.study --out=/tmp/vqa_study --report_only          # rebuild the report

The design (seeds, variants, budgets, pre-registered claims) is the config's `study` section;
a flag given here replaces its field. See vqa_jax/study/__init__.py.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

from vqa_jax.config import config_files  # pylint: disable=wrong-import-position
from vqa_jax.runtime import entry_point  # pylint: disable=wrong-import-position
from vqa_jax.runtime.compilation_cache import persistent_compilation_cache
from vqa_jax.study import design  # pylint: disable=wrong-import-position
from vqa_jax.study import protocols  # pylint: disable=wrong-import-position
from vqa_jax.study import report  # pylint: disable=wrong-import-position
from vqa_jax.study import runner  # pylint: disable=wrong-import-position
from vqa_jax.study import variants  # pylint: disable=wrong-import-position

FLAGS = flags.FLAGS

flags.DEFINE_string("out", "/tmp/vqa_study", "Output folder (design, runs, report, PNGs).")
flags.DEFINE_string("config", "study", "Base config with a `study` section: a file or shipped "
                    "name, 'FILE:ARGS' for get_config(ARGS) (study:tiny; "
                    "configs/paper/study_lsvq.py:LABELS,VIDEOS).")
flags.DEFINE_list("seeds", None, "Seeds (default: study.seeds): init noise, data order, dropout "
                  "keys and the fine-tuning split.")
flags.DEFINE_list("variants", None, f"Variants (default: study.variants) among "
                  f"{list(variants.VARIANTS)}; 'baseline' is required.")
flags.DEFINE_list("protocols", None, f"Among {list(protocols.PROTOCOLS)} (default: "
                  "study.protocols; fine-tuning starts from the cross runs).")
flags.DEFINE_integer("steps", None, "Cross-dataset training steps per run (default: study.steps).")
flags.DEFINE_string("pretrained", "", "A pretrained checkpoint (convert_weights dir or trainer "
                    "workdir): replaces the pretext stage (needed on label files).")
flags.DEFINE_integer("pretext_steps", None, "Steps of the pretext classification stage (0: "
                     "random init; default: study.pretext_steps).")
flags.DEFINE_integer("pretext_videos", None, "Pretext pool size (default: study.pretext_videos).")
flags.DEFINE_integer("finetune_epochs", None, "Fine-tuning epochs in all (default: study's).")
flags.DEFINE_integer("probe_epochs", None, "Linear-probe epochs among them (default: study's).")
flags.DEFINE_integer("train_videos", None, "Landscape train subset (default: study's).")
flags.DEFINE_integer("eval_videos", None, "Landscape 'test' / 'cross' subsets (0: all).")
flags.DEFINE_integer("line_points", None, "Points per 1-D landscape (4k + 1).")
flags.DEFINE_integer("plane_points", None, "Points per axis of the 2-D landscape (0: none).")
flags.DEFINE_string("xla_cache", "", "XLA's persistent compilation cache (programs that every "
                    "seed and variant repeat are compiled once): a folder, or '' for OUT/xla_cache.")
flags.DEFINE_bool("report_only", False, "Rebuild the report from OUT's records; train nothing.")

# Flags that replace a field of the config's `study` section when given.
OVERRIDES = ("seeds", "variants", "protocols", "steps", "pretext_steps", "pretext_videos",
             "finetune_epochs", "probe_epochs", "train_videos", "eval_videos", "line_points",
             "plane_points")


def command() -> str:
  """The command line that reproduces this invocation (its given flags)."""
  parts = []
  for name in ("out", "config", "pretrained") + OVERRIDES:
    flag = FLAGS[name]
    if flag.present or name == "out":
      value = ",".join(flag.value) if isinstance(flag.value, list) else flag.value
      parts.append(f"--{name}={value}")
  return " ".join(["python -m vqa_jax.study"] + parts)


def overrides() -> dict:
  """The given flags as StudyOptions fields."""
  out = {}
  for name in OVERRIDES:
    value = FLAGS[name].value
    if value is None:
      continue
    if name == "seeds":
      value = tuple(int(s) for s in value)
    elif isinstance(value, list):
      value = tuple(value)
    out[name] = value
  return out


def chosen_config():
  """The base config of --config (for --print_config)."""
  return config_files.load(FLAGS.config)


def main(argv):
  """Runs the study of the config and flags, or rebuilds its report."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if FLAGS.report_only:
    print(report.rebuild(FLAGS.out, command() + " --report_only"), flush=True)
    return
  base = chosen_config()
  if "study" not in base:
    raise entry_point.UsageProblem(f"--config={FLAGS.config}: has no `study` section")
  options = design.StudyOptions.from_config(base.study, pretrained=FLAGS.pretrained,
                                            command=command(), **overrides())
  with persistent_compilation_cache(FLAGS.xla_cache or os.path.join(FLAGS.out, "xla_cache")):
    path = runner.run_study(base, FLAGS.out, options)
  print(path, flush=True)


if __name__ == "__main__":
  entry_point.run(main, chosen_config)
