"""Every plot dlexp draws reads at a glance: no text drawn over other text or over a step of the staircase,
for small and large gaps, regression, 2 and 20 classes, short and long learning curves and recipe paths.
The documents come from dlexp's own diagnosis (real intervals); the figures are real matplotlib figures,
measured with `get_window_extent` after drawing."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dlexp.diagnosis import Report, SplitErrors, diagnose
from dlexp.diagnosis import powerlaw
from dlexp.render import plots

SIZES = {"train": 1000, "train_dev": 2000, "dev": 2000, "test": 2000}


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions save, kept for measuring (they are still written and closed)."""
    kept = []
    save = plots.save_figure

    def keep(fig, path, **kw):
        kept.append(fig)
        return save(fig, path, **kw)

    monkeypatch.setattr(plots, "save_figure", keep)
    return kept


def _texts(fig):
    """(text, box) of every non-empty text drawn: titles, labels, tick labels in view, annotations, legends."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    FigureCanvasAgg(fig)  # closing the figure detached its canvas
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ticks = {}
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                ticks[id(tick.label1)] = ticks[id(tick.label2)] = lo - 1e-9 <= tick.get_loc() <= hi + 1e-9
    out = []
    for t in fig.findobj(Text):
        if t.get_visible() and t.get_text().strip() and ticks.get(id(t), True):
            out.append((t.get_text(), t.get_window_extent(renderer)))
    return out


def _overlap(a, b, slack: float = 1.0) -> bool:
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > slack) and (min(a.y1, b.y1) - max(a.y0, b.y0) > slack)


def assert_no_text_overlaps(fig, bars=()):
    texts = _texts(fig)
    assert texts
    for (ta, a), (tb, b) in itertools.combinations(texts, 2):
        assert not _overlap(a, b), f"{ta!r} drawn over {tb!r}"
    for text, box in texts:
        for bar in bars:
            assert not _overlap(box, bar, slack=0.0), f"{text!r} drawn over a step at {bar}"


def _steps(fig):
    """The staircase's steps (its horizontal bars) as display boxes, as thick as drawn."""
    from matplotlib.collections import LineCollection
    from matplotlib.transforms import Bbox

    ax = fig.axes[0]
    boxes = []
    for coll in ax.collections:
        if isinstance(coll, LineCollection):
            half = coll.get_linewidth()[0] * fig.dpi / 72 / 2
            for seg in coll.get_segments():
                (x0, y0), (x1, y1) = ax.transData.transform(seg)
                boxes.append(Bbox([[x0, y0 - half], [x1, y1 + half]]))
    assert len(boxes) == 5
    return boxes


def _document(errors, *, metric="error_rate", task="classification", analysis=None, human_known=True):
    d = diagnose(SplitErrors(*errors), sizes=SIZES, human_known=human_known)
    return Report(d, (), run_id="r", sizes=SIZES, task=task, metric=metric, analysis=analysis).document()


STAIRS = {
    "default-run": (0.05, 0.507, 0.5655, 0.5745, 0.588),  # the default run's small gaps at the top
    "large-gaps": (0.01, 0.05, 0.30, 0.60, 0.90),
    "no-gaps": (0.2, 0.2, 0.2, 0.2, 0.2),
    "tiny-errors": (0.0, 0.001, 0.002, 0.0025, 0.003),
    "mismatch": (0.01, 0.012, 0.015, 0.40, 0.41),
}


@pytest.mark.parametrize("errors", STAIRS.values(), ids=STAIRS.keys())
def test_staircase_labels_are_apart(tmp_path, figures, errors):
    plots.staircase(_document(errors), tmp_path / "s.png")
    assert_no_text_overlaps(figures[0], bars=_steps(figures[0]))


def test_staircase_of_a_regression_and_without_baseline(tmp_path, figures):
    regression = diagnose(SplitErrors(0.0, 12.31, 13.02, 13.4, 13.45), sizes=SIZES, tolerance=0.5)
    plots.staircase(Report(regression, (), sizes=SIZES, task="regression", metric="rmse").document(),
                    tmp_path / "r.png")
    plots.staircase(_document((0.0, 0.30, 0.305, 0.31, 0.32), human_known=False), tmp_path / "n.png")
    for fig in figures:
        assert_no_text_overlaps(fig, bars=_steps(fig))


