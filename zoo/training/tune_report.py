"""What a `zoo tune` search leaves behind: DIR/trials.csv, DIR/best/, DIR/search.png, the summary
table and the progress lines printed while it runs."""

from __future__ import annotations

import csv
import io
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from zoo.files import atomic_dir, atomic_write, write_text

FIRST_COLUMNS = ["trial", "worker", "status", "score", "started", "finished"]


def trial_rows(snapshot: list[dict], config: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per trial: trial, worker, status, score, started, finished (unix seconds), every
    searched option (and Hyperband's epochs), error."""
    from zoo.training.tune_space import to_option

    searched = [k for k, s in config["space"].items() if s["kind"] != "fixed"]
    rows = []
    for t in snapshot:
        row: dict[str, Any] = {"trial": t["trial"], "worker": t["worker"] or "", "status": t["status"],
                               "score": _number(t["score"]) if t["status"] == "completed" else None,
                               "started": _seconds(t["started"]), "finished": _seconds(t["finished"])}
        for key in searched:
            value = t["values"].get(key)
            row[key] = to_option(key, value) if value is not None else None
        if config["search"] == "hyperband":
            row["epochs"] = t["values"].get("tuner/epochs")
        row["error"] = _error(t, config) if t["status"] in ("failed", "invalid") else ""
        rows.append(row)
    return rows


def _error(t: dict, config: dict[str, Any]) -> str:
    from zoo.training.tune_engine import read_error

    return (read_error(config, t["trial"]) if not t["message"] else "") or error_line(t["message"])


def error_line(message: str | None) -> str:
    """The one-line cause from KerasTuner's trial message (a traceback ending in the error)."""
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    if not lines:
        return "failed"
    last = lines[-1]
    marker = "FailedTrialError: "
    return last.split(marker, 1)[1] if marker in last else last


def best_row(rows: list[dict], direction: str) -> dict | None:
    done = [r for r in rows if r["status"] == "completed" and r["score"] is not None]
    if not done:
        return None
    sign = 1 if direction == "max" else -1
    return max(done, key=lambda r: (sign * r["score"], -int(r["trial"])))


def write_trials_csv(path: Path, rows: list[dict]) -> None:
    columns: list[str] = list(FIRST_COLUMNS)
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    write_text(path, buf.getvalue())


def copy_best(out: Path, trial_dir: Path) -> Path | None:
    """DIR/best/: a copy of the best trial's model directory (its checkpoint folder left out),
    replaced in one rename so that a reader sees the old best or the new one."""
    if not (trial_dir / "model.keras").exists():
        return None
    best = out / "best"
    with atomic_dir(best) as tmp:
        for src in sorted(trial_dir.rglob("*")):
            rel = src.relative_to(trial_dir)
            if rel.parts[0] == "checkpoint" or src.name.startswith(".") or not src.is_file():
                continue
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            with open(src, "rb") as fh:
                atomic_write(tmp / rel, lambda out_fh, fh=fh: shutil.copyfileobj(fh, out_fh))
    return best


def draw_search(path: Path, rows: list[dict], config: dict[str, Any]) -> Path | None:
    """search.png: the score of every trial against the time it finished (best so far as a step line,
    failed trials as red crosses), then one panel per searched option: score against its value."""
    ended = [r for r in rows if r["finished"] is not None]
    if not ended:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zoo.files import save_figure

    name, direction = config["objective"]
    searched = [k for k, s in config["space"].items() if s["kind"] != "fixed"]
    cols = min(4, max(1, len(searched)))
    option_rows = math.ceil(len(searched) / cols)
    fig = plt.figure(figsize=(4.2 * cols, 3.4 * (1 + option_rows)))
    grid = fig.add_gridspec(1 + option_rows, cols)
    ax = fig.add_subplot(grid[0, :])
    t0 = min(r["started"] for r in rows if r["started"] is not None)
    done = [r for r in ended if r["status"] == "completed" and r["score"] is not None]
    scores = [r["score"] for r in done]
    floor = min(scores) if scores else 0.0
    workers = sorted({r["worker"] for r in done})
    for worker in workers:
        mine = [r for r in done if r["worker"] == worker]
        ax.plot([(r["finished"] - t0) / 60 for r in mine], [r["score"] for r in mine], "o", label=worker)
    failed = [r for r in ended if r["status"] != "completed"]
    if failed:
        ax.plot([(r["finished"] - t0) / 60 for r in failed], [floor] * len(failed), "x", color="red", ms=9,
                label="failed")
    if done:
        order = sorted(done, key=lambda r: r["finished"])
        best, xs, ys = None, [], []
        for r in order:
            if best is None or (r["score"] > best if direction == "max" else r["score"] < best):
                best = r["score"]
            xs.append((r["finished"] - t0) / 60)
            ys.append(best)
        ax.step(xs, ys, where="post", color="black", lw=1, label="best so far")
    for r in done:
        ax.annotate(r["trial"], ((r["finished"] - t0) / 60, r["score"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xlabel("minutes since the search started")
    ax.set_ylabel(name)
    ax.set_title(f"{len(done)} completed, {len(failed)} failed ({config['search']} search)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    for i, key in enumerate(searched):
        sub = fig.add_subplot(grid[1 + i // cols, i % cols])
        spec = config["space"][key]
        points = [(r[key], r["score"]) for r in done if r.get(key) is not None]
        if spec["kind"] == "choice":
            labels = [str(v) for v in spec["values"]]
            sub.set_xticks(range(len(labels)), labels)
            sub.plot([labels.index(str(v)) if str(v) in labels else -1 for v, _ in points], [s for _, s in points], "o")
            sub.set_xlim(-0.5, len(labels) - 0.5)
        else:
            sub.plot([v for v, _ in points], [s for _, s in points], "o")
            if spec.get("log"):
                sub.set_xscale("log")
            sub.set_xlim(spec["min"], spec["max"])
        sub.set_title(key, fontsize=9)
        sub.set_ylabel(name, fontsize=8)
        sub.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path


def summary_table(rows: list[dict], config: dict[str, Any], *, best: dict | None, seconds: float,
                  workers: int, top: int = 10) -> None:
    from rich.console import Console
    from rich.table import Table

    name, direction = config["objective"]
    searched = [k for k, s in config["space"].items() if s["kind"] != "fixed"]
    failed = sum(1 for r in rows if r["status"] in ("failed", "invalid"))
    done = sum(1 for r in rows if r["status"] == "completed")
    table = Table(title=f"zoo tune -> {config['out']}: {done} completed, {failed} failed, "
                        f"{_duration(seconds)} on {workers} worker{'s' * (workers > 1)}")
    for column in ["trial", "worker", name, "time"] + searched:
        table.add_column(column, justify="right" if column in (name, "time") else "left")
    sign = -1 if direction == "max" else 1
    ranked = sorted(rows, key=lambda r: (r["score"] is None, sign * (r["score"] or 0), int(r["trial"])))
    for r in ranked[:top]:
        took = r["finished"] - r["started"] if r["finished"] and r["started"] else None
        score = f"{r['score']:.4f}" if r["score"] is not None else r["status"]
        cells = [r["trial"], r["worker"], score, _duration(took) if took is not None else ""]
        cells += [_show(r.get(k)) for k in searched]
        table.add_row(*cells, style="bold" if best is not None and r["trial"] == best["trial"] else None)
    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)  # a log keeps every column
    console.print(table)
    if len(rows) > top:
        console.print(f"({len(rows) - top} more in trials.csv)")


class Progress:
    """Progress lines while the search runs: a trial starting, a trial ending with its score, the
    trials done, the best so far and the time left."""

    def __init__(self, config: dict[str, Any], workers: int, *, verbose: int, on_end=None):
        self.config, self.workers, self.verbose, self.on_end = config, workers, verbose, on_end
        self.seen: dict[str, tuple] = {}
        self.t0 = time.time()

    def prime(self, snapshot: list[dict]) -> None:
        """Take in the trials of an earlier run (a resumed search) without announcing them."""
        for t in snapshot:
            self.seen[t["trial"]] = (t["status"], t["started"])
        if snapshot:
            rows = trial_rows(snapshot, self.config)
            ended = [r for r in rows if r["finished"] is not None]
            best = best_row(rows, self.config["objective"][1])
            line = f"resuming {self.config['out']}: {len(ended)} trials done"
            if best is not None:
                line += f", best {best['score']:.4f} (trial {best['trial']})"
            self._say(line)

    def update(self, snapshot: list[dict]) -> None:
        rows = None
        for t in snapshot:
            key = (t["status"], t["started"])
            before = self.seen.get(t["trial"])
            if before == key:
                continue
            self.seen[t["trial"]] = key
            if t["status"] == "running":
                self._say(f"trial {t['trial']} started on {t['worker']}: {self._values(t['values'])}")
            elif before is not None or t["finished"] and t["finished"] >= self.t0:
                rows = rows or trial_rows(snapshot, self.config)
                self._say(self._ended(t, rows))
                if self.on_end:
                    self.on_end(rows)

    def _ended(self, t: dict, rows: list[dict]) -> str:
        name, direction = self.config["objective"]
        took = (t["finished"] or time.time()) - (t["started"] or time.time())
        if t["status"] == "completed":
            what = f"{name} {t['score']:.4f}"
        else:
            what = f"FAILED: {_error(t, self.config)}"
        # Counted as of this trial's end, so two trials ending between two looks read 1/N then 2/N.
        now = _seconds(t["finished"]) or math.inf  # rows hold rounded times
        ended = [r for r in rows if r["finished"] is not None and r["finished"] <= now]
        best = best_row(ended, direction)
        total = int(self.config["trials"])
        line = f"trial {t['trial']} on {t['worker']} after {_duration(took)}: {what} | {len(ended)}/{total} done"
        if best is not None:
            line += f", best {best['score']:.4f} (trial {best['trial']})"
        mine = [r for r in ended if r["started"] and r["started"] >= self.t0]
        if mine and len(ended) < total:
            per_trial = sum(r["finished"] - r["started"] for r in mine) / len(mine)
            line += f", ETA {_duration(math.ceil((total - len(ended)) / self.workers) * per_trial)}"
        return line

    def _values(self, values: dict) -> str:
        searched = [k for k, s in self.config["space"].items() if s["kind"] != "fixed"]
        shown = [f"{k}={_show(values.get(k))}" for k in searched if k in values]
        if "tuner/epochs" in values:
            shown.append(f"epochs={values['tuner/epochs']}")
        return " ".join(shown)

    def _say(self, line: str) -> None:
        if self.verbose:
            print(line, flush=True)


def _number(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return round(value, 6) if math.isfinite(value) else None


def _seconds(value) -> float | None:
    return None if value is None else round(float(value), 3)


def _show(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "" if value is None else str(value)


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
