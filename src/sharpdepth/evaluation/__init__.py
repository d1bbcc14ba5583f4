"""Evaluation: one evaluator for every method (:mod:`~sharpdepth.evaluation.evaluator`),
depth and boundary metrics (:mod:`~sharpdepth.evaluation.metrics`), alignment to the
ground truth (:mod:`~sharpdepth.evaluation.alignment`), classical baselines
(:mod:`~sharpdepth.evaluation.baselines`) and the benchmarks
(:mod:`~sharpdepth.evaluation.benchmarks`). The protocol is in ``docs/method.md``.
"""
