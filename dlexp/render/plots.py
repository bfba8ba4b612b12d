"""The PNG plots logged with runs (staircase, training curves, confusion matrix, learning curve, recipe path);
the only module that imports matplotlib.

No text is drawn on top of other text or of a step: labels that could meet are laid out apart (the staircase's
gaps in a row under its axis, a recipe's values spread at each step), legends that could cover labels sit
outside the axes. `tests/render/test_plots.py` checks every plot's text boxes.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

LEVELS = ("human", "train", "train_dev", "dev", "test")


def _fmt(value: float, metric: str, *, sign: bool = False) -> str:
    """Error rates as percentages; regression errors (rmse, mae) as numbers in the target's unit."""
    if metric == "error_rate":
        return f"{value:+.2%}" if sign else f"{value:.2%}"
    return f"{value:+.4g}" if sign else f"{value:.4g}"


def save_figure(fig, path: Path, *, layout: bool = True) -> Path:
    """Lay the figure out (unless it was laid out before its labels were placed), write it, free it."""
    if layout:
        fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


GAP_BETWEEN = ("avoidable_bias", "variance", "data_mismatch", "dev_overfitting")


def staircase(document: dict, path: Path) -> Path:
    """Human -> train -> train-dev -> dev -> test as steps, each value above its step; each gap an arrow
    between two steps, labelled in a row under the axis (small gaps would stack their labels in one place)."""
    errors = document["errors"]
    values = [errors[k] or 0.0 for k in LEVELS]  # no baseline (human None): the staircase starts at 0
    problems = set(document.get("problems", []))
    metric = document.get("metric", "error_rate")
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=110)
    intervals = document.get("intervals") or {}
    tops = []
    for x, (level, v) in enumerate(zip(LEVELS, values)):
        ci = intervals.get(level)
        if ci and ci[0] != ci[1]:  # the 95% interval as a shaded band behind the step
            ax.fill_between([x - 0.35, x + 0.35], ci[0], ci[1], color="tab:blue", alpha=0.15, linewidth=0)
        top = max(v, ci[1]) if ci else v
        tops.append(top)
        ax.hlines(v, x - 0.35, x + 0.35, color="black", linewidth=2.5)
        ax.annotate(_fmt(v, metric), (x, top), textcoords="offset points", xytext=(0, 3), ha="center",
                    va="bottom", fontsize=9)
    for i, gap in enumerate(GAP_BETWEEN):
        lo, hi = values[i], values[i + 1]
        color = "tab:red" if gap in problems else "tab:gray"
        ax.annotate("", xy=(i + 0.5, hi), xytext=(i + 0.5, lo),
                    arrowprops={"arrowstyle": "->", "color": color, "linewidth": 1.5})
        ci = intervals.get(gap)
        span = f"\n[{_fmt(ci[0], metric, sign=True)}, {_fmt(ci[1], metric, sign=True)}]" if ci else ""
        ax.annotate(f"{gap}\n{_fmt(hi - lo, metric, sign=True)}{span}", (i + 0.5, 0),
                    xycoords=("data", "axes fraction"), textcoords="offset points", xytext=(0, -24),
                    ha="center", va="top", color=color, fontsize=8)
    ax.set_xticks(range(len(LEVELS)), ["human", "train", "train-dev", "dev", "test"])
    ax.set_xlim(-0.5, len(LEVELS) - 0.5)
    ax.set_ylabel("error rate" if metric == "error_rate" else f"{metric} (target's unit)")
    top = max(tops) if max(tops) > 0 else 1.0
    ax.set_ylim(min(0.0, min(values)), top * 1.2)
    ax.set_title(f"verdict: {document['verdict']}")
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def curves(history: list[dict], document: dict, path: Path) -> Path:
    """Per-epoch training loss and dev error, with the human level and the final train error."""
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h.get("train_loss") for h in history], marker="o", label="train loss", color="tab:blue")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs only
    regression = document.get("task") == "regression"
    ax.set_ylabel("train loss (" + ("MSE, standardized target" if regression else "cross-entropy") + ")",
                  color="tab:blue")
    right = ax.twinx()
    dev = [(h["epoch"], h["dev_error"]) for h in history if "dev_error" in h]
    if dev:
        right.plot(*zip(*dev), marker="s", color="tab:orange", label="dev error")
    if document["errors"]["human"] is not None:
        right.axhline(document["errors"]["human"], color="tab:green", linestyle="--", label="human level")
    right.axhline(document["errors"]["train"], color="tab:blue", linestyle=":", label="final train error")
    metric = document.get("metric", "error_rate")
    right.set_ylabel("error rate" if metric == "error_rate" else f"{metric} (target's unit)", color="tab:orange")
    handles = [h for a in (ax, right) for h in a.get_legend_handles_labels()[0]]
    right.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.12, 1.0), fontsize=8)  # beside the plot
    ax.set_title("training curves")
    return save_figure(fig, path)


