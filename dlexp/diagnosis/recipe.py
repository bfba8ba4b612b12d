"""The recipe's rules, pure: accept a candidate or not, which candidates come next, when to stop.

`dlexp recipe` (dlexp/training/recipe.py) trains and measures; every decision it takes is made here,
from plain numbers: a comparison document (the JSON of `dlexp compare --json`) and the incumbent's
actions. The test split never enters a decision: selecting on dev many times overfits dev, so the test
error is read once, for the final model, and reported with the dev_overfitting gap.

>>> dev = {"dev": {"diff": -0.12, "interval": [-0.16, -0.08], "p_value": 1e-6, "method": "paired"}}
>>> decide({"splits": dev, "gaps": {}}, tolerance=0.01).accepted
True
>>> dev = {"dev": {"diff": -0.01, "interval": [-0.04, 0.02], "p_value": 0.5, "method": "paired"}}
>>> decide({"splits": dev, "gaps": {}}, tolerance=0.01).reason
'dev error -1.00% [-4.00%, +2.00%]: within noise (the interval includes 0)'
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# the gap that involves the test split: never looked at while the recipe selects
HELD_OUT = "dev_overfitting"
# gaps the recipe may hold against a candidate (those measured without the test split)
WATCHED = ("avoidable_bias", "variance", "data_mismatch")
ALPHA = 0.05  # a change is significant when its 95% interval excludes 0 (or, without one, p < ALPHA)

# why a recipe stopped, as `stopped_because` says it
STOPS = ("within_tolerance", "inconclusive", "nothing_helps", "budget", "interrupted")


@dataclass(frozen=True)
class Decision:
    accepted: bool
    improved: bool                # the dev error went down significantly
    raised: tuple[str, ...]       # other gaps that rose by at least the tolerance (their interval says so)
    reason: str                   # one sentence for the trail


@dataclass(frozen=True)
class Candidate:
    problem: str                  # the gap it addresses (or "diverged")
    action: str                   # the action's words, as `dlexp train` printed them
    overrides: tuple[str, ...]    # the overrides this candidate sets on top of the incumbent's
    command: str                  # the exact `dlexp train ...` command it runs

    @property
    def key(self) -> str:
        return key_of(self.command)


def key_of(command: str) -> str:
    """A candidate's identity: the overrides of its command, in any order.

    >>> key_of("dlexp train b=2 'a=[1,2]'") == key_of("dlexp train a=[1,2] b=2")
    True
    """
    return " ".join(sorted(a for a in shlex.split(command)[2:] if a != "-m"))


def _pct(x: float) -> str:
    return f"{x:+.2%}"


def _significant_drop(row: Mapping) -> tuple[bool, str]:
    diff, interval, p = row.get("diff"), row.get("interval"), row.get("p_value")
    if diff is None:
        return False, "no dev error to compare"
    if interval is not None:
        lo, hi = interval
        text = f"dev error {_pct(diff)} [{_pct(lo)}, {_pct(hi)}]"
        if hi < 0:
            return True, text + ": lower, significantly"
        if lo > 0:
            return False, text + ": higher, significantly"
        return False, text + ": within noise (the interval includes 0)"
    if p is not None:
        text = f"dev error {_pct(diff)} (p = {p:.3g})"
        if diff < 0 and p < ALPHA:
            return True, text + ": lower, significantly"
        return False, text + (": higher" if diff > 0 else "") + ": not a significant drop"
    return False, f"dev error {_pct(diff)}: no interval, so no evidence of a drop"


def decide(comparison: Mapping, *, tolerance: float, target: str | None = None) -> Decision:
    """Accept B (the candidate) over A (the incumbent) from their comparison document?

    Accepted when B's dev error is significantly lower (the 95% interval of the difference B - A lies
    below 0; without an interval, p < 0.05 and a negative difference): the dev error is the sum of every
    gap, so a significant drop is progress even when another gap rose. A watched gap other than `target`
    (the gap the candidate addresses) counts as raised when the lower end of the 95% interval of its change
    reaches the tolerance (dlexp's problem rule, applied to the change), or, without an interval, when the
    change itself does; the reason says so, and that gap is a problem for the rounds that follow (the largest
    problem of the new incumbent comes first). dev_overfitting and the test split are never read.
    """
    dev = (comparison.get("splits") or {}).get("dev") or {}
    improved, reason = _significant_drop(dev)
    raised = []
    for name in WATCHED:
        if name == target:
            continue
        change = (comparison.get("gaps") or {}).get(name) or {}
        diff, interval = change.get("diff"), change.get("interval")
        if diff is None:
            continue
        rise = interval[0] if interval is not None else diff
        if round(rise, 12) >= tolerance:
            raised.append(name)
    if improved and raised:
        gaps = (comparison.get("gaps") or {})
        what = ", ".join(f"{g} {_pct(gaps[g]['diff'])}" for g in raised)
        reason += (f"; it raises {what} past the tolerance {tolerance:.2%}, "
                   f"{'a problem' if len(raised) == 1 else 'problems'} of the incumbent once kept")
    return Decision(improved, improved, tuple(raised), reason)


def best(decisions: Sequence[tuple[Decision, float]]) -> int | None:
    """The index of the accepted candidate with the lowest dev difference; ties go to the earlier
    (higher-priority) action. None when none is accepted.

    >>> ok, no = Decision(True, True, (), ""), Decision(False, False, (), "")
    >>> best([(ok, -0.02), (no, -0.30), (ok, -0.05)])
    2
    >>> best([(no, -0.3)]) is None
    True
    """
    chosen = None
    for i, (d, diff) in enumerate(decisions):
        if d.accepted and (chosen is None or diff < decisions[chosen][1]):
            chosen = i
    return chosen


def candidates(actions: Sequence, current: Mapping | None = None, *, base: Sequence[str] = ()) -> list[Candidate]:
    """The trainable candidates of a run's actions, in their order (largest problem first).

    An action without a command (error analysis, "collect more data") is not trainable. A sweep
    (``dlexp train -m ... optimizer.lr=0.0009,0.003,0.009``) gives one candidate per value other than
    the current one (`current`: the run's resolved config, flattened to dotted keys). A candidate's
    `overrides` are those of its command that the incumbent's (`base`) do not hold already.
    An action of the inconclusive verdict ("measure more") is not a candidate: the recipe stops there.

    >>> from types import SimpleNamespace as A
    >>> acts = [A(problem="avoidable_bias", action="Bigger model", why="", command="dlexp train model=mlp"),
    ...         A(problem="avoidable_bias", action="Tune the learning rate", why="",
    ...           command="dlexp train -m optimizer.lr=0.001,0.003"),
    ...         A(problem="data_mismatch", action="Error analysis", why="", command=None)]
    >>> [c.command for c in candidates(acts, {"optimizer.lr": 0.003})]
    ['dlexp train model=mlp', 'dlexp train optimizer.lr=0.001']
    >>> candidates(acts[:1], base=["seed=1"])[0].overrides
    ('model=mlp',)
    """
    current = current or {}
    out = []
    for a in actions:
        if a.command is None or a.problem == "inconclusive":
            continue
        args = shlex.split(a.command)[2:]
        new = [o for o in args if o != "-m" and o not in base]
        multirun = bool(args) and args[0] == "-m"
        if not multirun:
            out.append(Candidate(a.problem, a.action, tuple(new), a.command))
            continue
        args = args[1:]
        swept = [o for o in new if "," in o.split("=", 1)[1] and not o.split("=", 1)[1].startswith("[")]
        for sweep in swept:
            key, values = sweep.split("=", 1)
            for value in values.split(","):
                if _same(current.get(key.lstrip("+~")), value):
                    continue
                one = f"{key}={value}"
                argv = [one if o == sweep else o for o in args]
                out.append(Candidate(a.problem, f"{a.action}: {one}",
                                     tuple(one if o == sweep else o for o in new),
                                     " ".join(["dlexp", "train"] + [shlex.quote(x) for x in argv])))
    return out


# the settings that add training rows: a recipe run with --same-data leaves them alone
MORE_DATA = ("data.n_train",)


def same_data(pool: Sequence[Candidate]) -> list[Candidate]:
    """The candidates that keep the training set as it is (no more rows): for a project whose data is what it
    is, and for a comparison with a search over the model's knobs only.

    >>> pool = [Candidate("variance", "More training data", ("data.n_train=4000",), "dlexp train data.n_train=4000"),
    ...         Candidate("variance", "Raise dropout", ("model.dropout=0.2",), "dlexp train model.dropout=0.2")]
    >>> [c.action for c in same_data(pool)]
    ['Raise dropout']
    """
    return [c for c in pool if not any(o.split("=", 1)[0].lstrip("+~") in MORE_DATA for o in c.overrides)]


def _same(value, text: str) -> bool:
    if value is None:
        return False
    try:
        return float(value) == float(text)
    except (TypeError, ValueError):
        return str(value) == text


def next_round(pool: Sequence[Candidate], tried: set[str], k: int,
               follow: Sequence[Candidate] = ()) -> tuple[str | None, list[Candidate]]:
    """The next round: up to `k` untried candidates of the first problem (largest first) that has any,
    the follow-ups of that problem (`follow`: what worked, see `follow_ups`; a bold step, see `bold`)
    before its other actions.
    `tried` holds the keys (`key_of`) of the candidates already compared with the incumbent.

    >>> pool = [Candidate("avoidable_bias", "a", (), "dlexp train a=1"), Candidate("avoidable_bias", "b", (), "dlexp train b=1"),
    ...         Candidate("avoidable_bias", "c", (), "dlexp train c=1"), Candidate("variance", "d", (), "dlexp train d=1")]
    >>> [c.action for c in next_round(pool, set(), 2)[1]], [c.action for c in next_round(pool, {"a=1", "b=1"}, 2)[1]]
    (['a', 'b'], ['c'])
    >>> next_round(pool, {"a=1", "b=1", "c=1"}, 2)[0], next_round(pool, {"a=1", "b=1", "c=1", "d=1"}, 2)
    ('variance', (None, []))
    >>> again = Candidate("avoidable_bias", "c again", (), "dlexp train c=2")
    >>> [c.action for c in next_round(pool, set(), 2, [again])[1]]
    ['c again', 'a']
    """
    problems = list(dict.fromkeys(c.problem for c in pool))
    for problem in problems:
        seen, chosen = set(tried), []
        for c in [f for f in follow if f.problem == problem] + [c for c in pool if c.problem == problem]:
            if c.key not in seen:
                seen.add(c.key)
                chosen.append(c)
        if chosen:
            return problem, chosen[:k]
    return None, []


# ------------------------------------------------------------------------------------------ bold steps


# a gap this many times the tolerance is far from it: one bold candidate, the problem's first moves together
BOLD_RATIO = 10
# the families a bold step combines, per problem, in this order (`family` names them); the learning rate
# moves up (a fit that is far off needs larger steps), epochs by the square of their single step
BOLD = {"avoidable_bias": ("bigger model", "train longer", "tune the learning rate"),
        "variance": ("raise dropout", "weight decay")}
SQUARED = ("train longer",)
EPOCHS = "trainer.max_epochs"


def still_falling(curve: Sequence[float]) -> bool:
    """Was the dev error still falling when training stopped? True when the best dev error of the last quarter
    of the epochs (at least 2) is below the best of every epoch before: more epochs are likely to help.

    >>> still_falling([0.5, 0.4, 0.35, 0.33, 0.31, 0.30, 0.29, 0.28]), still_falling([0.5, 0.3, 0.25, 0.26, 0.27, 0.28])
    (True, False)
    >>> still_falling([0.5, 0.4])
    False
    """
    if len(curve) < 4:
        return False
    tail = max(2, len(curve) // 4)
    return min(curve[-tail:]) < min(curve[:-tail])


def bold(pool: Sequence[Candidate], problem: str, gap: float | None, tolerance: float,
         current: Mapping, base: Sequence[str], *, falling: bool = False, deeper: Sequence[str] = (),
         force: bool = False) -> Candidate | None:
    """One candidate that takes the problem's first move of each `BOLD` family at once when its gap is at
    least `BOLD_RATIO` x the tolerance (a linear model 65% above the human level: a network, trained 4x
    longer, with a 3x learning rate); None when the gap is nearer, or fewer than two families have a move.
    Training longer takes the square of its single step (x2 -> x4); of a learning-rate sweep, the highest value.
    Variance: a bigger network, regularized: one more layer (`deeper`: the model's depth step, when it has
    one) with dropout and weight decay, and, when the dev error was still falling at the last epoch
    (`falling`, see `still_falling`), twice the epochs (regularization slows the fit: the epochs pay back the
    bias it raises). `force`: whatever the gap (the budget is spent on what is left).

    >>> pool = [Candidate("avoidable_bias", "Bigger model: mlp", ("model=mlp",), "dlexp train model=mlp"),
    ...         Candidate("avoidable_bias", "Train longer", ("trainer.max_epochs=10",), "dlexp train trainer.max_epochs=10"),
    ...         Candidate("avoidable_bias", "Tune the learning rate: sweep around the current value: optimizer.lr=0.009",
    ...                   ("optimizer.lr=0.009",), "dlexp train optimizer.lr=0.009")]
    >>> bold(pool, "avoidable_bias", 0.5, 0.01, {"trainer.max_epochs": 5, "optimizer.lr": 0.003}, []).command
    'dlexp train model=mlp trainer.max_epochs=20 optimizer.lr=0.009'
    >>> bold(pool, "avoidable_bias", 0.05, 0.01, {}, []) is None
    True
    >>> drop = [Candidate("variance", "Regularization: raise dropout", ("model.dropout=0.2",), "dlexp train model.dropout=0.2")]
    >>> bold(drop, "variance", 0.2, 0.01, {"trainer.max_epochs": 20}, [], falling=True,
    ...      deeper=["model.hidden=[128,128,128]"]).overrides
    ('model.hidden=[128,128,128]', 'model.dropout=0.2', 'trainer.max_epochs=40')
    """
    far = gap is not None and tolerance > 0 and gap >= BOLD_RATIO * tolerance
    if problem not in BOLD or not (far or force):
        return None
    parts, names = [], []
    if problem == "variance" and deeper:
        parts, names = list(deeper), ["one more layer"]
    for fam in BOLD[problem]:
        moves = [c for c in pool if c.problem == problem and family(c.action) == fam and c.overrides]
        if fam == "tune the learning rate":
            moves = sorted(moves, key=lambda c: -(_number(c.overrides[0].split("=", 1)[1]) or 0))[:1]
        if not moves:
            continue
        step = list(moves[0].overrides)
        if fam in SQUARED:
            step = [_squared(o, current) for o in step]
        parts += step
        names.append(fam)
    if problem == "variance" and falling and isinstance(current.get(EPOCHS), int):
        parts.append(f"{EPOCHS}={2 * current[EPOCHS]}")
        names.append("train longer")
    if len(names) < 2:
        return None
    return Candidate(problem, f"Bold step: {' + '.join(names)}: {' '.join(parts)}", tuple(parts), _on_top(base, parts))


def _squared(override: str, current: Mapping) -> str:
    """A numeric step taken twice: trainer.max_epochs=10 from 5 -> trainer.max_epochs=20."""
    key, _, text = override.partition("=")
    value, now = _number(text), current.get(key.lstrip("+~"))
    moved = None if value is None else _scale(key, value, now, value)
    return override if moved is None else f"{key}={_text(moved)}"


# ------------------------------------------------------------------------------------ follow what works


# settings that are shares -> the value a step that scales them stops at (reweight: the full density ratio)
SHARES = {"dropout": 0.9, "target_fraction": 0.9, "label_smoothing": 0.9, "reweight": 1.0, "synthesize": 1.0}
# settings whose step grows when its repeat wins again (epochs x2, x2 again, then x4), up to x4 a step
GROWING = ("max_epochs",)
MAX_GROWTH = 4


@dataclass(frozen=True)
class Helped:
    """A candidate of the round that made the incumbent whose dev error dropped significantly."""
    problem: str
    action: str
    overrides: tuple[str, ...]   # what it set on top of the incumbent it was compared with
    was: Mapping                 # that incumbent's values of those keys (None: not in its config)
    accepted: bool               # the one kept (the others lost to a larger drop)


def family(action: str) -> str:
    """What kind of action it is, whatever its step: repeats and combinations name their original.

    >>> family("Bigger model: double the width of every hidden layer"), family("Bigger model again: model.hidden=[512]")
    ('bigger model', 'bigger model')
    >>> family("Combine with Train longer: trainer.max_epochs=10")
    'train longer'
    >>> family("Regularization: raise dropout"), family("Combine with Regularization: weight decay")
    ('raise dropout', 'weight decay')
    """
    from dlexp.diagnosis.actions import FAMILIES, label

    head, _, rest = action.strip().removeprefix("Combine with ").partition(":")
    head = head.strip().removesuffix(" again")
    if head.startswith("Bold step"):
        return "bold step"
    return label(f"{head}:{rest.split(':')[0]}" if head in FAMILIES else head)


def _number(text):
    """A number or a list of numbers written as an override value; None for anything else."""
    import json

    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) or (isinstance(value, list) and value
                                           and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        return value
    return None


def _scale(key: str, now, was, value):
    """`value` moved once more by the ratio value/was (elementwise for a list; a share by the same amount,
    value - was, up to its cap in SHARES); None when it cannot be."""
    if isinstance(value, list):
        if not isinstance(was, list) or len(was) != len(value) or not isinstance(now, list) or len(now) != len(value):
            return None
        out = [_scale(key, n, w, v) for n, w, v in zip(now, was, value)]
        return None if any(o is None for o in out) else out
    if not isinstance(was, (int, float)) or isinstance(was, bool) or not isinstance(now, (int, float)):
        return None
    cap = SHARES.get(key.rsplit(".", 1)[-1])
    if cap is not None:  # a share moves by the same amount again: dropout 0 -> 0.2 -> 0.4
        return float(f"{min(now + (value - was), cap):.3g}")
    if was == 0:
        return None
    new = now * (value / was)
    if isinstance(value, int) and isinstance(was, int):
        return max(1, int(round(new)))
    return float(f"{new:.3g}")


def _text(value) -> str:
    if isinstance(value, list):
        return "[" + ",".join(_text(v) for v in value) + "]"
    return str(value) if isinstance(value, int) else f"{value:.3g}"


def _on_top(base: Sequence[str], new: Sequence[str]) -> str:
    from dlexp.diagnosis.actions import merge_overrides

    return " ".join(["dlexp", "train"] + [shlex.quote(a) for a in merge_overrides(base, new)])


def again(h: Helped, current: Mapping, base: Sequence[str]) -> Candidate | None:
    """The accepted action once more from the new incumbent, by the step that helped: each numeric setting
    moved by the same ratio (a width doubled again, epochs doubled again, a learning rate moved by 3x
    again, or by 0.3x when that is what helped; a share such as dropout by the same amount). None when a setting is not a number (``model=mlp``).

    >>> h = Helped("avoidable_bias", "Tune the learning rate: optimizer.lr=0.009", ("optimizer.lr=0.009",),
    ...            {"optimizer.lr": 0.003}, True)
    >>> again(h, {"optimizer.lr": 0.009}, ["model=mlp", "optimizer.lr=0.009"]).command
    'dlexp train model=mlp optimizer.lr=0.027'
    """
    new, repeated = [], []
    for o in h.overrides:
        key, _, text = o.partition("=")
        name = key.lstrip("+~")
        value = _number(text)
        moved = None if value is None else _scale(name, current.get(name), h.was.get(name), value)
        if moved is None and len(h.overrides) > 1:
            continue  # a bold step's model=mlp or dropout from 0: no ratio to repeat; its other moves go on
        if moved is not None and name.endswith(GROWING) and " again:" in h.action:
            moved = _scale(name, moved, h.was.get(name), value)  # won twice: the step grows (x2, x2, then x4)
            moved = min(moved, MAX_GROWTH * current[name])  # x4 won again: x4 once more, not x16
        if moved is None:
            return None
        new.append(f"{key}={_text(moved)}")
        repeated.append(o)
    if not new or [o.split("=", 1)[1] for o in new] == [o.split("=", 1)[1] for o in repeated]:
        return None  # capped: no further step
    return Candidate(h.problem, f"{family(h.action).capitalize()} again: {' '.join(new)}", tuple(new), _on_top(base, new))


def follow_ups(helped: Sequence[Helped], current: Mapping, base: Sequence[str],
               pool: Sequence[Candidate]) -> list[Candidate]:
    """Follow what worked in the round that made the incumbent, in this order:

    1. the accepted action again (`again`), or, when its step is not a number, the incumbent's own action of
       the same family (``model=mlp`` accepted: "Bigger model: double the width" of the new model);
    2. each other action that lowered the dev error significantly in that round, on top of the accepted one
       (the bigger model accepted, training longer also helped: bigger and longer).

    `current`: the incumbent's config flattened to dotted keys; `base`: its overrides; `pool`: its candidates.
    """
    out = []
    for h in helped:
        if not h.accepted:
            continue
        step = again(h, current, base)
        if step is None:
            step = next((c for c in pool if family(c.action) == family(h.action)), None)
        if step is not None:
            out.append(step)
    for h in helped:
        if h.accepted:
            continue
        new = [o for o in h.overrides if not _same(current.get(o.split("=", 1)[0].lstrip("+~")), o.split("=", 1)[1])]
        if new:
            out.append(Candidate(h.problem, f"Combine with {h.action}", tuple(new), _on_top(base, new)))
    return out


def next_or_rest(pool: Sequence[Candidate], rest: Sequence[Candidate], tried: set[str], k: int,
                 follow: Sequence[Candidate] = ()) -> tuple[str | None, list[Candidate], bool]:
    """The next round (`next_round`), or, when the incumbent's problems have no untried candidate left, a round
    of what is left to try (`rest`: bold steps whatever the gap, the other problems' actions, in that order), so
    that the budget is spent rather than stopping at `nothing_helps`. The last item says it is such a round.

    >>> own = [Candidate("variance", "Raise dropout", (), "dlexp train model.dropout=0.2")]
    >>> rest = [Candidate("variance", "Bold step: raise dropout + weight decay", (), "dlexp train model.dropout=0.2 w=1"),
    ...         Candidate("avoidable_bias", "Bigger model", (), "dlexp train model.hidden=[512]")]
    >>> next_or_rest(own, rest, set(), 2)[1][0].action, next_or_rest(own, rest, set(), 2)[2]
    ('Raise dropout', False)
    >>> problem, chosen, left = next_or_rest(own, rest, {"model.dropout=0.2"}, 2)
    >>> problem, [c.action for c in chosen], left
    ('variance', ['Bold step: raise dropout + weight decay'], True)
    >>> next_or_rest(own, rest, {"model.dropout=0.2", "model.dropout=0.2 w=1", "model.hidden=[512]"}, 2)
    (None, [], True)
    """
    problem, chosen = next_round(pool, tried, k, follow)
    if chosen:
        return problem, chosen, False
    problem, chosen = next_round(rest, tried, k)
    return problem, chosen, True


def stop_reason(verdict: str, *, left: int, budget_left: int) -> str | None:
    """Why the recipe stops before a round, or None to go on.

    >>> stop_reason("avoidable_bias", left=3, budget_left=2) is None
    True
    >>> [stop_reason(v, left=3, budget_left=2) for v in ("within_tolerance", "inconclusive")]
    ['within_tolerance', 'inconclusive']
    >>> stop_reason("variance", left=0, budget_left=2), stop_reason("variance", left=3, budget_left=0)
    ('nothing_helps', 'budget')
    """
    if verdict in ("within_tolerance", "inconclusive"):
        return verdict
    if left == 0:
        return "nothing_helps"
    if budget_left <= 0:
        return "budget"
    return None
