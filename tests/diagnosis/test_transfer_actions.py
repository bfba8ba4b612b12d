"""The transfer actions of the pure core: start from a pretrained run, pre-train on unlabelled text, freeze
the body, augment images; and the line saying where a run started."""

from __future__ import annotations

from dlexp.diagnosis import Report, SplitErrors, diagnose, recommend

SIZES = {"train": 200, "train_dev": 200, "dev": 300, "test": 300}
TEXT = {"data": {"name": "text", "path": "reviews.csv", "n_train": 200, "unlabelled_path": None},
        "model": {"name": "gru", "init_from": None, "freeze": "none", "dropout": 0.0}, "trainer": {"max_epochs": 30}}
OVERRIDES = ["data=text", "data.path=reviews.csv", "data.n_train=200", "model=gru", "trainer.max_epochs=30"]


def variance(sizes=SIZES):
    return diagnose(SplitErrors(human=0.05, train=0.05, train_dev=0.35, dev=0.36, test=0.35), sizes=sizes)


def mismatch():
    big = {"train": 20000, "train_dev": 5000, "dev": 5000, "test": 5000}
    return diagnose(SplitErrors(human=0.05, train=0.05, train_dev=0.06, dev=0.20, test=0.20), sizes=big)


def transfer(actions):
    return [a for a in actions if "pretrained" in a.action]


def with_(cfg, section, **values):
    return {**cfg, section: {**cfg[section], **values}}


def test_a_compatible_run_in_the_store_is_proposed_first_for_variance():
    pretrained = [{"run_id": "abc123", "task": "lm", "path": "corpus.txt", "data": "text"}]
    actions = recommend(variance(), TEXT, overrides=OVERRIDES, pretrained=pretrained, train_size=200)
    first = actions[0]
    assert first.problem == "variance" and first.action.startswith("Start from a pretrained run: the language model abc123")
    assert first.command == "dlexp train " + " ".join(OVERRIDES) + " model.init_from=abc123"
    assert not transfer(recommend(variance(), TEXT, overrides=OVERRIDES, train_size=200))  # nothing to start from


def test_a_big_training_set_is_not_told_to_pretrain_for_variance_but_mismatch_is():
    pretrained = [{"run_id": "abc123", "task": "classification", "path": "big.csv", "data": "text"}]
    assert not transfer(recommend(variance(), TEXT, overrides=OVERRIDES, pretrained=pretrained, train_size=50000))
    (action,) = transfer(recommend(mismatch(), TEXT, overrides=OVERRIDES, pretrained=pretrained, train_size=20000))
    assert action.problem == "data_mismatch" and "model.init_from=abc123" in action.command


def test_an_unlabelled_set_in_the_config_gives_the_pre_training_command():
    cfg = with_(TEXT, "data", unlabelled_path="corpus.txt")
    (action,) = transfer(recommend(variance(), cfg, overrides=OVERRIDES, train_size=200))
    assert "pre-train on corpus.txt" in action.action and "model.init_from=<that run's id>" in action.action
    # the language model keeps the model and trainer options, not the labelled set's path or size
    assert action.command == "dlexp train model=gru trainer.max_epochs=30 data=text data.task=lm data.path=corpus.txt"


def test_a_run_started_from_another_is_told_to_freeze_its_body():
    cfg = with_(TEXT, "model", init_from="abc123")
    overrides = OVERRIDES + ["model.init_from=abc123"]
    (action,) = [a for a in recommend(variance(), cfg, overrides=overrides, train_size=200) if "Freeze" in a.action]
    assert action.command.endswith("model.init_from=abc123 model.freeze=body")
    frozen = with_(cfg, "model", freeze="body")
    assert not [a for a in recommend(variance(), frozen, overrides=overrides, train_size=200)
                if "Freeze" in a.action or "pretrained run:" in a.action]


def test_images_without_augmentation_are_told_to_augment():
    cfg = {"data": {"name": "images", "path": "photos", "augment": False}, "model": {"name": "cnn", "channels": [32]}}
    (action,) = [a for a in recommend(variance(), cfg, overrides=["data=images"]) if "augmentation" in a.action]
    assert action.problem == "variance" and action.command == "dlexp train data=images data.augment=true"
    cfg["data"]["augment"] = True
    assert not [a for a in recommend(variance(), cfg, overrides=["data=images"]) if "augmentation" in a.action]


def test_the_report_says_where_the_weights_came_from():
    start = {"run_id": "abc123", "loaded": 5, "total": 7, "new": ["head.weight", "head.bias"],
             "frozen": {"trainable": 260, "frozen": 20000}, "tokenizer": True}
    report = Report(variance(), (), start=start)
    assert report.document()["init_from"] == start
    assert report.start_line() == ("started from run abc123: 5 of 7 weight tensors; new: head.weight, head.bias; "
                                   "body frozen (260 parameters trained); its tokenizer")
    assert Report(variance(), ()).start_line() is None and "init_from" not in Report(variance(), ()).document()
