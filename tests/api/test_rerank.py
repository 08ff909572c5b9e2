"""POST /v1/rerank: an upstream reranker relayed, the embedded LLM reranker, and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.fake_upstream import RERANK_MODEL, FakeUpstream, overlap_score
from tests.support.server import RunningServer

LLM_RERANK = "smollm2-rerank"
CHAT = "smollm2-135m-instruct"


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.api, timeout=120, headers={"Authorization": f"Bearer {server.admin_key}"}
    ) as client:
        yield client


def assert_error(response: httpx.Response, status: int, param: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param, error
    assert len(error["message"]) > 10
    return dict(error)


def test_models_lists_rerank_models_with_their_kind(http: httpx.Client) -> None:
    models = {m["id"]: m for m in http.get("/models").json()["data"]}
    assert models[LLM_RERANK]["kind"] == "rerank"
    assert models[LLM_RERANK]["chat_model"] == CHAT
    assert models[RERANK_MODEL]["kind"] == "rerank"
    assert models["relay-rerank"]["kind"] == "rerank"
    assert models[CHAT]["kind"] == "chat"


def test_relay_through_an_upstream(http: httpx.Client, fake_upstream: FakeUpstream) -> None:
    query = "cat on the mat"
    texts = ["dogs bark at night", "the cat sat on the mat", "a cat and a dog"]
    documents: list[Any] = [texts[0], texts[1], {"text": texts[2]}]
    response = http.post(
        "/rerank", json={"model": RERANK_MODEL, "query": query, "documents": documents, "top_n": 2}
    )
    assert response.status_code == 200, response.text
    # The upstream is asked for every score, in the de-facto shape, without the documents back.
    assert fake_upstream.requests[-1] == {
        "model": RERANK_MODEL,
        "query": query,
        "documents": texts,
        "return_documents": False,
    }
    body = response.json()
    assert body["object"] == "list" and body["model"] == RERANK_MODEL
    assert body["results"] == [
        {
            "index": 1,
            "relevance_score": overlap_score(query, texts[1]),
            "document": {"text": texts[1]},
        },
        {
            "index": 2,
            "relevance_score": overlap_score(query, texts[2]),
            "document": {"text": texts[2]},
        },
    ]
    words = len(query.split()) + sum(len(t.split()) for t in texts)
    assert body["usage"] == {"prompt_tokens": words, "total_tokens": words}

    bare = http.post(
        "/rerank",
        json={"model": RERANK_MODEL, "query": query, "documents": texts, "return_documents": False},
    ).json()
    assert [r["index"] for r in bare["results"]] == [1, 2, 0]
    assert all(set(r) == {"index", "relevance_score"} for r in bare["results"])


def test_upstream_errors_are_relayed_like_chat_errors(http: httpx.Client) -> None:
    body = {"query": "q", "documents": ["d"]}
    failed = http.post("/rerank", json={**body, "model": "fake-rerank-500"})
    assert failed.status_code == 502
    assert "upstream exploded" in failed.json()["error"]["message"]
    refused = http.post("/rerank", json={**body, "model": "fake-rerank-400"})
    error = assert_error(refused, 400, "temperature")
    assert error["code"] == "bad_temperature"


QUERY = "How do I bake bread?"
RELEVANT = "To bake bread, mix flour, water, yeast and salt, let the dough rise, then bake it."
IRRELEVANT = [
    "The stock market fell on Tuesday after the central bank raised interest rates.",
    "Football is played by two teams of eleven players on a grass field.",
]


def test_embedded_llm_reranker_ranks_the_relevant_passage_first(http: httpx.Client) -> None:
    documents = [IRRELEVANT[0], RELEVANT, IRRELEVANT[1]]
    response = http.post(
        "/rerank", json={"model": LLM_RERANK, "query": QUERY, "documents": documents}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    results = body["results"]
    assert sorted(r["index"] for r in results) == [0, 1, 2]
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert results[0]["index"] == 1, results
    assert results[0]["document"] == {"text": RELEVANT}
    assert body["usage"]["total_tokens"] > 3 * 20  # three prompts, each a few dozen tokens

    # Pointwise: a document's score does not depend on the others sent with it.
    alone = http.post(
        "/rerank", json={"model": LLM_RERANK, "query": QUERY, "documents": [RELEVANT], "top_n": 1}
    ).json()
    assert alone["results"][0]["relevance_score"] == pytest.approx(scores[0], abs=1e-3)


def test_relay_to_a_second_danlu(http: httpx.Client) -> None:
    request = {"query": QUERY, "documents": [IRRELEVANT[1], RELEVANT]}
    relayed = http.post("/rerank", json={**request, "model": "relay-rerank"})
    local = http.post("/rerank", json={**request, "model": LLM_RERANK})
    assert relayed.status_code == 200, relayed.text
    assert relayed.json()["model"] == "relay-rerank"
    assert [r["index"] for r in relayed.json()["results"]] == [
        r["index"] for r in local.json()["results"]
    ]
    for theirs, ours in zip(relayed.json()["results"], local.json()["results"], strict=True):
        assert theirs["relevance_score"] == pytest.approx(ours["relevance_score"], abs=1e-3)
        assert theirs["document"] == ours["document"]


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"documents": []}, "documents"),
        ({"documents": ["x"] * 1001}, "documents"),
        ({"documents": "just one string"}, "documents"),
        ({"documents": [{"title": "no text"}]}, "documents"),
        ({"documents": [{"text": "t", "title": "x"}]}, "documents"),
        ({"documents": [3]}, "documents.0"),
        ({"query": ""}, "query"),
        ({"query": "   "}, "query"),
        ({"top_n": 0}, "top_n"),
        ({"top_n": "two"}, "top_n"),
        ({"model": ""}, "model"),
        ({"rank_fields": ["text"]}, "rank_fields"),
    ],
)
def test_bad_input_is_refused_with_400(
    http: httpx.Client, changes: dict[str, Any], param: str
) -> None:
    body = {"model": RERANK_MODEL, "query": "q", "documents": ["d"], **changes}
    assert_error(http.post("/rerank", json=body), 400, param)


def test_missing_fields(http: httpx.Client) -> None:
    assert_error(
        http.post("/rerank", json={"model": RERANK_MODEL, "documents": ["d"]}), 400, "query"
    )
    assert_error(http.post("/rerank", json={"model": RERANK_MODEL, "query": "q"}), 400, "documents")


def test_unknown_model_and_models_of_another_kind(http: httpx.Client) -> None:
    body = {"query": "q", "documents": ["d"]}
    error = assert_error(http.post("/rerank", json={**body, "model": "nope"}), 404, "model")
    assert error["code"] == "model_not_found"
    for other in (CHAT, "multilingual-e5-small"):
        error = assert_error(http.post("/rerank", json={**body, "model": other}), 422, "model")
        assert "cannot rerank" in error["message"]
    chat = {"model": LLM_RERANK, "messages": [{"role": "user", "content": "hi"}]}
    error = assert_error(http.post("/chat/completions", json=chat), 422, "model")
    assert "/v1/rerank" in error["message"]
    embed = {"model": RERANK_MODEL, "input": "x"}
    assert_error(http.post("/embeddings", json=embed), 422, "model")


def test_needs_a_key_with_the_inference_scope(server: RunningServer) -> None:
    body = {"model": RERANK_MODEL, "query": "q", "documents": ["d"]}
    assert httpx.post(f"{server.api}/rerank", json=body, timeout=30).status_code == 401
    key = server.create_key("hub-only-rerank", "--scope", "hub:read")
    response = httpx.post(
        f"{server.api}/rerank", json=body, timeout=30, headers={"Authorization": f"Bearer {key}"}
    )
    assert_error(response, 403, None)


def test_embedded_chat_model_reports_logprobs(server: RunningServer) -> None:
    """What the LLM reranker reads: OpenAI's logprobs, from the real SDK, streamed or not."""
    client = openai.OpenAI(base_url=server.api, api_key=server.admin_key, max_retries=0)
    request: dict[str, Any] = {
        "model": CHAT,
        "messages": [{"role": "user", "content": "Is water wet? Answer yes or no."}],
        "max_tokens": 3,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 5,
    }
    answer = client.chat.completions.create(**request)
    logprobs = answer.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert "".join(t.token for t in logprobs.content) == answer.choices[0].message.content
    for entry in logprobs.content:
        assert entry.logprob <= 0 and bytes(entry.bytes or []).decode() == entry.token
        alternatives = [a.logprob for a in entry.top_logprobs]
        assert len(alternatives) == 5 and alternatives == sorted(alternatives, reverse=True)
        assert entry.logprob == pytest.approx(alternatives[0])  # temperature 0: the likeliest
    streamed = [
        entry
        for chunk in client.chat.completions.create(**request, stream=True)
        for choice in chunk.choices
        if choice.logprobs and choice.logprobs.content
        for entry in choice.logprobs.content
    ]
    assert [e.token for e in streamed] == [e.token for e in logprobs.content]

    http = httpx.Client(
        base_url=server.api, headers={"Authorization": f"Bearer {server.admin_key}"}
    )
    with http:
        bad = {**request, "top_logprobs": 21}
        assert_error(http.post("/chat/completions", json=bad), 400, "top_logprobs")
        bad = {**request, "logprobs": False}
        assert_error(http.post("/chat/completions", json=bad), 400, "top_logprobs")
