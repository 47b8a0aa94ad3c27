"""Plots of metrics, as PNG bytes (for files and TensorBoard alike).

Example:

```python
png = confusion_matrix_png([[5, 1], [2, 7]], ["happy", "sad"], title="test split")
```
"""

from __future__ import annotations

import io

import numpy as np


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
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
