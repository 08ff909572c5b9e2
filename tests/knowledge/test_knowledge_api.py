"""Knowledge bases on a real server: mixed documents in, the right passages out."""

from __future__ import annotations

import json
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


def test_metadata_filters_and_chunk_preview(server: RunningServer) -> None:
    with _http(server) as http:
        kb = http.post("/knowledge-bases", json={"name": "filtered"}).json()["id"]
        for name, body, meta in (
            ("zh.md", "退货需要在七天内提出申请。", {"lang": "zh", "year": 2024}),
            ("en.md", "Returns must be requested within seven days.", {"lang": "en", "year": 2025}),
        ):
            response = http.post(
                f"/knowledge-bases/{kb}/documents",
                files=[("files", (name, body.encode()))],
                data={"metadata": json.dumps(meta)},
            )
            assert response.status_code == 202, response.text
            assert response.json()["data"][0]["metadata"] == meta
        docs = {d["name"]: d for d in _wait(http, kb)}

        def names(filters: dict[str, Any]) -> set[str]:
            response = http.post(
                f"/knowledge-bases/{kb}/retrieve",
                json={"query": "return within seven days 退货", "filters": filters, "top_k": 5},
            )
            assert response.status_code == 200, response.text
            return {h["document_name"] for h in response.json()["data"]}

        assert names({}) == {"zh.md", "en.md"}
        assert names({"lang": "en"}) == {"en.md"}
        assert names({"year": {"$lt": 2025}}) == {"zh.md"}
        assert names({"document_name": {"$in": ["en.md"]}}) == {"en.md"}
        assert names({"lang": "fr"}) == set()

        # Metadata can be replaced; filters see the change at once.
        patched = http.patch(
            f"/knowledge-bases/{kb}/documents/{docs['zh.md']['id']}",
            json={"metadata": {"lang": "en"}},
        )
        assert patched.status_code == 200 and patched.json()["metadata"] == {"lang": "en"}
        assert names({"lang": "en"}) == {"zh.md", "en.md"}

        preview = http.get(f"/knowledge-bases/{kb}/documents/{docs['en.md']['id']}/chunks")
        assert preview.status_code == 200
        assert preview.json()["data"][0]["text"].startswith("Returns must be requested")

        for body, says in (
            ({"query": "x", "filters": {"year": {"$regex": "2"}}}, "unknown operator"),
            ({"query": "x", "filters": {"$or": []}}, "non-empty list"),
        ):
            bad = http.post(f"/knowledge-bases/{kb}/retrieve", json=body)
            assert bad.status_code == 400 and says in bad.json()["error"]["message"], bad.text
        bad = http.post(
            f"/knowledge-bases/{kb}/documents",
            files=[("files", ("a.txt", b"text"))],
            data={"metadata": "[1, 2]"},
        )
        assert bad.status_code == 400 and "JSON object" in bad.json()["error"]["message"]
        bad = http.patch(
            f"/knowledge-bases/{kb}/documents/{docs['en.md']['id']}",
            json={"metadata": {"source": "x"}},
        )
        assert bad.status_code == 400 and "reserved" in bad.json()["error"]["message"]


def test_parent_child_over_http(server: RunningServer) -> None:
    with _http(server) as http:
        kb = http.post(
            "/knowledge-bases",
            json={
                "name": "handbook-pc",
                "chunk_mode": "parent_child",
                "chunk_size": 40,
                "chunk_overlap": 0,
                "parent_size": 300,
            },
        ).json()
        assert kb["chunk_mode"] == "parent_child"
        body = (
            "Expenses: keep every receipt. Claims over 500 yuan need a manager's approval. "
            "Claims are paid with the next salary.\n\n"
            "Travel: book trains through the portal. Flights need approval two weeks ahead."
        )
        _upload(http, kb["id"], {"policy.md": body.encode()})
        _wait(http, kb["id"])
        hit = http.post(
            f"/knowledge-bases/{kb['id']}/retrieve",
            json={"query": "who approves big expense claims", "top_k": 1},
        ).json()["data"][0]
        assert hit["text"].startswith("Expenses:") and "next salary" in hit["text"]
        assert hit["matched_text"] in hit["text"] and hit["matched_text"] != hit["text"]
        bad = http.post(
            "/knowledge-bases",
            json={"name": "x", "chunk_mode": "parent_child", "chunk_size": 500, "parent_size": 400},
        )
        assert bad.status_code == 400 and "parent_size" in bad.json()["error"]["message"]


