"""Flax Linen models: Video Swin backbone, VQA head and the model factory."""
