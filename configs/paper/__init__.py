"""The paper's runs (configs/paper/NAME.py:LABELS_DIR,VIDEOS_DIR)."""
