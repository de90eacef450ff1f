"""The demo's promise (slow, run with `-m slow`): SRCC >= 0.8 on synthetic domain-A test."""

import pytest

from tests.helpers import load_config
from vqa_jax.training import trainer


@pytest.mark.slow
def test_demo_reaches_srcc_08_on_domain_a_test(tmp_path, monkeypatch):
  monkeypatch.setenv("VQA_JAX_CACHE", str(tmp_path / "cache"))
  results = trainer.train(load_config("demo"), str(tmp_path / "work"))
  assert results["test"]["raw"]["srcc"] >= 0.8
  assert results["test"]["ema"]["srcc"] >= 0.8
