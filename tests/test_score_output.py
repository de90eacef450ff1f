"""vqa_jax.scoring.score_output: rows durable per video, resume keys, torn lines, shards' CSV headers,
output folders made up front; never truncated, one writer per file, the CSV rebuilt from the JSONL,
rows of another checkpoint refused (vqa_jax.scoring.output_lock, vqa_jax.scoring.provenance)."""

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import REPO_ROOT
from vqa_jax.scoring import provenance
from vqa_jax.scoring import score_output


def rows(tmp_path, names):
  """Result rows of real files named `names` in tmp_path (one failure: 'bad')."""
  out = []
  for name in names:
    path = tmp_path / name
    path.write_bytes(b"x" * (len(name) + 3))
    _, size, mtime_ns = score_output.file_key(str(path))
    row = {"path": str(path), "size": size, "mtime_ns": mtime_ns}
    row.update({"error": "VideoDecodeError: cannot open"} if name == "bad" else
               {"score": 0.25, "mos": 3.5, "score_01": 0.625})
    out.append(row)
  return out


def test_rows_are_on_disk_after_each_write_and_failures_keep_their_reason(tmp_path):
  jsonl, csv_path = tmp_path / "deep" / "er" / "r.jsonl", tmp_path / "c" / "r.csv"
  files = score_output.ResultFiles(str(jsonl), str(csv_path))
  assert jsonl.parent.is_dir() and csv_path.parent.is_dir()  # made when opened
  good, bad = rows(tmp_path, ["good", "bad"])
  files.write(good)
  assert json.loads(jsonl.read_text()) == good  # readable before close
  files.write(bad)
  table = list(csv.DictReader(csv_path.open()))
  assert [r["path"] for r in table] == [good["path"], bad["path"]]
  assert table[0]["mos"] == "3.5" and table[0]["error"] == ""
  assert table[1]["error"] == "VideoDecodeError: cannot open" and table[1]["score"] == ""
  files.close()


def test_resume_cuts_a_torn_line_and_knows_the_done_files(tmp_path):
  a, b, c = rows(tmp_path, ["a", "b", "c"])
  jsonl = tmp_path / "r.jsonl"
  with score_output.ResultFiles(str(jsonl), None) as files:
    files.write(a)
    files.write(b)
  with jsonl.open("a") as f:
    f.write(json.dumps(c)[:17])  # killed mid-line
  with score_output.ResultFiles(str(jsonl), None, resume=True) as files:
    assert files.done == {(a["path"], a["size"], a["mtime_ns"]),
                          (b["path"], b["size"], b["mtime_ns"])}
    assert score_output.pending([a["path"], b["path"], c["path"]], files.done) == [c["path"]]
    files.write(c)
  assert [json.loads(line)["path"] for line in jsonl.read_text().splitlines()] == [
      a["path"], b["path"], c["path"]]


def test_a_changed_file_is_scored_again(tmp_path):
  (a,) = rows(tmp_path, ["a"])
  done = {(a["path"], a["size"], a["mtime_ns"])}
  assert score_output.pending([a["path"]], done) == []
  (tmp_path / "a").write_bytes(b"longer content now")
  assert score_output.pending([a["path"]], done) == [a["path"]]


def test_shard_csvs_concatenate_under_one_header(tmp_path):
  a, b = rows(tmp_path, ["a", "b"])
  for index, row in enumerate((a, b)):
    with score_output.ResultFiles(None, str(tmp_path / f"s{index}.csv"),
                                  write_header=index == 0) as files:
      files.write(row)
  merged = (tmp_path / "s0.csv").read_text() + (tmp_path / "s1.csv").read_text()
  table = list(csv.DictReader(merged.splitlines()))
  assert [r["path"] for r in table] == [a["path"], b["path"]]


def key(row):
  """(path, size, mtime_ns) of a row."""
  return row["path"], row["size"], row["mtime_ns"]


def csv_paths(path):
  """The paths of a CSV result file's rows, in order."""
  return [r["path"] for r in csv.DictReader(path.open(newline=""))]


def test_resume_after_a_kill_between_the_two_writes_rebuilds_the_csv_from_the_jsonl(tmp_path):
  a, b, c = rows(tmp_path, ["a", "b", "c"])
  jsonl, csv_path = tmp_path / "r.jsonl", tmp_path / "r.csv"
  with score_output.ResultFiles(str(jsonl), str(csv_path)) as files:
    files.write(a)
  with jsonl.open("a") as f:  # killed between the two files' writes of b
    f.write(json.dumps(b) + "\n")
  with score_output.ResultFiles(str(jsonl), str(csv_path), resume=True) as files:
    assert files.done == {key(a), key(b)}  # the JSONL is the record
    assert csv_paths(csv_path) == [a["path"], b["path"]]  # rebuilt before anything is appended
    files.write(c)
  assert [json.loads(line)["path"] for line in jsonl.read_text().splitlines()] == [
      a["path"], b["path"], c["path"]]
  assert csv_paths(csv_path) == [a["path"], b["path"], c["path"]]  # one row per video in both


