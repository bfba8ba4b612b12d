"""Real (tiny) runs: pre-train a language model on unlabelled text, start a classifier from it, freeze its
body; refuse a run whose weights or tokens fit nothing; images with augmentation, and a corrupt one."""

from __future__ import annotations

import json
import re

import pytest
import torch
from typer.testing import CliRunner

from conftest import one_error_line

from dlexp.cli import app
from dlexp.data.examples import write_reviews

pytestmark = pytest.mark.slow

TINY_GRU = ["model=gru", "model.embed=8", "model.hidden_size=16", "trainer.max_epochs=1"]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def client(runs):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{runs}/mlflow.db")


def named(runs, name):
    c = client(runs)
    ids = [e.experiment_id for e in c.search_experiments()]
    (run,) = c.search_runs(ids, filter_string=f"attributes.run_name = '{name}'")
    return run


def weights(runs, run_id, tmp_path):
    path = client(runs).download_artifacts(run_id, "checkpoints/last.ckpt", str(tmp_path / run_id))
    return torch.load(path, weights_only=True)["state_dict"]


def artifact_json(runs, run_id, name, tmp_path):
    return json.loads(open(client(runs).download_artifacts(run_id, name, str(tmp_path / run_id))).read())


@pytest.fixture(scope="module")
def pretrained(module_runs_dir, tmp_path_factory):
    """A next-token model pre-trained on unlabelled reviews, then a classifier started from it."""
    files = write_reviews(tmp_path_factory.mktemp("reviews"), labelled=300, unlabelled=300)
    lm = invoke("train", "data=text", f"data.path={files['unlabelled']}", "data.task=lm", "data.max_length=24",
                *TINY_GRU, "tracking.run_name=lm")
    assert lm.exit_code == 0, lm.output
    lm_run = named(module_runs_dir, "lm")
    common = ["data=text", f"data.path={files['labelled']}", "data.max_length=24", "baseline.human_error=0.05",
              *TINY_GRU, f"model.init_from={lm_run.info.run_id}"]
    tuned = invoke("train", *common, "tracking.run_name=tuned")
    assert tuned.exit_code == 0, tuned.output
    frozen = invoke("train", *common, "model.freeze=body", "tracking.run_name=frozen")
    assert frozen.exit_code == 0, frozen.output
    return {"runs": module_runs_dir, "files": files, "lm": lm_run, "tuned": named(module_runs_dir, "tuned"),
            "frozen": named(module_runs_dir, "frozen"), "output": tuned.stdout, "common": common}


def test_lm_run_scores_next_tokens_and_keeps_its_tokenizer(pretrained, tmp_path):
    run = pretrained["lm"]
    assert run.info.status == "FINISHED" and run.data.tags["dlexp.task"] == "lm"
    assert 0 < run.data.metrics["error/train"] < 1 and run.data.metrics["error/human"] == 0
    desc = artifact_json(pretrained["runs"], run.info.run_id, "preprocessing/preprocessing.json", tmp_path)
    assert desc["task"] == "lm" and desc["tokenizer"] == "bpe"
    assert weights(pretrained["runs"], run.info.run_id, tmp_path)["net.head.weight"].shape[0] == desc["vocab"]


def test_fine_tune_reuses_the_tokenizer_and_gets_a_new_head(pretrained, tmp_path):
    lm, tuned = pretrained["lm"], pretrained["tuned"]
    assert tuned.data.tags["dlexp.init_from"] == lm.info.run_id
    ours = artifact_json(pretrained["runs"], tuned.info.run_id, "preprocessing/preprocessing.json", tmp_path)
    theirs = artifact_json(pretrained["runs"], lm.info.run_id, "preprocessing/preprocessing.json", tmp_path)
    assert ours["tokenizer_fingerprint"] == theirs["tokenizer_fingerprint"] and ours["vocab"] == theirs["vocab"]
    doc = artifact_json(pretrained["runs"], tuned.info.run_id, "diagnosis.json", tmp_path)
    start = doc["init_from"]
    assert start["run_id"] == lm.info.run_id and start["new"] == ["head.weight", "head.bias"]
    assert start["loaded"] == start["total"] - 2 and start["tokenizer"] is True
    assert f"started from run {lm.info.run_id}" in pretrained["output"]


