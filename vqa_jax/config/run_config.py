"""A run's config stored in its workdir, and the check that a resumed run keeps it.

`write_config(workdir, config)` writes `<workdir>/config.json` (read back by `read_config`),
`<workdir>/config.yaml` (the same values as plain YAML, for people and `yaml.safe_load`) and
`<workdir>/config.txt` (as ml_collections prints it); `read_config` gives fields that an older run
stored under another name their new one (`RENAMED_FIELDS`). The trainer also stores the config in
every checkpoint step's orbax custom metadata (`checkpoint_metadata`). `stored_config(path)` finds
the config of a trainer workdir, any folder inside it (best/, checkpoints/, a step) or a
convert_weights output, with base_config's value for every field an older run did not store
(`with_defaults`): what score, landscape, finetune and `vqa_jax.Scorer` use when no --config is
given.
`check_resume(workdir, config, allow_change)` compares the stored config of a workdir that already
holds checkpoints with the new one, field by field (dotted names):

- fields that decide the train state's shapes (`SHAPE_FIELDS`: the model's architecture, the
  optimizer, the perturbation's carried state) can never change: `ConfigMismatch` lists them;
- fields that only change bookkeeping (`FREE_FIELDS`: logging, checkpoint and evaluation cadence,
  train.steps to train on), and fields the stored config lacks (added by a newer version), are
  logged and accepted;
- any other difference (learning rate, perturbation, data, ...) would mix two runs in one record:
  `ConfigMismatch` lists them unless `allow_change` (main's `--allow_config_change`), which logs
  them as warnings and appends them to `<workdir>/config_changes.jsonl`.

The stored config is then replaced by the new one. A workdir without checkpoints has nothing to mix:
its config is simply (re)written.
"""

import json
import os
import time

from absl import logging
import ml_collections
import yaml

from vqa_jax.config import choices
from vqa_jax.config import config_base
from vqa_jax.config import sections

CONFIG_JSON = "config.json"
CONFIG_YAML = "config.yaml"
CONFIG_TEXT = "config.txt"
# How far above a checkpoint folder its workdir may be (<workdir>/best/checkpoints/<step>).
_MAX_LEVELS_UP = 3
CHANGES_JSONL = "config_changes.jsonl"
CHECKPOINT_DIRS = ("checkpoints", os.path.join("best", "checkpoints"))

# Prefixes (a section ends in '.') of fields that change the shapes of the train state.
SHAPE_FIELDS = ("model.", "train.optimizer", "perturb.every_k")
# Model fields that change how it computes, not what it holds (still checked as other fields).
_COMPUTE_ONLY_MODEL_FIELDS = ("model.remat", "model.remat_policy", "model.dtype",
                              "model.matmul_precision",
                              "model.drop_path_rate", "model.head_dropout")
# Fields renamed since older runs stored their config: old dotted name -> new one.
RENAMED_FIELDS = {"train.rank_weight": "train.plcc_rank_weight",
                  "loss.rank_weight": "loss.hard_rank_weight"}
FREE_FIELDS = ("train.steps", "train.log_every", "train.checkpoint_every", "train.eval_every",
               "train.max_checkpoints", "log.", "checkpoint.", "eval.batch_size",
               "eval.report_best_per_metric", "data.cache_dir", "data.on_bad_video")


class ConfigMismatch(ValueError):
  """A resumed run's config differs from the stored one in fields that may not change."""


def _plain(config: ml_collections.ConfigDict) -> dict:
  """The config as JSON-typed nested dicts (tuples become lists; other objects their repr)."""
  return json.loads(json.dumps(config.to_dict(), default=repr, sort_keys=True))


def to_yaml(config: ml_collections.ConfigDict) -> str:
  """The config's values as plain YAML (sections nested, keys sorted, tuples as lists)."""
  return yaml.safe_dump(_plain(config), sort_keys=True, default_flow_style=False)


def checkpoint_metadata(config: ml_collections.ConfigDict) -> dict:
  """The orbax custom metadata of a run's checkpoint steps: {'config': the config as JSON}."""
  return {"config": _plain(config)}


