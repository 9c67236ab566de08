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

    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def _num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
