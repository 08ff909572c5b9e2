// A form generated from a node type's config schema (pydantic's JSON schema): inputs for
// strings, numbers, booleans and enums, lists and key/value maps, nested objects, and a JSON
// editor for anything else (or on request). Text fields that hold templates or selectors get
// the variable picker.
import { memo, useEffect, useId, useRef, useState, type ReactNode } from "react";
import { useT } from "../i18n";
import { text, useEnumLabel, useFieldLabel } from "./messages";
import type { JsonSchema } from "./types";
import { VarPicker } from "./vars";

/** Fields whose text is a template ({{ node.output }} inserted at the caret). */
const TEMPLATE_FIELDS = new Set(["text", "template", "value", "url", "body", "instructions"]);
/** Fields whose text is a selector (node.output, set as the whole value). */
const SELECTOR_FIELDS = new Set(["selector", "query", "items"]);
const SELECTOR_LISTS = new Set(["selectors"]);
const SELECTOR_MAPS = new Set(["inputs", "state"]);
const TEMPLATE_MAPS = new Set(["headers"]);
/** Inside these, selectors name a sub-graph's outputs: the parent's variables do not apply. */
const NESTED_SCOPES = new Set(["graph", "carry", "until", "output"]);
/** Multi-line text. */
const LONG_FIELDS = new Set(["text", "template", "instructions", "code", "body", "description", "system"]);
/** Always edited as JSON (a sub-graph, an OpenAPI document, a JSON schema). */
const JSON_FIELDS = new Set(["graph", "spec", "output_schema", "filters", "default_outputs"]);

type Kind = "enum" | "string" | "number" | "integer" | "boolean" | "list" | "objects" | "object" | "map" | "json" | "any";

interface Ctx {
  root: JsonSchema;
  nodeId: string | null;
  path: string[];
  depth: number;
}

