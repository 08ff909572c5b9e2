// The palette: node types to drag onto the canvas, or to add with a click or Enter.
import { memo, useState, type DragEvent } from "react";
import { useT } from "../i18n";
import { CATEGORY_OF, text, typeIcon, useTypeLabel, type Category } from "./messages";
import type { NodeTypeInfo } from "./types";

export const DRAG_TYPE = "application/x-danlu-node";

const ORDER: Category[] = ["flow", "ai", "tools", "other"];

function PaletteView({
  types,
  error,
  onAdd,
}: {
  types: NodeTypeInfo[];
  error: Error | null;
  onAdd: (type: string) => void;
}) {
  const t = useT(text);
  const typeLabel = useTypeLabel();
  const [filter, setFilter] = useState("");
  const needle = filter.trim().toLowerCase();
  const shown = types.filter((n) => !needle || n.type.includes(needle) || typeLabel(n.type).toLowerCase().includes(needle));
  const groups = ORDER.map((category) => ({
    category,
    items: shown.filter((n) => (CATEGORY_OF[n.type] ?? "other") === category),
  })).filter((g) => g.items.length);

  const dragStart = (event: DragEvent<HTMLButtonElement>, type: string) => {
    event.dataTransfer.setData(DRAG_TYPE, type);
    event.dataTransfer.setData("text/plain", type);
    event.dataTransfer.effectAllowed = "copy";
  };

  return (
    <nav className="dl-palette" aria-label={t("palette")}>
      <h2 className="dl-palette-title">{t("palette")}</h2>
      <input type="search" value={filter} placeholder={t("filterNodes")} aria-label={t("filterNodes")} onChange={(e) => setFilter(e.target.value)} />
      {error ? (
        <p className="dl-palette-warn" role="status">
          {t("typesFallback", { error: error.message })}
        </p>
      ) : null}
      {groups.length === 0 ? <p className="muted small">{t("noNodeTypes")}</p> : null}
      {groups.map((g) => (
        <div key={g.category} className="dl-palette-group">
          <h3>{t(`cat_${g.category}`)}</h3>
          <ul>
            {g.items.map((n) => (
              <li key={n.type}>
                <button
                  type="button"
                  className="dl-palette-item"
                  draggable
                  data-testid={`palette-${n.type}`}
                  title={t("paletteItemHint")}
                  onDragStart={(e) => dragStart(e, n.type)}
                  onClick={() => onAdd(n.type)}
                >
                  <span className="dl-node-icon" aria-hidden="true">
                    {typeIcon(n.type)}
                  </span>
                  <span>{typeLabel(n.type)}</span>
                </button>
              </li>
            ))}
          </ul>
        </div>
      ))}
      <p className="muted small dl-palette-help">{t("paletteHelp")}</p>
    </nav>
  );
}

export const Palette = memo(PaletteView);
