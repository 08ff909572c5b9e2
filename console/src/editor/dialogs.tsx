// The editor's dialogs: publish (with share and embed links), import, app settings, shortcuts.
import { useId, useRef, useState, type ChangeEvent, type FormEvent } from "react";
import { api, ApiError } from "../api";
import { CopyButton, Dialog, ErrorNote } from "../components/ui";
import { useT } from "../i18n";
import { text } from "./messages";
import { SchemaForm } from "./schema-form";
import type { CheckProblem, JsonSchema, Meta, Mode } from "./types";

function Snippet({ label, code }: { label: string; code: string }) {
  const id = useId();
  return (
    <div className="field dl-snippet">
      <div className="row">
        <label htmlFor={id}>
          <span className="dl-field-label">{label}</span>
        </label>
        <span className="spacer" />
        <CopyButton text={code} />
      </div>
      <textarea id={id} className="mono" readOnly rows={Math.min(4, code.split("\n").length + 1)} value={code} onFocus={(e) => e.currentTarget.select()} />
    </div>
  );
}

export function ProblemList({ problems, onPick }: { problems: CheckProblem[]; onPick?: (problem: CheckProblem) => void }) {
  return (
    <ul className="dl-problems">
      {problems.map((p, i) => (
        <li key={i}>
          {onPick && (p.node || p.edge) ? (
            <button type="button" className="dl-problem" onClick={() => onPick(p)}>
              <code>{p.where}</code> <span>{p.message}</span>
            </button>
          ) : (
            <span className="dl-problem">
              <code>{p.where}</code> <span>{p.message}</span>
            </span>
          )}
        </li>
      ))}
    </ul>
  );
}

/** Problems from a compile_error's message, when the structured list is not at hand. */
export function problemsFromMessage(message: string): CheckProblem[] {
  const body = message.replace(/^the app does not compile:\s*/, "");
  return body
    .split("; ")
    .filter(Boolean)
    .map((part) => {
      const cut = part.indexOf(": ");
      const where = cut > 0 ? part.slice(0, cut) : "graph";
      const node = /^node (\w+)$/.exec(where)?.[1] ?? null;
      return { where, node, edge: null, message: cut > 0 ? part.slice(cut + 2) : part };
    });
}

