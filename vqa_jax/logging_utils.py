"""Run logs in the workdir: JSON lines of every scalar, TensorBoard events through clu.

`<workdir>/metrics.jsonl` gets one record per log step, `<workdir>/evals.jsonl` one per evaluation,
`<workdir>/tensorboard/` the same scalars as event files (process 0 only).
On resume, records beyond the restored step are dropped, so each file reads like one run.
"""

import json
import os

import jax
from clu import metric_writers


def append_jsonl(path: str, record: dict) -> None:
  """Appends one JSON record to a JSON-lines file (process 0 only)."""
  if jax.process_index() == 0:
    with open(path, "a", encoding="utf-8") as f:
      f.write(json.dumps(record) + "\n")


def read_jsonl(path: str) -> list[dict]:
  """The records of a JSON-lines file ([] if it does not exist); errors name file and line."""
  if not os.path.exists(path):
    return []
  records = []
  with open(path, encoding="utf-8") as f:
    for number, line in enumerate(f, start=1):
      if not line.strip():
        continue
      try:
        records.append(json.loads(line))
      except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{number}: not a JSON record: {e}") from None
  return records


def truncate_jsonl(path: str, last_step: int) -> list[dict]:
  """Drops the records with step > `last_step` (written after the checkpoint resumed from)."""
  records = read_jsonl(path)
  kept = [r for r in records if r["step"] <= last_step]
  if len(kept) != len(records) and jax.process_index() == 0:
    with open(path, "w", encoding="utf-8") as f:
      f.writelines(json.dumps(r) + "\n" for r in kept)
  return kept


def flatten_results(results: dict, prefix: str) -> dict[str, float]:
  """{split: {model: {metric: v}}} as {'prefix/split/model/metric': v}."""
  return {f"{prefix}/{split}/{model}/{name}": value
          for split, by_model in results.items() for model, values in by_model.items()
          for name, value in values.items()}


class RunLog:
  """The scalar sinks of one run: metrics.jsonl, evals.jsonl and (optionally) TensorBoard."""

  def __init__(self, workdir: str, start_step: int, tensorboard: bool = True):
    self.metrics_file = os.path.join(workdir, "metrics.jsonl")
    self.evals_file = os.path.join(workdir, "evals.jsonl")
    truncate_jsonl(self.metrics_file, start_step)
    self.evaluations = truncate_jsonl(self.evals_file, start_step)
    self._writer = None
    if tensorboard and jax.process_index() == 0:
      # clu's default writer minus its LoggingWriter: the progress line already logs the losses,
      # and a line with every scalar per log step would bury it. Other processes write nothing.
      self._writer = metric_writers.AsyncMultiWriter(
          [metric_writers.SummaryWriter(os.path.join(workdir, "tensorboard"))])

  def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
    """One training record: JSON line and TensorBoard scalars."""
    append_jsonl(self.metrics_file, {"step": step, **scalars})
    if self._writer is not None:
      self._writer.write_scalars(step, {f"train/{k}": v for k, v in scalars.items()})

  def write_evaluation(self, step: int, results: dict) -> None:
    """One evaluation {split: {model: metrics}}: JSON line and TensorBoard scalars."""
    record = {"step": step, "results": results}
    append_jsonl(self.evals_file, record)
    self.evaluations.append(record)
    if self._writer is not None:
      self._writer.write_scalars(step, flatten_results(results, "eval"))

  def close(self) -> None:
    """Flushes and closes the TensorBoard writer."""
    if self._writer is not None:
      self._writer.flush()
      self._writer.close()
      self._writer = None
