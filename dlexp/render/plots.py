"""The two PNG plots logged with every run; the only module that imports matplotlib."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LEVELS = ("human", "train", "train_dev", "dev", "test")


def _fmt(value: float, metric: str, *, sign: bool = False) -> str:
    """Error rates as percentages; regression errors (rmse, mae) as numbers in the target's unit."""
    if metric == "error_rate":
        return f"{value:+.2%}" if sign else f"{value:.2%}"
    return f"{value:+.4g}" if sign else f"{value:.4g}"
GAP_BETWEEN = ("avoidable_bias", "variance", "data_mismatch", "dev_overfitting")


def staircase(document: dict, path: Path) -> Path:
    """Human -> train -> train-dev -> dev -> test as steps, each gap labelled; problems in red."""
    errors = document["errors"]
    values = [errors[k] or 0.0 for k in LEVELS]  # no baseline (human None): the staircase starts at 0
    problems = set(document.get("problems", []))
    metric = document.get("metric", "error_rate")
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    xs = range(len(LEVELS))
    intervals = document.get("intervals") or {}
    for x, (level, v) in enumerate(zip(LEVELS, values)):
        ci = intervals.get(level)
        if ci and ci[0] != ci[1]:  # the 95% interval as a shaded band behind the step
            ax.fill_between([x - 0.35, x + 0.35], ci[0], ci[1], color="tab:blue", alpha=0.15, linewidth=0)
    for x, v in zip(xs, values):
        ax.hlines(v, x - 0.35, x + 0.35, color="black", linewidth=2.5)
        ax.annotate(_fmt(v, metric), (x, v), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=9)
    for i, gap in enumerate(GAP_BETWEEN):
        lo, hi = values[i], values[i + 1]
        color = "tab:red" if gap in problems else "tab:gray"
        ax.annotate("", xy=(i + 0.5, hi), xytext=(i + 0.5, lo),
                    arrowprops={"arrowstyle": "->", "color": color, "linewidth": 1.5})
        ci = intervals.get(gap)
        span = f"\n[{_fmt(ci[0], metric, sign=True)}, {_fmt(ci[1], metric, sign=True)}]" if ci else ""
        ax.text(i + 0.55, (lo + hi) / 2, f"{gap}\n{_fmt(hi - lo, metric, sign=True)}{span}", color=color,
                fontsize=8, va="center")
    ax.set_xticks(list(xs), ["human", "train", "train-dev", "dev", "test"])
    ax.set_ylabel("error rate" if metric == "error_rate" else f"{metric} (target's unit)")
    top = max(values) if max(values) > 0 else 1.0
    ax.set_ylim(min(0.0, min(values)), top * 1.25)
    ax.set_title(f"verdict: {document['verdict']}")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def curves(history: list[dict], document: dict, path: Path) -> Path:
    """Per-epoch training loss and dev error, with the human level and the final train error."""
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h.get("train_loss") for h in history], marker="o", label="train loss", color="tab:blue")
    ax.set_xlabel("epoch")
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
    right.legend(loc="upper right", fontsize=8)
    ax.set_title("training curves")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


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
    ax.set_xticks(range(k), classes)
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("dev confusion matrix")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def learning_curve(curve: dict, path: Path) -> Path:
    """Train, train-dev and dev error against training-set size (or model width), each with its 95%
    interval, the human level, and the power law fitted to the dev error extended to 10x."""
    points = curve["points"]
    sizes = [p["size"] for p in points]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for split, color in (("train", "tab:blue"), ("train_dev", "tab:purple"), ("dev", "tab:orange")):
        ys = [p["errors"][split] for p in points]
        ax.plot(sizes, ys, marker="o", color=color, label=split.replace("_", "-"))
        cis = [p["intervals"].get(split) for p in points]
        if all(cis):
            ax.fill_between(sizes, [c[0] for c in cis], [c[1] for c in cis], color=color, alpha=0.15, linewidth=0)
    ax.axhline(curve["human"], color="tab:green", linestyle="--", label="human level")
    fit = curve.get("fit")
    if fit:
        import numpy as np

        xs = np.geomspace(sizes[0], 10 * sizes[-1], 100)
        ax.plot(xs, fit["floor"] + fit["a"] * xs ** -fit["b"], color="tab:orange", linestyle=":",
                label=f"dev fit: {fit['floor']:.3f} + a·n^-{fit['b']:.2f}")
    ax.set_xscale("log")
    axis = curve.get("axis", "data")
    widths = ", ".join(curve.get("width_keys") or ["model.hidden"])
    ax.set_xlabel("training examples" if axis == "data" else f"width (sum of {widths})")
    ax.set_ylabel("error")
    helps = curve.get("more_data_helps", curve.get("bigger_model_helps"))
    question = "more data" if axis == "data" else "bigger model"
    answer = {True: "helps", False: "does not help", None: "cannot tell"}[helps]
    ax.set_title(f"learning curve over {axis}: {question} {answer}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def recipe_path(recipe: dict, path: Path) -> Path:
    """Train, train-dev and dev error with the human level along a recipe's accepted path (start, then each
    accepted change); the test error as one point, at the final model: the only one the recipe read."""
    steps = [("start", recipe["start"]["errors"])]
    for row in recipe["trail"]:
        if row.get("accepted") and row.get("errors"):
            steps.append((f"round {row['round']}\n{row['action'].split(':')[0]}", row["errors"]))
    metric = recipe.get("metric", "error_rate")
    fig, ax = plt.subplots(figsize=(max(6.0, 1.9 * len(steps) + 2), 4.4), dpi=110)
    xs = list(range(len(steps)))
    for split, color in (("train", "tab:blue"), ("train_dev", "tab:purple"), ("dev", "tab:orange")):
        ys = [e.get(split) for _, e in steps]
        ax.plot(xs, ys, marker="o", color=color, label=split.replace("_", "-"))
        for x, y in zip(xs, ys):
            ax.annotate(_fmt(y, metric), (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8, color=color)
    ax.plot(xs, [e.get("human") for _, e in steps], linestyle="--", color="tab:green", label="human level")
    final = recipe.get("final")
    if final and final["errors"].get("test") is not None:
        t = final["errors"]["test"]
        ax.plot([xs[-1]], [t], marker="*", markersize=13, linestyle="none", color="tab:red",
                label="test (final model only)")
        ax.annotate(_fmt(t, metric), (xs[-1], t), textcoords="offset points", xytext=(6, -12), fontsize=8,
                    color="tab:red")
    ax.set_xticks(xs, [label for label, _ in steps], fontsize=8)
    ax.set_xlim(-0.3, len(steps) - 0.4)
    ax.set_ylabel("error rate" if metric == "error_rate" else f"{metric} (target's unit)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"recipe: the accepted path · stopped: {recipe.get('stopped_because') or '-'}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


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