def test_a_file_holding_rows_is_refused_without_resume_and_left_as_it_was(tmp_path):
  table = rows(tmp_path, [f"v{i}" for i in range(38)])
  jsonl, csv_path = tmp_path / "r.jsonl", tmp_path / "r.csv"
  with score_output.ResultFiles(str(jsonl), str(csv_path)) as files:
    for row in table:
      files.write(row)
  before = jsonl.read_bytes(), csv_path.read_bytes()
  for paths in ((jsonl, None), (None, csv_path), (jsonl, csv_path)):
    with pytest.raises(score_output.OutputExists,
                       match=r"r\.(jsonl|csv) already holds 38 result rows.*add --resume"):
      score_output.ResultFiles(*[str(p) if p else None for p in paths])
  assert (jsonl.read_bytes(), csv_path.read_bytes()) == before
  assert not os.path.exists(f"{jsonl}.lock")  # released after the refusal
  with score_output.ResultFiles(str(jsonl), str(csv_path), resume=True) as files:
    assert files.done == {key(row) for row in table}
  assert (jsonl.read_bytes(), csv_path.read_bytes()) == before


def test_files_holding_no_rows_are_reused_without_resume(tmp_path):
  (a,) = rows(tmp_path, ["a"])
  jsonl, csv_path = tmp_path / "r.jsonl", tmp_path / "r.csv"
  jsonl.write_text('{"path": "torn')  # a torn line alone
  csv_path.write_text(",".join(score_output.CSV_FIELDS) + "\n")  # a header alone
  with score_output.ResultFiles(str(jsonl), str(csv_path)) as files:
    assert files.done == set()
    files.write(a)
  assert [json.loads(line) for line in jsonl.read_text().splitlines()] == [a]
  assert csv_paths(csv_path) == [a["path"]]


def test_a_csv_with_rows_the_jsonl_lacks_is_refused(tmp_path):
  a, b = rows(tmp_path, ["a", "b"])
  jsonl, csv_path = tmp_path / "r.jsonl", tmp_path / "r.csv"
  with score_output.ResultFiles(None, str(csv_path)) as files:
    files.write(a)
    files.write(b)
  before = csv_path.read_bytes()
  with pytest.raises(score_output.OutputError, match=r"r\.csv holds 2 rows that .*r\.jsonl lacks"):
    score_output.ResultFiles(str(jsonl), str(csv_path), resume=True)
  assert csv_path.read_bytes() == before


def test_a_second_writer_is_refused_while_the_first_holds_the_file(tmp_path):
  a, b = rows(tmp_path, ["a", "b"])
  jsonl = tmp_path / "r.jsonl"
  with score_output.ResultFiles(str(jsonl), None) as first:
    first.write(a)
    for resume in (False, True):
      with pytest.raises(score_output.OutputLocked) as error:
        score_output.ResultFiles(str(jsonl), None, resume=resume)
      message = str(error.value)
      assert f"{jsonl} is being written by another score process (pid {os.getpid()} on" in message
      assert f"lock {jsonl}.lock" in message and "\n" not in message
    first.write(b)  # the first writer is unaffected
  with score_output.ResultFiles(str(jsonl), None, resume=True) as files:  # free again
    assert files.done == {key(a), key(b)}


def test_a_writer_in_another_process_holds_the_file_until_it_ends(tmp_path):
  jsonl = tmp_path / "r.jsonl"
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys, time; from vqa_jax.scoring import output_lock; "
       "lock = output_lock.OutputLock(sys.argv[1]); lock.acquire(); print('held', flush=True); "
       "time.sleep(60)", str(jsonl)],
      cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(score_output.OutputLocked, match=f"pid {holder.pid} on host"):
      score_output.ResultFiles(str(jsonl), None)
  finally:
    holder.send_signal(signal.SIGKILL)  # its lock file stays behind, unlocked
    holder.wait()
  assert os.path.exists(f"{jsonl}.lock")
  with score_output.ResultFiles(str(jsonl), None) as files:  # taken at once, no stale wait
    assert files.done == set()