export function PublishDialog({
  slug,
  mode,
  publishedVersion,
  flush,
  problemsNow,
  onPublished,
  onPickProblem,
  onClose,
}: {
  slug: string;
  mode: Mode;
  publishedVersion: number | null;
  flush: () => Promise<boolean>;
  /** The latest check's problems (the reason a save or publish is refused). */
  problemsNow: () => CheckProblem[];
  onPublished: (version: number) => void;
  onPickProblem: (problem: CheckProblem) => void;
  onClose: () => void;
}) {
  const t = useT(text);
  const noteId = useId();
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [problems, setProblems] = useState<CheckProblem[]>([]);
  const [version, setVersion] = useState<number | null>(null);
  const origin = location.origin;
  const page = `${origin}/s/${encodeURIComponent(slug)}`;

  const publish = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setProblems([]);
    try {
      if (!(await flush())) {
        const now = problemsNow();
        if (now.length) setProblems(now);
        else setError(new Error(t("publishNeedsSave")));
        return;
      }
      const answer = await api<{ version: number }>(`/v1/apps/${encodeURIComponent(slug)}/publish`, { body: { note } });
      setVersion(answer.version);
      onPublished(answer.version);
    } catch (e) {
      if (e instanceof ApiError && e.code === "compile_error") {
        const now = problemsNow();
        setProblems(now.length ? now : problemsFromMessage(e.message));
      } else setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog title={version ? t("publishedTitle", { version }) : t("publishTitle")} onClose={onClose} wide={!!version}>
      {version ? (
        <div className="stack">
          <p>{t("publishedBody", { version })}</p>
          <div className="row">
            <a className="button primary" href={`/s/${encodeURIComponent(slug)}`} target="_blank" rel="noreferrer">
              {t("openPublicPage")} ↗
            </a>
          </div>
          <Snippet label={t("shareLink")} code={page} />
          <Snippet label={t("embedIframe")} code={`<iframe src="${page}?embed=1" width="100%" height="640" style="border:0" allow="clipboard-write" title="${slug}"></iframe>`} />
          {mode !== "workflow" ? (
            <Snippet label={t("embedBubble")} code={`<script src="${origin}/widget.js" data-app="${slug}" defer></script>`} />
          ) : (
            <p className="muted small">{t("bubbleChatOnly")}</p>
          )}
          <div className="actions">
            <button type="button" className="button" onClick={onClose}>
              {t("done")}
            </button>
          </div>
        </div>
      ) : (
        <form className="stack" onSubmit={publish}>
          <p className="muted">{publishedVersion ? t("publishBodyAgain", { version: publishedVersion }) : t("publishBody")}</p>
          <div className="field">
            <label htmlFor={noteId}>
              <span>{t("publishNote")}</span>
            </label>
            <input id={noteId} value={note} maxLength={500} placeholder={t("publishNotePlaceholder")} onChange={(e) => setNote(e.target.value)} />
          </div>
          {problems.length ? (
            <div className="error-note dl-block" role="alert">
              <strong>{t("publishProblems")}</strong>
              <ProblemList
                problems={problems}
                onPick={(p) => {
                  onClose();
                  onPickProblem(p);
                }}
              />
            </div>
          ) : null}
          {error ? <ErrorNote error={error} /> : null}
          <div className="actions">
            <button type="button" className="button" onClick={onClose}>
              {t("cancel")}
            </button>
            <button type="submit" className="button primary" disabled={busy} data-testid="publish-confirm">
              {busy ? t("publishing") : t("publish")}
            </button>
          </div>
        </form>
      )}
    </Dialog>
  );
}

