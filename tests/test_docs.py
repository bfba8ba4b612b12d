"""The documentation: the MkDocs site builds with --strict, the README stays a front page, every relative link
resolves, and every command line the README and the site show is one dlexp accepts (its subcommand and
options parse, and its Hydra overrides compose against dlexp's config and pass dlexp's checks), without
training anything."""

from __future__ import annotations

import importlib.util
import itertools
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from hydra import compose, initialize_config_module
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import open_dict

from dlexp import config as configs
from dlexp.cli import app

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").rglob("*.md"))
DOCUMENTS = [ROOT / "README.md", *PAGES]

# Commands shown failing on purpose (the page shows the error they end with): a part of the line -> why.
FAILS_ON_PURPOSE = {
    "optimizer.lr=0.001,0.01,-1": "scale-out.md: a failing job among a submitit sweep (optimizer.lr=-1)",
    "'seeds=[0,-1]'": "speed.md: a failing point among a parallel seed group (seed -1)",
}
# What only the reader has: the options of their own config folder (`--config-dir conf model=mynet`), which are
# composed without it, and their own scripts.
OWN_OPTIONS = re.compile(r"^(model|data)=(mynet|lit|blobs|my_data)$")
OWN_SCRIPTS = {"train.py": "docs/lightning.md: the reader's own training script with dlexp's callback"}


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


# ---------------------------------------------------------------------------------------------- the site


def test_mkdocs_build_strict(tmp_path):
    """`mkdocs build --strict` (as CI runs it): every page in the nav, no broken link or anchor, the API reference
    generated from the docstrings."""
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    api = (site / "api" / "index.html").read_text()
    for name in ("dlexp.diagnose", "dlexp.lightning.Diagnose", "dlexp.diagnosis.Report", "ConfigError"):
        assert name in api, f"the API reference lacks {name}"
    for page in PAGES:
        built = site / ("index.html" if page.stem == "index" else f"{page.stem}/index.html")
        assert built.is_file(), f"{_name(page)} was not built (missing from the nav?)"


def test_readme_is_a_front_page():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    # .ci/run runs the first `pip install ... pytest` line word for word; it must install the docs extra
    ci = next(ln for ln in text.splitlines() if re.match(r"^pip install .*pytest", ln))
    assert '".[test]"' in ci
    assert "pip install torch==2.13.0 -e . && dlexp train" in text
    for page in ("docs/train.md", "docs/next.md", "docs/compare.md", "docs/recipe.md", "docs/api.md"):
        assert f"]({page})" in text, f"the README does not link {page}"


def test_test_extra_brings_the_docs_extra():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"mkdocs", "mkdocs-material", "mkdocstrings[python]"} <= {re.split(r"[<>=]", d)[0] for d in extras["docs"]}
    assert any("docs" in d for d in extras["test"] if d.startswith("dlexp["))


def _prose(text: str) -> str:
    """The text outside fenced code blocks and inline code (where `[x](y)` is not a link)."""
    text = re.sub(r"^\s*```.*?^\s*```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def _links(text: str) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", _prose(text))


@pytest.mark.parametrize("doc", DOCUMENTS, ids=_name)
def test_relative_links_resolve(doc):
    links = _links(doc.read_text())
    missing = []
    for link in links:
        if re.match(r"^[a-z]+:", link) or link.startswith("#"):
            continue
        target = (doc.parent / link.split("#")[0]).resolve()
        if not target.exists():
            missing.append(link)
    assert not missing, f"{_name(doc)} links to files that do not exist: {missing}"


def test_link_check_sees_links():
    assert _links("see [the page](docs/a.md#b) and `[not](x.md)`\n```\n[no](y.md)\n```\n") == ["docs/a.md#b"]


def test_every_page_is_linked_from_the_readme_or_the_site_index():
    linked = {Path(link.split("#")[0]).name for doc in (ROOT / "README.md", ROOT / "docs" / "index.md")
              for link in _links(doc.read_text())}
    assert {p.name for p in PAGES} - {"index.md"} <= linked


# ---------------------------------------------------------------------------------------------- the commands


