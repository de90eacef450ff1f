"""Parity with the official FAST-VQA code: golden-file generator and its shared rules."""