export function ImportDialog({ slug, onImported, onClose }: { slug: string; onImported: () => Promise<void>; onClose: () => void }) {
  const t = useT(text);
  const areaId = useId();
  const fileId = useId();
  const [source, setSource] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const fileRef = useRef<HTMLInputElement>(null);

  const readFile = async (event: ChangeEvent<HTMLInputElement>) => {
    const file = event.target.files?.[0];
    if (!file) return;
    if (file.size > 5_000_000) {
      setError(new Error(t("fileTooBig")));
      return;
    }
    setSource(await file.text());
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!source.trim()) {
      setError(new Error(t("importEmpty")));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await api(`/v1/apps/${encodeURIComponent(slug)}`, { method: "PUT", raw: source, contentType: "application/yaml" });
      await onImported();
      onClose();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog title={t("importTitle")} onClose={onClose} wide>
      <form className="stack" onSubmit={submit}>
        <p className="muted">{t("importBody")}</p>
        <div className="field">
          <label htmlFor={fileId}>
            <span>{t("importFile")}</span>
          </label>
          <input id={fileId} ref={fileRef} type="file" accept=".yaml,.yml,.json,application/yaml,application/json,text/yaml" onChange={(e) => void readFile(e)} />
        </div>
        <div className="field">
          <label htmlFor={areaId}>
            <span>{t("importPaste")}</span>
          </label>
          <textarea id={areaId} className="mono" rows={14} spellCheck={false} value={source} placeholder={"schema: danlu.app/v1\napp: {name: …, mode: workflow}\ngraph:\n  nodes: …"} onChange={(e) => setSource(e.target.value)} />
        </div>
        {error ? <ErrorNote error={error} /> : null}
        <div className="actions">
          <button type="button" className="button" onClick={onClose}>
            {t("cancel")}
          </button>
          <button type="submit" className="button primary" disabled={busy}>
            {busy ? t("importing") : t("importReplace")}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

const TYPES = ["string", "number", "integer", "boolean", "object", "array", "any"];

const SETTINGS_SCHEMA: JsonSchema = {
  type: "object",
  required: ["name", "mode"],
  properties: {
    name: { type: "string", minLength: 1, maxLength: 128 },
    mode: { type: "string", enum: ["workflow", "chat", "agent"], default: "workflow" },
    description: { type: "string" },
    variables: {
      type: "array",
      items: {
        type: "object",
        required: ["name", "type"],
        properties: {
          name: { type: "string" },
          type: { type: "string", enum: TYPES, default: "string" },
          default: {},
        },
      },
    },
    max_steps: { type: "integer", minimum: 1, maximum: 100000, default: 500 },
    wall_seconds: { type: "number", exclusiveMinimum: 0, maximum: 3600, default: 300 },
    max_output_bytes: { type: "integer", minimum: 1, default: 1000000 },
  },
};

export function SettingsDialog({ meta, onApply, onClose }: { meta: Meta; onApply: (meta: Meta) => void; onClose: () => void }) {
  const t = useT(text);
  const [value, setValue] = useState<Record<string, unknown>>(() => ({
    name: meta.app.name,
    mode: meta.app.mode,
    description: meta.app.description ?? "",
    variables: meta.variables ?? [],
    ...(meta.limits ?? {}),
  }));
  const [error, setError] = useState<string | null>(null);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const name = String(value.name ?? "").trim();
    if (!name) return setError(t("nameRequired"));
    const limits: Record<string, number> = { ...(meta.limits ?? {}) };
    for (const key of ["max_steps", "wall_seconds", "max_output_bytes"]) {
      if (typeof value[key] === "number") limits[key] = value[key] as number;
      else delete limits[key];
    }
    const next: Meta = {
      ...meta,
      app: { ...meta.app, name, mode: (value.mode as Mode) ?? "workflow", description: String(value.description ?? "") },
      variables: (value.variables as Meta["variables"]) ?? [],
      limits,
    };
    if (!next.variables?.length) delete next.variables;
    if (!Object.keys(limits).length) delete next.limits;
    onApply(next);
    onClose();
  };
  return (
    <Dialog title={t("appSettings")} onClose={onClose} wide>
      <form className="stack" onSubmit={submit}>
        <SchemaForm schema={SETTINGS_SCHEMA} value={value} nodeId={null} onChange={(next) => setValue(next)} />
        <p className="muted small">{t("settingsHint")}</p>
        {error ? (
          <div className="error-note" role="alert">
            {error}
          </div>
        ) : null}
        <div className="actions">
          <button type="button" className="button" onClick={onClose}>
            {t("cancel")}
          </button>
          <button type="submit" className="button primary">
            {t("apply")}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export const SHORTCUTS: [string, keyof typeof text.en][] = [
  ["Ctrl/⌘ + S", "kSave"],
  ["Ctrl/⌘ + Z", "kUndo"],
  ["Ctrl/⌘ + Shift + Z, Ctrl/⌘ + Y", "kRedo"],
  ["Ctrl/⌘ + C", "kCopy"],
  ["Ctrl/⌘ + V", "kPaste"],
  ["Ctrl/⌘ + D", "kDuplicate"],
  ["Ctrl/⌘ + A", "kSelectAll"],
  ["Delete, Backspace", "kDelete"],
  ["Tab, Shift + Tab", "kTab"],
  ["Enter, Space", "kSelect"],
  ["← ↑ → ↓", "kMove"],
  ["Escape", "kEscape"],
  ["Shift + L", "kLayout"],
  ["Shift + F", "kFit"],
  ["Ctrl/⌘ + Enter", "kRun"],
  ["?", "kHelp"],
];

export function ShortcutsDialog({ onClose }: { onClose: () => void }) {
  const t = useT(text);
  return (
    <Dialog title={t("shortcuts")} onClose={onClose}>
      <table className="table dl-shortcuts">
        <tbody>
          {SHORTCUTS.map(([keys, what]) => (
            <tr key={keys}>
              <td>
                <kbd>{keys}</kbd>
              </td>
              <td>{t(what)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="actions">
        <button type="button" className="button" onClick={onClose}>
          {t("close")}
        </button>
      </div>
    </Dialog>
  );
}