def test_freezing_trains_only_the_head(pretrained, tmp_path):
    before = weights(pretrained["runs"], pretrained["lm"].info.run_id, tmp_path)
    frozen = weights(pretrained["runs"], pretrained["frozen"].info.run_id, tmp_path)
    tuned = weights(pretrained["runs"], pretrained["tuned"].info.run_id, tmp_path)
    body = [k for k in frozen if not k.startswith("net.head.")]
    assert body and all(torch.equal(frozen[k], before[k]) for k in body)       # untouched
    assert not all(torch.equal(tuned[k], before[k]) for k in body)             # fine-tuned all through
    doc = artifact_json(pretrained["runs"], pretrained["frozen"].info.run_id, "diagnosis.json", tmp_path)
    assert doc["init_from"]["frozen"]["trainable"] == frozen["net.head.weight"].numel() + frozen["net.head.bias"].numel()


@pytest.fixture(scope="module")
def images(module_runs_dir, tmp_path_factory):
    from dlexp.data import examples

    shapes = tmp_path_factory.mktemp("img") / "shapes"
    examples.main(["shapes", str(shapes), "--per-class", "10", "--size", "16"])  # as the README does
    ok = invoke("train", "data=images", f"data.path={shapes}", "data.image_size=16", "data.augment=true",
                "model=cnn", "model.channels=[4]", "trainer.max_epochs=1", "baseline.human_error=0.0",
                "tracking.run_name=images")
    assert ok.exit_code == 0, ok.output
    return {"shapes": shapes, "run": named(module_runs_dir, "images")}


def test_a_text_run_cannot_start_from_a_run_without_tokenizer(pretrained, images):
    source = images["run"].info.run_id
    line = one_error_line(invoke("train", *pretrained["common"][:-1], f"model.init_from={source}",
                                 "tracking.run_name=bad"))
    assert f"model.init_from={source}: that run (data=images) kept no tokenizer" in line
    assert named(pretrained["runs"], "bad").info.status == "FAILED"


def test_a_run_whose_weights_fit_nothing_is_refused(pretrained, images):
    # a recurrent network shares no layer with the convolutional one: refused in one line, the run ends FAILED
    source = images["run"].info.run_id
    line = one_error_line(invoke("train", "data=sequence", "data.n_train=100", "data.n_train_dev=20", "data.n_dev=20",
                                 "data.n_test=20", *TINY_GRU, f"model.init_from={source}", "tracking.run_name=refused"))
    assert re.search(rf"model.init_from={source}: none of its \d+ weight tensors matches this network", line)
    assert named(pretrained["runs"], "refused").info.status == "FAILED"


def test_image_run_with_augmentation_and_a_corrupt_image(module_runs_dir, images):
    assert images["run"].data.params["data.augment"] == "True"
    assert images["run"].data.metrics["error/train"] <= 1
    shapes = images["shapes"]
    (shapes / "circle" / "7.png").write_bytes(b"\x89PNG broken")
    line = one_error_line(invoke("train", "data=images", f"data.path={shapes}", "model=cnn", "trainer.max_epochs=1",
                                 "baseline.human_error=0.0", "tracking.run_name=corrupt"))
    assert line.startswith("dlexp: error: cannot read image") and "circle/7.png" in line
    assert named(module_runs_dir, "corrupt").info.status == "FAILED"


def test_the_tracking_process_finds_runs_to_start_from(pretrained, tmp_path):
    """A run with variance asks its tracking process (the training process never loads MLflow) which runs in
    the store its network could start from: here the language model, pre-trained on other text."""
    import yaml

    from dlexp.tracking.recorder import Recorder

    tuned = pretrained["tuned"]
    config = yaml.safe_load(open(client(pretrained["runs"]).download_artifacts(tuned.info.run_id, "config.yaml",
                                                                               str(tmp_path))))
    recorder = Recorder({"uri": f"sqlite:///{pretrained['runs']}/mlflow.db", "experiment": "dlexp",
                         "run_name": "asks", "params": {}, "tags": {}, "files": {}}, log_path=tmp_path / "t.log")
    try:
        found = recorder.compatible_runs(config)
    finally:
        recorder.finish("FINISHED")
    assert [f["run_id"] for f in found] == [pretrained["lm"].info.run_id]
    assert found[0]["task"] == "lm" and found[0]["path"] == str(pretrained["files"]["unlabelled"])
