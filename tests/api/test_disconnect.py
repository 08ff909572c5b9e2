"""A client that goes away stops its generation; others are served fairly meanwhile."""

from __future__ import annotations

import time

import httpx

from tests.support.server import RunningServer

CHAT = "smollm2-135m-instruct"


def _finished(server: RunningServer) -> dict[str, int]:
    return dict(server.health()["models"][CHAT]["finished"])


def test_closing_a_stream_cancels_the_generation(server: RunningServer) -> None:
    before = _finished(server).get("cancelled", 0)
    body = {
        "model": CHAT,
        "messages": [{"role": "user", "content": "Write a very long story."}],
        "max_tokens": 1800,
        "stream": True,
        "ignore_eos": True,
    }
    body.pop("ignore_eos")
    with httpx.stream(
        "POST",
        f"{server.api}/chat/completions",
        json=body,
        timeout=60,
        headers={"Authorization": f"Bearer {server.admin_key}"},
    ) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        for _ in range(3):
            next(lines)
    # The connection is closed now; the model must stop and free its slot.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stats = server.health()["models"][CHAT]
        if stats["finished"].get("cancelled", 0) > before and stats["active"] == 0:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"generation was not cancelled: {server.health()['models'][CHAT]}")


def test_the_event_loop_answers_while_a_model_generates(server: RunningServer) -> None:
    body = {
        "model": CHAT,
        "messages": [{"role": "user", "content": "Write a long story."}],
        "max_tokens": 400,
        "stream": True,
    }
    with httpx.stream(
        "POST",
        f"{server.api}/chat/completions",
        json=body,
        timeout=120,
        headers={"Authorization": f"Bearer {server.admin_key}"},
    ) as response:
        lines = response.iter_lines()
        next(lines)
        # Generation is running on the model's thread; other requests are still served.
        stats = server.health()["models"][CHAT]
        assert stats["active"] == 1
        models = httpx.get(
            f"{server.api}/models",
            timeout=10,
            headers={"Authorization": f"Bearer {server.admin_key}"},
        )
        assert models.status_code == 200
        rest = list(lines)
    assert [line for line in rest if line][-1] == "data: [DONE]"
