"""A timeline as a picture: emotion probabilities (or valence / arousal) over time, speech shaded.

Example:

```python
png = timeline_png(result)                 # result of tfsent.export.timeline.timeline
files.write_bytes("call.png", png)
```
"""

from __future__ import annotations

from tfsent.metrics.plots import figure_png


def timeline_png(result, title="") -> bytes:
    """PNG bytes: one line per class (probability at each window's centre), VAD speech regions shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    segments = result["segments"]
    centres = [(s["start"] + s["end"]) / 2 for s in segments]
    fig, ax = plt.subplots(figsize=(max(6.0, min(24.0, result["duration"] / 10)), 3.2), dpi=100)
    for start, end in result["speech_regions"]:
        ax.axvspan(start, end, color="0.88", lw=0, label="_speech")
    if segments and "probabilities" in segments[0]:
        for name in segments[0]["probabilities"]:
            ax.plot(centres, [s["probabilities"][name] for s in segments], lw=1.2, label=name)
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
    else:
        for key in ("valence", "arousal"):
            if segments and key in segments[0]:
                ax.plot(centres, [s[key] for s in segments], lw=1.2, label=key)
        ax.set_ylabel("value")
    ax.set_xlim(0, result["duration"])
    ax.set_xlabel("seconds (grey: speech)")
    ax.legend(loc="upper right", fontsize="small", ncol=4)
    if title:
        ax.set_title(title)
    return figure_png(fig)
