"""Where a program runs: the device mesh (sharding), the multi-host runtime (distributed), program entry (entry_point), memory and progress reports."""