def confusion(document: dict, path: Path) -> Path:
    """The dev confusion matrix, rows = true class, columns = predicted; each cell's count written in."""
    matrix = document["analysis"]["confusion_dev"]
    classes = document["analysis"].get("classes", list(range(len(matrix))))
    k = len(matrix)
    fig, ax = plt.subplots(figsize=(1.6 + 0.55 * k, 1.2 + 0.5 * k), dpi=110)
    image = ax.imshow(matrix, cmap="Blues")
    top = max(max(row) for row in matrix) if matrix else 0
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(matrix[i][j]), ha="center", va="center", fontsize=8,
                    color="white" if matrix[i][j] > top / 2 else "black")
    long_names = max(len(str(c)) for c in classes) > 3 if classes else False
    ax.set_xticks(range(k), classes, rotation=90 if long_names else 0)
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("dev confusion matrix")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return save_figure(fig, path)


def learning_curve(curve: dict, path: Path) -> Path:
    """Train, train-dev and dev error against training-set size (or model width), each with its 95%
    interval, and the human level. The power law fitted to the dev error is drawn, extended to 10x with its
    band, only when it predicted the largest point from the others (`curve["extrapolation"]`); otherwise the
    title says there is no trend to extrapolate yet."""
    points = curve["points"]
    sizes = [p["size"] for p in points]
    fig, ax = plt.subplots(figsize=(7, 4.4), dpi=110)
    for split, color in (("train", "tab:blue"), ("train_dev", "tab:purple"), ("dev", "tab:orange")):
        ys = [p["errors"][split] for p in points]
        ax.plot(sizes, ys, marker="o", color=color, label=split.replace("_", "-"))
        cis = [p["intervals"].get(split) for p in points]
        if all(cis):
            ax.fill_between(sizes, [c[0] for c in cis], [c[1] for c in cis], color=color, alpha=0.15, linewidth=0)
    ax.axhline(curve["human"], color="tab:green", linestyle="--", label="human level")
    fit, band = curve.get("fit"), curve.get("band")
    if curve.get("extrapolation") and fit:
        import numpy as np

        xs = np.geomspace(sizes[0], 10 * sizes[-1], 100)
        ax.plot(xs, fit["floor"] + fit["a"] * xs ** -fit["b"], color="tab:orange", linestyle=":",
                label=f"dev fit: {fit['floor']:.3f} + a·n^-{fit['b']:.2f}")
        if band:
            ax.fill_between(band["sizes"], band["lo"], band["hi"], color="tab:orange", alpha=0.1, linewidth=0,
                            label="fit's 95% band")
    ax.set_xscale("log")
    axis = curve.get("axis", "data")
    widths = ", ".join(curve.get("width_keys") or ["model.hidden"])
    ax.set_xlabel("training examples" if axis == "data" else f"width (sum of {widths})")
    ax.set_ylabel("error")
    helps = curve.get("more_data_helps", curve.get("bigger_model_helps"))
    question = "more data" if axis == "data" else "bigger model"
    answer = {True: "helps", False: "does not help", None: "cannot tell"}[helps]
    title = f"learning curve over {axis}: {question} {answer}"
    if not curve.get("extrapolation"):
        title += "\nno trend to extrapolate yet"
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    return save_figure(fig, path)


