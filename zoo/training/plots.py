"""curves.png: loss and the main metric per epoch, train and validation, stage boundaries marked."""

from __future__ import annotations

from pathlib import Path


def draw_curves(rows: list[dict], path: Path) -> Path | None:
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in rows[0] if k not in ("epoch", "stage", "lr", "time") and not k.startswith("val_")]
    keys = sorted(keys, key=lambda k: (k != "loss", k))[:3]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.6), squeeze=False)
    epochs = [r["epoch"] for r in rows]
    changes = [r["epoch"] - 0.5 for prev, r in zip(rows, rows[1:]) if r.get("stage") != prev.get("stage")]
    for ax, key in zip(axes[0], keys):
        for name, style in ((key, "-o"), (f"val_{key}", "-s")):
            values = [_num(r.get(name)) for r in rows]
            if any(v is not None for v in values):
                ax.plot(epochs, [v if v is not None else float("nan") for v in values], style, ms=3, label=name)
        for x in changes:
            ax.axvline(x, color="grey", ls="--", lw=0.8)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    from zoo.files import save_figure

    save_figure(fig, path)
    plt.close(fig)
    return path


def _num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def draw_lr_find(lrs: list[float], losses: list[float], suggestion: float | None, path: Path) -> Path:
    """lr_find.png: smoothed loss against learning rate (log scale), the suggestion marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(lrs, losses)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss (smoothed)")
    if suggestion is not None:
        ax.axvline(suggestion, color="red", ls="--", lw=1)
        ax.annotate(f"suggested {suggestion:.2g}", (suggestion, max(losses)), color="red",
                    xytext=(4, -12), textcoords="offset points")
    ax.set_title("LR range test")
    ax.grid(alpha=0.3, which="both")
    if losses:  # the divergence at the end would squash the curve
        low, start = min(losses), losses[0]
        ax.set_ylim(low - 0.1 * (start - low + 1e-6), start + 0.5 * (start - low + 1e-6))
    fig.tight_layout()
    from zoo.files import save_figure

    save_figure(fig, path)
    plt.close(fig)
    return path
