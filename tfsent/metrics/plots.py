"""Plots of metrics, as PNG bytes (for files and TensorBoard alike).

Example:

```python
png = confusion_matrix_png([[5, 1], [2, 7]], ["happy", "sad"], title="test split")
png = reliability_diagram_png({"uncalibrated": probs, "T=1.7": calibrated}, labels, title="test split")
```
"""

from __future__ import annotations

import io

import numpy as np


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (laid out tightly); the figure is closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def confusion_matrix_png(matrix, labels, title="") -> bytes:
    """A confusion matrix (rows true, columns predicted) as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(labels), 1.0 + 0.8 * len(labels)), dpi=100)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    vmax = matrix.max() if matrix.size else 0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center",
                    color="white" if matrix[i, j] > vmax / 2 else "black")
    return figure_png(fig)


def reliability_diagram_png(probabilities_by_name, labels, n_bins=15, title="") -> bytes:
    """Reliability diagram: accuracy vs confidence (top probability) in `n_bins` uniform bins
    (`sklearn.calibration.calibration_curve` on "was the top class right"), one curve per named set
    of probabilities `[N, K]`, with the diagonal of perfect calibration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve

    labels = np.asarray(labels)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfectly calibrated")
    for name, probs in probabilities_by_name.items():
        probs = np.asarray(probs)
        correct = (probs.argmax(axis=1) == labels).astype(int)
        accuracy, confidence = calibration_curve(correct, probs.max(axis=1), n_bins=n_bins, strategy="uniform")
        ax.plot(confidence, accuracy, marker="o", label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left")
    if title:
        ax.set_title(title)
    return figure_png(fig)