def test_rows_of_another_checkpoint_or_config_are_refused_unless_allowed(tmp_path):
  a, b = rows(tmp_path, ["a", "b"])
  ours = provenance.fields("/runs/one", "1111111111111111", "cccccccccccccccc")
  theirs = provenance.fields("/runs/two", "2222222222222222", "cccccccccccccccc")
  jsonl = tmp_path / "r.jsonl"
  with score_output.ResultFiles(str(jsonl), None) as files:
    files.write({**a, **theirs})
  with score_output.ResultFiles(str(jsonl), None, resume=True) as files:
    with pytest.raises(score_output.MixedCheckpoints) as error:
      files.check_provenance(ours)
    assert ("holds 1 of 1 rows from another checkpoint (first: checkpoint /runs/two "
            "(digest 2222222222222222), config digest cccccccccccccccc; this run: checkpoint "
            "/runs/one (digest 1111111111111111)") in str(error.value)
    assert "--allow_mixed_checkpoints" in str(error.value)
    files.check_provenance(ours, allow_mixed=True)
    files.check_provenance(dict(theirs, checkpoint="/moved/two"))  # same weights, other path
    files.write({**b, **ours})
  legacy = tmp_path / "legacy.jsonl"
  legacy.write_text(json.dumps(a) + "\n")  # a row from before rows recorded their checkpoint
  with score_output.ResultFiles(str(legacy), None, resume=True) as files:
    with pytest.raises(score_output.MixedCheckpoints,
                       match="another checkpoint and config .first: no checkpoint recorded"):
      files.check_provenance(ours)
    files.check_provenance(ours, allow_mixed=True)


def test_a_csv_alone_is_its_own_record_also_without_a_header(tmp_path):
  a, b, c = rows(tmp_path, ["a", "b", "c"])
  shard1 = tmp_path / "s1.csv"
  with score_output.ResultFiles(None, str(shard1), write_header=False) as files:
    files.write(a)
    files.write(b)
  with shard1.open("a") as f:
    f.write(score_output.csv_line(c)[:9])  # torn
  with score_output.ResultFiles(None, str(shard1), resume=True, write_header=False) as files:
    assert files.done == {key(a), key(b)}  # the first row is a row, not a header
  assert shard1.read_bytes() == (score_output.csv_line(a) + score_output.csv_line(b)).encode()


def test_file_names_that_are_not_utf8_round_trip(tmp_path):
  name = os.fsdecode(b"caf\xe9.mp4")  # a Latin-1 name: a surrogate escape in Python
  (tmp_path / name).write_bytes(b"xyz")
  row = {"path": str(tmp_path / name), "error": "VideoDecodeError: cannot open"}
  row.update(zip(("size", "mtime_ns"), score_output.file_key(row["path"])[1:]))
  jsonl, csv_path = tmp_path / "r.jsonl", tmp_path / "r.csv"
  with score_output.ResultFiles(str(jsonl), str(csv_path)) as files:
    files.write(row)
  assert b"caf\xe9.mp4" in csv_path.read_bytes()  # the name's own bytes
  with score_output.ResultFiles(str(jsonl), str(csv_path), resume=True) as files:
    assert score_output.pending([row["path"]], files.done) == []
  assert csv_path.read_bytes().count(b"caf\xe9.mp4") == 1  # CSV not rewritten differently


def test_a_damaged_line_is_named(tmp_path):
  (a,) = rows(tmp_path, ["a"])
  jsonl = tmp_path / "r.jsonl"
  jsonl.write_text(json.dumps(a) + "\n{oops\n" + json.dumps(a) + "\n")
  with pytest.raises(score_output.OutputError, match=r"r\.jsonl:2: not a JSON result row"):
    score_output.ResultFiles(str(jsonl), None, resume=True)


def test_tree_digest_is_sha256_over_paths_dtypes_shapes_and_bytes():
  tree = {"b": np.arange(3, dtype=np.float32), "a": {"k": np.ones((2, 1), np.int8)}}
  by_hand = hashlib.sha256(b"['a']['k']|" + b"|i1|(2, 1)|" + b"\x01\x01" + b"['b']|<f4|(3,)|"
                           + np.arange(3, dtype=np.float32).tobytes() + b"null").hexdigest()[:16]
  assert provenance.tree_digest(tree) == by_hand
  changed = {"b": np.array([0, 1, 2.5], np.float32), "a": tree["a"]}
  assert provenance.tree_digest(changed) != by_hand
  assert provenance.tree_digest(tree, {"beta": [1, 2]}) != by_hand


def test_an_output_folder_that_cannot_exist_is_an_error_up_front(tmp_path):
  (tmp_path / "file").write_text("")
  with pytest.raises(score_output.OutputError, match="cannot create the output folder"):
    score_output.prepare_folder(str(tmp_path / "file" / "sub" / "r.csv"))
  assert not os.path.exists(tmp_path / "file" / "sub")
