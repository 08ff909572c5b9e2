"""Knowledge bases on a real server: mixed documents in, the right passages out."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.support.server import RunningServer

DOCS: dict[str, bytes] = {
    "refund.md": "# 退款政策\n\n购买后七天内可以申请退款，请联系客服并提供订单号。"
    "退款会在三个工作日内到账。".encode(),
    "shipping.txt": b"Shipping: orders leave our warehouse within 48 hours. "
    b"Tracking numbers are sent by email.",
    "faq.html": "<h1>FAQ</h1><p>会员积分可以兑换优惠券。</p><p>Points never expire.</p>".encode(),
    "prices.csv": b"product,price\ngreen tea,30 yuan\nblack tea,45 yuan\n",
    "broken.json": b"{this is not json",
    "empty.txt": b"",
    "scan.pdf": b"%PDF-1.4 binary",
    "book.epub": b"PK\x03\x04 not supported",
}


def _http(server: RunningServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.api, timeout=120, headers={"Authorization": f"Bearer {server.admin_key}"}
    )


def _wait(http: httpx.Client, kb: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        docs = http.get(f"/knowledge-bases/{kb}/documents").json()["data"]
        if all(d["status"] in ("ready", "failed") for d in docs):
            return docs
        time.sleep(0.3)
    raise AssertionError(f"ingestion did not finish: {docs}")


def _upload(http: httpx.Client, kb: str, docs: dict[str, bytes]) -> list[dict[str, Any]]:
    files = [("files", (name, data)) for name, data in docs.items()]
    response = http.post(f"/knowledge-bases/{kb}/documents", files=files)
    assert response.status_code == 202, response.text
    return list(response.json()["data"])


def test_ingest_mixed_documents_and_retrieve(server: RunningServer) -> None:
    with _http(server) as http:
        kb = http.post("/knowledge-bases", json={"name": "support", "chunk_size": 200}).json()["id"]
        _upload(http, kb, DOCS)
        docs = {d["name"]: d for d in _wait(http, kb)}
        for name in ("refund.md", "shipping.txt", "faq.html", "prices.csv"):
            assert docs[name]["status"] == "ready" and docs[name]["chunks"] >= 1, docs[name]
        for name, says in (
            ("broken.json", "not valid JSON"),
            ("empty.txt", "empty"),
            ("scan.pdf", "not a readable PDF"),
            ("book.epub", "not supported"),
        ):
            assert docs[name]["status"] == "failed" and says in docs[name]["error"], docs[name]
            assert docs[name]["chunks"] == 0

        def top(query: str, mode: str) -> dict[str, Any]:
            hits = http.post(
                f"/knowledge-bases/{kb}/retrieve", json={"query": query, "mode": mode, "top_k": 3}
            ).json()["data"]
            assert hits, (query, mode)
            return dict(hits[0])

        assert top("怎么申请退款", "keyword")["document_name"] == "refund.md"
        assert top("怎么申请退款", "hybrid")["document_name"] == "refund.md"
        assert top("How do I get my money back?", "vector")["document_name"] == "refund.md"
        assert top("when will my parcel ship", "hybrid")["document_name"] == "shipping.txt"
        hit = top("积分兑换", "hybrid")
        assert hit["document_name"] == "faq.html" and hit["position"] == 0
        assert {"text", "score", "document", "position"} <= set(hit)

        # Re-indexing replaces a document's chunks (same text: same count, same answers).
        shipping = docs["shipping.txt"]
        again = http.post(f"/knowledge-bases/{kb}/documents/{shipping['id']}/reindex")
        assert again.status_code == 202 and again.json()["status"] == "queued"
        after = {d["name"]: d for d in _wait(http, kb)}
        assert after["shipping.txt"]["status"] == "ready"
        assert after["shipping.txt"]["chunks"] == shipping["chunks"]
        assert top("when will my parcel ship", "hybrid")["document_name"] == "shipping.txt"

        # Deleting a document really removes its chunks.
        refund_id = docs["refund.md"]["id"]
        assert http.delete(f"/knowledge-bases/{kb}/documents/{refund_id}").status_code == 204
        hits = http.post(
            f"/knowledge-bases/{kb}/retrieve", json={"query": "退款", "mode": "keyword"}
        ).json()
        assert all(h["document_name"] != "refund.md" for h in hits["data"])


def test_bad_requests(server: RunningServer) -> None:
    with _http(server) as http:
        assert (
            http.post(
                "/knowledge-bases", json={"name": "x", "embedding_model": "smollm2-135m-instruct"}
            ).status_code
            == 422
        )
        assert (
            http.post("/knowledge-bases", json={"name": "x", "embedding_model": "nope"}).status_code
            == 404
        )
        assert http.get("/knowledge-bases/kb_missing/documents").status_code == 404
        kb = http.post("/knowledge-bases", json={"name": "y"}).json()["id"]
        assert http.post(f"/knowledge-bases/{kb}/documents").status_code == 400
        assert (
            http.post(
                f"/knowledge-bases/{kb}/retrieve", json={"query": "x", "mode": "magic"}
            ).status_code
            == 400
        )
        server.cli("users", "create", "kb-outsider", check=False)
        other = server.create_key("outsider-kb", "--user", "kb-outsider")
        denied = httpx.get(
            f"{server.api}/knowledge-bases/{kb}/documents",
            timeout=30,
            headers={"Authorization": f"Bearer {other}"},
        )
        assert denied.status_code == 404


def test_an_app_answers_with_citations(server: RunningServer) -> None:
    with _http(server) as http:
        kb = http.post("/knowledge-bases", json={"name": "handbook"}).json()["id"]
        _upload(http, kb, {"leave.md": "# Leave\n\n每位员工每年有十五天带薪年假。".encode()})
        _wait(http, kb)
        spec = {
            "schema": "danlu.app/v1",
            "app": {"name": "handbook bot", "mode": "chat"},
            "graph": {
                "nodes": [
                    {"id": "start", "type": "start"},
                    {
                        "id": "kb",
                        "type": "knowledge_retrieval",
                        "config": {"knowledge_bases": [kb], "top_k": 2},
                    },
                    {
                        "id": "reply",
                        "type": "answer",
                        "config": {
                            "text": "{{ kb.context }}\n\nSources: "
                            "{% for p in kb.passages %}{{ p.document_name }} {% endfor %}"
                        },
                    },
                ],
                "edges": [{"source": "start", "target": "kb"}, {"source": "kb", "target": "reply"}],
            },
        }
        app = http.post("/apps/import", json=spec).json()
        http.post(f"/apps/{app['slug']}/publish")
        answer = http.post(f"/apps/{app['slug']}/chat", json={"query": "年假有几天？"}).json()
        assert answer["status"] == "succeeded", answer
        assert "十五天" in answer["answer"] and "Sources: leave.md" in answer["answer"]
