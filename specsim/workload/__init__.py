"""Workload side: real models, bit-exact number formats and traces (needs torch)."""
