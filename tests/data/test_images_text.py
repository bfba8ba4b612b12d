"""data=images and data=text on small files the tests make: splits, tokenizer, augmentation, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_module

from dlexp import config as configs
from dlexp.data import load, save_preprocessing
from dlexp.data.examples import write_reviews, write_shapes
from dlexp.errors import ConfigError, DataError

configs.register()


def compose_cfg(*overrides):
    with initialize_config_module("dlexp.configs", version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    configs.check(cfg)
    return cfg


def splits_of(*overrides):
    return load(compose_cfg(*overrides).data, seed=0)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return write_shapes(tmp_path_factory.mktemp("shapes") / "train", per_class=12, size=16)


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    return write_reviews(tmp_path_factory.mktemp("reviews"), labelled=300, unlabelled=200)


# ------------------------------------------------------------------------------------------- images


def test_image_folders_become_four_standardized_splits(shapes):
    s = splits_of("data=images", f"data.path={shapes}", "data.image_size=12")
    assert sum(s.sizes().values()) == 36 and min(s.sizes().values()) >= 3
    assert s.input_shape == (3, 12, 12) and s.n_classes == 3
    assert s.description["classes"] == ["circle", "square", "triangle"]
    assert np.abs(s.train.x.mean(axis=(0, 2, 3))).max() < 1e-4  # standardized with training statistics
    assert s.needs_human == "data=images" and s.augment is None
    gray = splits_of("data=images", f"data.path={shapes}", "data.color=gray", "data.image_size=16")
    assert gray.input_shape == (1, 16, 16)


def test_a_dev_folder_gives_dev_and_test(shapes, tmp_path):
    dev = write_shapes(tmp_path / "dev", per_class=6, size=20, seed=1)
    s = splits_of("data=images", f"data.path={shapes}", f"data.dev_path={dev}", "data.image_size=16")
    assert s.sizes()["train"] + s.sizes()["train_dev"] == 36
    assert s.sizes()["dev"] + s.sizes()["test"] == 18


def test_augment_warps_training_batches_only(shapes):
    import torch

    from dlexp.models.lit import Batches

    s = splits_of("data=images", f"data.path={shapes}", "data.augment=true")
    assert s.augment == {"shift": 0.125, "flip": True, "degrees": 10.0}
    x, y = torch.from_numpy(s.train.x), torch.from_numpy(s.train.y)
    plain = [b for b, _ in Batches(x, y, 8, shuffle=True, seed=0)]
    warped = [b for b, _ in Batches(x, y, 8, shuffle=True, seed=0, augment=s.augment)]
    again = [b for b, _ in Batches(x, y, 8, shuffle=True, seed=0, augment=s.augment)]
    assert [b.shape for b in warped] == [b.shape for b in plain]
    assert all(not torch.allclose(w, p) for w, p in zip(warped, plain))  # every batch is warped
    assert all(torch.equal(w, a) for w, a in zip(warped, again))          # the same seed, the same warps
    assert torch.equal(x, torch.from_numpy(s.train.x))                    # the split itself is untouched


def test_a_corrupt_image_is_one_line_naming_the_file(shapes, tmp_path):
    import shutil

    root = tmp_path / "imgs"
    shutil.copytree(shapes, root)
    (root / "square" / "broken.png").write_bytes(b"this is not a png")
    with pytest.raises(DataError, match=r"cannot read image .*square/broken\.png"):
        splits_of("data=images", f"data.path={root}")


def test_an_empty_class_folder_is_one_line_naming_it(shapes, tmp_path):
    import shutil

    root = tmp_path / "imgs"
    shutil.copytree(shapes, root)
    (root / "hexagon").mkdir()
    with pytest.raises(DataError, match=r"class folder .*hexagon holds no PNG or JPEG"):
        splits_of("data=images", f"data.path={root}")
    with pytest.raises(DataError, match="no such folder"):
        splits_of("data=images", f"data.path={tmp_path / 'nowhere'}")


# --------------------------------------------------------------------------------------------- text


def test_text_from_csv_tsv_and_json_lines_is_the_same(reviews, tmp_path):
    frame = pd.read_csv(reviews["labelled"])
    frame.to_csv(tmp_path / "r.tsv", sep="\t", index=False)
    frame.to_json(tmp_path / "r.jsonl", orient="records", lines=True)
    got = [splits_of("data=text", f"data.path={p}", "data.max_length=24")
           for p in (reviews["labelled"], tmp_path / "r.tsv", tmp_path / "r.jsonl")]
    for s in got:
        assert s.sizes() == got[0].sizes() and sum(s.sizes().values()) == 300
        assert s.n_classes == 4 and s.description["classes"] == ["food", "music", "sport", "travel"]
        assert s.train.x.shape == (s.sizes()["train"], 24) and s.train.x.dtype == np.int64
        assert np.array_equal(s.train.x, got[0].train.x)
    x = got[0].train.x
    assert (x[:, 0] == 2).all()                       # [BOS] first
    assert ((x == 3).sum(axis=1) == 1).all()          # one [EOS] per text (none cut at 24 tokens)
    assert got[0].vocab == got[0].description["vocab"] and got[0].needs_human == "data=text"


def test_the_tokenizer_learns_from_the_training_split_only(reviews, tmp_path):
    frame = pd.read_csv(reviews["labelled"])
    dev = frame.iloc[:60].copy()
    dev["text"] = dev["text"] + " quokkaquokka"
    dev.to_csv(tmp_path / "dev.csv", index=False)
    for kind in ("bpe", "wordpiece"):
        s = splits_of("data=text", f"data.path={reviews['labelled']}", f"data.dev_path={tmp_path / 'dev.csv'}",
                      f"data.tokenizer={kind}", "data.vocab_size=300")
        files = save_preprocessing(s, tmp_path / kind)
        assert [f.name for f in files] == ["tokenizer.json", "preprocessing.json"]
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(tmp_path / kind / "tokenizer.json"))
        assert tok.token_to_id("quokkaquokka") is None           # a dev-only word never became a token
        assert tok.get_vocab_size() <= 300 and tok.token_to_id("[PAD]") == 0
        desc = json.loads((tmp_path / kind / "preprocessing.json").read_text())
        assert desc["tokenizer"] == kind and desc["vocab"] == tok.get_vocab_size()


def test_long_texts_are_cut_and_reported(reviews):
    s = splits_of("data=text", f"data.path={reviews['labelled']}", "data.max_length=8")
    assert s.train.x.shape[1] == 8 and (s.train.x[:, -1] != 0).all()
    assert any("longer than data.max_length=8" in c for c in s.checks)


def test_lm_task_predicts_each_next_token(reviews):
    s = splits_of("data=text", f"data.path={reviews['unlabelled']}", "data.task=lm", "data.max_length=20")
    assert s.task == "lm" and s.n_classes == s.vocab and s.needs_human is None
    assert s.train.x.shape == s.train.y.shape == (s.sizes()["train"], 20)
    assert np.array_equal(s.train.x[:, 1:], s.train.y[:, :-1])  # y is x moved one token on
    assert (s.train.x[:, 0] == 2).all()


def test_a_saved_tokenizer_is_reused_as_is(reviews, tmp_path):
    from dlexp.data.text import fingerprint, load_tokenizer

    first = splits_of("data=text", f"data.path={reviews['unlabelled']}", "data.task=lm")
    save_preprocessing(first, tmp_path)
    again = splits_of("data=text", f"data.path={reviews['labelled']}", f"data.tokenizer_path={tmp_path / 'tokenizer.json'}")
    assert again.vocab == first.vocab
    assert again.description["tokenizer_fingerprint"] == first.description["tokenizer_fingerprint"] == \
        fingerprint(load_tokenizer(tmp_path / "tokenizer.json"))


def test_empty_text_rows_and_a_missing_label_column_name_the_row_and_file(reviews, tmp_path):
    frame = pd.read_csv(reviews["labelled"])
    holes = frame.copy()
    holes.loc[[6, 9], "text"] = ["", "   "]
    holes.to_csv(tmp_path / "holes.csv", index=False)
    with pytest.raises(DataError, match=r"holes\.csv: row 7 has an empty text column 'text' \(2 such rows\)"):
        splits_of("data=text", f"data.path={tmp_path / 'holes.csv'}")
    frame.drop(columns="label").to_csv(tmp_path / "nolabel.csv", index=False)
    with pytest.raises(DataError, match=r"nolabel\.csv has no label column 'label'; available columns: text"):
        splits_of("data=text", f"data.path={tmp_path / 'nolabel.csv'}")
    with pytest.raises(DataError, match="plain text without labels; pre-train on it with data.task=lm"):
        splits_of("data=text", f"data.path={reviews['unlabelled']}")
    (tmp_path / "bad.jsonl").write_text('{"text": "a", "label": "x"}\nnot json\n')
    with pytest.raises(DataError, match="cannot read .*bad.jsonl as JSON lines"):
        splits_of("data=text", f"data.path={tmp_path / 'bad.jsonl'}")


def test_freeze_needs_init_from():
    with pytest.raises(ConfigError, match="model.freeze=body needs model.init_from"):
        compose_cfg("model.freeze=body")


# ------------------------------------------------------------------------------------------ transfer


def test_matching_weights_load_and_a_new_head_when_classes_differ():
    import torch

    from dlexp.errors import TrainingError
    from dlexp.models.transfer import freeze_body, load_matching
    from dlexp.models.gru import Recurrent
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"cell": "gru", "embed": 8, "hidden_size": 12, "layers": 1, "dropout": 0.0})
    source = Recurrent(cfg, vocab=50, n_classes=50, lm=True)
    state = {f"net.{k}": v for k, v in source.state_dict().items()}
    same = Recurrent(cfg, vocab=50, n_classes=50)
    found = load_matching(same, state, source="A")
    assert found["new"] == [] and all(torch.equal(v, source.state_dict()[k]) for k, v in same.state_dict().items())
    fresh = Recurrent(cfg, vocab=50, n_classes=2)
    head_before = fresh.head.weight.clone()
    found = load_matching(fresh, state, source="A")
    assert found["new"] == ["head.weight", "head.bias"] and torch.equal(fresh.head.weight, head_before)
    assert torch.equal(fresh.embed.weight, source.embed.weight)
    found = load_matching(Recurrent(cfg, vocab=50, n_classes=50), state, source="A", new_head=True)
    assert found["new"] == ["head.weight", "head.bias"]     # same shape, other meaning: a new head all the same
    counts = freeze_body(fresh)
    assert [n for n, p in fresh.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]
    assert counts["trainable"] == 2 * 12 + 2
    other = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    with pytest.raises(TrainingError, match="model.init_from=A: none of its .* weight tensors matches"):
        load_matching(other, state, source="A")


def test_text_rows_name_the_files_rows_and_data_exclude_rows_leaves_them_out(reviews, tmp_path):
    s = splits_of("data=text", f"data.path={reviews['labelled']}", "data.max_length=24")
    labels = pd.read_csv(reviews["labelled"])["label"]
    names = s.description["classes"]
    assert all(names[y] == labels[r - 1] for y, r in zip(s.train.y, s.train.rows))  # 1-based data rows
    listed = tmp_path / "rows.txt"
    listed.write_text("\n".join(str(r) for r in s.train.rows[:7]) + "\n")
    cut = splits_of("data=text", f"data.path={reviews['labelled']}", "data.max_length=24",
                    f"data.exclude_rows={listed}")
    assert len(cut.train) == len(s.train) - 7 and not set(s.train.rows[:7]) & set(cut.train.rows)
    assert cut.sizes()["dev"] == s.sizes()["dev"]
