"""The weak-to-strong protocol on arrays: no files, no llama.cpp, no tasks.

  splits.py     halves A and B by group
  inputs.py     heads' inputs, checked once (features, labels, soft targets, settings)
  losses.py     xent, product, logconf, kl, entropy, window (single-head reference formulas)
  stacked.py    training many linear heads at once
  heads.py      LinearProbe (torch) and SklearnProbe (the independent check), scikit-learn style
  methods/      the registry of weak-to-strong methods, one module per family
  protocol.py   run_protocol: ceilings, weak labels, students, per seed
  stats.py      accuracy, AUROC, PGR and its intervals
  intervals.py  paired differences (the gap, a method vs xent) and misfit
  summaries.py  per-seed scores and summaries over seeds, as the results schema's types
  prompting.py  prompting baselines: demonstrations per seed, zero/k-shot scores, prompting PGR
  label_efficiency.py  probe accuracy against the number of ground-truth labels (salience)

May import: errors, common, results (the schema it fills).
"""
