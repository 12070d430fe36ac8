"""specsim: a cycle-level simulator of SPEQ-style self-speculative LLM decoding.

Layout follows the data flow:

* :mod:`specsim.workload` -- real models, bit-exact number formats, traces (needs torch);
* :mod:`specsim.hardware` -- hardware configs, components and energy tables (no torch);
* :mod:`specsim.engine`   -- discrete-event replay of traces on the PE array (no torch);
* :mod:`specsim.results`  -- reports, sweeps and plots (no torch).

The trace file is the only interface between the workload side and the hardware side.
"""

__version__ = "0.1.0"


def sweep(config, space, **kwargs):
    """Design-space sweep of a run config -> tidy pandas table (see :func:`specsim.results.sweep.sweep`).

    >>> import specsim
    >>> frame = specsim.sweep("hwconfigs/speq.yaml", {"hardware.array.rows": [32, 64], "decoding.gamma": [2, 4]},
    ...                       workers=2)                                                     # doctest: +SKIP
    """
    from specsim.results.sweep import sweep as _sweep

    return _sweep(config, space, **kwargs)
