// One knowledge base: upload with progress, documents with indexing status, chunk preview,
// and a retrieval test.
import { useEffect, useRef, useState, type FormEvent } from "react";
import { api, formatBytes, token } from "../api";
import { Dialog, ErrorNote, Loaded, useAsync } from "../components/ui";
import { useT } from "../i18n";
import { common } from "../i18n/common";
import { kbText } from "../i18n/knowledge";
import { Link } from "../router";
import type { KnowledgeBase } from "./knowledge";

interface Doc {
  id: string;
  name: string;
  size: number;
  status: "queued" | "indexing" | "ready" | "failed";
  progress: number;
  error: string | null;
  chunks: number;
}

interface Hit {
  id: string;
  text: string;
  score: number;
  document_name: string;
  position: number;
}

/** multipart upload with progress (fetch cannot report upload progress). */
function upload(path: string, files: FileList, onProgress: (fraction: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    Array.from(files).forEach((file) => form.append("files", file));
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    const bearer = token();
    if (bearer) xhr.setRequestHeader("Authorization", `Bearer ${bearer}`);
    xhr.upload.onprogress = (event) => event.lengthComputable && onProgress(event.loaded / event.total);
    xhr.onload = () => {
      if (xhr.status < 300) resolve();
      else {
        let message = `${xhr.status}`;
        try {
          message = JSON.parse(xhr.responseText).error.message;
        } catch {
          /* keep the status */
        }
        reject(new Error(message));
      }
    };
    xhr.onerror = () => reject(new Error("network error"));
    xhr.send(form);
  });
}

export default function KnowledgeBasePage({ params }: { params: Record<string, string> }) {
  const t = useT(kbText);
  const c = useT(common);
  const id = params.id;
  const kb = useAsync(async () => (await api<{ data: KnowledgeBase[] }>("/v1/knowledge-bases")).data.find((k) => k.id === id) ?? Promise.reject(new Error(c("notFound"))), [id]);
  const docs = useAsync(() => api<{ data: Doc[] }>(`/v1/knowledge-bases/${id}/documents`).then((r) => r.data), [id]);
  const [percent, setPercent] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [previewing, setPreviewing] = useState<Doc | null>(null);
  const input = useRef<HTMLInputElement>(null);

  // Poll while anything is still being indexed.
  const busy = (docs.value ?? []).some((d) => d.status === "queued" || d.status === "indexing");
  useEffect(() => {
    if (!busy) return;
    const timer = setInterval(() => {
      void api<{ data: Doc[] }>(`/v1/knowledge-bases/${id}/documents`).then((r) => docs.set(r.data));
    }, 1000);
    return () => clearInterval(timer);
  }, [busy, id, docs]);

  const send = async (files: FileList | null) => {
    if (!files?.length) return;
    setError(null);
    setPercent(0);
    try {
      await upload(`/v1/knowledge-bases/${id}/documents`, files, (f) => setPercent(Math.round(f * 100)));
      docs.reload();
    } catch (e) {
      setError(e);
    } finally {
      setPercent(null);
      if (input.current) input.current.value = "";
    }
  };

  const remove = async (doc: Doc) => {
    if (!confirm(c("confirmDelete", { name: doc.name }))) return;
    await api(`/v1/knowledge-bases/${id}/documents/${doc.id}`, { method: "DELETE" }).catch(setError);
    docs.reload();
  };

  return (
    <div className="page">
      <Loaded state={kb}>
        {(base) => (
          <>
            <div className="page-head">
              <Link to="/knowledge" className="muted">
                {t("title")}
              </Link>
              <span className="muted">/</span>
              <h1>{base.name}</h1>
              <span className="tag">{t(`mode_${base.chunk_mode}`)}</span>
            </div>
            <div className="kb-layout">
              <section className="stack">
                <div className="card stack">
                  <div className="row">
                    <h2>{t("documents")}</h2>
                    <span className="spacer" />
                    <label className="button primary">
                      {t("upload")}
                      <input ref={input} type="file" multiple hidden onChange={(e) => void send(e.target.files)} data-testid="kb-upload" />
                    </label>
                  </div>
                  <p className="muted small">{t("uploadHint")}</p>
                  {percent !== null ? (
                    <div>
                      <div className="small">{t("uploading", { percent })}</div>
                      <div className="progress">
                        <i style={{ width: `${percent}%` }} />
                      </div>
                    </div>
                  ) : null}
                  {error ? <ErrorNote error={error} /> : null}
                  <Loaded state={docs} isEmpty={(list) => list.length === 0} empty={t("noDocs")}>
                    {(list) => (
                      <table className="table" data-testid="kb-docs">
                        <tbody>
                          {list.map((doc) => (
                            <tr key={doc.id}>
                              <td>
                                <strong>{doc.name}</strong>
                                <div className="muted small">
                                  {formatBytes(doc.size)} · {t("chunks", { n: doc.chunks })}
                                </div>
                                {doc.error ? <div className="error-note small">{doc.error}</div> : null}
                              </td>
                              <td style={{ width: 160 }}>
                                <span className={`tag ${doc.status === "ready" ? "ok" : doc.status === "failed" ? "bad" : "warn"}`} data-testid={`doc-status-${doc.status}`}>
                                  {t(`status_${doc.status}`)}
                                </span>
                                {doc.status === "indexing" ? (
                                  <div className="progress">
                                    <i style={{ width: `${Math.round(doc.progress * 100)}%` }} />
                                  </div>
                                ) : null}
                              </td>
                              <td>
                                <div className="row">
                                  <button type="button" className="button small" onClick={() => setPreviewing(doc)} disabled={doc.chunks === 0}>
                                    {t("preview")}
                                  </button>
                                  <button type="button" className="button small danger" onClick={() => void remove(doc)}>
                                    {t("removeDoc")}
                                  </button>
                                </div>
                              </td>
                            </tr>
                          ))}
                        </tbody>
                      </table>
                    )}
                  </Loaded>
                </div>
              </section>
              <RetrievalTest id={id} />
            </div>
            {previewing ? <ChunkPreview kb={id} doc={previewing} onClose={() => setPreviewing(null)} /> : null}
          </>
        )}
      </Loaded>
    </div>
  );
}

