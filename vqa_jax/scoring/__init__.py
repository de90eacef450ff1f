"""Scoring videos with a trained or converted model: score, its output files, calibration, quality maps, export."""