def _spread(ax, labels: list[tuple[float, float, str, str]], fontsize: float) -> None:
    """Write each (x, y, text, color) to the right of its point; labels at the same x are moved apart
    vertically, as little as needed, so that none covers another. The figure must be laid out already."""
    fig = ax.figure
    fig.canvas.draw()
    gap = fontsize * 1.35 * fig.dpi / 72  # one line of text, in pixels
    for x in sorted({x for x, *_ in labels}):
        here = sorted((ax.transData.transform((x, y))[1], y, text, color)
                      for lx, y, text, color in labels if lx == x)
        placed = _apart([pixel for pixel, *_ in here], gap)
        for p, (pixel, y, text, color) in zip(placed, here):
            ax.annotate(text, (x, y), textcoords="offset pixels", xytext=(8, p - pixel), va="center",
                        fontsize=fontsize, color=color,
                        bbox={"boxstyle": "square,pad=0.05", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})


def _apart(wanted: list[float], gap: float) -> list[float]:
    """Positions at least `gap` apart, each cluster of labels pushed apart centred on where its labels belong.

    >>> _apart([0.0, 1.0, 50.0], 10.0)
    [-4.5, 5.5, 50.0]
    """
    placed: list[float] = []
    for w in wanted:  # push up
        placed.append(w if not placed else max(w, placed[-1] + gap))
    clusters, start = [], 0
    for i in range(1, len(placed) + 1):
        if i == len(placed) or placed[i] - placed[i - 1] > gap + 1e-9:
            clusters.append((start, i))
            start = i
    for a, b in clusters:  # centre each cluster on its labels' own positions
        shift = sum(placed[i] - wanted[i] for i in range(a, b)) / (b - a)
        placed[a:b] = [p - shift for p in placed[a:b]]
    for i in range(1, len(placed)):  # centring must not bring two clusters closer than one line
        placed[i] = max(placed[i], placed[i - 1] + gap)
    return placed


def recipe_path(recipe: dict, path: Path) -> Path:
    """Train, train-dev and dev error with the human level along a recipe's accepted path (start, then each
    accepted change); the test error as one point, at the final model: the only one the recipe read."""
    steps = [("start", recipe["start"]["errors"])]
    for row in recipe["trail"]:
        if row.get("accepted") and row.get("errors"):
            action = textwrap.fill(row["action"].split(":")[0], 18)
            steps.append((f"round {row['round']}\n{action}", row["errors"]))
    metric = recipe.get("metric", "error_rate")
    fig, ax = plt.subplots(figsize=(max(6.0, 1.9 * len(steps) + 3), 4.6), dpi=110)
    xs = list(range(len(steps)))
    labels = []
    for split, color in (("train", "tab:blue"), ("train_dev", "tab:purple"), ("dev", "tab:orange")):
        ys = [e.get(split) for _, e in steps]
        ax.plot(xs, ys, marker="o", color=color, label=split.replace("_", "-"))
        labels += [(x, y, _fmt(y, metric), color) for x, y in zip(xs, ys) if y is not None]
    ax.plot(xs, [e.get("human") for _, e in steps], linestyle="--", color="tab:green", label="human level")
    final = recipe.get("final")
    if final and final["errors"].get("test") is not None:
        t = final["errors"]["test"]
        ax.plot([xs[-1]], [t], marker="*", markersize=13, linestyle="none", color="tab:red",
                label="test (final model only)")
        labels.append((xs[-1], t, _fmt(t, metric), "tab:red"))
    ax.set_xticks(xs, [label for label, _ in steps], fontsize=8)
    ax.set_xlim(-0.3, len(steps) - 0.4)
    ax.set_ylabel("error rate" if metric == "error_rate" else f"{metric} (target's unit)")
    top = max(y for _, y, *_ in labels) if labels else 1.0
    ax.set_ylim(0, top * 1.15 if top > 0 else 1.0)
    ax.set_title(f"recipe: the accepted path · stopped: {recipe.get('stopped_because') or '-'}")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    fig.tight_layout()
    _spread(ax, labels, fontsize=8)
    return save_figure(fig, path, layout=False)


def draw(document: dict, history: list[dict], outdir: Path) -> list[Path]:
    paths = [staircase(document, outdir / "error_staircase.png")]
    if history:
        paths.append(curves(history, document, outdir / "training_curves.png"))
    if (document.get("analysis") or {}).get("confusion_dev"):
        paths.append(confusion(document, outdir / "confusion_dev.png"))
    if document.get("curve"):
        paths.append(learning_curve(document["curve"], outdir / f"learning_curve_{document['curve']['axis']}.png"))
    if document.get("recipe"):
        paths.append(recipe_path(document["recipe"], outdir / "recipe_path.png"))
    return paths
