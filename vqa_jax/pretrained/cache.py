"""Named models in the cache: fetched once, converted once, loaded by name.

  $VQA_JAX_CACHE/models/<name>/            (VQA_JAX_CACHE defaults to ~/.cache/vqa_jax)
    <upstream file name>                   the upstream .pth, as downloaded
    <upstream file name>.json              its SHA-256 record (download.py)
    <upstream file name>.part              an interrupted download, resumed next time
    flax/                                  converted with the entry's shipped config: an orbax
                                           tree {'params'} + config.json + source.json
    flax-<digest>/                         converted for another model config (e.g. the backbone
                                           for a training run's model), digest of its model
                                           section and seed
    *.lock                                 fcntl locks of concurrent fetches / conversions

`ensure(name)` returns the converted folder, which `Scorer.load`, `vqa-jax score --checkpoint`
and `pretrained.load_params` read like any `convert_weights` output. Conversion goes through
`convert_weights.convert` with the entry's format, whose strict check names every missing or
unexpected key and every shape mismatch. `source.json` records the upstream file's SHA-256; a
folder converted from another file is converted again. The upstream file's hash is checked on
every call while the file is in the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile

import ml_collections

from vqa_jax.config import config_files
from vqa_jax.config import run_config
from vqa_jax.convert import convert_weights
from vqa_jax.convert import state_dicts
from vqa_jax.data import cache_location
from vqa_jax.pretrained import download
from vqa_jax.pretrained import registry

MODELS_SUBDIR = "models"
CONVERTED = "flax"
SOURCE_FILE = "source.json"


def models_dir() -> str:
  """$VQA_JAX_CACHE/models (default ~/.cache/vqa_jax/models)."""
  return os.path.join(cache_location.default_cache_dir(), MODELS_SUBDIR)


def entry_dir(name: str) -> str:
  """The cache folder of the model called `name`."""
  return os.path.join(models_dir(), name)


def raw_path(entry: registry.Entry) -> str:
  """Where the upstream file of `entry` is cached."""
  return os.path.join(entry_dir(entry.name), entry.file_name)


def config_digest(config: ml_collections.ConfigDict) -> str:
  """12 hex digits naming a conversion target: the model section and the seed of `config`."""
  text = json.dumps({"model": config.model.to_dict(), "seed": config.get("seed", 0)},
                    sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:12]


def converted_path(entry: registry.Entry, config: ml_collections.ConfigDict | None = None) -> str:
  """The converted folder of `entry` for `config` (None: the entry's shipped config)."""
  folder = CONVERTED if config is None else f"{CONVERTED}-{config_digest(config)}"
  return os.path.join(entry_dir(entry.name), folder)


def fetch(name: str, offline: bool | None = None, show_progress: bool = True) -> str:
  """The cached upstream file of `name`, downloaded (from the mirror, if set) when absent.

  A download is accepted only if `state_dicts.read_state_dict` reads it (no torch needed).
  """
  entry = registry.get(name)
  return download.ensure_file(download.source_url(entry.url, entry.file_name), raw_path(entry),
                              entry.sha256, offline, show_progress, state_dicts.read_state_dict)


def _source_record(path: str) -> dict | None:
  """The source.json of a converted folder, or None when it has none."""
  try:
    with open(os.path.join(path, SOURCE_FILE)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _convert(entry: registry.Entry, raw: str, config: ml_collections.ConfigDict,
             target: str, sha256: str) -> None:
  """Converts `raw` for `config` into `target` (written beside it, then renamed into place)."""
  state_dict = state_dicts.read_state_dict(raw)
  options = convert_weights.Options(config=config, seed=int(config.get("seed", 0)))
  try:
    result = convert_weights.convert(state_dict, entry.converter, options)
  except ValueError as e:
    raise ValueError(f"{raw} ({entry.name}): {e}") from e
  staging = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.", dir=os.path.dirname(target))
  try:
    out = os.path.join(staging, "out")
    state_dicts.save_variables(out, result.variables)
    run_config.write_config(out, config)
    with open(os.path.join(out, SOURCE_FILE), "w") as f:
      json.dump({"name": entry.name, "file_name": entry.file_name, "sha256": sha256,
                 "converter": entry.converter, "filled": result.filled}, f, indent=1)
    if os.path.exists(target):
      shutil.rmtree(target)
    os.replace(out, target)
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def ensure(name: str, config: ml_collections.ConfigDict | None = None,
           offline: bool | None = None, show_progress: bool = True) -> str:
  """The converted folder of `name` for `config` (None: its shipped config); fetches and
  converts only what the cache lacks. Errors: DownloadError / OfflineError, or a ValueError
  naming the file and every mismatched key."""
  entry = registry.get(name)
  target = converted_path(entry, config)
  os.makedirs(entry_dir(name), exist_ok=True)
  with download.file_lock(target + ".lock"):
    record = _source_record(target)
    raw = raw_path(entry)
    if record is not None and not os.path.exists(raw):
      return target  # converted earlier; the upstream file was removed to save space
    raw = fetch(name, offline, show_progress)  # checks its hash
    sha256 = download.recorded(raw)["sha256"]
    if record is None or record.get("sha256") != sha256:
      _convert(entry, raw, config_files.load(entry.config) if config is None else config,
               target, sha256)
  return target


def ensure_scorer(name: str, offline: bool | None = None, show_progress: bool = True) -> str:
  """`ensure(name)` of a whole quality model; a ValueError for a backbone (no trained head)."""
  entry = registry.get(name)
  if entry.kind != registry.SCORER:
    scorers = [n for n in registry.names() if registry.get(n).kind == registry.SCORER]
    raise ValueError(f"{name} is a {entry.kind}: its VQA head is untrained, so it does not score "
                     f"videos (train from it with --config.init.pretrained={name}); scoring "
                     f"models: {', '.join(scorers)}")
  return ensure(name, offline=offline, show_progress=show_progress)


def status(name: str) -> str:
  """What the cache holds of `name`: 'converted', 'downloaded', 'partial (N bytes)' or '-'."""
  entry = registry.get(name)
  folder = entry_dir(name)
  converted = os.path.isdir(folder) and any(
      n == CONVERTED or n.startswith(CONVERTED + "-") for n in os.listdir(folder)
      if _source_record(os.path.join(folder, n)) is not None)
  if converted:
    return "converted"
  if os.path.exists(raw_path(entry)):
    return "downloaded"
  part = raw_path(entry) + ".part"
  return f"partial ({os.path.getsize(part)} bytes)" if os.path.exists(part) else "-"
