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
    values = [errors[k] for k in LEVELS]
    problems = set(document.get("problems", []))
    metric = document.get("metric", "error_rate")
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    xs = range(len(LEVELS))
    for x, v in zip(xs, values):
        ax.hlines(v, x - 0.35, x + 0.35, color="black", linewidth=2.5)
        ax.annotate(_fmt(v, metric), (x, v), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=9)
    for i, gap in enumerate(GAP_BETWEEN):
        lo, hi = values[i], values[i + 1]
        color = "tab:red" if gap in problems else "tab:gray"
        ax.annotate("", xy=(i + 0.5, hi), xytext=(i + 0.5, lo),
                    arrowprops={"arrowstyle": "->", "color": color, "linewidth": 1.5})
        ax.text(i + 0.55, (lo + hi) / 2, f"{gap}\n{_fmt(hi - lo, metric, sign=True)}", color=color, fontsize=8, va="center")
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


def draw(document: dict, history: list[dict], outdir: Path) -> list[Path]:
    paths = [staircase(document, outdir / "error_staircase.png")]
    if history:
        paths.append(curves(history, document, outdir / "training_curves.png"))
    return paths