def test_import_a_hub_dataset(server: RunningServer) -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from huggingface_hub import HfApi

    hub = HfApi(endpoint=server.url, token=server.admin_key)
    repo = hub.create_repo("admin/faq-set", repo_type="dataset").repo_id
    rows = [
        {"question": "门店几点关门？", "answer": "每天晚上九点关门。"},
        {"question": "Can I pay by card?", "answer": "Yes, all major cards are accepted."},
    ]
    hub.upload_file(
        path_or_fileobj="\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode(),
        path_in_repo="data/faq.jsonl",
        repo_id=repo,
        repo_type="dataset",
    )
    buffer = io.BytesIO()
    pq.write_table(pa.table({"text": ["仓库位于上海浦东，周末不发货。"]}), buffer)
    hub.upload_file(
        path_or_fileobj=buffer.getvalue(),
        path_in_repo="data/extra.parquet",
        repo_id=repo,
        repo_type="dataset",
    )
    with _http(server) as http:
        kb = http.post("/knowledge-bases", json={"name": "from-hub"}).json()["id"]
        response = http.post(f"/knowledge-bases/{kb}/documents/import", json={"repo": repo})
        assert response.status_code == 202, response.text
        imported = response.json()["data"]
        assert {d["name"] for d in imported} == {"data/faq.jsonl", "data/extra.parquet"}
        assert all(d["source"].startswith(f"hub:datasets/{repo}@") for d in imported)
        docs = _wait(http, kb)
        assert all(d["status"] == "ready" for d in docs), docs

        def top(query: str) -> str:
            hits = http.post(
                f"/knowledge-bases/{kb}/retrieve", json={"query": query, "top_k": 1}
            ).json()["data"]
            return str(hits[0]["text"])

        assert "九点" in top("商店晚上什么时候关门")
        assert "浦东" in top("仓库在哪里")
        only = http.post(
            f"/knowledge-bases/{kb}/retrieve",
            json={"query": "cards", "filters": {"dataset": repo}, "top_k": 5},
        ).json()["data"]
        assert only and all(h["metadata"]["dataset"] == repo for h in only)

        missing = http.post(f"/knowledge-bases/{kb}/documents/import", json={"repo": "admin/nope"})
        assert missing.status_code == 404
        no_file = http.post(
            f"/knowledge-bases/{kb}/documents/import",
            json={"repo": repo, "paths": ["data/missing.csv"]},
        )
        assert no_file.status_code == 404 and "missing.csv" in no_file.json()["error"]["message"]
        hub.update_repo_settings(repo, private=True, repo_type="dataset")
        server.cli("users", "create", "kb-importer", check=False)
        other = server.create_key("importer", "--user", "kb-importer")
        other_kb = httpx.post(
            f"{server.api}/knowledge-bases",
            json={"name": "theirs"},
            headers={"Authorization": f"Bearer {other}"},
            timeout=30,
        ).json()["id"]
        private = httpx.post(
            f"{server.api}/knowledge-bases/{other_kb}/documents/import",
            json={"repo": repo},
            headers={"Authorization": f"Bearer {other}"},
            timeout=30,
        )
        assert private.status_code == 404


def test_question_answer_chunking_with_a_chat_model(server: RunningServer) -> None:
    with _http(server) as http:
        created = http.post(
            "/knowledge-bases", json={"name": "qa", "chunk_mode": "qa", "qa_model": "fake-qa"}
        )
        assert created.status_code == 201, created.text
        kb = created.json()["id"]
        body = "门店营业时间是早上九点到晚上九点。会员生日当月享受八折优惠。"
        _upload(http, kb, {"store.md": body.encode()})
        (doc,) = _wait(http, kb)
        assert doc["status"] == "ready" and doc["chunks"] == 2, doc
        hits = http.post(
            f"/knowledge-bases/{kb}/retrieve", json={"query": "会员生日有什么优惠", "top_k": 1}
        ).json()["data"]
        assert hits[0]["answer"] == "会员生日当月享受八折优惠。"
        assert hits[0]["question"].startswith("关于") and hits[0]["answer"] in hits[0]["text"]
        missing = http.post(
            "/knowledge-bases", json={"name": "qa", "chunk_mode": "qa", "qa_model": "nope"}
        )
        assert missing.status_code == 404


def test_retrieval_with_a_reranker(server: RunningServer) -> None:
    with _http(server) as http:
        kb = http.post("/knowledge-bases", json={"name": "reranked", "chunk_size": 60}).json()["id"]
        _upload(
            http,
            kb,
            {
                "a.txt": b"Invoices are emailed monthly.",
                "b.txt": b"Refund requests are handled by the billing team within two days.",
                "c.txt": b"The office is closed on public holidays.",
            },
        )
        _wait(http, kb)
        response = http.post(
            f"/knowledge-bases/{kb}/retrieve",
            json={"query": "who handles refund requests", "top_k": 2, "rerank": "fake-rerank"},
        )
        assert response.status_code == 200, response.text
        hits = response.json()["data"]
        assert len(hits) == 2 and hits[0]["document_name"] == "b.txt"
        assert hits[0]["rerank_score"] == hits[0]["score"] > hits[1]["score"]
        # The reranker's scores are what a threshold applies to.
        only = http.post(
            f"/knowledge-bases/{kb}/retrieve",
            json={
                "query": "who handles refund requests",
                "rerank": "fake-rerank",
                "score_threshold": 0.5,
            },
        ).json()["data"]
        assert [h["document_name"] for h in only] == ["b.txt"]
        for model, status in (("nope", 404), ("fake-chat", 422)):
            bad = http.post(f"/knowledge-bases/{kb}/retrieve", json={"query": "x", "rerank": model})
            assert bad.status_code == status, bad.text
