"""Workload side (needs torch): real models, bit-exact number formats, speculative decoding and the
capture that writes traces in the format of :mod:`specsim.trace`."""
