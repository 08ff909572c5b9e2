// Knowledge bases: the list and creating one with its chunking settings.
import { useState } from "react";
import { api } from "../api";
import { Dialog, ErrorNote, Loaded, formatTime, useAsync } from "../components/ui";
import { useLang, useT } from "../i18n";
import { common } from "../i18n/common";
import { kbText } from "../i18n/knowledge";
import { Link, navigate } from "../router";

export interface KnowledgeBase {
  id: string;
  name: string;
  description: string;
  chunk_mode: "general" | "parent_child" | "qa";
  chunk_size: number;
  chunk_overlap: number;
  embedding_model: string;
  created_at: string;
}

export default function Knowledge() {
  const t = useT(kbText);
  const { lang } = useLang();
  const bases = useAsync(() => api<{ data: KnowledgeBase[] }>("/v1/knowledge-bases").then((r) => r.data), []);
  const [creating, setCreating] = useState(false);
  return (
    <div className="page">
      <div className="page-head">
        <h1>{t("title")}</h1>
        <span className="spacer" />
        <button type="button" className="button primary" onClick={() => setCreating(true)} data-testid="create-kb">
          {t("create")}
        </button>
      </div>
      <Loaded state={bases} isEmpty={(list) => list.length === 0} empty={t("none")}>
        {(list) => (
          <div className="grid-3">
            {list.map((kb) => (
              <Link key={kb.id} to={`/knowledge/${kb.id}`} className="card stack">
                <strong>{kb.name}</strong>
                {kb.description ? <span className="muted">{kb.description}</span> : null}
                <span className="row small muted">
                  <span className="tag">{t(`mode_${kb.chunk_mode}`)}</span>
                  {formatTime(kb.created_at, lang)}
                </span>
              </Link>
            ))}
          </div>
        )}
      </Loaded>
      {creating ? <CreateKnowledgeBase onClose={() => setCreating(false)} /> : null}
    </div>
  );
}

function CreateKnowledgeBase({ onClose }: { onClose: () => void }) {
  const t = useT(kbText);
  const c = useT(common);
  const [form, setForm] = useState({ name: "", description: "", chunk_mode: "general", chunk_size: 500, chunk_overlap: 50 });
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      const kb = await api<KnowledgeBase>("/v1/knowledge-bases", { body: form });
      navigate(`/knowledge/${kb.id}`);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <Dialog title={t("create")} onClose={onClose}>
      <label className="field">
        <span>{c("name")}</span>
        <input value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} maxLength={128} data-testid="kb-name" />
      </label>
      <label className="field">
        <span>{c("description")}</span>
        <textarea rows={2} value={form.description} onChange={(e) => setForm({ ...form, description: e.target.value })} />
      </label>
      <label className="field">
        <span>{t("chunkMode")}</span>
        <select value={form.chunk_mode} onChange={(e) => setForm({ ...form, chunk_mode: e.target.value })}>
          <option value="general">{t("mode_general")}</option>
          <option value="parent_child">{t("mode_parent_child")}</option>
          <option value="qa">{t("mode_qa")}</option>
        </select>
      </label>
      <div className="grid-2">
        <label className="field">
          <span>{t("chunkSize")}</span>
          <input type="number" min={20} max={8000} value={form.chunk_size} onChange={(e) => setForm({ ...form, chunk_size: Number(e.target.value) })} />
        </label>
        <label className="field">
          <span>{t("chunkOverlap")}</span>
          <input type="number" min={0} max={4000} value={form.chunk_overlap} onChange={(e) => setForm({ ...form, chunk_overlap: Number(e.target.value) })} />
        </label>
      </div>
      {error ? <ErrorNote error={error} /> : null}
      <div className="actions">
        <button type="button" className="button" onClick={onClose}>
          {c("cancel")}
        </button>
        <button type="button" className="button primary" disabled={busy || !form.name.trim()} onClick={() => void submit()} data-testid="kb-create-submit">
          {c("create")}
        </button>
      </div>
    </Dialog>
  );
}
