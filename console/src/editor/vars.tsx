// The variable picker: a menu of what a node may read — only its upstream nodes' outputs, plus
// system (sys.*) and conversation (conv.*) variables.
import { createContext, useContext, useEffect, useId, useRef, useState, type KeyboardEvent } from "react";
import { useT } from "../i18n";
import { text } from "./messages";

export interface Variable {
  selector: string;
  name: string;
  type: string;
}

export interface VariableGroup {
  key: string;
  label: string;
  variables: Variable[];
}

/** The groups of variables node `id` may read (computed when the menu opens). */
export const VariablesContext = createContext<(nodeId: string) => VariableGroup[]>(() => []);

export function VarPicker({
  nodeId,
  mode,
  onPick,
}: {
  nodeId: string;
  /** "template" inserts {{ node.output }}; "selector" sets node.output. */
  mode: "template" | "selector";
  onPick: (selector: string) => void;
}) {
  const t = useT(text);
  const variablesFor = useContext(VariablesContext);
  const [open, setOpen] = useState(false);
  const [filter, setFilter] = useState("");
  const button = useRef<HTMLButtonElement>(null);
  const panel = useRef<HTMLDivElement>(null);
  const filterRef = useRef<HTMLInputElement>(null);
  const listId = useId();

  useEffect(() => {
    if (!open) return;
    filterRef.current?.focus();
    const away = (event: MouseEvent) => {
      const target = event.target as Node;
      if (!panel.current?.contains(target) && !button.current?.contains(target)) setOpen(false);
    };
    document.addEventListener("mousedown", away);
    return () => document.removeEventListener("mousedown", away);
  }, [open]);

  const close = () => {
    setOpen(false);
    setFilter("");
    button.current?.focus();
  };

  const groups = open ? variablesFor(nodeId) : [];
  const needle = filter.trim().toLowerCase();
  const shown = groups
    .map((g) => ({
      ...g,
      variables: needle
        ? g.variables.filter((v) => v.selector.toLowerCase().includes(needle) || g.label.toLowerCase().includes(needle))
        : g.variables,
    }))
    .filter((g) => g.variables.length);

  const onKey = (event: KeyboardEvent<HTMLDivElement>) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      close();
      return;
    }
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const items = [...(panel.current?.querySelectorAll<HTMLElement>("[data-var-option]") ?? [])];
    if (!items.length) return;
    event.preventDefault();
    const at = items.indexOf(document.activeElement as HTMLElement);
    const next = event.key === "ArrowDown" ? (at + 1) % items.length : at <= 0 ? items.length - 1 : at - 1;
    items[next].focus();
  };

  return (
    <div className="dl-var-picker">
      <button
        ref={button}
        type="button"
        className="button small dl-var-button"
        aria-expanded={open}
        aria-controls={open ? listId : undefined}
        title={mode === "template" ? t("insertVariable") : t("chooseVariable")}
        onClick={() => (open ? close() : setOpen(true))}
      >
        <span aria-hidden="true">{"{x}"}</span>
        <span className="visually-hidden">{mode === "template" ? t("insertVariable") : t("chooseVariable")}</span>
      </button>
      {open ? (
        <div className="dl-var-menu" ref={panel} id={listId} onKeyDown={onKey} role="group" aria-label={t("variables")}>
          <input
            ref={filterRef}
            type="search"
            placeholder={t("filterVariables")}
            aria-label={t("filterVariables")}
            value={filter}
            onChange={(e) => setFilter(e.target.value)}
          />
          {shown.length === 0 ? (
            <p className="muted small">{groups.some((g) => g.key.startsWith("node:")) ? t("noVariablesMatch") : t("noUpstream")}</p>
          ) : (
            <div className="dl-var-groups">
              {shown.map((g) => (
                <div key={g.key} className="dl-var-group">
                  <div className="dl-var-group-label">{g.label}</div>
                  {g.variables.map((v) => (
                    <button
                      key={v.selector}
                      type="button"
                      data-var-option=""
                      className="dl-var-option"
                      onClick={() => {
                        onPick(v.selector);
                        close();
                      }}
                    >
                      <code>{mode === "template" ? `{{ ${v.selector} }}` : v.selector}</code>
                      <span className="tag">{v.type}</span>
                    </button>
                  ))}
                </div>
              ))}
            </div>
          )}
          {!groups.some((g) => g.key.startsWith("node:")) && shown.length > 0 ? (
            <p className="muted small">{t("noUpstream")}</p>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}
