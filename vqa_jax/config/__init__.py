"""Configuration: every field's default (config_base), configs by name (config_files), the stored config of a run (run_config)."""
