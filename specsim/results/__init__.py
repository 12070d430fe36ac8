"""Results side: run configs, decoding replay over the engine, reports (no torch)."""
