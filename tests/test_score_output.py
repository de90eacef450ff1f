"""vqa_jax.scoring.score_output: rows durable per video, resume keys, torn lines, shards' CSV headers,
output folders made up front."""

import csv
import json
import os

import pytest

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


def test_resume_with_both_files_skips_only_what_both_hold(tmp_path):
  a, b = rows(tmp_path, ["a", "b"])
  jsonl, csv_path = tmp_path / "r.jsonl", tmp_path / "r.csv"
  with score_output.ResultFiles(str(jsonl), str(csv_path)) as files:
    files.write(a)
  with jsonl.open("a") as f:  # killed between the two files' writes of b
    f.write(json.dumps(b) + "\n")
  with score_output.ResultFiles(str(jsonl), str(csv_path), resume=True) as files:
    assert files.done == {(a["path"], a["size"], a["mtime_ns"])}


def test_an_output_folder_that_cannot_exist_is_an_error_up_front(tmp_path):
  (tmp_path / "file").write_text("")
  with pytest.raises(score_output.OutputError, match="cannot create the output folder"):
    score_output.prepare_folder(str(tmp_path / "file" / "sub" / "r.csv"))
  assert not os.path.exists(tmp_path / "file" / "sub")
