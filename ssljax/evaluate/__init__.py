"""Evaluation of frozen representations: weighted kNN and linear probes."""

from __future__ import annotations

from ssljax.evaluate.knn import knn_predict, topk_accuracy
from ssljax.evaluate.linear import (LinearProbe, init_online_probe, linear_probe_predict,
                                    online_probe_loss, train_linear_probe)

__all__ = [
    "LinearProbe", "init_online_probe", "knn_predict", "linear_probe_predict",
    "online_probe_loss", "topk_accuracy", "train_linear_probe",
]
