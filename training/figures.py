"""The pictures of an evaluation: a confusion matrix and a grid of the worst-predicted images.

Figures have a fixed size in pixels (no tight bounding box), so a reader and a test both know
what to expect: `confusion_figure_pixels(n_classes)` and `top_losses_figure_pixels(n, columns)`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from curation.atomic_files import atomic_path
from curation.image_io import load_rgb

DPI = 100


def confusion_figure_pixels(n_classes: int) -> tuple[int, int]:
    side = 3 + 0.6 * n_classes
    return (round(side * DPI), round(side * DPI))


def top_losses_figure_pixels(n_images: int, columns: int = 4) -> tuple[int, int]:
    rows = max(1, -(-n_images // columns))
    return (round(columns * 2.6 * DPI), round(rows * 2.9 * DPI))


def plot_confusion(matrix: np.ndarray, classes: list[str], path: Path, *, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width, height = confusion_figure_pixels(len(classes))
    figure, axes = plt.subplots(figsize=(width / DPI, height / DPI), dpi=DPI)
    axes.imshow(matrix, cmap="Blues")
    threshold = matrix.max() / 2 if matrix.size and matrix.max() else 0
    for (i, j), count in np.ndenumerate(matrix):
        axes.text(j, i, str(count), ha="center", va="center", color="white" if count > threshold else "black")
    axes.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    axes.set_title(title, fontsize=10)
    figure.subplots_adjust(left=0.25, bottom=0.25, right=0.95, top=0.9)
    return _save(figure, path)


def plot_top_losses(rows: pd.DataFrame, root: Path, path: Path, *, title: str, columns: int = 4) -> Path:
    """Thumbnails of `rows` (path, label, predicted, loss, p_<predicted>), in the order given.

    A `caption` column, when present, replaces the default "label -> predicted / loss, p" caption.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width, height = top_losses_figure_pixels(len(rows), columns)
    n_rows = max(1, -(-len(rows) // columns))
    figure, grid = plt.subplots(n_rows, columns, figsize=(width / DPI, height / DPI), dpi=DPI, squeeze=False)
    for axes in grid.flat:
        axes.axis("off")
    for axes, row in zip(grid.flat, rows.itertuples()):
        try:
            axes.imshow(load_rgb(root / row.path))
        except Exception:  # noqa: BLE001 - a file gone since the scan: say so in its cell
            axes.text(0.5, 0.5, "unreadable", ha="center", va="center")
        caption = getattr(row, "caption", None)
        if caption is None:
            confidence = getattr(row, f"p_{row.predicted}", float("nan"))
            caption = f"{row.label} -> {row.predicted}\nloss {row.loss:.2f}  p {confidence:.2f}"
        axes.set_title(caption, fontsize=8)
    if rows.empty:
        grid.flat[0].text(0.5, 0.5, "no samples", ha="center", va="center")
    figure.suptitle(title, fontsize=10)
    figure.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.85 if n_rows == 1 else 0.9, hspace=0.45)
    return _save(figure, path)


def shift_accuracy_figure_pixels() -> tuple[int, int]:
    return (8 * DPI, 4 * DPI)


def plot_shift_accuracy(figures: dict, path: Path, *, title: str) -> Path:
    """Accuracy per image set (plain first, then each shift) with its 95 % interval; plain as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(figures)
    accuracy = np.array([figures[n]["accuracy"] or 0.0 for n in names])
    low = np.array([(figures[n]["accuracy_ci95"] or [0, 0])[0] for n in names])
    high = np.array([(figures[n]["accuracy_ci95"] or [0, 0])[1] for n in names])
    width, height = shift_accuracy_figure_pixels()
    figure, axes = plt.subplots(figsize=(width / DPI, height / DPI), dpi=DPI)
    colours = ["#4c72b0"] + ["#dd8452"] * (len(names) - 1)
    axes.bar(range(len(names)), accuracy, yerr=[accuracy - low, high - accuracy], color=colours, capsize=4)
    axes.axhline(accuracy[0], color="#4c72b0", linestyle="--", linewidth=1)
    for i, value in enumerate(accuracy):
        axes.text(i, 0.02, f"{value:.0%}", ha="center", va="bottom", color="white", fontsize=9)
    axes.set_xticks(range(len(names)), names, rotation=20)
    axes.set_ylim(0, 1)
    axes.set_ylabel("accuracy (95% interval)")
    axes.set_title(title, fontsize=10)
    figure.subplots_adjust(left=0.1, right=0.98, bottom=0.2, top=0.9)
    return _save(figure, path)


def plot_shift_examples(predictions: pd.DataFrame, root: Path, images: Path, path: Path, *, rows: int = 4) -> Path:
    """The first `rows` plain images (from `root`) and their shifted copies (from `images`), one column
    per shift, each titled with the model's answer; wrong answers in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from training.shift import shifted_path

    shifts = [s for s in predictions["shift"].unique() if s != "plain"]
    plain = predictions[predictions["shift"] == "plain"].head(rows)
    by_key = {(row.shift, row.path): row for row in predictions.itertuples()}
    figure, grid = plt.subplots(max(1, len(plain)), len(shifts) + 1, dpi=DPI, squeeze=False,
                                figsize=(1.6 * (len(shifts) + 1), 1.9 * max(1, len(plain))))
    for axes in grid.flat:
        axes.axis("off")
    for r, row in enumerate(plain.itertuples()):
        cells = [("plain", root / row.path, row)]
        for shift in shifts:
            relative = shifted_path(shift, row.label, row.path)
            cells.append((shift, images / relative, by_key.get((shift, relative))))
        for axes, (name, file, found) in zip(grid[r], cells):
            if found is None:
                continue
            try:
                axes.imshow(load_rgb(file))
            except Exception:  # noqa: BLE001 - a file gone since: its cell stays blank, its title stays
                pass
            axes.set_title(f"{name}\n{found.predicted}", fontsize=7, color="black" if bool(found.correct) else "red")
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.9, wspace=0.05, hspace=0.4)
    return _save(figure, path)


def _save(figure, path: Path) -> Path:
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=DPI)
    finally:
        plt.close(figure)
    return path
