"""Synthetic online signatures for verification: writers, genuine samples, skilled forgeries, views.

- :mod:`tasks.data.signatures.lognormal` -- the sigma-lognormal generator
  (Plamondon 1995): writer templates, genuine samples with the writer's own
  and inter-session variability, skilled forgeries (the ``FORGER`` model);
- :mod:`tasks.data.signatures.views` -- the timed trajectory (recurrent
  encoders, DTW), the rendered image and the arc-length-resampled path
  (static models).

Import from the module that owns a name; this package imports nothing itself.
"""
