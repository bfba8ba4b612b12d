"""A stop by a signal keeps its signal when a library rebuilds the exception from its message: OmegaConf
re-raises an error raised inside its merge as `type(error)(message + where)`, so a Ctrl-C that lands while a
recipe's job composes its config (seen: `full_key: model`) must stay a stop by SIGINT (exit 130), not become
`ValueError: ... is not a valid Signals` and a failed job."""

from __future__ import annotations

import signal

import pytest

from dlexp.training.signals import Interrupted


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_rebuilt_from_its_message_is_a_stop_by_the_same_signal(signum):
    stop = Interrupted(signum)
    rebuilt = type(stop)(f"{stop}\n    full_key: model\n    object_type=Config")
    assert rebuilt.signum == signum and rebuilt.exit_code == 128 + signum
    assert str(rebuilt).startswith(f"stopped by {signal.Signals(signum).name}")


def test_a_message_without_a_signal_reads_as_ctrl_c():
    assert Interrupted("stopped").signum == signal.SIGINT
