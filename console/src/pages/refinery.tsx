// Fine-tuning jobs: the list and starting one from a base model and a hub dataset.
import { useState } from "react";
import { api } from "../api";
import { Dialog, ErrorNote, Loaded, formatTime, useAsync } from "../components/ui";
import { useLang, useT } from "../i18n";
import { common } from "../i18n/common";
import { refineryText } from "../i18n/refinery";
import { Link, navigate } from "../router";
import type { RepoSummary } from "./hub-list";

export interface Job {
  id: string;
  status: "queued" | "running" | "succeeded" | "failed" | "cancelled";
  stage: string;
  base_model: string;
  dataset: string;
  method: string;
  hyperparameters: Record<string, unknown>;
  output_repo: string | null;
  served_model: string | null;
  progress: Record<string, number> | null;
  split: { train?: number; held_out?: number } | null;
  metrics: {
    before?: Record<string, number>;
    after?: Record<string, number>;
    samples?: { prompt: string; reference: string; before: string; after: string }[];
  } | null;
  error: string | null;
  created_at: string;
  finished_at: string | null;
}

export function statusClass(status: Job["status"]): string {
  return status === "succeeded" ? "ok" : status === "failed" ? "bad" : status === "running" ? "accent" : "";
}

export default function Refinery() {
  const t = useT(refineryText);
  const c = useT(common);
  const { lang } = useLang();
  const jobs = useAsync(() => api<{ data: Job[] }>("/v1/fine-tunes").then((r) => r.data), []);
  const [creating, setCreating] = useState(false);
  return (
    <div className="page">
      <div className="page-head">
        <h1>{t("title")}</h1>
        <span className="spacer" />
        <button type="button" className="button primary" onClick={() => setCreating(true)} data-testid="new-job">
          {t("newJob")}
        </button>
      </div>
      <Loaded state={jobs} isEmpty={(list) => list.length === 0} empty={t("none")}>
        {(list) => (
          <table className="table" data-testid="job-list">
            <thead>
              <tr>
                <th>{t("baseModel")}</th>
                <th>{t("dataset")}</th>
                <th>{c("status")}</th>
                <th>{c("created")}</th>
              </tr>
            </thead>
            <tbody>
              {list.map((job) => (
                <tr key={job.id}>
                  <td>
                    <Link to={`/refinery/${job.id}`}>{job.base_model}</Link>
                    <div className="muted small">
                      {t(`method_${job.method}` as "method_lora")} · <code>{job.id}</code>
                    </div>
                  </td>
                  <td>{job.dataset}</td>
                  <td>
                    <span className={`tag ${statusClass(job.status)}`}>{t(`status_${job.status}`)}</span>
                  </td>
                  <td>{formatTime(job.created_at, lang)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
      {creating ? <NewJob onClose={() => setCreating(false)} /> : null}
    </div>
  );
}

function NewJob({ onClose }: { onClose: () => void }) {
  const t = useT(refineryText);
  const c = useT(common);
  const models = useAsync(() => api<RepoSummary[]>("/api/models?limit=100"), []);
  const datasets = useAsync(() => api<RepoSummary[]>("/api/datasets?limit=100"), []);
  const [form, setForm] = useState({ base_model: "danlu/smollm2-135m-instruct", dataset: "", method: "lora", epochs: 3, learning_rate: 0.0002, max_steps: "", output_repo: "", serve: true });
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      const hyperparameters: Record<string, unknown> = { epochs: form.epochs, learning_rate: form.learning_rate };
      if (form.max_steps) hyperparameters.max_steps = Number(form.max_steps);
      const job = await api<Job>("/v1/fine-tunes", {
        body: {
          base_model: form.base_model,
          dataset: form.dataset,
          method: form.method,
          hyperparameters,
          serve: form.serve,
          ...(form.output_repo ? { output_repo: form.output_repo } : {}),
        },
      });
      navigate(`/refinery/${job.id}`);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <Dialog title={t("newJob")} onClose={onClose}>
      <label className="field">
        <span>{t("baseModel")}</span>
        <input list="base-models" value={form.base_model} onChange={(e) => setForm({ ...form, base_model: e.target.value })} data-testid="job-base" />
        <datalist id="base-models">
          {(models.value ?? []).map((m) => (
            <option key={m.id} value={m.id} />
          ))}
        </datalist>
      </label>
      <label className="field">
        <span>
          {t("dataset")} <span className="hint">{t("datasetHint")}</span>
        </span>
        <input list="datasets" value={form.dataset} onChange={(e) => setForm({ ...form, dataset: e.target.value })} placeholder="namespace/name" data-testid="job-dataset" />
        <datalist id="datasets">
          {(datasets.value ?? []).map((d) => (
            <option key={d.id} value={d.id} />
          ))}
        </datalist>
      </label>
      <label className="field">
        <span>{t("method")}</span>
        <select value={form.method} onChange={(e) => setForm({ ...form, method: e.target.value })}>
          <option value="lora">{t("method_lora")}</option>
          <option value="qlora">{t("method_qlora")}</option>
          <option value="full">{t("method_full")}</option>
        </select>
      </label>
      <div className="grid-2">
        <label className="field">
          <span>{t("epochs")}</span>
          <input type="number" min={1} max={100} value={form.epochs} onChange={(e) => setForm({ ...form, epochs: Number(e.target.value) })} />
        </label>
        <label className="field">
          <span>{t("learningRate")}</span>
          <input type="number" step="0.00001" min={0} value={form.learning_rate} onChange={(e) => setForm({ ...form, learning_rate: Number(e.target.value) })} />
        </label>
        <label className="field">
          <span>{t("maxSteps")}</span>
          <input type="number" min={1} value={form.max_steps} onChange={(e) => setForm({ ...form, max_steps: e.target.value })} />
        </label>
        <label className="field">
          <span>{t("outputRepo")}</span>
          <input value={form.output_repo} onChange={(e) => setForm({ ...form, output_repo: e.target.value })} placeholder="namespace/name" />
        </label>
      </div>
      <label className="row">
        <input type="checkbox" checked={form.serve} onChange={(e) => setForm({ ...form, serve: e.target.checked })} />
        {t("serve")}
      </label>
      {error ? <ErrorNote error={error} /> : null}
      <div className="actions">
        <button type="button" className="button" onClick={onClose}>
          {c("cancel")}
        </button>
        <button type="button" className="button primary" disabled={busy || !form.dataset.trim()} onClick={() => void submit()} data-testid="job-start">
          {t("start")}
        </button>
      </div>
    </Dialog>
  );
}
