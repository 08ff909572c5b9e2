#!/usr/bin/env python3
"""Sanity checks for the bilingual retrieval evaluation set (standard library only).

    python validate.py [DIR]

Checks: JSON schema of both files, unique passage and query ids, id prefix
matches the language, every relevant id exists and has the query's language,
no duplicate passage texts or query strings, passage lengths within the
documented window, and the minimum counts (2,000 passages, 200 queries).
Exits non-zero on any failure.
"""

import collections
import json
import os
import sys

MIN_PASSAGES = 2000
MIN_QUERIES = 200
LENGTHS = {"zh": (150, 700), "en": (300, 1200)}


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    passages = load(os.path.join(root, "passages.jsonl"))
    queries = load(os.path.join(root, "queries.jsonl"))
    errors = []

    by_id = {}
    texts = set()
    for p in passages:
        for key in ("id", "lang", "title", "text", "source", "repo"):
            if not isinstance(p.get(key), str) or not p[key]:
                errors.append(f"passage {p.get('id')}: missing/empty {key}")
        if p.get("lang") not in LENGTHS:
            errors.append(f"passage {p.get('id')}: bad lang {p.get('lang')}")
            continue
        if not p["id"].startswith(p["lang"] + "-"):
            errors.append(f"passage {p['id']}: id prefix does not match lang")
        if p["id"] in by_id:
            errors.append(f"duplicate passage id {p['id']}")
        by_id[p["id"]] = p
        lo, hi = LENGTHS[p["lang"]]
        if not lo <= len(p["text"]) <= hi:
            errors.append(f"passage {p['id']}: length {len(p['text'])} outside {lo}-{hi}")
        if p["text"] in texts:
            errors.append(f"passage {p['id']}: duplicate text")
        texts.add(p["text"])

    qids = set()
    qtexts = set()
    for q in queries:
        if q.get("lang") not in LENGTHS:
            errors.append(f"query {q.get('id')}: bad lang")
            continue
        if not q.get("id", "").startswith(f"q-{q['lang']}-"):
            errors.append(f"query {q.get('id')}: id prefix does not match lang")
        if q["id"] in qids:
            errors.append(f"duplicate query id {q['id']}")
        qids.add(q["id"])
        if not q.get("query"):
            errors.append(f"query {q['id']}: empty query")
        if q["query"] in qtexts:
            errors.append(f"query {q['id']}: duplicate query string")
        qtexts.add(q["query"])
        rel = q.get("relevant")
        if not rel or len(set(rel)) != len(rel):
            errors.append(f"query {q['id']}: empty or repeated relevant ids")
            continue
        for pid in rel:
            if pid not in by_id:
                errors.append(f"query {q['id']}: unknown passage {pid}")
            elif by_id[pid]["lang"] != q["lang"]:
                errors.append(f"query {q['id']}: passage {pid} has another language")

    if len(passages) < MIN_PASSAGES:
        errors.append(f"only {len(passages)} passages (< {MIN_PASSAGES})")
    if len(queries) < MIN_QUERIES:
        errors.append(f"only {len(queries)} queries (< {MIN_QUERIES})")

    plang = collections.Counter(p["lang"] for p in passages)
    qlang = collections.Counter(q["lang"] for q in queries)
    nrel = collections.Counter(len(q["relevant"]) for q in queries)
    print(f"passages: {len(passages)} {dict(plang)}")
    print(f"queries:  {len(queries)} {dict(qlang)}")
    print(f"relevant ids per query: {dict(sorted(nrel.items()))}")
    for e in errors:
        print("ERROR:", e)
    print("OK" if not errors else f"{len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