def write_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Writes `config` to `<workdir>/config.json`, `.yaml` and `.txt` (atomically each)."""
  os.makedirs(workdir, exist_ok=True)
  for name, text in ((CONFIG_JSON, json.dumps(_plain(config), indent=2, sort_keys=True) + "\n"),
                     (CONFIG_YAML, to_yaml(config)), (CONFIG_TEXT, str(config))):
    path = os.path.join(workdir, name)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
      f.write(text)
    os.replace(path + ".tmp", path)


def _tuples(tree):
  """JSON lists back to the tuples the configs hold (hashable, as Flax module fields must be)."""
  if isinstance(tree, dict):
    return {k: _tuples(v) for k, v in tree.items()}
  return tuple(_tuples(v) for v in tree) if isinstance(tree, list) else tree


def _renamed(tree: dict) -> dict:
  """A stored config with each field of RENAMED_FIELDS under its new name."""
  tree = {k: dict(v) if isinstance(v, dict) else v for k, v in tree.items()}
  for old, new in RENAMED_FIELDS.items():
    (old_section, old_key), (new_section, new_key) = old.split("."), new.split(".")
    section = tree.get(old_section)
    if isinstance(section, dict) and old_key in section:
      value = section.pop(old_key)
      tree.setdefault(new_section, {}).setdefault(new_key, value)
  return tree


def _merged(defaults: dict, stored: dict) -> dict:
  """`stored` with every key of `defaults` it lacks, section by section."""
  merged = dict(stored)
  for key, value in defaults.items():
    if key not in merged:
      merged[key] = value
    elif isinstance(value, dict) and isinstance(merged[key], dict):
      merged[key] = _merged(value, merged[key])
  return merged


def with_defaults(stored: dict) -> dict:
  """A stored config (plain dicts) with the base_config value of every field it lacks.

  Older runs stored fewer fields; the library reads every base_config field. The model section is
  completed from its family's defaults (configs without `model.name` are FAST-VQA's).
  """
  defaults = config_base.base_config().to_dict()
  family = stored.get("model", {}).get("name", "fast_vqa")
  if family in choices.FAMILIES:
    defaults["model"] = sections.model_config(family).to_dict()
  else:
    del defaults["model"]  # validation names the unknown family
  return _merged(defaults, stored)


def read_config(workdir: str) -> ml_collections.ConfigDict | None:
  """The config stored in `workdir` (None if there is none); a corrupt file is an error naming it.

  Fields stored under an older name (RENAMED_FIELDS) take the new one.
  """
  path = os.path.join(workdir, CONFIG_JSON)
  if not os.path.exists(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      stored = _tuples(json.load(f))
  except ValueError as e:
    raise ValueError(f"{path}: not a stored config ({e}); move it away to start afresh") from None
  return ml_collections.ConfigDict(_renamed(stored))


def stored_config_dir(path: str) -> str | None:
  """The folder holding the config.json of `path` or of a folder up to 3 levels above it."""
  folder = os.path.abspath(path)
  for _ in range(_MAX_LEVELS_UP + 1):
    if os.path.isfile(os.path.join(folder, CONFIG_JSON)):
      return folder
    folder = os.path.dirname(folder)
  return None


def stored_config(path: str) -> ml_collections.ConfigDict:
  """The config stored with a checkpoint `path` (see `stored_config_dir`), completed with the
  defaults of fields it lacks (`with_defaults`); an error says none is stored."""
  folder = stored_config_dir(path)
  if folder is None:
    raise FileNotFoundError(f"{path}: no stored {CONFIG_JSON} here or in the folders above it "
                            "(runs and convert_weights outputs store one); pass --config")
  return ml_collections.ConfigDict(with_defaults(read_config(folder).to_dict()))


def flatten(tree: dict, prefix: str = "") -> dict:
  """{'a': {'b': 1}} -> {'a.b': 1}."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict) and value:
      flat.update(flatten(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


_ABSENT = "<absent>"


def _former_perturb_precision(stored: dict) -> str:
  """What a run stored before `perturb.precision` existed computed: 'cast' (w + δ cast to the
  compute dtype) below float32 compute; in float32 every mode is the same as today's 'auto'."""
  dtype = str(stored.get("model", {}).get("dtype", "float32"))
  return choices.AUTO_PRECISION if dtype == "float32" else "cast"


# Fields added since older runs stored their config, whose behaviour then differs from today's
# default: dotted name -> the value those runs computed with, from their stored config. Resuming
# such a run with today's default is then a change check_resume reports, not a silent one.
FORMER_DEFAULTS = {"perturb.precision": _former_perturb_precision}


def with_former_defaults(stored: ml_collections.ConfigDict,
                         current: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`stored` with each FORMER_DEFAULTS field it lacks and `current` has set to what its run
  computed with."""
  plain, now = _plain(stored), _plain(current)
  for field, former in FORMER_DEFAULTS.items():
    section, key = field.split(".")
    if key not in plain.get(section, {}) and key in now.get(section, {}):
      plain.setdefault(section, {})[key] = former(plain)
  return ml_collections.ConfigDict(plain)


def differences(stored: ml_collections.ConfigDict,
                current: ml_collections.ConfigDict) -> dict[str, tuple]:
  """{dotted field: (stored value, current value)} of the fields that differ ('<absent>' if new)."""
  old, new = flatten(_plain(stored)), flatten(_plain(current))
  return {k: (old.get(k, _ABSENT), new.get(k, _ABSENT))
          for k in sorted(set(old) | set(new)) if old.get(k, _ABSENT) != new.get(k, _ABSENT)}


def _matches(field: str, prefixes: tuple[str, ...]) -> bool:
  """Whether `field` is one of `prefixes` or inside a section prefix ('model.')."""
  return any(field == p or (p.endswith(".") and field.startswith(p)) for p in prefixes)


def field_kind(field: str) -> str:
  """'shape', 'free' or 'other' (see the module docstring)."""
  if _matches(field, SHAPE_FIELDS) and field not in _COMPUTE_ONLY_MODEL_FIELDS:
    return "shape"
  return "free" if _matches(field, FREE_FIELDS) else "other"


def has_checkpoints(workdir: str) -> bool:
  """Whether `workdir` holds a checkpoint step (finished or not) to resume from."""
  for sub in CHECKPOINT_DIRS:
    folder = os.path.join(workdir, sub)
    if os.path.isdir(folder) and any(n.split(".")[0].isdigit() for n in os.listdir(folder)):
      return True
  return False


def _listing(changes: dict[str, tuple]) -> str:
  """One 'field: old -> new' line per change."""
  return "\n".join(f"  {k}: {old!r} -> {new!r}" for k, (old, new) in changes.items())


def check_resume(workdir: str, config: ml_collections.ConfigDict, allow_change: bool = False,
                 write: bool = True) -> dict[str, tuple]:
  """Checks `config` against the stored one of a resumed workdir, then stores it; returns changes.

  Raises ConfigMismatch listing the fields that may not change (module docstring). `write=False`
  (processes other than 0) checks without writing.
  """
  stored = read_config(workdir)
  stored = None if stored is None else with_former_defaults(stored, config)
  resuming = has_checkpoints(workdir)
  changes = differences(stored, config) if stored is not None and resuming else {}
  kinds = {k: "free" if old == _ABSENT else field_kind(k) for k, (old, _) in changes.items()}
  by_kind = {kind: {k: v for k, v in changes.items() if kinds[k] == kind}
             for kind in ("shape", "other", "free")}
  where = os.path.join(workdir, CONFIG_JSON)
  if by_kind["shape"]:
    raise ConfigMismatch(
        f"{workdir} holds a run whose train state has other shapes; these fields differ from its "
        f"stored config ({where}):\n{_listing(by_kind['shape'])}\nUse a new --workdir.")
  if by_kind["other"] and not allow_change:
    raise ConfigMismatch(
        f"resuming {workdir} with a config that differs from the stored one ({where}) would mix "
        f"two runs:\n{_listing(by_kind['other'])}\nUse a new --workdir, or pass "
        f"--allow_config_change to continue with the new values (recorded in {CHANGES_JSONL}).")
  if by_kind["other"]:
    logging.warning("resuming %s with changed config (--allow_config_change):\n%s", workdir,
                    _listing(by_kind["other"]))
  if by_kind["free"]:
    logging.info("resuming %s with changed bookkeeping fields:\n%s", workdir,
                 _listing(by_kind["free"]))
  if resuming and stored is None:
    logging.warning("%s has checkpoints but no stored config (an older run); storing this one",
                    workdir)
  if write and (stored is None or changes or not resuming):
    if changes:
      with open(os.path.join(workdir, CHANGES_JSONL), "a", encoding="utf-8") as f:
        f.write(json.dumps({"time": time.time(), "changes": {k: list(v) for k, v in
                                                               changes.items()}}) + "\n")
    write_config(workdir, config)
  return changes