function RetrievalTest({ id }: { id: string }) {
  const t = useT(kbText);
  const [query, setQuery] = useState("");
  const [mode, setMode] = useState("hybrid");
  const [topK, setTopK] = useState(5);
  const [hits, setHits] = useState<Hit[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setHits((await api<{ data: Hit[] }>(`/v1/knowledge-bases/${id}/retrieve`, { body: { query, mode, top_k: topK } })).data);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="card stack">
      <h2>{t("retrieval")}</h2>
      <form className="stack" onSubmit={submit}>
        <label className="field">
          <span>{t("query")}</span>
          <textarea rows={2} value={query} onChange={(e) => setQuery(e.target.value)} placeholder={t("queryPlaceholder")} data-testid="kb-query" />
        </label>
        <div className="row">
          <label className="row">
            <span className="muted">{t("modeSearch")}</span>
            <select value={mode} onChange={(e) => setMode(e.target.value)}>
              <option value="hybrid">{t("mode_hybrid")}</option>
              <option value="vector">{t("mode_vector")}</option>
              <option value="keyword">{t("mode_keyword")}</option>
            </select>
          </label>
          <label className="row">
            <span className="muted">{t("topK")}</span>
            <input type="number" min={1} max={100} value={topK} onChange={(e) => setTopK(Number(e.target.value))} style={{ width: 70 }} />
          </label>
          <span className="spacer" />
          <button type="submit" className="button primary" disabled={busy || !query.trim()} data-testid="kb-retrieve">
            {t("retrieve")}
          </button>
        </div>
      </form>
      {error ? <ErrorNote error={error} /> : null}
      {hits !== null ? (
        hits.length === 0 ? (
          <div className="empty">{t("noHits")}</div>
        ) : (
          <ol className="hits" data-testid="kb-hits">
            {hits.map((hit) => (
              <li key={hit.id} className="card">
                <div className="row small muted">
                  <strong>{hit.document_name}</strong> #{hit.position}
                  <span className="spacer" />
                  <span className="tag accent">{t("score", { score: hit.score.toFixed(3) })}</span>
                </div>
                <div className="hit-text">{hit.text}</div>
              </li>
            ))}
          </ol>
        )
      ) : null}
    </section>
  );
}

function ChunkPreview({ kb, doc, onClose }: { kb: string; doc: Doc; onClose: () => void }) {
  const t = useT(kbText);
  const chunks = useAsync(() => api<{ data: { id: string; position: number; text: string }[] }>(`/v1/knowledge-bases/${kb}/documents/${doc.id}/chunks?limit=200`).then((r) => r.data), [kb, doc.id]);
  return (
    <Dialog title={t("chunkPreviewOf", { name: doc.name })} onClose={onClose} wide>
      <Loaded state={chunks}>
        {(list) => (
          <ol className="hits">
            {list.map((chunk) => (
              <li key={chunk.id} className="card">
                <div className="muted small">#{chunk.position}</div>
                <div className="hit-text">{chunk.text}</div>
              </li>
            ))}
          </ol>
        )}
      </Loaded>
    </Dialog>
  );
}