function refName(ref: string): string {
  return ref.replace(/^#\/(\$defs|definitions)\//, "");
}

export function resolve(schema: JsonSchema | undefined, root: JsonSchema): JsonSchema {
  if (!schema) return {};
  let s = schema;
  for (let i = 0; i < 8 && s.$ref; i++) {
    const target = root.$defs?.[refName(s.$ref)];
    const { $ref: _ignored, ...rest } = s;
    void _ignored;
    s = target ? { ...target, ...rest } : rest;
  }
  if (s.allOf?.length === 1) {
    const { allOf, ...rest } = s;
    s = { ...resolve(allOf[0], root), ...rest };
  }
  return s;
}

/** `X | None` as X, with `nullable` set. */
export function unwrap(schema: JsonSchema, root: JsonSchema): { schema: JsonSchema; nullable: boolean } {
  const s = resolve(schema, root);
  const variants = s.anyOf ?? s.oneOf;
  if (variants) {
    const real = variants.filter((v) => v.type !== "null");
    if (real.length === 1) {
      const inner = resolve(real[0], root);
      return {
        schema: { ...inner, title: s.title ?? inner.title, default: s.default, description: s.description ?? inner.description },
        nullable: real.length < variants.length,
      };
    }
  }
  if (Array.isArray(s.type)) {
    const real = s.type.filter((t) => t !== "null");
    if (real.length === 1) return { schema: { ...s, type: real[0] }, nullable: real.length < s.type.length };
  }
  return { schema: s, nullable: false };
}

function isScalar(s: JsonSchema): boolean {
  return !!s.enum || s.type === "string" || s.type === "number" || s.type === "integer" || s.type === "boolean";
}

function kindOf(name: string, s: JsonSchema, root: JsonSchema, depth: number): Kind {
  if (JSON_FIELDS.has(name)) return "json";
  if (s.enum) return "enum";
  switch (s.type) {
    case "string":
      return "string";
    case "number":
      return "number";
    case "integer":
      return "integer";
    case "boolean":
      return "boolean";
    case "array": {
      const items = unwrap(s.items ?? {}, root).schema;
      if (isScalar(items)) return "list";
      if (items.type === "object" && items.properties && depth < 4) return "objects";
      return "json";
    }
    case "object": {
      if (s.properties && Object.keys(s.properties).length && depth < 4) return "object";
      const extra = s.additionalProperties;
      if (extra && typeof extra === "object" && isScalar(unwrap(extra, root).schema)) return "map";
      return "json";
    }
    default:
      // `Any` in pydantic: no type at all. Typed in one line, as text or JSON.
      if (!s.type && !s.anyOf && !s.oneOf && !s.$ref) return "any";
      return "json";
  }
}

function singular(name: string): string {
  if (name.endsWith("sses")) return name.slice(0, -2);
  if (name.endsWith("s")) return name.slice(0, -1);
  return name || "item";
}

/** A fresh value for a schema: its default, or the smallest valid-looking value. */
export function initialValue(schema: JsonSchema, root: JsonSchema, hint = "item", siblings: unknown[] = []): unknown {
  const { schema: s } = unwrap(schema, root);
  if (s.default !== undefined) return structuredClone(s.default);
  if (s.enum?.length) return s.enum[0];
  switch (s.type) {
    case "string":
      return "";
    case "number":
    case "integer":
      return s.minimum ?? 0;
    case "boolean":
      return false;
    case "array":
      return s.minItems ? Array.from({ length: s.minItems }, () => initialValue(s.items ?? {}, root, "item")) : [];
    case "object": {
      const out: Record<string, unknown> = {};
      for (const key of s.required ?? []) {
        const prop = s.properties?.[key];
        if (!prop) continue;
        if ((key === "id" || key === "name") && unwrap(prop, root).schema.type === "string") {
          const used = new Set(siblings.map((x) => (x && typeof x === "object" ? (x as Record<string, unknown>)[key] : null)));
          let n = siblings.length + 1;
          while (used.has(`${hint}${n}`)) n++;
          out[key] = `${hint}${n}`;
        } else {
          out[key] = initialValue(prop, root, singular(key));
        }
      }
      return out;
    }
    default:
      return null;
  }
}

function rangeHint(s: JsonSchema): string | null {
  const low = s.minimum ?? s.exclusiveMinimum;
  const high = s.maximum ?? s.exclusiveMaximum;
  if (low !== undefined && high !== undefined) return `${low} – ${high}`;
  if (low !== undefined) return `≥ ${low}`;
  if (high !== undefined) return `≤ ${high}`;
  return null;
}

function pickerMode(ctx: Ctx, name: string): "template" | "selector" | null {
  if (!ctx.nodeId || ctx.path.some((p) => NESTED_SCOPES.has(p))) return null;
  if (SELECTOR_FIELDS.has(name)) return "selector";
  if (TEMPLATE_FIELDS.has(name)) return "template";
  return null;
}

// --- scalar inputs -----------------------------------------------------------------------

function TextInput({
  id,
  value,
  onChange,
  long,
  mono,
  placeholder,
  picker,
  nodeId,
  required,
  describedBy,
  label,
}: {
  id: string;
  value: string;
  onChange: (value: string) => void;
  long: boolean;
  mono: boolean;
  placeholder?: string;
  picker: "template" | "selector" | null;
  nodeId: string | null;
  required: boolean;
  describedBy?: string;
  label?: string;
}) {
  const ref = useRef<HTMLInputElement & HTMLTextAreaElement>(null);
  const insert = (selector: string) => {
    if (picker === "selector") {
      onChange(selector);
      requestAnimationFrame(() => ref.current?.focus());
      return;
    }
    const el = ref.current;
    const token = `{{ ${selector} }}`;
    const start = el?.selectionStart ?? value.length;
    const end = el?.selectionEnd ?? start;
    onChange(value.slice(0, start) + token + value.slice(end));
    requestAnimationFrame(() => {
      if (!el) return;
      el.focus();
      el.setSelectionRange(start + token.length, start + token.length);
    });
  };
  const common = {
    id,
    ref,
    value,
    placeholder,
    required,
    spellCheck: mono ? false : undefined,
    "aria-describedby": describedBy,
    "aria-label": label,
    className: mono ? "mono" : undefined,
  };
  return (
    <div className="dl-text-row">
      {long ? (
        <textarea {...common} rows={Math.min(12, Math.max(3, value.split("\n").length + 1))} onChange={(e) => onChange(e.target.value)} />
      ) : (
        <input {...common} onChange={(e) => onChange(e.target.value)} />
      )}
      {picker && nodeId ? <VarPicker nodeId={nodeId} mode={picker} onPick={insert} /> : null}
    </div>
  );
}

function NumberInput({
  id,
  value,
  onChange,
  integer,
  schema,
  describedBy,
  label,
}: {
  id: string;
  value: unknown;
  onChange: (value: number | undefined) => void;
  integer: boolean;
  schema: JsonSchema;
  describedBy?: string;
  label?: string;
}) {
  const t = useT(text);
  const shown = typeof value === "number" ? String(value) : "";
  const [raw, setRaw] = useState(shown);
  const [bad, setBad] = useState(false);
  useEffect(() => {
    if (raw.trim() === "" ? value !== undefined && value !== null : Number(raw) !== value) {
      setRaw(shown);
      setBad(false);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [value]);
  const errorId = `${id}-error`;
  return (
    <>
      <input
        id={id}
        type="number"
        inputMode={integer ? "numeric" : "decimal"}
        step={integer ? 1 : "any"}
        min={schema.minimum}
        max={schema.maximum}
        value={raw}
        aria-label={label}
        aria-invalid={bad || undefined}
        aria-describedby={[describedBy, bad ? errorId : null].filter(Boolean).join(" ") || undefined}
        placeholder={schema.default !== undefined && schema.default !== null ? String(schema.default) : undefined}
        onChange={(e) => {
          const next = e.target.value;
          setRaw(next);
          if (next.trim() === "") {
            setBad(false);
            onChange(undefined);
            return;
          }
          const n = Number(next);
          const ok = Number.isFinite(n) && (!integer || Number.isInteger(n));
          setBad(!ok);
          if (ok) onChange(n);
        }}
      />
      {bad ? (
        <span id={errorId} className="dl-field-error">
          {integer ? t("wholeNumber") : t("aNumber")}
        </span>
      ) : null}
    </>
  );
}

/** A value of any type in one line: JSON when it parses (123, true, [1, 2], {"a": 1}), else text. */
function AnyInput({ id, value, onChange, describedBy, label }: { id: string; value: unknown; onChange: (value: unknown) => void; describedBy?: string; label?: string }) {
  const show = (v: unknown): string => {
    if (v === undefined || v === null) return "";
    if (typeof v === "string") {
      try {
        JSON.parse(v);
        return JSON.stringify(v); // text that would read as JSON keeps its quotes
      } catch {
        return v;
      }
    }
    return JSON.stringify(v);
  };
  const [raw, setRaw] = useState(() => show(value));
  useEffect(() => {
    if (show(value) !== raw) setRaw(show(value));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [value]);
  return (
    <input
      id={id}
      className="mono"
      value={raw}
      aria-label={label}
      aria-describedby={describedBy}
      spellCheck={false}
      onChange={(e) => {
        const next = e.target.value;
        setRaw(next);
        if (next.trim() === "") return onChange(undefined);
        try {
          onChange(JSON.parse(next));
        } catch {
          onChange(next);
        }
      }}
    />
  );
}

/** A JSON editor that applies its text only when it parses, and says why when it does not. */
export function JsonEditor({
  id,
  value,
  onChange,
  rows = 6,
  describedBy,
  label,
}: {
  id: string;
  value: unknown;
  onChange: (value: unknown) => void;
  rows?: number;
  describedBy?: string;
  label?: string;
}) {
  const t = useT(text);
  const format = (v: unknown) => (v === undefined ? "" : JSON.stringify(v, null, 2));
  const [raw, setRaw] = useState(() => format(value));
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    try {
      if (raw.trim() === "" ? value === undefined : JSON.stringify(JSON.parse(raw)) === JSON.stringify(value)) return;
    } catch {
      /* the text does not parse: the outside value wins */
    }
    setRaw(format(value));
    setError(null);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [value]);
  const errorId = `${id}-error`;
  return (
    <>
      <textarea
        id={id}
        className="mono"
        spellCheck={false}
        rows={Math.min(16, Math.max(rows, raw.split("\n").length))}
        value={raw}
        aria-label={label}
        aria-invalid={error ? true : undefined}
        aria-describedby={[describedBy, error ? errorId : null].filter(Boolean).join(" ") || undefined}
        onChange={(e) => {
          const next = e.target.value;
          setRaw(next);
          if (next.trim() === "") {
            setError(null);
            onChange(undefined);
            return;
          }
          try {
            const parsed = JSON.parse(next);
            setError(null);
            onChange(parsed);
          } catch (err) {
            setError((err as Error).message);
          }
        }}
      />
      {error ? (
        <span id={errorId} className="dl-field-error" role="alert">
          {t("invalidJson", { error })}
        </span>
      ) : null}
    </>
  );
}

// --- fields ------------------------------------------------------------------------------

interface FieldProps {
  name: string;
  schema: JsonSchema;
  required: boolean;
  value: unknown;
  onChange: (value: unknown) => void;
  ctx: Ctx;
  /** A label to use instead of the field's name (list items). */
  label?: string;
  compact?: boolean;
}

function FieldShell({
  label,
  htmlFor,
  required,
  hint,
  hintId,
  children,
  actions,
  group,
  compact,
}: {
  label: string;
  htmlFor?: string;
  required: boolean;
  hint?: string | null;
  hintId: string;
  children: ReactNode;
  actions?: ReactNode;
  group?: boolean;
  compact?: boolean;
}) {
  const t = useT(text);
  const head = (
    <span className="dl-field-label">
      {label}
      {required ? (
        <abbr title={t("required")} className="dl-required">
          *
        </abbr>
      ) : null}
      {hint ? (
        <span className="hint" id={hintId}>
          {" "}
          {hint}
        </span>
      ) : null}
    </span>
  );
  if (compact)
    return (
      <div className="dl-field dl-compact">
        {children}
        {hint ? (
          <span className="hint" id={hintId}>
            {hint}
          </span>
        ) : null}
      </div>
    );
  if (group)
    return (
      <fieldset className="dl-fieldset">
        <legend>
          {head}
          {actions}
        </legend>
        {children}
      </fieldset>
    );
  return (
    <div className="field dl-field">
      <div className="dl-field-head">
        <label htmlFor={htmlFor}>{head}</label>
        {actions}
      </div>
      {children}
    </div>
  );
}

function Field({ name, schema: raw, required, value, onChange, ctx, label, compact }: FieldProps) {
  const t = useT(text);
  const fieldLabel = useFieldLabel();
  const enumLabel = useEnumLabel();
  const id = useId();
  const [asJson, setAsJson] = useState(false);
  const { schema, nullable } = unwrap(raw, ctx.root);
  const kind = kindOf(name, schema, ctx.root, ctx.depth);
  const shownLabel = label ?? fieldLabel(name, schema.title);
  const hintId = `${id}-hint`;
  const hint = [schema.description, rangeHint(schema)].filter(Boolean).join(" · ") || null;
  const describedBy = hint ? hintId : undefined;
  const inner: Ctx = { ...ctx, path: [...ctx.path, name], depth: ctx.depth + 1 };
  const complex = kind === "list" || kind === "objects" || kind === "object" || kind === "map";

  const jsonToggle = complex ? (
    <button type="button" className="button small dl-json-toggle" aria-pressed={asJson} onClick={() => setAsJson((v) => !v)}>
      {asJson ? t("formView") : t("jsonView")}
    </button>
  ) : null;

  if (asJson || kind === "json") {
    return (
      <FieldShell label={shownLabel} htmlFor={id} required={required} hint={hint ?? t("jsonHint")} hintId={hintId} actions={jsonToggle} compact={compact}>
        <JsonEditor id={id} value={value} onChange={onChange} rows={kind === "json" ? 4 : 6} describedBy={hintId} label={compact ? shownLabel : undefined} />
      </FieldShell>
    );
  }

  switch (kind) {
    case "any":
      return (
        <FieldShell label={shownLabel} htmlFor={id} required={required} hint={hint ?? t("anyHint")} hintId={hintId} compact={compact}>
          <AnyInput id={id} value={value} onChange={onChange} describedBy={hintId} label={compact ? shownLabel : undefined} />
        </FieldShell>
      );
    case "boolean":
      return (
        <div className="dl-field dl-check">
          <label>
            <input
              type="checkbox"
              checked={typeof value === "boolean" ? value : schema.default === true}
              onChange={(e) => onChange(e.target.checked)}
              aria-describedby={describedBy}
            />{" "}
            <span className="dl-field-label">{shownLabel}</span>
          </label>
          {hint ? (
            <span className="hint" id={hintId}>
              {hint}
            </span>
          ) : null}
        </div>
      );
    case "enum": {
      const options = schema.enum ?? [];
      const current = value === undefined ? schema.default : value;
      const index = options.findIndex((o) => o === current);
      return (
        <FieldShell label={shownLabel} htmlFor={id} required={required} hint={hint} hintId={hintId} compact={compact}>
          <select
            id={id}
            value={index < 0 ? "" : String(index)}
            aria-describedby={describedBy}
            aria-label={compact ? shownLabel : undefined}
            onChange={(e) => onChange(e.target.value === "" ? undefined : options[Number(e.target.value)])}
          >
            {index < 0 || nullable || !required ? <option value="">{index < 0 && required ? t("choose") : "—"}</option> : null}
            {options.map((o, i) => (
              <option key={i} value={String(i)}>
                {enumLabel(o)}
              </option>
            ))}
          </select>
        </FieldShell>
      );
    }
    case "number":
    case "integer":
      return (
        <FieldShell label={shownLabel} htmlFor={id} required={required} hint={hint} hintId={hintId} compact={compact}>
          <NumberInput id={id} value={value} onChange={onChange} integer={kind === "integer"} schema={schema} describedBy={describedBy} label={compact ? shownLabel : undefined} />
        </FieldShell>
      );
    case "string": {
      const long = LONG_FIELDS.has(name) || (schema.maxLength ?? 0) > 500;
      return (
        <FieldShell label={shownLabel} htmlFor={id} required={required} hint={hint} hintId={hintId} compact={compact}>
          <TextInput
            id={id}
            value={typeof value === "string" ? value : value === undefined || value === null ? "" : String(value)}
            onChange={(v) => onChange(v === "" && !required ? undefined : v)}
            long={long}
            mono={name === "code" || SELECTOR_FIELDS.has(name)}
            placeholder={typeof schema.default === "string" ? schema.default : undefined}
            picker={pickerMode(ctx, name)}
            nodeId={ctx.nodeId}
            required={required}
            describedBy={describedBy}
            label={compact ? shownLabel : undefined}
          />
        </FieldShell>
      );
    }
    case "list":
      return (
        <FieldShell label={shownLabel} required={required} hint={hint} hintId={hintId} actions={jsonToggle} group>
          <ScalarList name={name} schema={schema} value={value} onChange={onChange} ctx={inner} label={shownLabel} />
        </FieldShell>
      );
    case "objects":
      return (
        <FieldShell label={shownLabel} required={required} hint={hint} hintId={hintId} actions={jsonToggle} group>
          <ObjectList name={name} schema={schema} value={value} onChange={onChange} ctx={inner} label={shownLabel} />
        </FieldShell>
      );
    case "map":
      return (
        <FieldShell label={shownLabel} required={required} hint={hint} hintId={hintId} actions={jsonToggle} group>
          <MapEditor name={name} schema={schema} value={value} onChange={onChange} ctx={inner} label={shownLabel} />
        </FieldShell>
      );
    case "object": {
      const present = value && typeof value === "object" && !Array.isArray(value);
      return (
        <FieldShell
          label={shownLabel}
          required={required}
          hint={hint}
          hintId={hintId}
          group
          actions={
            <>
              {jsonToggle}
              {present && !required ? (
                <button type="button" className="button small" onClick={() => onChange(undefined)}>
                  {t("removeValue")}
                </button>
              ) : null}
            </>
          }
        >
          {present ? (
            <ObjectFields schema={schema} value={value as Record<string, unknown>} onChange={(v) => onChange(v)} ctx={inner} />
          ) : (
            <button type="button" className="button small" onClick={() => onChange(initialValue(schema, ctx.root, singular(name)))}>
              {t("addValue", { name: shownLabel })}
            </button>
          )}
        </FieldShell>
      );
    }
  }
}

function ScalarList({ name, schema, value, onChange, ctx, label }: { name: string; schema: JsonSchema; value: unknown; onChange: (v: unknown) => void; ctx: Ctx; label: string }) {
  const t = useT(text);
  const list = Array.isArray(value) ? value : [];
  const items = unwrap(schema.items ?? {}, ctx.root).schema;
  const selectorList = SELECTOR_LISTS.has(name) && pickerMode({ ...ctx, path: ctx.path.slice(0, -1) }, "selector") !== null;
  const set = (i: number, v: unknown) => onChange(list.map((x, j) => (j === i ? v : x)));
  return (
    <div className="dl-list">
      {list.length === 0 ? <p className="muted small">{t("emptyList")}</p> : null}
      {list.map((item, i) => (
        <div key={i} className="dl-list-row">
          <Field
            name={selectorList ? "selector" : name}
            schema={items}
            required
            value={item}
            onChange={(v) => set(i, v === undefined ? (items.type === "string" ? "" : v) : v)}
            ctx={ctx}
            label={`${label} ${i + 1}`}
            compact
          />
          <button type="button" className="button small dl-icon-button" aria-label={t("removeItem", { n: i + 1 })} onClick={() => onChange(list.filter((_, j) => j !== i))}>
            ✕
          </button>
        </div>
      ))}
      <button type="button" className="button small" onClick={() => onChange([...list, initialValue(items, ctx.root)])}>
        + {t("addItem")}
      </button>
    </div>
  );
}

function ObjectList({ name, schema, value, onChange, ctx, label }: { name: string; schema: JsonSchema; value: unknown; onChange: (v: unknown) => void; ctx: Ctx; label: string }) {
  const t = useT(text);
  const list = Array.isArray(value) ? value : [];
  const items = unwrap(schema.items ?? {}, ctx.root).schema;
  const set = (i: number, v: unknown) => onChange(list.map((x, j) => (j === i ? v : x)));
  const move = (i: number, by: number) => {
    const next = [...list];
    const [item] = next.splice(i, 1);
    next.splice(i + by, 0, item);
    onChange(next);
  };
  return (
    <div className="dl-list">
      {list.length === 0 ? <p className="muted small">{t("emptyList")}</p> : null}
      {list.map((item, i) => {
        const record = item && typeof item === "object" && !Array.isArray(item) ? (item as Record<string, unknown>) : {};
        const tag = typeof record.id === "string" ? record.id : typeof record.name === "string" ? record.name : "";
        return (
          <fieldset key={i} className="dl-item">
            <legend>
              <span>
                <span className="visually-hidden">{label} </span>
                {i + 1}.{tag ? <code> {tag}</code> : null}
              </span>
              <span className="dl-item-actions">
                <button type="button" className="button small dl-icon-button" disabled={i === 0} aria-label={t("moveUp", { n: i + 1 })} onClick={() => move(i, -1)}>
                  ↑
                </button>
                <button type="button" className="button small dl-icon-button" disabled={i === list.length - 1} aria-label={t("moveDown", { n: i + 1 })} onClick={() => move(i, 1)}>
                  ↓
                </button>
                <button type="button" className="button small dl-icon-button" aria-label={t("removeItem", { n: i + 1 })} onClick={() => onChange(list.filter((_, j) => j !== i))}>
                  ✕
                </button>
              </span>
            </legend>
            <ObjectFields schema={items} value={record} onChange={(v) => set(i, v)} ctx={ctx} />
          </fieldset>
        );
      })}
      <button type="button" className="button small" onClick={() => onChange([...list, initialValue(items, ctx.root, singular(name), list)])}>
        + {t("addItem")}
      </button>
    </div>
  );
}

function MapEditor({ name, schema, value, onChange, ctx, label }: { name: string; schema: JsonSchema; value: unknown; onChange: (v: unknown) => void; ctx: Ctx; label: string }) {
  const t = useT(text);
  const record = value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  const entries = Object.entries(record);
  const valueSchema = unwrap((schema.additionalProperties as JsonSchema) ?? {}, ctx.root).schema;
  const valueName = SELECTOR_MAPS.has(name) ? "selector" : TEMPLATE_MAPS.has(name) ? "value" : "entry";
  const rename = (from: string, to: string) => {
    if (to === from || to in record) return;
    onChange(Object.fromEntries(entries.map(([k, v]) => (k === from ? [to, v] : [k, v]))));
  };
  return (
    <div className="dl-list">
      {entries.length === 0 ? <p className="muted small">{t("emptyList")}</p> : null}
      {entries.map(([key, v], i) => (
        <div key={i} className="dl-map-row">
          <input className="dl-map-key" value={key} aria-label={t("entryKey", { name: label, n: i + 1 })} onChange={(e) => rename(key, e.target.value)} />
          <Field
            name={valueName}
            schema={valueSchema}
            required
            value={v}
            onChange={(nv) => onChange({ ...record, [key]: nv ?? (valueSchema.type === "string" ? "" : nv) })}
            ctx={ctx}
            label={t("entryValue", { name: label, key })}
            compact
          />
          <button
            type="button"
            className="button small dl-icon-button"
            aria-label={t("removeItem", { n: i + 1 })}
            onClick={() => onChange(Object.fromEntries(entries.filter(([k]) => k !== key)))}
          >
            ✕
          </button>
        </div>
      ))}
      <button
        type="button"
        className="button small"
        onClick={() => {
          let n = entries.length + 1;
          while (`key${n}` in record) n++;
          onChange({ ...record, [`key${n}`]: initialValue(valueSchema, ctx.root) });
        }}
      >
        + {t("addEntry")}
      </button>
    </div>
  );
}

function ObjectFields({ schema, value, onChange, ctx }: { schema: JsonSchema; value: Record<string, unknown>; onChange: (v: Record<string, unknown>, key: string) => void; ctx: Ctx }) {
  const s = resolve(schema, ctx.root);
  const required = new Set(s.required ?? []);
  const properties = Object.entries(s.properties ?? {});
  // Required fields first, then the rest, each in the schema's order.
  properties.sort(([a], [b]) => Number(required.has(b)) - Number(required.has(a)));
  return (
    <div className="dl-fields">
      {properties.map(([key, prop]) => (
        <Field
          key={key}
          name={key}
          schema={prop}
          required={required.has(key)}
          value={value[key]}
          ctx={ctx}
          onChange={(v) => {
            const next = { ...value };
            if (v === undefined) delete next[key];
            else next[key] = v;
            onChange(next, key);
          }}
        />
      ))}
    </div>
  );
}

/** The whole form for a config object. `onChange` gets the new config and the top-level key edited. */
export const SchemaForm = memo(function SchemaForm({
  schema,
  value,
  onChange,
  nodeId,
}: {
  schema: JsonSchema;
  value: Record<string, unknown>;
  onChange: (next: Record<string, unknown>, key: string) => void;
  nodeId: string | null;
}) {
  return <ObjectFields schema={schema} value={value} onChange={onChange} ctx={{ root: schema, nodeId, path: [], depth: 0 }} />;
});
