"""Run logs in the workdir: JSON lines of every scalar, and TensorBoard event files.

`<workdir>/metrics.jsonl` gets one record per log step, `<workdir>/evals.jsonl` one per evaluation,
`<workdir>/tensorboard/` the same scalars as event files (process 0 only), written with the
`tensorboard` package's own event writer, which needs no TensorFlow (the grain path runs where
TensorFlow is absent); without the `tensorboard` package the run says so once and writes JSON only.
On resume, records beyond the restored step are dropped, so each file reads like one run.
`<workdir>/results.jsonl` gets one row per finished step (`record_result`): rerunning a finished
run leaves its row as it is.
"""

import json
import os
import time

from absl import logging
import jax


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


def record_result(path: str, record: dict) -> bool:
  """Adds the final row `record` to results.jsonl unless a row for its step is there (process 0).

  A row for the same step with other content is replaced (the file rewritten atomically); an
  identical one is kept and nothing is written. True when the file changed.
  """
  if jax.process_index() != 0:
    return False
  line = json.dumps(record)
  rows = read_jsonl(path)
  same_step = [i for i, row in enumerate(rows) if row.get("step") == record["step"]]
  if not same_step:
    append_jsonl(path, record)
    return True
  if len(same_step) == 1 and json.dumps(rows[same_step[0]]) == line:
    logging.info("%s already holds the final row of step %d; not written again", path,
                 record["step"])
    return False
  logging.warning("%s: replacing its row(s) of step %d with this run's", path, record["step"])
  kept = [json.dumps(row) for i, row in enumerate(rows) if i not in same_step] + [line]
  temporary = f"{path}.tmp{os.getpid()}"
  with open(temporary, "w", encoding="utf-8") as f:
    f.writelines(text + "\n" for text in kept)
    f.flush()
    os.fsync(f.fileno())
  os.replace(temporary, path)
  return True


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
    if tensorboard and jax.process_index() == 0:  # other processes write nothing
      self._writer = ScalarEventWriter.create(os.path.join(workdir, "tensorboard"))

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


class ScalarEventWriter:
  """TensorBoard scalars through tensorboard's EventFileWriter (asynchronous, no TensorFlow)."""

  def __init__(self, logdir: str):
    # pylint: disable=g-import-not-at-top  (the tensorboard package is optional)
    from tensorboard.compat.proto import event_pb2
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.summary.writer import event_file_writer
    # pylint: enable=g-import-not-at-top
    self._event_pb2, self._summary_pb2 = event_pb2, summary_pb2
    self._writer = event_file_writer.EventFileWriter(logdir)

  @classmethod
  def create(cls, logdir: str) -> "ScalarEventWriter | None":
    """A writer into `logdir`, or None (said once in the log) without the tensorboard package."""
    try:
      return cls(logdir)
    except ImportError as e:
      logging.warning("TensorBoard events are not written (%s); metrics.jsonl has every scalar", e)
      return None

  def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
    """One event holding every scalar of `scalars` at `step`."""
    summary = self._summary_pb2.Summary(value=[
        self._summary_pb2.Summary.Value(tag=tag, simple_value=float(value))
        for tag, value in scalars.items()])
    self._writer.add_event(self._event_pb2.Event(step=step, wall_time=time.time(),
                                                 summary=summary))

  def flush(self) -> None:
    """Writes the queued events to disk."""
    self._writer.flush()

  def close(self) -> None:
    """Flushes and closes the event file."""
    self._writer.close()
