"""The trace contract (numpy only): what the workload side writes and the hardware side reads.

* :mod:`~specsim.trace.tracefile`: the ``.npz`` trace format, its schema, reading and validation;
* :mod:`~specsim.trace.operators`: operator templates of a decoder layer (symbolic token and KV dims);
* :mod:`~specsim.trace.architectures`: shipped architecture files (shape-only models);
* :mod:`~specsim.trace.schedule`: SHAPE-DERIVED traces from an architecture and an acceptance profile.

Both sides depend on this package; it depends on neither (``tests/test_layering.py`` checks the rule).
"""
