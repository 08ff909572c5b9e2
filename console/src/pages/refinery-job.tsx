// One fine-tuning job: live progress and loss curve (SSE), before/after metrics, samples.
import { useEffect, useState } from "react";
import { api, events } from "../api";
import { ErrorNote, LineChart, Loaded, useAsync } from "../components/ui";
import { useT } from "../i18n";
import { refineryText } from "../i18n/refinery";
import { Link } from "../router";
import { statusClass, type Job } from "./refinery";

interface JobEvent {
  id: number;
  kind: "status" | "progress" | "log";
  data: Record<string, any>;
  at: string;
}

export default function RefineryJob({ params }: { params: Record<string, string> }) {
  const t = useT(refineryText);
  const id = params.id;
  const job = useAsync(() => api<Job>(`/v1/fine-tunes/${id}`), [id]);
  const [log, setLog] = useState<JobEvent[]>([]);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    const controller = new AbortController();
    setLog([]);
    void (async () => {
      try {
        for await (const event of events<JobEvent>(`/v1/fine-tunes/${id}/events?stream=true`, { signal: controller.signal })) {
          setLog((old) => [...old, event]);
          if (event.kind === "status") job.reload();
        }
        job.reload();
      } catch (e) {
        if (!controller.signal.aborted) setError(e);
      }
    })();
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [id]);

  const progress = log.filter((e) => e.kind === "progress").map((e) => e.data);
  const latest = progress[progress.length - 1];
  const curve = progress.filter((p) => typeof p.loss === "number").map((p) => [p.step, p.loss] as [number, number]);

  const cancel = async () => {
    try {
      job.set(await api<Job>(`/v1/fine-tunes/${id}/cancel`, { method: "POST" }));
    } catch (e) {
      setError(e);
    }
  };

  return (
    <div className="page">
      <Loaded state={job}>
        {(j) => (
          <div className="stack">
            <div className="page-head">
              <Link to="/refinery" className="muted">
                {t("title")}
              </Link>
              <span className="muted">/</span>
              <h1>{j.base_model}</h1>
              <span className={`tag ${statusClass(j.status)}`} data-testid="job-status">
                {t(`status_${j.status}`)}
              </span>
              <span className="spacer" />
              {j.status === "queued" || j.status === "running" ? (
                <button type="button" className="button danger" onClick={() => void cancel()}>
                  {t("cancel")}
                </button>
              ) : null}
            </div>
            <div className="muted">
              {j.dataset} · {t(`method_${j.method}` as "method_lora")}
              {j.split?.train !== undefined ? ` · ${t("split", { train: j.split.train ?? 0, held_out: j.split.held_out ?? 0 })}` : null}
            </div>
            {error ? <ErrorNote error={error} /> : null}
            {j.error ? <ErrorNote error={new Error(j.error)} /> : null}
            {latest ? (
              <div className="card stack">
                <div className="row">
                  <strong>{t("progress", { step: latest.step, total: latest.total_steps, epoch: latest.epoch })}</strong>
                  <span className="spacer" />
                  {latest.tokens_per_second ? <span className="muted">{t("speed", { speed: latest.tokens_per_second })}</span> : null}
                  {latest.eta_seconds && j.status === "running" ? <span className="muted">{t("eta", { minutes: Math.ceil(latest.eta_seconds / 60) })}</span> : null}
                </div>
                <div className="progress">
                  <i style={{ width: `${Math.round((100 * latest.step) / Math.max(1, latest.total_steps))}%` }} />
                </div>
              </div>
            ) : null}
            {curve.length > 1 ? (
              <div className="card" data-testid="loss-curve">
                <h2>{t("loss")}</h2>
                <LineChart series={[{ name: t("loss"), points: curve }]} xLabel={t("step")} />
              </div>
            ) : null}
            {j.metrics?.before ? <Metrics job={j} /> : null}
            {j.output_repo && j.status === "succeeded" ? (
              <div className="card row">
                <strong>{t("output")}</strong>
                <Link to={`/hub/models/${j.output_repo}`}>{j.output_repo}</Link>
                {j.served_model ? (
                  <Link className="button small" to={`/playground?model=${encodeURIComponent(j.served_model)}`}>
                    {t("chat")}
                  </Link>
                ) : null}
              </div>
            ) : null}
            <details className="card">
              <summary>{t("log")}</summary>
              <ol className="job-log">
                {log.map((event) => (
                  <li key={event.id}>
                    <code>{new Date(event.at).toLocaleTimeString()}</code> <span className="tag">{event.kind}</span> {event.kind === "progress" ? `step ${event.data.step} loss ${event.data.loss}` : event.data.message ?? event.data.status ?? JSON.stringify(event.data)}
                  </li>
                ))}
              </ol>
            </details>
          </div>
        )}
      </Loaded>
    </div>
  );
}

function Metrics({ job }: { job: Job }) {
  const t = useT(refineryText);
  const before = job.metrics?.before ?? {};
  const after = job.metrics?.after ?? {};
  const names = Array.from(new Set([...Object.keys(before), ...Object.keys(after)])).filter((name) => typeof (before[name] ?? after[name]) === "number");
  const show = (value: number | undefined) => (value === undefined ? "—" : Math.abs(value) >= 100 ? value.toFixed(1) : value.toFixed(3));
  return (
    <div className="card stack" data-testid="job-metrics">
      <h2>{t("metrics")}</h2>
      <table className="table">
        <thead>
          <tr>
            <th>{t("metric")}</th>
            <th>{t("before")}</th>
            <th>{t("after")}</th>
          </tr>
        </thead>
        <tbody>
          {names.map((name) => (
            <tr key={name}>
              <td>{name}</td>
              <td>{show(before[name])}</td>
              <td>
                <strong>{show(after[name])}</strong>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {job.metrics?.samples?.length ? (
        <>
          <h3>{t("samples")}</h3>
          <table className="table samples">
            <thead>
              <tr>
                <th>{t("prompt")}</th>
                <th>{t("before")}</th>
                <th>{t("after")}</th>
                <th>{t("reference")}</th>
              </tr>
            </thead>
            <tbody>
              {job.metrics.samples.map((sample, i) => (
                <tr key={i}>
                  <td>{sample.prompt}</td>
                  <td>{sample.before}</td>
                  <td>{sample.after}</td>
                  <td className="muted">{sample.reference}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
    </div>
  );
}
