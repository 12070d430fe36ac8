"""Shared test settings: hypothesis profile sized for a 2-core CI machine."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "specsim",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,  # the same examples on every run: CI does not pass or fail by chance
)
settings.load_profile("specsim")
