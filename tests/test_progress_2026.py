"""The displays show paused accounts and why, and the plan's warnings at the start."""

from __future__ import annotations

import io

from rich.console import Console

from flowpipe.events import AccountPaused, AccountResumed, ErrorInfo, NodeRetried, RunStarted
from flowpipe.live import LiveProgress
from flowpipe.progress import PlainProgress

WARNING = "r.yaml:5:12: warning: imagen-4 now runs nano-banana-2-lite on Flow"
EVENTS = [
    RunStarted(0.0, 3, "sim", warnings=(WARNING,)),
    AccountPaused(1.0, "a@x", None, 19.0, "PUBLIC_ERROR_USER_REQUESTS_THROTTLED"),
    AccountPaused(2.0, "b@x", "nano-banana-pro", 600.0, "PUBLIC_ERROR_PER_MODEL_DAILY_QUOTA"),
]


def test_plain_lines_say_who_is_paused_until_when_and_why() -> None:
    stream = io.StringIO()
    plain = PlainProgress(stream)
    for event in [*EVENTS, AccountResumed(19.0, "a@x", None)]:
        plain.handle(event)
    lines = stream.getvalue().splitlines()
    assert lines[0] == f"[0/3] {WARNING}"
    assert "[0/3] paused a@x: out until 19.0s (PUBLIC_ERROR_USER_REQUESTS_THROTTLED)" in lines
    assert any("paused b@x (nano-banana-pro): out until 600.0s" in line for line in lines)
    assert lines[-1] == "[0/3] resumed a@x"
    assert plain.tally.paused_lines() == [
        "b@x (nano-banana-pro): out until 600.0s (PUBLIC_ERROR_PER_MODEL_DAILY_QUOTA)"
    ]


def test_the_live_display_has_a_row_per_paused_account() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=160)
    with LiveProgress(console, clock=lambda: 0.0) as live:
        for event in EVENTS:
            live.handle(event)
        assert "a@x for 19s" in live._paused().plain
        live.handle(AccountResumed(19.0, "a@x", None))
    text = buffer.getvalue()
    assert text.startswith(WARNING)
    final = text.split(WARNING, 1)[1]  # the panel as drawn at the end
    row = next(line for line in final.splitlines() if line.startswith("paused "))
    assert "b@x (nano-banana-pro) for 10m00s: PUBLIC_ERROR_PER_MODEL_DAILY_QUOTA" in row
    assert "a@x" not in row  # it came back


def test_a_node_sent_back_by_a_pause_is_no_retry() -> None:
    stream = io.StringIO()
    plain = PlainProgress(stream)
    error = ErrorInfo("AccountPausedError", "account paused", 429)
    plain.handle(NodeRetried(1.0, "n", "a@x", error, 0.0, "paused"))
    plain.handle(NodeRetried(2.0, "n", "b@x", error, 6.0, "retry"))
    assert plain.tally.retries == 1
    assert stream.getvalue().splitlines()[0] == (
        "[0/0] paused n: HTTP 429 AccountPausedError (waits for an account that can take it)"
    )