def shown_commands(text: str) -> list[str]:
    """The command lines a document shows: `$ ...` lines in its code blocks (the output after them is not a
    command), and the lines of its bash blocks; a trailing backslash continues a line.

    >>> shown_commands("```console\\n$ dlexp train a=1 \\\\\\n      b=2\\nout\\n```\\n```bash\\npip x && dlexp runs  # c\\n```")
    ['dlexp train a=1 b=2', 'pip x && dlexp runs  # c']
    """
    out, fence, lines = [], None, text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.lstrip().startswith("```"):
            fence = None if fence is not None else (line.strip()[3:].strip() or "text")
            continue
        if fence is None:
            continue
        if line.startswith("$ "):
            command = line[2:]
        elif fence in ("bash", "sh", "shell") and line.strip() and not line.startswith((" ", "#")):
            command = line
        else:
            continue
        while command.endswith("\\") and i < len(lines):
            command = command[:-1].rstrip() + " " + lines[i].strip()
            i += 1
        out.append(command)
    return out


def _all_shown() -> list[tuple[str, str]]:
    return [(_name(doc), cmd) for doc in DOCUMENTS for cmd in shown_commands(doc.read_text())]


SHOWN = _all_shown()


def _parts(command: str) -> list[list[str]]:
    """Each simple command of a line (split at &&), as words, environment assignments in front dropped."""
    out = []
    for part in re.split(r"\s&&\s", command):
        words = shlex.split(part.replace("\\$", "$"), comments=True)  # bash drops the backslash of "\$"
        while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
            words = words[1:]
        if words:
            out.append(words)
    return out


def _dlexp_args(words: list[str]) -> list[str] | None:
    if words[0] == "dlexp":
        return words[1:]
    if words[:3] in (["python", "-m", "dlexp"], [sys.executable, "-m", "dlexp"]):
        return words[3:]
    return None


HYDRA_FLAGS = {"--cfg", "-c", "--info", "--config-dir", "-cd", "--package", "-p", "--resolve"}
VALUED_FLAGS = {"--cfg", "-c", "--config-dir", "-cd", "--package", "-p"}


def _split_hydra(args: list[str]) -> tuple[list[str], list[str]]:
    """(overrides, Hydra's own flags) of a command's positional words."""
    overrides, flags, skip = [], [], False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            flags.append(arg)
        elif arg.split("=", 1)[0] in HYDRA_FLAGS:
            flags.append(arg)
            skip = arg in VALUED_FLAGS
        else:
            overrides.append(arg)
    return overrides, flags


