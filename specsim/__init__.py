"""specsim: a cycle-level simulator of SPEQ-style self-speculative LLM decoding.

Layout follows the data flow:

* :mod:`specsim.workload` -- real models, bit-exact number formats, capture of traces (needs torch);
* :mod:`specsim.trace`    -- the trace contract: file format, operator templates, architectures,
  SHAPE-DERIVED schedules (numpy only);
* :mod:`specsim.hardware` -- hardware configs, lowering of traces to operator tables, mapping onto
  the PE array, energy tables (no torch);
* :mod:`specsim.methods`  -- accelerator methods (FP16, SPEQ, OliVe, Tender, ...) as plug-ins;
* :mod:`specsim.engine`   -- discrete-event replay of operator tables on the PE array (Numba);
* :mod:`specsim.results`  -- run configs, decoding replays, reports, sweeps and plots.

The trace contract is the only interface between the workload side and the hardware side
(``tests/test_layering.py`` checks which package imports which).
"""

from specsim._version import __version__

__all__ = ["__version__", "sweep"]


def sweep(config, space, **kwargs):
    """Design-space sweep of a run config -> tidy pandas table (see :func:`specsim.results.sweep.sweep`).

    >>> import specsim
    >>> frame = specsim.sweep("hwconfigs/speq.yaml", {"hardware.array.rows": [32, 64], "decoding.gamma": [2, 4]},
    ...                       workers=2)                                                     # doctest: +SKIP
    """
    from specsim.results.sweep import sweep as _sweep

    return _sweep(config, space, **kwargs)
