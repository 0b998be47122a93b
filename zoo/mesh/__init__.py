"""Shared mesh machinery: hierarchy (down/up-sampling), spiral indices, spiral convolution.

- :mod:`.sampling` — quadric decimation (``fast-simplification``) keeping a vertex subset, and
  CoMA's barycentric up-sampling matrices;
- :mod:`.spiral` — Bouritsas et al.'s spiral orderings, padded at boundaries;
- :mod:`.hierarchy` — :class:`~.hierarchy.MeshHierarchy` (levels, ``down``/``up`` sparse matrices,
  spirals), built from a template and cached per topology hash under ``cache_dir("mesh", ...)``;
- :mod:`.layers` — :class:`~.layers.SpiralConv` (gather + one matmul; CPU row blocks with a
  hand-written backward), :class:`~.layers.Resample` and the reference-style
  :class:`~.layers.NaiveSpiralConv` used as test oracle and benchmark baseline.

Nothing heavy is imported here; import the submodules.
"""
