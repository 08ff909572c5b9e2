#!/usr/bin/env python3
"""Build bench/data/retrieval/passages.jsonl from snapshots of two
documentation repositories, both licensed CC BY 4.0:

  * open-telemetry/opentelemetry.io  (OpenTelemetry website)
  * karmada-io/website               (Karmada website)

Standard library only.  Usage:

    python build_passages.py OTEL_MIRROR KARMADA_MIRROR [--out passages.jsonl]

Each path may be a bare git directory (e.g. a mirror) or a normal checkout;
files are read with ``git show <commit>:<path>``, so the result does not
depend on the working tree.  The pinned commits in SOURCES are used so that
the output is reproducible (pass --head to use each mirror's HEAD instead).

What it does (see SOURCE.md):
  * picks Markdown pages from the Chinese and English documentation trees of
    each repository, skipping generated/reference-only pages and fragments;
  * strips front matter (Hugo/Docusaurus), shortcodes ({{< ... >}},
    {{% ... %}}), HTML comments, HTML/MDX tags, tables, images, link targets,
    Markdown emphasis and escapes, and fenced code blocks longer than
    MAX_CODE_LINES lines (shorter ones are kept verbatim on their own line
    unless they make the passage look like code);
  * splits each page into paragraph-level passages, merging consecutive
    paragraphs while the passage is below the minimum length, within a
    length window (zh 150-700 characters, en 300-1200 characters); the title
    is "page title > section heading";
  * drops passages that are mostly code, URLs, link lists or terse lists;
  * removes exact and near duplicates;
  * samples pages deterministically so that each language has
    TARGET_PER_LANG passages spread over many topics.
"""

import argparse
import hashlib
import json
import re
import subprocess
import sys

SOURCES = [
    {
        "repo": "open-telemetry/opentelemetry.io",
        "commit": "dd5997c8b9fafbf72ea6b8059ade242d88b8f118",
        "roots": {"zh": "content/zh/docs/", "en": "content/en/docs/"},
        # generated listings, option tables, spec mirrors, website-process
        # pages: matched as path prefixes below the language root
        "skip": (
            "_includes/",
            "specs/",
            "zero-code/java/agent/supported-libraries",
            "languages/java/configuration",
            "contributing/",
            "security/cve",
            "compatibility/",
        ),
    },
    {
        "repo": "karmada-io/website",
        "commit": "747f80c48c9a8784ec679cf88ae15b935c7824a9",
        "roots": {
            "zh": "i18n/zh/docusaurus-plugin-content-docs/current/",
            "en": "docs/",
        },
        "skip": (
            "reference/",  # generated CLI/API reference
            "administrator/upgrading/",  # per-release upgrade notes
            "releases.md",
            "roadmap.md",
            "README.md",
            "casestudies/adopters",
            "contributor/",  # website/project contribution process
            "developers/code-style-guide",
            "developers/releasing",
            "developers/document-releasing",
        ),
    },
]

LANG_LIMITS = {"zh": (150, 700), "en": (300, 1200)}  # passage length, chars
TARGET_PER_LANG = 1200
PAGE_CAP = {"zh": 40, "en": 12}  # at most this many passages from one page
MAX_CODE_LINES = 2
CODE_MARK = "\x00"  # marks kept short code lines until the final filter

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def git(gitdir, *args):
    return subprocess.run(
        ["git", "--git-dir", gitdir, *args],
        check=True,
        capture_output=True,
    ).stdout


def resolve_gitdir(path):
    out = subprocess.run(
        ["git", "-C", path, "rev-parse", "--absolute-git-dir"],
        capture_output=True,
        text=True,
    )
    if out.returncode == 0 and out.stdout.strip():
        return out.stdout.strip()
    return path  # assume bare repository


# --------------------------------------------------------------------------
# Markdown cleaning
# --------------------------------------------------------------------------

FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\n(.*?)\n---[ \t]*\n", re.S)
HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
CONFIG_OPTION = re.compile(r'{{%\s*config_option\s+name="([^"]+)"[^%]*%}}')
SHORTCODE = re.compile(r"{{[<%].*?[%>]}}", re.S)
HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*?)?/?>", re.S)
IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
REF_DEF = re.compile(r"^\s*\[[^\]]+\]:\s*\S+.*$", re.M)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*(?:\{#[^}]*\})?\s*#*\s*$")
ANCHOR = re.compile(r"\s*\{#[^}]*\}")
ALERT = re.compile(r"^\[!(NOTE|TIP|WARNING|CAUTION|IMPORTANT)\]\s*", re.I)
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")


def front_matter_title(fm):
    m = re.search(r"^title:\s*(.+)$", fm, re.M)
    if not m:
        return ""
    t = m.group(1).strip().strip("'\"")
    return t


MD_ESCAPE = re.compile(r"\\([*\[\]_#<>|~`!(){}.+-])")


def unescape_outside_code(s):
    parts = re.split(r"(`[^`]*`)", s)
    return "".join(p if p.startswith("`") else MD_ESCAPE.sub(r"\1", p) for p in parts)


def inline_clean(s):
    s = unescape_outside_code(s)
    s = IMAGE.sub("", s)
    s = LINK.sub(r"\1", s)
    s = REF_LINK.sub(r"\1", s)
    s = re.sub(r"\[([^\]]+)\]\(\)", r"\1", s)
    s = re.sub(r"\[\^[^\]]+\]", "", s)  # footnote references
    s = s.replace("**", "").replace("__", "")
    s = re.sub(r"(?<![\w])_(?![\s_])([^_\n]+?)(?<![\s_])_(?![\w])", r"\1", s)
    s = re.sub(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])", r"\1", s)
    s = s.replace("`", "")
    s = s.replace("&nbsp;", " ").replace("&lt;", "<").replace("&gt;", ">")
    s = s.replace("&amp;", "&").replace("&quot;", '"')
    return s


def is_link_item(raw):
    """A list item (raw markdown) that is essentially just a link."""
    body = LIST_ITEM.sub("", raw).strip()
    without = LINK.sub("", REF_LINK.sub("", body))
    without = re.sub(r"[\s:：,，.。;；\-–—()（）]", "", without)
    has_link = bool(LINK.search(body) or REF_LINK.search(body))
    return has_link and len(without) < 25


def parse_blocks(md):
    """Yield (heading_path, kind, raw_lines) blocks of a cleaned page."""
    lines = md.split("\n")
    blocks = []
    headings = {}
    cur = []
    cur_kind = None
    in_code = False
    code_fence = ""
    code_lines = []

    def flush():
        nonlocal cur, cur_kind
        if cur:
            blocks.append((dict(headings), cur_kind, cur))
        cur = []
        cur_kind = None

    for line in lines:
        stripped = line.strip()
        if in_code:
            if re.sub(r"^(>\s?)+", "", stripped).startswith(code_fence):
                in_code = False
                if 0 < len(code_lines) <= MAX_CODE_LINES and all(len(c) <= 100 for c in code_lines):
                    # short snippet: keep it as its own marked line(s)
                    if cur_kind is None:
                        cur_kind = "para"
                    cur.extend(CODE_MARK + c for c in code_lines)
                elif code_lines:
                    # a long code block ends the paragraph and interrupts
                    # merging of the surrounding text
                    flush()
                    blocks.append((dict(headings), "code", []))
            else:
                c = re.sub(r"^(>\s?)+", "", stripped).strip()
                if c:
                    code_lines.append(c)
            continue
        m = re.match(r"^\s*(>\s*)*(```+|~~~+)", line)
        if m:
            in_code = True
            code_fence = m.group(2)
            code_lines = []
            continue
        if re.match(r"^:::", stripped) or re.match(r"^(import|export)\s.+(from\s|=)", stripped):
            # Docusaurus admonition fences and MDX import/export lines
            if cur and cur_kind != "list":
                flush()
            continue
        # blockquote / alerts: unwrap
        if stripped.startswith(">"):
            stripped = re.sub(r"^(>\s?)+", "", stripped).strip()
            stripped = ALERT.sub("", stripped)
            line = stripped
        hm = HEADING.match(stripped)
        if hm:
            flush()
            level = len(hm.group(1))
            text = inline_clean(ANCHOR.sub("", hm.group(2))).strip()
            headings = {k: v for k, v in headings.items() if k < level}
            headings[level] = text
            continue
        if not stripped or re.fullmatch(r"(-{3,}|\*{3,}|_{3,})", stripped):
            flush()  # blank line or horizontal rule
            continue
        if stripped.startswith("|"):
            kind = "table"
        elif LIST_ITEM.match(line) or (cur_kind == "list" and line.startswith((" ", "\t"))):
            kind = "list"
        else:
            kind = "para"
        if (
            cur_kind is not None
            and kind != cur_kind
            and not (cur_kind == "list" and kind == "para")
        ):
            flush()
        if cur_kind is None:
            cur_kind = kind
        cur.append(line)
    flush()
    return blocks


def block_text(kind, raw_lines, lang):
    """Turn a raw block into plain text, or None to drop it."""
    if kind in ("table", "code"):
        return None
    if kind == "list":
        items = []
        for ln in raw_lines:
            if LIST_ITEM.match(ln) or not items:
                items.append(ln)
            else:
                items[-1] += " " + ln.strip()
        link_items = sum(is_link_item(i) for i in items)
        if link_items >= max(2, 0.5 * len(items)):
            return None
        out = []
        for it in items:
            t = inline_clean(LIST_ITEM.sub("", it)).strip()
            if t:
                out.append("- " + t)
        if not out:
            return None
        return "\n".join(out)
    text = ""
    for ln in raw_lines:
        if ln.startswith(CODE_MARK):
            text += "\n" + ln  # code stays on its own line, verbatim
            continue
        p = inline_clean(ln.strip())
        if not p:
            continue
        if not text:
            text = p
        elif CODE_MARK in text.rsplit("\n", 1)[-1]:
            text += "\n" + p
        elif lang == "zh" and (CJK.match(text[-1]) or CJK.match(p[0])):
            text += p
        else:
            text += " " + p
    return text.strip() or None


def clean_page(raw):
    fm = FRONT_MATTER.match(raw)
    title = ""
    if fm:
        title = front_matter_title(fm.group(1))
        raw = raw[fm.end() :]
    raw = HTML_COMMENT.sub("", raw)
    raw = re.sub(r"<(script|style)\b.*?</\1>", "", raw, flags=re.S | re.I)
    raw = re.sub(r"<\?.*?\?>", "", raw, flags=re.S)
    raw = CONFIG_OPTION.sub(r"\1", raw)
    raw = SHORTCODE.sub("", raw)
    raw = REF_DEF.sub("", raw)
    # HTML tags, but not inside code fences' placeholder-like text such as
    # <otel-directory>; those are lowercase with a hyphen and no attributes,
    # so we only strip tags that are known HTML elements.
    raw = re.sub(
        r"</?(?:a|img|br|p|div|span|details|summary|sup|sub|b|i|em|strong|"
        r"code|pre|ul|ol|li|table|thead|tbody|tr|td|th|kbd|small|figure|"
        r"figcaption|iframe|video|source|section|hr|h[1-6]|center|font|link|meta)"
        r"(?:\s[^<>]*?)?/?>",
        "",
        raw,
        flags=re.I,
    )
    # MDX/JSX components (Tabs, TabItem, images bound by import, ...)
    raw = re.sub(r"</?(?:Tabs|TabItem|[A-Z][A-Za-z]+ ?/)(?:\s[^<>]*?)?/?>", "", raw)
    raw = re.sub(r"<img\b[^>]*>", "", raw)
    return title, raw


# --------------------------------------------------------------------------
# Passage assembly and filters
# --------------------------------------------------------------------------


def sentence_split(text, lang):
    if lang == "zh":
        parts = re.split(r"(?<=[。！？；])", text)
    else:
        parts = re.split(r"(?<=[.!?])\s+(?=[A-Z(])", text)
    return [p for p in parts if p.strip()]


def split_long(text, lang, lo, hi):
    """Split text longer than hi at sentence boundaries into chunks."""
    if len(text) <= hi:
        return [text]
    units = []
    for line in text.split("\n"):
        units.extend(sentence_split(line, lang) if len(line) > hi else [line])
    chunks, cur = [], ""
    joiner = "" if lang == "zh" else " "
    for u in units:
        cand = (
            (cur + ("\n" if cur.startswith("- ") or u.startswith("- ") else joiner) + u)
            if cur
            else u
        )
        if len(cand) > hi and cur:
            chunks.append(cur)
            cur = u
        else:
            cur = cand
    if cur:
        chunks.append(cur)
    return chunks


def looks_bad(text, lang):
    """Mostly code, identifiers, URLs or terse lists."""
    nonspace = re.sub(r"\s", "", text)
    if not nonspace:
        return True
    if lang == "zh":
        cjk = len(CJK.findall(nonspace))
        if cjk / len(nonspace) < 0.30 or cjk < 40:
            return True
    else:
        letters = sum(c.isalpha() for c in nonspace)
        if letters / len(nonspace) < 0.72:
            return True
        words = re.findall(r"[A-Za-z]+", text)
        common = {
            "the",
            "a",
            "an",
            "to",
            "of",
            "and",
            "or",
            "is",
            "in",
            "for",
            "you",
            "that",
            "this",
            "with",
            "can",
            "be",
            "are",
        }
        if sum(w.lower() in common for w in words) / max(1, len(words)) < 0.08:
            return True
        if len(CJK.findall(text)) > 5:
            return True
    if len(re.findall(r"https?://\S+", text)) >= 3:
        return True
    lines = text.split("\n")
    items = [ln for ln in lines if ln.startswith("- ")]
    if len(items) >= 4 and sum(map(len, items)) > 0.6 * len(text):
        avg = sum(len(i) for i in items) / len(items)
        if avg < (14 if lang == "zh" else 40):
            return True
    # code-ish symbols
    sym = sum(text.count(c) for c in "{}=;<>$/_|\\")
    return sym / len(nonspace) > 0.08


def finish(text, lang):
    """Final filter; short code lines are dropped if they spoil a passage."""
    lo, hi = LANG_LIMITS[lang]
    candidates = [text.replace(CODE_MARK, "")]
    if CODE_MARK in text:
        candidates.append("\n".join(ln for ln in text.split("\n") if not ln.startswith(CODE_MARK)))
    for t in candidates:
        t = re.sub(r"[ \t]+\n", "\n", t).strip()
        if lo <= len(t) <= hi and not looks_bad(t, lang):
            return t
    return None


def page_passages(raw, lang):
    """Split one page into passages.

    Paragraph-level blocks are taken in reading order; consecutive blocks are
    merged while the passage is still shorter than the minimum length (a
    heading crossed while merging is kept as a line of text), and a passage
    is closed as soon as it has reached the minimum and the next block would
    not fit.  The title is "page title > section heading" of the section
    that contributes most of the passage.
    """
    lo, hi = LANG_LIMITS[lang]
    page_title, body = clean_page(raw)
    pieces = []  # (title, heading, text) or None for a dropped block
    for heads, kind, lines in parse_blocks(body):
        sec = heads[max(heads)] if heads else ""
        title = page_title or sec
        if sec and page_title and sec != page_title:
            title = f"{page_title} > {sec}"
        text = block_text(kind, lines, lang)
        if text is None:
            pieces.append(None)
            continue
        for t in split_long(text, lang, lo, hi):
            pieces.append((title, sec, t))
    out = []
    buf = []  # list of (title, text)

    def size(items):
        return sum(len(t) + 1 for _, t in items)

    def close():
        if buf:
            weight = {}
            for ti, t in buf:
                weight[ti] = weight.get(ti, 0) + len(t)
            title = max(weight, key=lambda k: (weight[k], -list(weight).index(k)))
            out.append((title, "\n".join(t for _, t in buf)))
        buf.clear()

    for piece in pieces:
        if piece is None:
            if size(buf) >= lo:
                close()
            continue
        title, sec, t = piece
        # a heading crossed while merging is kept as a line of text
        t_in = sec + "\n" + t if buf and buf[-1][0] != title and sec else t
        if not buf:
            buf.append((title, t))
        elif size(buf) < lo and size(buf) + len(t_in) <= hi:
            buf.append((title, t_in))
        else:
            close()
            buf.append((title, t))
    close()
    result = []
    for title, text in out:
        text = finish(text, lang)
        if text:
            result.append((title, text))
    return result


def norm(text):
    return re.sub(r"[\W_]+", "", text.lower())


def shingles(text, k):
    t = norm(text)
    return {t[i : i + k] for i in range(max(1, len(t) - k + 1))}


def stable_rank(key):
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("otel_mirror", help="git dir or checkout of open-telemetry/opentelemetry.io")
    ap.add_argument("karmada_mirror", help="git dir or checkout of karmada-io/website")
    ap.add_argument(
        "--head", action="store_true", help="use each mirror's HEAD instead of the pinned commits"
    )
    ap.add_argument("--out", default="passages.jsonl")
    ap.add_argument(
        "--target",
        type=int,
        default=TARGET_PER_LANG,
        help="passages per language (default %(default)s)",
    )
    args = ap.parse_args()
    mirrors = [args.otel_mirror, args.karmada_mirror]

    # candidates[lang] = {(repo, path): [(title, text), ...]}
    candidates = {lang: {} for lang in LANG_LIMITS}
    for src, mirror in zip(SOURCES, mirrors, strict=True):
        gitdir = resolve_gitdir(mirror)
        rev = "HEAD" if args.head else src["commit"]
        commit = git(gitdir, "rev-parse", rev + "^{commit}").decode().strip()
        print(f"{src['repo']} @ {commit}", file=sys.stderr)
        files = git(gitdir, "ls-tree", "-r", "--name-only", commit).decode()
        files = files.split("\n")
        for lang, root in src["roots"].items():
            for path in files:
                if not (path.startswith(root) and path.endswith((".md", ".mdx"))):
                    continue
                if path[len(root) :].startswith(src["skip"]):
                    continue
                if "/_includes/" in path:  # page fragments, no title
                    continue
                raw = git(gitdir, "show", f"{commit}:{path}").decode("utf-8")
                ps = page_passages(raw, lang)
                if ps:
                    candidates[lang][(src["repo"], path)] = ps

    records = []
    for lang, per_page in candidates.items():
        # Deterministic page sampling: pages in hash order, each page
        # contributes at most PAGE_CAP passages, until the target is
        # reached; exact and near duplicates (shingle Jaccard > 0.8) of an
        # already chosen passage are skipped.
        order = sorted(per_page, key=lambda k: stable_rank(k[0] + ":" + k[1]))
        chosen = []
        seen_exact = set()
        seen_sh = []
        k = 6 if lang == "zh" else 12
        for page in order:
            if len(chosen) >= args.target:
                break
            taken = 0
            for pos, (title, text) in enumerate(per_page[page]):
                if taken >= PAGE_CAP[lang] or len(chosen) >= args.target:
                    break
                n = norm(text)
                if n in seen_exact:
                    continue
                sh = shingles(text, k)
                if any(len(sh & o) / len(sh | o) > 0.8 for o in seen_sh if sh & o):
                    continue
                seen_exact.add(n)
                seen_sh.append(sh)
                chosen.append((page, pos, title, text))
                taken += 1
        # stable ids in reading order: repository, path, position
        chosen.sort(key=lambda r: (r[0], r[1]))
        for i, ((repo, path), _, title, text) in enumerate(chosen, 1):
            records.append(
                {
                    "id": f"{lang}-{i:06d}",
                    "lang": lang,
                    "title": title,
                    "text": text,
                    "source": path,
                    "repo": repo,
                }
            )
        pages = {c[0] for c in chosen}
        print(
            f"{lang}: {len(chosen)} passages from {len(pages)} pages "
            f"({len(per_page)} pages had candidates, "
            f"{sum(map(len, per_page.values()))} candidates)",
            file=sys.stderr,
        )

    with open(args.out, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
