"""Metric definitions (WA, UA, F1, CCC, ...) and their plots, defined once for training, evaluation
and every report. A bottom layer: numpy / scikit-learn / matplotlib only, no TensorFlow.

- `tfsent.metrics.definitions`: `classification_metrics`, `regression_metrics` and their edge cases.
- `tfsent.metrics.calibration`: temperature scaling, ECE / Brier / NLL before and after, coverage.
- `tfsent.metrics.plots`: the confusion-matrix and reliability-diagram PNGs.
"""