def _expand(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The jobs a sweep runs (one list of overrides each); one job without -m."""
    if not multirun:
        return [overrides]
    choices = []
    for text, parsed in zip(overrides, OverridesParser.create().parse_overrides(overrides)):
        if parsed.is_sweep_override():
            key = parsed.get_key_element()
            choices.append([f"{key}={v}" for v in parsed.sweep_string_iterator()])
        else:
            choices.append([text])
    return [list(job) for job in itertools.product(*choices)]


def compose_checked(overrides: list[str]) -> None:
    """Compose `dlexp train OVERRIDES`'s config (Hydra's own settings, such as a launcher, included) and run
    dlexp's checks on it, as `dlexp train` does before any work."""
    from hydra.core.global_hydra import GlobalHydra

    configs.register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module("dlexp.configs", version_base="1.3"):
            cfg = compose("config", overrides=overrides, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    with open_dict(cfg):
        del cfg["hydra"]
    configs.prepare(cfg)


def check_dlexp(args: list[str]) -> str | None:
    """None when `dlexp ARGS` would start (options parse, overrides compose and pass the checks), else why not.
    Nothing is run."""
    group = typer.main.get_command(app)
    ctx = typer.Context(group, info_name="dlexp")
    name = args[0] if args else ""
    command = group.get_command(ctx, name)
    if command is None:
        return f"does not parse: no command {name!r}; dlexp has {', '.join(group.list_commands(ctx))}"
    try:
        sub = command.make_context(name, list(args[1:]), parent=ctx)
    except Exception as exc:  # Click's UsageError (Typer carries its own copy of Click)
        if not hasattr(exc, "format_message"):
            raise
        return f"does not parse: {exc.format_message()}"
    if name not in ("train", "curve", "recipe"):
        return None
    overrides, flags = _split_hydra(list(sub.params.get("overrides") or []) + list(sub.args))
    if any(f.startswith(("--config-dir", "-cd")) for f in flags):  # the reader's own folder: its options are theirs
        overrides = [o for o in overrides if not OWN_OPTIONS.match(o)]
    seeds = [o for o in overrides if o.startswith("seeds=")]
    overrides = [o for o in overrides if not o.startswith("seeds=")]
    if seeds and not re.fullmatch(r"seeds=(\d+|\[\d+(,\d+)*\])", seeds[0]):
        return f"{seeds[0]}: seeds= takes a number or a list of non-negative seeds"
    try:
        for job in _expand(overrides, bool(sub.params.get("multirun"))):
            compose_checked(job)
    except Exception as exc:  # noqa: BLE001 - what dlexp would print as its one line
        return f"{configs.explain(exc)}"
    return None


def test_the_audit_tells_valid_from_invalid():
    assert check_dlexp(["train", "trainer.max_epochs=2", "'model.hidden=[8]'".strip("'")]) is None
    assert check_dlexp(["train", "-m", "optimizer.lr=0.001,0.01"]) is None
    assert check_dlexp(["diagnose", "--human", "0.1", "--json"]) is None
    assert "does not parse" in check_dlexp(["diagnose", "--humane", "0.1"])
    assert "does not parse" in check_dlexp(["trian"])
    assert "trainer.max_epoch" in check_dlexp(["train", "trainer.max_epoch=3"])
    assert "unknown option 'images2'" in check_dlexp(["recipe", "data=images2"])
    assert "optimizer.lr must be positive" in check_dlexp(["train", "optimizer.lr=-1"])
    assert check_dlexp(["train", "optimizer.lr=0.001,0.01"]) is not None  # a sweep without -m


def test_the_pages_show_commands():
    shown = {doc for doc, _ in SHOWN}
    assert {"README.md", "docs/train.md", "docs/recipe.md", "docs/scale-out.md"} <= shown
    assert len(SHOWN) > 60


@pytest.mark.parametrize("doc, command", SHOWN, ids=[f"{d}: {c[:60]}" for d, c in SHOWN])
def test_shown_command_is_valid(doc, command):
    """Each command line shown: a dlexp command parses and its config composes; a script it runs exists."""
    purpose = next((why for part, why in FAILS_ON_PURPOSE.items() if part in command), None)
    problems = []
    for words in _parts(command):
        args = _dlexp_args(words)
        if args is not None:
            why = check_dlexp(args)
            if purpose:
                assert why is not None, f"{doc}: `{command}` is shown failing ({purpose}) but is accepted"
            elif why:
                problems.append(why)
        elif words[0] == "python" and words[1:2] == ["-m"]:
            assert importlib.util.find_spec(words[2]) is not None, f"{doc}: no module {words[2]}"
        elif words[0] == "python" and len(words) > 1 and words[1].endswith(".py") and words[1] not in OWN_SCRIPTS:
            assert (ROOT / words[1]).is_file(), f"{doc}: no script {words[1]}"
    assert not problems, f"{doc}: `{command}`: {problems}"


def test_the_recipe_benchmark_table_the_docs_show_comes_from_the_committed_figures():
    """docs/recipe.md's table of the recipe against the searches: `--table` on the committed results prints it."""
    proc = subprocess.run([sys.executable, "benchmarks/recipe_vs_search.py", "--table",
                           "benchmarks/results/recipe_vs_search.json"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = {tuple(ln.split()[:3]): ln.split()[3:5] for ln in proc.stdout.splitlines() if ln[:1].isalpha()}
    doc = (ROOT / "docs" / "recipe.md").read_text()
    table = [ln.split("|")[1:-1] for ln in doc.splitlines() if ln.startswith("| ") and ln.split("|")[2].strip() == "8"]
    assert {c[0].strip() for c in table} == {"bias", "variance", "mismatch", "noisy"}, table
    for cells in table:
        problem = cells[0].strip()
        shown = [c.replace("**", "").split() for c in cells[2:5]]  # "dev (test)" per method
        printed = [[rows[problem, "8", m][0], f"({rows[problem, '8', m][1]})"] for m in ("recipe", "random", "tpe")]
        assert shown == printed, (problem, shown, printed)
    # budget 16, measured on every seed of every problem: its rows are --table's too
    for problem in ("bias", "variance", "mismatch", "noisy"):
        (cells,) = [ln.split("|")[1:-1] for ln in doc.splitlines() if ln.startswith(f"| {problem} | 16 |")]
        shown = [c.replace("**", "").split() for c in cells[2:5]]
        assert shown == [[rows[problem, "16", m][0], f"({rows[problem, '16', m][1]})"]
                         for m in ("recipe", "random", "tpe")], (problem, shown)
    # the tally the docs state is the one --table prints
    assert "no worse than random's on 4 of 4 problems" in proc.stdout and "all four" in doc
    assert "no worse than tpe's on 4 of 4 problems" in proc.stdout
    assert proc.stdout.count("budget 16: the recipe's median") == 4 and "4 of 4 against random" in doc
    assert all("on 4 of 4 problems" in ln for ln in proc.stdout.splitlines() if ln.startswith("budget 16:"))
