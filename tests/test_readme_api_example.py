"""README's "From Python" example runs as written (paths replaced) and scores as the API says."""

import contextlib
import io

import pytest

from tests.helpers import REPO_ROOT
from tests.video_files import random_frames
from tests.video_files import write_video


def readme_example() -> str:
  """The python block that follows the README's 'From Python:' line."""
  text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
  after = text[text.index("From Python:"):]
  start = after.index("```python\n") + len("```python\n")
  return after[start:after.index("```", start)]


@pytest.mark.slow
def test_readme_api_example_trains_and_scores(tmp_path):
  video = write_video(tmp_path / "v.avi", random_frames(20, 40, 48, seed=2))
  code = readme_example().replace("/tmp/run", str(tmp_path / "run")).replace("video.mp4", video)
  printed = io.StringIO()
  namespace = {}
  with contextlib.redirect_stdout(printed):
    exec(compile(code, "README.md", "exec"), namespace)  # pylint: disable=exec-used
  assert set(namespace["results"]) == {"test", "cross"}
  result = namespace["result"]
  assert result.clips.shape == (2, 4, 32, 32, 3) and result.quality_map.shape[0] == 2
  last_line = printed.getvalue().strip().splitlines()[-1]  # after the run's result tables
  assert last_line.split()[0] == str(result.score) and result.mos is not None
