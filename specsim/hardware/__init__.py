"""Hardware side: typed configs, operator tables, mapping onto the PE array and energy tables (no torch)."""
