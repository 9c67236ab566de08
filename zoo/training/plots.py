"""Training plots: curves.png (loss, metrics and learning rate per epoch) and lr_find.png (the LR range test)."""

from __future__ import annotations

from pathlib import Path


def draw_curves(rows: list[dict], path: Path, *, best_epoch: int | None = None) -> Path | None:
    """Loss and up to two metrics (train and validation) and the learning rate, per epoch; stage
    boundaries drawn and named, the best epoch (the weights kept) marked."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    keys = [k for k in rows[0] if k not in ("epoch", "stage", "lr", "time") and not k.startswith("val_")]
    keys = sorted(keys, key=lambda k: (k != "loss", k))[:3]
    has_lr = any(_num(r.get("lr")) is not None for r in rows)
    panels = len(keys) + int(has_lr)
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 3.6), squeeze=False)
    epochs = [r["epoch"] for r in rows]
    changes = [(r["epoch"] - 0.5, prev.get("stage"), r.get("stage"))
               for prev, r in zip(rows, rows[1:]) if r.get("stage") != prev.get("stage")]
    for ax, key in zip(axes[0], keys):
        for name, style in ((key, "-o"), (f"val_{key}", "-s")):
            values = [_num(r.get(name)) for r in rows]
            if any(v is not None for v in values):
                ax.plot(epochs, [v if v is not None else float("nan") for v in values], style, ms=3, label=name)
        ax.set_title(key)
    if has_lr:
        ax = axes[0][-1]
        ax.plot(epochs, [_num(r.get("lr")) or float("nan") for r in rows], "-o", ms=3, color="tab:purple",
                label="lr (end of epoch)")
        ax.set_yscale("log")
        ax.set_title("learning rate")
    for ax in axes[0]:
        for x, before, after in changes:
            ax.axvline(x, color="grey", ls="--", lw=0.8)
            ax.annotate(f"{before} | {after}", (x, 0.03), xycoords=("data", "axes fraction"), rotation=90,
                        ha="right", va="bottom", fontsize=7, color="grey")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="tab:green", lw=1.2, alpha=0.7, label=f"best epoch {best_epoch}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
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
