"""Evaluation: predictions over a split (evaluate), SRCC / PLCC / KRCC / RMSE (metrics), validation hold-out and model selection (selection), result tables (report)."""
