"""The Markdown of a run's Description: what a reader of the MLflow UI sees, from the same document as the terminal."""

from __future__ import annotations

from dlexp.diagnosis import Report, SplitErrors, diagnose, recommend
from dlexp.render import markdown

SIZES = {"train": 10000, "train_dev": 2000, "dev": 2000, "test": 2000}
CONFIG = {"model": {"name": "mlp", "hidden": [128, 128], "dropout": 0.0}, "trainer": {"max_epochs": 20},
          "data": {"name": "synthetic", "n_train": 10000}, "optimizer": {"name": "adam", "lr": 0.003}}


def _report(run_id="3a6eb5937bff4cc5a5a936f4474d0053", config=CONFIG):
    d = diagnose(SplitErrors(human=0.05, train=0.1078, train_dev=0.151, dev=0.156, test=0.143), sizes=SIZES)
    return Report(d, recommend(d, config), run_id=run_id, sizes=SIZES)


def _rows(text: str) -> dict[str, list[str]]:
    """Markdown table rows by their first cell."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows.setdefault(cells[0], cells[1:])  # the first table that has the row
    return rows


def test_the_description_holds_verdict_table_with_intervals_and_commands():
    report = _report()
    text = markdown.description(report.document(), title="mlp on synthetic")
    assert "**Verdict: `avoidable_bias`**" in text
    rows = _rows(text)
    assert rows["error/train"][:3] == ["10.78%", "[10.19%, 11.40%]", "10,000"]
    assert rows["gap/avoidable_bias"][1] == "[5.19%, 6.40%]" and rows["gap/avoidable_bias"][-1].startswith("**problem**")
    assert rows["gap/data_mismatch"][-1].startswith("ok")
    for action in report.actions:  # every next command, as printed in the terminal
        assert f"`{action.command}`" in text
    assert f"`dlexp next {report.run_id} N`" in text


def test_a_following_run_shows_its_lineage_and_the_comparison_first():
    doc = _report().document()
    compared = {"a": "aaaa", "b": doc["run_id"], "summary": "B lowered avoidable_bias significantly.",
                "verdicts": {"a": "avoidable_bias", "b": "variance"},
                "splits": {"dev": {"a": 0.2, "b": 0.156, "diff": -0.044, "interval": [-0.06, -0.03],
                                   "p_value": 0.0001, "method": "paired"}},
                "gaps": {"avoidable_bias": {"a": 0.1, "b": 0.0578, "diff": -0.0422, "interval": [-0.05, -0.03]}}}
    text = markdown.description(doc, follows="aaaa", action="Bigger model: double the width", compared=compared)
    assert text.index("Follows run `aaaa`") < text.index("Compared with run") < text.index("**Verdict")
    rows = _rows(text)
    assert rows["error/dev"] == ["20.00%", "15.60%", "-4.40%", "[-6.00%, -3.00%]", "0.0001", "paired"]
    assert rows["gap/avoidable_bias"][2:] == ["-4.22%", "[-5.00%, -3.00%]"]
    assert "B lowered avoidable_bias significantly." in text


def test_what_if_actions_carry_no_command_and_no_next_hint():
    text = markdown.diagnosis(_report(run_id=None, config=None).document())
    assert "dlexp train" not in text and "dlexp next" not in text
    assert "Bigger model" in text


def test_a_long_description_is_cut_to_mlflows_tag_limit_at_a_line_end():
    doc = _report().document()
    doc["notes"] = [f"note {i} " + "x" * 200 for i in range(60)]
    text = markdown.description(doc)
    assert len(text) <= markdown.MAX_CHARS
    assert text.endswith("the whole diagnosis is in diagnosis.json)")