@pytest.mark.parametrize("epochs", [2, 7, 60])
def test_training_curves_show_whole_epochs(tmp_path, figures, epochs):
    history = [{"epoch": e, "train_loss": 1.0 / e, "dev_error": 0.5 - 0.1 / e} for e in range(1, epochs + 1)]
    plots.curves(history, _document(STAIRS["default-run"]), tmp_path / "c.png")
    fig = figures[0]
    assert_no_text_overlaps(fig)
    ax = fig.axes[0]
    shown = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert shown and all(float(t).is_integer() for t in shown), shown


@pytest.mark.parametrize("names", [[0, 1], list(range(20)), [f"class_{i:02d}" for i in range(20)],
                                   ["cat", "dog"]], ids=["2", "20", "20-named", "2-named"])
def test_confusion_matrix_labels_are_apart(tmp_path, figures, names):
    k = len(names)
    rng = np.random.default_rng(0)
    matrix = (rng.integers(0, 40, (k, k)) + np.eye(k, dtype=int) * 900).tolist()
    doc = _document(STAIRS["default-run"], analysis={"confusion_dev": matrix, "classes": names})
    plots.confusion(doc, tmp_path / "m.png")
    assert_no_text_overlaps(figures[0])


def _curve(sizes, dev, intervals, human=0.05):
    verdict = powerlaw.judge(sizes, dev, tolerance=0.01, human=human, dev_intervals=intervals,
                             train=[d - 0.02 for d in dev])
    points = [{"size": s, "errors": {"train": d - 0.02, "train_dev": d - 0.01, "dev": d},
               "intervals": {"dev": list(ci)}} for s, d, ci in zip(sizes, dev, intervals)]
    return {"axis": "data", "points": points, "human": human, "more_data_helps": verdict["helps"], **{
        k: verdict[k] for k in ("extrapolation", "fit", "band", "why", "check")}}


def test_learning_curve_extrapolates_only_a_trend_that_held_out(tmp_path, figures):
    n = np.array([1000, 2000, 4000, 8000, 16000])
    law = 0.05 + 4.0 * n ** -0.5
    trend = _curve(n, law, [(d - 0.01, d + 0.01) for d in law])
    assert trend["extrapolation"] and trend["check"]["ok"]
    lo, hi = trend["extrapolation"]["10x_interval"]
    assert lo <= trend["extrapolation"]["10x"] <= hi
    # the case: four points, the last one far below what the three before predict
    dev = [0.5525, 0.518, 0.4585, 0.3075]
    cis = [(0.5306, 0.5742), (0.4961, 0.5398), (0.4368, 0.4804), (0.2877, 0.3281)]
    broken = _curve([2000, 4000, 8000, 16000], dev, cis)
    assert broken["extrapolation"] is None and broken["more_data_helps"] is None
    assert broken["why"].startswith("no trend to extrapolate yet")
    plots.learning_curve(trend, tmp_path / "t.png")
    plots.learning_curve(broken, tmp_path / "b.png")
    drawn_fit = [any(line.get_linestyle() == ":" for line in fig.axes[0].lines) for fig in figures]
    assert drawn_fit == [True, False]
    assert "no trend to extrapolate yet" in figures[1].axes[0].get_title()
    for fig in figures:
        assert_no_text_overlaps(fig)


def _recipe(steps, test):
    trail = [{"round": i, "action": action, "accepted": True, "errors": dict(zip(("train", "train_dev", "dev", "human"), e))}
             for i, (action, e) in enumerate(steps[1:], 1)]
    return {"start": {"errors": dict(zip(("train", "train_dev", "dev", "human"), steps[0][1]))}, "trail": trail,
            "final": {"errors": {"test": test}}, "metric": "error_rate", "stopped_because": "within tolerance"}


RECIPES = {
    "close-values": ([("start", (0.5815, 0.5950, 0.5950, 0.05)),
                      ("Bigger model: double the width", (0.42, 0.423, 0.425, 0.05))], 0.4230),
    "long-path": ([("start", (0.30, 0.31, 0.33, 0.05))]
                  + [(f"Tune the learning rate: sweep {i}", (0.30 - 0.02 * i, 0.31 - 0.02 * i, 0.33 - 0.02 * i, 0.05))
                     for i in range(1, 7)], 0.21),
}


@pytest.mark.parametrize("steps, test", RECIPES.values(), ids=RECIPES.keys())
def test_recipe_path_values_are_apart(tmp_path, figures, steps, test):
    plots.recipe_path(_recipe(steps, test), tmp_path / "p.png")
    assert_no_text_overlaps(figures[0])
