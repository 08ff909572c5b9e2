// The app editor (/apps/:slug/edit): a full-screen canvas with a palette, a side panel for the
// selected node, live validation, runs of the draft, undo/redo, copy/paste, auto-layout,
// autosave, import/export and publish.
import "@xyflow/react/dist/style.css";
import "./editor.css";
import {
  applyEdgeChanges,
  applyNodeChanges,
  Background,
  Controls,
  MiniMap,
  ReactFlow,
  ReactFlowProvider,
  useReactFlow,
  type AriaLabelConfig,
  type Connection,
  type EdgeChange,
  type IsValidConnection,
  type NodeChange,
  type XYPosition,
} from "@xyflow/react";
import { memo, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, type DragEvent } from "react";
import { api, ApiError, saveBlob } from "../api";
import { ErrorNote, Spinner, useAsync } from "../components/ui";
import { useLang, useT } from "../i18n";
import { Link } from "../router";
import { LanguageSwitch } from "../shell";
import { demoWorkflow } from "./demo";
import { ImportDialog, ProblemList, PublishDialog, SettingsDialog, ShortcutsDialog } from "./dialogs";
import { FALLBACK_TYPES } from "./fallback";
import {
  ancestors,
  clone,
  DEFAULT_NODE_HEIGHT,
  DEFAULT_NODE_WIDTH,
  edgeKey,
  fromFlow,
  layout,
  loadGraph,
  localOutputs,
  nextId,
  renameReferences,
  sourceHandles,
  SYSTEM_VARIABLES,
  toDslEdge,
  toDslNode,
  toFlowEdge,
  toFlowNode,
} from "./graph";
import { text, useTypeLabel } from "./messages";
import { NodePanel, type NodeActions } from "./node-panel";
import { nodeTypes, TypesContext } from "./node";
import { OverlayContext, OverlayStore } from "./overlay";
import { DRAG_TYPE, Palette } from "./palette";
import { RunPanel, type InputDecl, type RunHandle } from "./run-panel";
import { initialValue } from "./schema-form";
import type { AppInfo, CheckProblem, CheckResult, Dsl, DslEdge, DslNode, FlowEdge, FlowNode, Meta, NodeData, NodeTypeInfo } from "./types";
import { VariablesContext, type VariableGroup } from "./vars";

// --- clipboard (shared by every editor in this tab, so nodes can move between apps) -----

interface Clip {
  danlu: "nodes";
  nodes: DslNode[];
  edges: DslEdge[];
}

let memoryClipboard: Clip | null = null;

function isClip(value: unknown): value is Clip {
  return !!value && typeof value === "object" && (value as Clip).danlu === "nodes" && Array.isArray((value as Clip).nodes);
}

function isEditable(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  if (!el || !el.closest) return false;
  return !!el.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']");
}

function metaOf(dsl: Dsl): Meta {
  const { graph: _graph, ...meta } = dsl;
  void _graph;
  return { ...meta, schema: meta.schema || "danlu.app/v1" };
}

const backupKey = (slug: string) => `danlu.editor.backup.${slug}`;

interface Backup {
  at: number;
  dsl: Dsl;
}

function readBackup(slug: string): Backup | null {
  try {
    const raw = localStorage.getItem(backupKey(slug));
    const parsed = raw ? (JSON.parse(raw) as Backup) : null;
    return parsed && parsed.dsl?.graph ? parsed : null;
  } catch {
    return null;
  }
}

function writeBackup(slug: string, dsl: Dsl): void {
  try {
    localStorage.setItem(backupKey(slug), JSON.stringify({ at: Date.now(), dsl }));
  } catch {
    /* storage full or disabled: nothing more to do */
  }
}

function clearBackup(slug: string): void {
  try {
    localStorage.removeItem(backupKey(slug));
  } catch {
    /* ignore */
  }
}

function download(name: string, body: string, type: string): void {
  saveBlob(new Blob([body], { type }), name);
}

type SaveState =
  | { state: "saved"; at?: number }
  | { state: "saving" }
  | { state: "unsaved" }
  | { state: "invalid"; error?: unknown }
  | { state: "error"; error: unknown };

interface Snapshot {
  nodes: FlowNode[];
  edges: FlowEdge[];
  meta: Meta;
}

type Tab = "node" | "run" | "problems";
type DialogName = "publish" | "import" | "settings" | "shortcuts" | null;

const DEFAULT_EDGE_OPTIONS = { interactionWidth: 16 };
// includeHiddenNodes: nodes never rendered (off-screen, culled) count with their declared size.
const FIT_OPTIONS = { padding: 0.15, maxZoom: 1, includeHiddenNodes: true };

const KIND_COLORS: Record<string, string> = {
  start: "#2f7d4f",
  end: "#2f7d4f",
  answer: "#2f7d4f",
  llm: "#b4472c",
  agent: "#b4472c",
  question_classifier: "#8a5cc2",
  if_else: "#8a5cc2",
};

/** A new node's config: the server's defaults, else the built-in ones, else the schema's required fields. */
function defaultConfig(type: string, info: NodeTypeInfo | undefined): Record<string, unknown> {
  if (info?.default_config) return clone(info.default_config);
  const builtIn = FALLBACK_TYPES.find((f) => f.type === type)?.default_config;
  if (builtIn) return clone(builtIn);
  if (info?.config_schema) {
    const value = initialValue(info.config_schema, info.config_schema);
    if (value && typeof value === "object" && !Array.isArray(value)) return value as Record<string, unknown>;
  }
  return {};
}

function minimapColor(node: FlowNode): string {
  return KIND_COLORS[node.data.kind] ?? "#9b948a";
}

// --- the page ------------------------------------------------------------------------------

export default function EditorPage({ params }: { params: Record<string, string> }) {
  const slug = params.slug ?? "";
  const t = useT(text);
  const app = useAsync(() => api<AppInfo>(`/v1/apps/${encodeURIComponent(slug)}`), [slug]);
  const types = useAsync(() => api<{ data: NodeTypeInfo[] }>("/v1/builder/node-types").then((r) => r.data), []);

  useEffect(() => {
    document.title = app.value ? `${app.value.name} · ${t("editorTitle")}` : t("editorTitle");
  }, [app.value, t]);

  if (app.error) {
    const missing = app.error instanceof ApiError && app.error.status === 404;
    return (
      <div className="dl-editor-message">
        <Link to="/apps" className="button small">
          ← {t("backToApps")}
        </Link>
        {missing ? (
          <div className="error-note" role="alert">
            <strong>{t("appNotFound", { slug })}</strong>
            <span>{t("appNotFoundHint")}</span>
          </div>
        ) : (
          <ErrorNote error={app.error} onRetry={app.reload} />
        )}
      </div>
    );
  }
  if (!app.value || types.loading) {
    return (
      <div className="dl-editor-message">
        <Spinner label={t("loadingApp")} />
      </div>
    );
  }
  return (
    <ReactFlowProvider>
      <Editor
        key={app.value.id}
        initial={app.value}
        types={types.value?.length ? types.value : FALLBACK_TYPES}
        typesError={types.error ?? null}
        reloadApp={() => api<AppInfo>(`/v1/apps/${encodeURIComponent(slug)}`)}
      />
    </ReactFlowProvider>
  );
}

// --- the editor ----------------------------------------------------------------------------

function Editor({
  initial,
  types,
  typesError,
  reloadApp,
}: {
  initial: AppInfo;
  types: NodeTypeInfo[];
  typesError: Error | null;
  reloadApp: () => Promise<AppInfo>;
}) {
  const t = useT(text);
  const { lang } = useLang();
  const typeLabel = useTypeLabel();
  const rf = useReactFlow<FlowNode, FlowEdge>();
  const slug = initial.slug;
  const overlay = useMemo(() => new OverlayStore(), []);
  const typeMap = useMemo(() => new Map(types.map((x) => [x.type, x])), [types]);

  const first = useMemo(() => loadGraph(initial.draft), [initial]);
  const [nodes, setNodes] = useState<FlowNode[]>(first.nodes);
  const [edges, setEdges] = useState<FlowEdge[]>(first.edges);
  const [meta, setMeta] = useState<Meta>(() => metaOf(initial.draft));
  const [appInfo, setAppInfo] = useState(initial);
  const latest = useRef<Snapshot>({ nodes, edges, meta });
  useLayoutEffect(() => {
    latest.current = { nodes, edges, meta };
  }, [nodes, edges, meta]);

  const [tab, setTab] = useState<Tab>("node");
  const [dialog, setDialog] = useState<DialogName>(null);
  const [announcement, setAnnouncement] = useState("");
  const [notice, setNotice] = useState<{ kind: "info" | "error"; message: string } | null>(null);
  const [running, setRunning] = useState(false);
  const canvasRef = useRef<HTMLDivElement>(null);
  const runHandle = useRef<RunHandle>(null);
  const announce = useCallback((message: string) => setAnnouncement(message), []);

  // --- revisions: every saved change bumps `rev`; changes that matter to the compiler bump `graphRev`.
  const revRef = useRef(0);
  const graphRevRef = useRef(0);
  const [rev, setRev] = useState(0);
  const [graphRev, setGraphRev] = useState(0);
  const touch = useCallback((compile = true) => {
    revRef.current += 1;
    setRev(revRef.current);
    if (compile) {
      graphRevRef.current += 1;
      setGraphRev(graphRevRef.current);
    }
  }, []);

  // --- undo / redo over snapshots of the graph and the app's settings
  const undoStack = useRef({ past: [] as Snapshot[], future: [] as Snapshot[], key: null as string | null, at: 0 });
  const [historySize, setHistorySize] = useState({ undo: 0, redo: 0 });
  const syncHistory = useCallback(() => {
    const h = undoStack.current;
    setHistorySize({ undo: h.past.length, redo: h.future.length });
  }, []);
  /** Remember the state before a change; typing into one field within 1.5 s is one step. */
  const commit = useCallback(
    (key?: string) => {
      const h = undoStack.current;
      const now = Date.now();
      if (key && h.key === key && now - h.at < 1500) {
        h.at = now;
        return;
      }
      h.past.push(latest.current);
      if (h.past.length > 100) h.past.shift();
      h.future = [];
      h.key = key ?? null;
      h.at = now;
      syncHistory();
    },
    [syncHistory],
  );
  const restore = useCallback(
    (snap: Snapshot) => {
      const selected = new Set(latest.current.nodes.filter((n) => n.selected).map((n) => n.id));
      setNodes(snap.nodes.map((n) => (!!n.selected === selected.has(n.id) ? n : { ...n, selected: selected.has(n.id) })));
      setEdges(snap.edges.map((e) => (e.selected ? { ...e, selected: false } : e)));
      setMeta(snap.meta);
      touch();
    },
    [touch],
  );
  const undo = useCallback(() => {
    const h = undoStack.current;
    const snap = h.past.pop();
    if (!snap) return;
    h.future.push(latest.current);
    h.key = null;
    restore(snap);
    syncHistory();
    announce(t("undone"));
  }, [restore, syncHistory, announce, t]);
  const redo = useCallback(() => {
    const h = undoStack.current;
    const snap = h.future.pop();
    if (!snap) return;
    h.past.push(latest.current);
    h.key = null;
    restore(snap);
    syncHistory();
    announce(t("redone"));
  }, [restore, syncHistory, announce, t]);

  // --- live validation: POST /v1/builder/check ~400 ms after each change
  const [check, setCheck] = useState<(CheckResult & { rev: number }) | null>(null);
  const [checkError, setCheckError] = useState<unknown>(null);
  const checkRef = useRef(check);
  checkRef.current = check;
  useEffect(() => {
    const controller = new AbortController();
    const at = graphRev;
    const timer = setTimeout(async () => {
      const { nodes, edges, meta } = latest.current;
      try {
        const result = await api<CheckResult>("/v1/builder/check", { body: fromFlow(nodes, edges, meta), signal: controller.signal });
        setCheck({ ...result, problems: result.problems ?? [], rev: at });
        setCheckError(null);
      } catch (error) {
        if (controller.signal.aborted) return;
        if (error instanceof ApiError && error.status === 400) {
          // The document itself is refused (a bad id, a missing field): one graph-level problem.
          setCheck({ ok: false, problems: [{ where: error.param ?? "graph", node: null, edge: null, message: error.message }], outputs: {}, upstream: {}, system: {}, conversation: {}, rev: at });
          setCheckError(null);
        } else setCheckError(error);
      }
    }, 400);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [graphRev]);
  const problems = check?.problems ?? [];
  useEffect(() => {
    const byNode = new Map<string, string[]>();
    for (const p of problems) {
      const id = p.node ?? /^node (\w+)/.exec(p.where)?.[1];
      if (!id) continue;
      byNode.set(id, [...(byNode.get(id) ?? []), p.message]);
    }
    overlay.setProblems(byNode);
  }, [problems, overlay]);
  const edgeProblems = useMemo(() => {
    const map = new Map<string, string[]>();
    for (const p of problems) {
      if (!p.edge) continue;
      const key = edgeKey(p.edge.source, p.edge.target, p.edge.handle);
      map.set(key, [...(map.get(key) ?? []), p.message]);
    }
    return map;
  }, [problems]);
  const shownEdges = useMemo(() => {
    if (!edgeProblems.size) return edges;
    return edges.map((e) => {
      const messages = edgeProblems.get(edgeKey(e.source, e.target, e.sourceHandle));
      return messages ? { ...e, className: "dl-edge-problem", label: "⚠", ariaLabel: messages.join("; ") } : e;
    });
  }, [edges, edgeProblems]);

  // --- saving: PUT the DSL ~1 s after a change, on Ctrl/Cmd+S, and before runs and publishing
  const [save, setSave] = useState<SaveState>({ state: "saved" });
  const savedRev = useRef(0);
  const inflight = useRef<Promise<boolean> | null>(null);
  const doSave = useCallback(
    async (force: boolean): Promise<boolean> => {
      while (inflight.current) await inflight.current;
      const target = revRef.current;
      if (target === savedRev.current) return true;
      const { nodes, edges, meta } = latest.current;
      const dsl = fromFlow(nodes, edges, meta);
      // Drafts are saved even when they do not compile yet (the server names the problems;
      // runs and publishing refuse them), so work in progress lives on the server.
      setSave({ state: "saving" });
      const attempt = (async () => {
        try {
          const answer = await api<Partial<AppInfo>>(`/v1/apps/${encodeURIComponent(slug)}`, { method: "PUT", body: dsl });
          savedRev.current = target;
          clearBackup(slug);
          setAppInfo((info) => ({ ...info, ...answer, draft: info.draft }));
          setSave(revRef.current === target ? { state: "saved", at: Date.now() } : { state: "unsaved" });
          return true;
        } catch (error) {
          writeBackup(slug, dsl);
          if (error instanceof ApiError && error.code === "compile_error") setSave({ state: "invalid", error });
          else setSave({ state: "error", error });
          return false;
        }
      })();
      inflight.current = attempt;
      const ok = await attempt;
      inflight.current = null;
      if (ok && revRef.current !== target && force) return doSave(true);
      return ok;
    },
    [slug],
  );
  const flush = useCallback(() => doSave(true), [doSave]);
  useEffect(() => {
    if (rev === savedRev.current) return;
    setSave((s) => (s.state === "saving" ? s : { state: "unsaved" }));
    const timer = setTimeout(() => void doSave(false), 1000);
    return () => clearTimeout(timer);
  }, [rev, doSave]);
  useEffect(() => {
    const leaving = (event: BeforeUnloadEvent) => {
      if (revRef.current === savedRev.current) return;
      const { nodes, edges, meta } = latest.current;
      writeBackup(slug, fromFlow(nodes, edges, meta));
      event.preventDefault();
    };
    window.addEventListener("beforeunload", leaving);
    return () => {
      window.removeEventListener("beforeunload", leaving);
      // Leaving the editor inside the console: keep a copy and try a last save.
      if (revRef.current !== savedRev.current) {
        const { nodes, edges, meta } = latest.current;
        writeBackup(slug, fromFlow(nodes, edges, meta));
        void doSave(true);
      }
    };
  }, [slug, doSave]);

  // --- an unsaved copy from an earlier visit
  const [backup, setBackup] = useState<Backup | null>(() => {
    const found = readBackup(slug);
    if (!found) return null;
    const current = JSON.stringify(fromFlow(first.nodes, first.edges, metaOf(initial.draft)));
    return JSON.stringify(found.dsl) === current ? null : found;
  });

  const replaceGraph = useCallback(
    (dsl: Dsl, keepMeta = false) => {
      commit();
      const loaded = loadGraph(dsl);
      setNodes(loaded.nodes);
      setEdges(loaded.edges);
      if (!keepMeta) setMeta(metaOf(dsl));
      touch();
      overlay.clearRuns();
      requestAnimationFrame(() => void rf.fitView(FIT_OPTIONS));
    },
    [commit, touch, overlay, rf],
  );

  // ?demo=N replaces the graph with an N-node generated workflow (performance checks).
  useEffect(() => {
    const query = new URLSearchParams(location.search);
    const wanted = query.get("demo");
    if (wanted === null) return;
    const count = Number(wanted) || 200;
    const demo = demoWorkflow({ nodes: count }) as unknown as Dsl;
    setMeta((m) => ({ ...m, app: { ...m.app, mode: "workflow" } }));
    replaceGraph(demo, true);
    query.delete("demo");
    history.replaceState(null, "", location.pathname + (query.size ? `?${query}` : ""));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  // --- node and edge operations
  const dragging = useRef(false);
  const onNodesChange = useCallback(
    (changes: NodeChange<FlowNode>[]) => {
      let save = false;
      let compile = false;
      for (const c of changes) {
        if (c.type === "position" && !c.dragging && c.position) {
          save = true;
          if (!dragging.current) commit("keyboard-move");
        } else if (c.type === "remove" || c.type === "add" || c.type === "replace") {
          save = true;
          compile = true;
        }
      }
      setNodes((ns) => applyNodeChanges(changes, ns));
      if (save) touch(compile);
    },
    [commit, touch],
  );
  const onEdgesChange = useCallback(
    (changes: EdgeChange<FlowEdge>[]) => {
      setEdges((es) => applyEdgeChanges(changes, es));
      if (changes.some((c) => c.type !== "select")) touch();
    },
    [touch],
  );
  const onBeforeDelete = useCallback(async () => {
    commit();
    return true;
  }, [commit]);
  const onNodeDragStart = useCallback(() => {
    dragging.current = true;
    commit();
  }, [commit]);
  const onNodeDragStop = useCallback(() => {
    dragging.current = false;
  }, []);

  const connect = useCallback(
    (source: string, handle: string | null, target: string) => {
      if (source === target) return;
      const exists = latest.current.edges.some((e) => e.source === source && e.target === target && (e.sourceHandle ?? null) === handle);
      if (exists) return;
      commit();
      setEdges((es) => [...es, toFlowEdge({ source, target, handle }, new Set(es.map((e) => e.id)))]);
      touch();
      announce(t("connected", { from: source, to: target }));
    },
    [commit, touch, announce, t],
  );
  const onConnect = useCallback((c: Connection) => connect(c.source, c.sourceHandle ?? null, c.target), [connect]);
  const isValidConnection = useCallback<IsValidConnection<FlowEdge>>(
    (c) => {
      if (c.source === c.target) return false;
      const target = latest.current.nodes.find((n) => n.id === c.target);
      return target?.data.kind !== "start";
    },
    [],
  );
  const onReconnect = useCallback(
    (old: FlowEdge, c: Connection) => {
      if (c.source === c.target) return;
      commit();
      setEdges((es) => {
        const rest = es.filter((e) => e.id !== old.id);
        return [...rest, toFlowEdge({ source: c.source, target: c.target, handle: c.sourceHandle ?? null }, new Set(rest.map((e) => e.id)))];
      });
      touch();
    },
    [commit, touch],
  );

  const selectOnly = useCallback((ids: Set<string>) => {
    setNodes((ns) => ns.map((n) => (!!n.selected === ids.has(n.id) ? n : { ...n, selected: ids.has(n.id) })));
    setEdges((es) => es.map((e) => (e.selected ? { ...e, selected: false } : e)));
  }, []);

  const focusNode = useCallback(
    (id: string) => {
      selectOnly(new Set([id]));
      setTab("node");
      void rf.fitView({ nodes: [{ id }], duration: 300, maxZoom: 1.1, minZoom: 0.4, padding: 0.4, includeHiddenNodes: true });
      setTimeout(() => {
        const el = canvasRef.current?.querySelector<HTMLElement>(`.react-flow__node[data-id="${CSS.escape(id)}"]`);
        el?.focus({ preventScroll: true });
      }, 320);
    },
    [rf, selectOnly],
  );

  const pickProblem = useCallback(
    (p: CheckProblem) => {
      const id = p.node ?? /^node (\w+)/.exec(p.where)?.[1];
      if (id && latest.current.nodes.some((n) => n.id === id)) return focusNode(id);
      if (p.edge) {
        const key = edgeKey(p.edge.source, p.edge.target, p.edge.handle);
        setNodes((ns) => ns.map((n) => (n.selected ? { ...n, selected: false } : n)));
        setEdges((es) => es.map((e) => {
          const hit = edgeKey(e.source, e.target, e.sourceHandle) === key;
          return !!e.selected === hit ? e : { ...e, selected: hit };
        }));
        const ends = [p.edge.source, p.edge.target].filter((x) => latest.current.nodes.some((n) => n.id === x)).map((x) => ({ id: x }));
        if (ends.length) void rf.fitView({ nodes: ends, duration: 300, maxZoom: 1.1, padding: 0.4, includeHiddenNodes: true });
      }
    },
    [focusNode, rf],
  );

  const addNode = useCallback(
    (type: string, at?: XYPosition) => {
      const info = typeMap.get(type);
      const { nodes } = latest.current;
      const used = new Set(nodes.map((n) => n.id));
      const id = nextId(type, used);
      let position = at;
      let from: FlowNode | null = null;
      if (!position) {
        const selected = nodes.filter((n) => n.selected);
        if (selected.length === 1 && type !== "start") {
          from = selected[0];
          position = { x: from.position.x + (from.measured?.width ?? DEFAULT_NODE_WIDTH) + 80, y: from.position.y };
        } else {
          const box = canvasRef.current?.getBoundingClientRect();
          const center = box ? rf.screenToFlowPosition({ x: box.left + box.width / 2, y: box.top + box.height / 2 }) : { x: 0, y: 0 };
          position = { x: center.x - DEFAULT_NODE_WIDTH / 2, y: center.y - DEFAULT_NODE_HEIGHT / 2 };
        }
        // Step down past nodes already there, so a new node never hides another.
        const taken = (p: XYPosition) => nodes.some((n) => Math.abs(n.position.x - p.x) < 40 && Math.abs(n.position.y - p.y) < 40);
        for (let i = 0; i < 50 && taken(position); i++) position = { x: position.x, y: position.y + (from ? (from.measured?.height ?? DEFAULT_NODE_HEIGHT) + 30 : 40) };
      }
      commit();
      const node: FlowNode = { ...toFlowNode({ id, type, config: defaultConfig(type, info), position }), selected: true };
      setNodes((ns) => [...ns.map((n) => (n.selected ? { ...n, selected: false } : n)), node]);
      if (from) {
        const handle = sourceHandles(from.data, typeMap.get(from.data.kind))[0];
        if (handle) {
          const source = from.id;
          setEdges((es) => [...es, toFlowEdge({ source, target: id, handle: handle.id }, new Set(es.map((e) => e.id)))]);
        }
      }
      touch();
      setTab("node");
      announce(from ? t("addedAfter", { id, from: from.id }) : t("added", { id, type: typeLabel(type) }));
    },
    [typeMap, rf, commit, touch, announce, t, typeLabel],
  );

  const onDragOver = useCallback((event: DragEvent<HTMLDivElement>) => {
    if (!event.dataTransfer.types.includes(DRAG_TYPE)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  }, []);
  const onDrop = useCallback(
    (event: DragEvent<HTMLDivElement>) => {
      const type = event.dataTransfer.getData(DRAG_TYPE);
      if (!type) return;
      event.preventDefault();
      const p = rf.screenToFlowPosition({ x: event.clientX, y: event.clientY });
      addNode(type, { x: Math.round(p.x - DEFAULT_NODE_WIDTH / 2), y: Math.round(p.y - 24) });
    },
    [rf, addNode],
  );

  // --- copy, paste, duplicate
  const pasteRound = useRef(0);
  const clipOf = useCallback((): Clip | null => {
    const { nodes, edges } = latest.current;
    const chosen = nodes.filter((n) => n.selected);
    if (!chosen.length) return null;
    const ids = new Set(chosen.map((n) => n.id));
    return {
      danlu: "nodes",
      nodes: chosen.map(toDslNode),
      edges: edges.filter((e) => ids.has(e.source) && ids.has(e.target)).map(toDslEdge),
    };
  }, []);
  const copy = useCallback((): boolean => {
    const clip = clipOf();
    if (!clip) return false;
    memoryClipboard = clip;
    pasteRound.current = 0;
    navigator.clipboard?.writeText(JSON.stringify(clip)).catch(() => {});
    announce(t("copiedNodes", { n: clip.nodes.length }));
    return true;
  }, [clipOf, announce, t]);
  const paste = useCallback(
    (clip: Clip | null, round: number) => {
      if (!clip?.nodes.length) return;
      commit();
      const used = new Set(latest.current.nodes.map((n) => n.id));
      const renames = new Map<string, string>();
      for (const node of clip.nodes) {
        const id = nextId(node.type, used);
        used.add(id);
        renames.set(node.id, id);
      }
      const offset = 40 * round;
      const added: FlowNode[] = clip.nodes.map((node) => ({
        ...toFlowNode({
          ...node,
          id: renames.get(node.id)!,
          config: renameReferences(clone(node.config ?? {}), renames) as Record<string, unknown>,
          position: { x: (node.position?.x ?? 0) + offset, y: (node.position?.y ?? 0) + offset },
        }),
        selected: true,
      }));
      setNodes((ns) => [...ns.map((n) => (n.selected ? { ...n, selected: false } : n)), ...added]);
      setEdges((es) => {
        const ids = new Set(es.map((e) => e.id));
        const fresh = clip.edges
          .filter((e) => renames.has(e.source) && renames.has(e.target))
          .map((e) => toFlowEdge({ source: renames.get(e.source)!, target: renames.get(e.target)!, handle: e.handle }, ids));
        return [...es.map((e) => (e.selected ? { ...e, selected: false } : e)), ...fresh];
      });
      touch();
      announce(t("pastedNodes", { n: added.length }));
    },
    [commit, touch, announce, t],
  );
  const pasteMemory = useCallback(() => {
    pasteRound.current += 1;
    paste(memoryClipboard, pasteRound.current);
  }, [paste]);
  const duplicate = useCallback(() => paste(clipOf(), 1), [paste, clipOf]);

  const autoLayout = useCallback(() => {
    const { nodes, edges } = latest.current;
    if (!nodes.length) return;
    commit();
    setNodes(layout(nodes, edges));
    touch(false);
    requestAnimationFrame(() => void rf.fitView({ ...FIT_OPTIONS, duration: 300 }));
    announce(t("laidOut"));
  }, [commit, touch, rf, announce, t]);
  const fit = useCallback(() => void rf.fitView({ ...FIT_OPTIONS, duration: 300 }), [rf]);

  const removeNodes = useCallback(
    (ids: Set<string>) => {
      if (!ids.size) return;
      commit();
      setNodes((ns) => ns.filter((n) => !ids.has(n.id)));
      setEdges((es) => es.filter((e) => !ids.has(e.source) && !ids.has(e.target)));
      touch();
      announce(t("deletedNodes", { n: ids.size }));
    },
    [commit, touch, announce, t],
  );

  // --- the side panel's actions (stable: they read the latest state through refs)
  const updateNode = useCallback(
    (id: string, change: (data: NodeData) => NodeData, key: string, compile = true) => {
      commit(`${key}@${id}`);
      setNodes((ns) =>
        ns.map((n) => {
          if (n.id !== id) return n;
          const data = change(n.data);
          return { ...n, data, ariaLabel: `${data.title || n.id} (${data.kind})` };
        }),
      );
      touch(compile);
    },
    [commit, touch],
  );
  const actions = useMemo<NodeActions>(
    () => ({
      setConfig: (id, config, key) => {
        const node = latest.current.nodes.find((n) => n.id === id);
        updateNode(id, (d) => ({ ...d, config }), key);
        // A renamed branch (an if/else case, a class) keeps its connections.
        if (!node) return;
        const before = sourceHandles(node.data, typeMap.get(node.data.kind)).map((h) => h.id);
        const after = sourceHandles({ ...node.data, config }, typeMap.get(node.data.kind)).map((h) => h.id);
        if (before.length !== after.length) return;
        const renamed = new Map(before.map((h, i) => [h, after[i]]).filter(([a, b]) => a !== b && a !== null && b !== null) as [string, string][]);
        if (!renamed.size || new Set(after).size !== after.length) return;
        setEdges((es) => {
          const ids = new Set<string>();
          return es.map((e) =>
            e.source === id && e.sourceHandle && renamed.has(e.sourceHandle)
              ? toFlowEdge({ source: e.source, target: e.target, handle: renamed.get(e.sourceHandle) }, ids)
              : (ids.add(e.id), e),
          );
        });
      },
      setTitle: (id, title) => updateNode(id, (d) => ({ ...d, title }), "title", false),
      setErrors: (id, errors, key) =>
        updateNode(
          id,
          (d) => {
            const next = { ...d };
            if (errors) next.errors = errors;
            else delete next.errors;
            return next;
          },
          key,
        ),
      rename: (id, next) => {
        const { nodes } = latest.current;
        if (nodes.some((n) => n.id === next)) return t("idTaken", { id: next });
        commit();
        const renames = new Map([[id, next]]);
        setNodes((ns) =>
          ns.map((n) => {
            if (n.id === id) {
              const config = renameReferences(n.data.config, renames) as Record<string, unknown>;
              return { ...n, id: next, data: { ...n.data, config }, ariaLabel: `${n.data.title || next} (${n.data.kind})` };
            }
            const config = renameReferences(n.data.config, renames) as Record<string, unknown>;
            return JSON.stringify(config) === JSON.stringify(n.data.config) ? n : { ...n, data: { ...n.data, config } };
          }),
        );
        setEdges((es) => {
          const ids = new Set<string>();
          return es.map((e) =>
            e.source === id || e.target === id
              ? toFlowEdge({ source: e.source === id ? next : e.source, target: e.target === id ? next : e.target, handle: e.sourceHandle }, ids)
              : (ids.add(e.id), e),
          );
        });
        overlay.rename(id, next);
        touch();
        announce(t("renamed", { from: id, to: next }));
        return null;
      },
      connect,
      disconnect: (edgeId) => {
        commit();
        setEdges((es) => es.filter((e) => e.id !== edgeId));
        touch();
      },
      remove: (id) => removeNodes(new Set([id])),
      focus: focusNode,
      deselect: () => selectOnly(new Set()),
    }),
    [updateNode, commit, touch, overlay, announce, t, connect, removeNodes, focusNode, selectOnly, typeMap],
  );

  // --- keyboard shortcuts
  const openRun = useCallback(() => {
    setTab("run");
    setTimeout(() => runHandle.current?.start(), 0);
  }, []);
  useEffect(() => {
    let lastKeyPaste = 0;
    const onKey = (e: KeyboardEvent) => {
      const mod = e.ctrlKey || e.metaKey;
      const key = e.key.toLowerCase();
      if (mod && key === "s") {
        e.preventDefault();
        void flush();
        return;
      }
      if (dialog) return;
      if (mod && key === "enter") {
        e.preventDefault();
        openRun();
        return;
      }
      if (isEditable(e.target)) return;
      if (mod && !e.altKey) {
        if (key === "z" && !e.shiftKey) undo();
        else if (key === "y" || (key === "z" && e.shiftKey)) redo();
        else if (key === "c") {
          if (window.getSelection()?.toString()) return;
          if (!copy()) return;
        } else if (key === "v") {
          if (!memoryClipboard) return;
          lastKeyPaste = Date.now();
          pasteMemory();
        } else if (key === "d") duplicate();
        else if (key === "a") selectOnly(new Set(latest.current.nodes.map((n) => n.id)));
        else return;
        e.preventDefault();
        return;
      }
      if (e.altKey) return;
      if (e.key === "Delete" || e.key === "Backspace") {
        // Only where the canvas (or nothing) has focus: not while a toolbar or panel button does.
        const active = document.activeElement;
        if (active && active !== document.body && !canvasRef.current?.contains(active)) return;
        const { nodes, edges } = latest.current;
        const chosen = nodes.filter((n) => n.selected);
        const lines = edges.filter((ed) => ed.selected);
        if (!chosen.length && !lines.length) return;
        void rf.deleteElements({ nodes: chosen, edges: lines });
      } else if (e.shiftKey && key === "l") autoLayout();
      else if (e.shiftKey && key === "f") fit();
      else if (e.key === "?") setDialog("shortcuts");
      else if (e.key === "Escape") selectOnly(new Set());
      else return;
      e.preventDefault();
    };
    const onPaste = (e: ClipboardEvent) => {
      if (dialog || isEditable(e.target) || Date.now() - lastKeyPaste < 500) return;
      const raw = e.clipboardData?.getData("text/plain");
      if (!raw) return;
      try {
        const parsed: unknown = JSON.parse(raw);
        if (!isClip(parsed)) return;
        e.preventDefault();
        paste(parsed, 1);
      } catch {
        /* not ours */
      }
    };
    window.addEventListener("keydown", onKey);
    document.addEventListener("paste", onPaste);
    return () => {
      window.removeEventListener("keydown", onKey);
      document.removeEventListener("paste", onPaste);
    };
  }, [dialog, flush, openRun, undo, redo, copy, pasteMemory, paste, duplicate, selectOnly, autoLayout, fit, rf]);

  // --- variables a node may read: its upstream nodes' outputs, sys.* and conv.*
  const variablesFor = useCallback(
    (nodeId: string): VariableGroup[] => {
      const { nodes, edges, meta } = latest.current;
      const c = checkRef.current;
      const fresh = c && c.rev === graphRevRef.current ? c : null;
      const upstream = new Set(fresh?.upstream?.[nodeId] ?? ancestors(nodeId, edges));
      const groups: VariableGroup[] = [];
      for (const n of nodes) {
        if (!upstream.has(n.id)) continue;
        const outputs = fresh?.outputs?.[n.id] ?? localOutputs(n.data);
        const variables = Object.entries(outputs).map(([name, type]) => ({ selector: `${n.id}.${name}`, name, type }));
        if (variables.length) groups.push({ key: `node:${n.id}`, label: n.data.title ? `${n.data.title} (${n.id})` : n.id, variables });
      }
      const system = fresh?.system && Object.keys(fresh.system).length ? fresh.system : SYSTEM_VARIABLES;
      groups.push({ key: "sys", label: t("sysVariables"), variables: Object.entries(system).map(([name, type]) => ({ selector: `sys.${name}`, name, type })) });
      const conversation =
        fresh?.conversation && Object.keys(fresh.conversation).length
          ? fresh.conversation
          : Object.fromEntries((meta.variables ?? []).map((v) => [v.name, v.type ?? "string"]));
      const conv = Object.entries(conversation).map(([name, type]) => ({ selector: `conv.${name}`, name, type }));
      if (conv.length) groups.push({ key: "conv", label: t("convVariables"), variables: conv });
      return groups;
    },
    [t],
  );

  // --- derived view state
  const selectedNodes = useMemo(() => nodes.filter((n) => n.selected), [nodes]);
  const selected = selectedNodes.length === 1 ? selectedNodes[0] : null;
  const selectedId = selected?.id ?? null;
  useEffect(() => {
    if (selectedId) setTab((tab) => (tab === "problems" ? "node" : tab === "run" && running ? "run" : "node"));
  }, [selectedId, running]);
  useEffect(() => {
    // A newly selected node's settings start at the top.
    if (selectedId) document.getElementById("dl-tabpanel-node")?.scrollTo({ top: 0 });
  }, [selectedId]);
  const idsKey = useMemo(() => nodes.map((n) => n.id).join("\u0000"), [nodes]);
  const nodeIds = useMemo(() => (idsKey ? idsKey.split("\u0000") : []), [idsKey]);
  const startNode = useMemo(() => nodes.find((n) => n.data.kind === "start") ?? null, [nodes]);
  const startConfig = startNode?.data.config;
  const inputs = useMemo<InputDecl[]>(() => (Array.isArray(startConfig?.inputs) ? (startConfig.inputs as InputDecl[]) : []), [startConfig]);
  const mode = meta.app.mode ?? "workflow";

  const ariaLabelConfig = useMemo<Partial<AriaLabelConfig>>(
    () => ({
      "node.a11yDescription.default": t("a11yNode"),
      "node.a11yDescription.keyboardDisabled": t("a11yNodeKeyboard"),
      "node.a11yDescription.ariaLiveMessage": ({ direction, x, y }: { direction: string; x: number; y: number }) =>
        t("a11yMoved", { direction, x: Math.round(x), y: Math.round(y) }),
      "edge.a11yDescription.default": t("a11yEdge"),
      "controls.ariaLabel": t("a11yControls"),
      "controls.zoomIn.ariaLabel": t("zoomIn"),
      "controls.zoomOut.ariaLabel": t("zoomOut"),
      "controls.fitView.ariaLabel": t("fitView"),
      "controls.interactive.ariaLabel": t("a11yInteractive"),
      "minimap.ariaLabel": t("minimap"),
      "handle.ariaLabel": t("a11yHandle"),
    }),
    [t],
  );

  const exportYaml = useCallback(async () => {
    const saved = await flush();
    try {
      const yaml = await api<string>(`/v1/apps/${encodeURIComponent(slug)}/export?format=yaml`);
      download(`${slug}.yaml`, typeof yaml === "string" ? yaml : JSON.stringify(yaml, null, 2), "application/yaml");
      setNotice(saved ? null : { kind: "info", message: t("exportedSaved") });
    } catch (error) {
      setNotice({ kind: "error", message: error instanceof Error ? error.message : String(error) });
    }
  }, [flush, slug, t]);

  const onImported = useCallback(async () => {
    const fresh = await reloadApp();
    setAppInfo(fresh);
    replaceGraph(fresh.draft);
    // The server already holds this draft.
    savedRev.current = revRef.current;
    clearBackup(slug);
    setSave({ state: "saved", at: Date.now() });
    announce(t("imported"));
  }, [reloadApp, replaceGraph, slug, announce, t]);

  const problemsNow = useCallback(() => checkRef.current?.problems ?? [], []);
  const onPublished = useCallback((version: number) => setAppInfo((info) => ({ ...info, published_version: version })), []);
  const closeDialog = useCallback(() => setDialog(null), []);

  return (
    <OverlayContext.Provider value={overlay}>
      <TypesContext.Provider value={typeMap}>
        <VariablesContext.Provider value={variablesFor}>
          <div className="dl-editor" lang={lang === "zh" ? "zh-CN" : "en"}>
            <header className="dl-toolbar" role="toolbar" aria-label={t("toolbar")}>
              <Link to="/apps" className="button small" aria-label={t("backToApps")}>
                ← <span className="dl-hide-narrow">{t("apps")}</span>
              </Link>
              <button type="button" className="dl-app-name" title={t("appSettings")} onClick={() => setDialog("settings")}>
                <strong>{meta.app.name}</strong>
                <span className="tag">{t(`mode_${mode}`)}</span>
                {appInfo.published_version ? <span className="tag ok">{t("liveVersion", { version: appInfo.published_version })}</span> : null}
              </button>
              <SaveStatus save={save} problems={problems.length} onRetry={() => void flush()} onShowProblems={() => setTab("problems")} />
              <span className="spacer" />
              <div className="dl-tool-group" role="group" aria-label={t("editGroup")}>
                <button type="button" className="button small" onClick={undo} disabled={!historySize.undo} data-testid="undo" title={`${t("undo")} (Ctrl+Z)`}>
                  ↶ <span className="dl-hide-narrow">{t("undo")}</span>
                </button>
                <button type="button" className="button small" onClick={redo} disabled={!historySize.redo} data-testid="redo" title={`${t("redo")} (Ctrl+Shift+Z)`}>
                  ↷ <span className="dl-hide-narrow">{t("redo")}</span>
                </button>
                <button type="button" className="button small" onClick={autoLayout} data-testid="auto-layout" title={`${t("autoLayout")} (Shift+L)`}>
                  ⇶ <span className="dl-hide-narrow">{t("autoLayout")}</span>
                </button>
                <button type="button" className="button small" onClick={fit} data-testid="fit-view" title={`${t("fitView")} (Shift+F)`}>
                  ⤢ <span className="dl-hide-narrow">{t("fitView")}</span>
                </button>
              </div>
              <div className="dl-tool-group" role="group" aria-label={t("fileGroup")}>
                <button type="button" className="button small" onClick={() => setDialog("import")} data-testid="import">
                  {t("import")}
                </button>
                <button type="button" className="button small" onClick={() => void exportYaml()} data-testid="export">
                  {t("export")}
                </button>
                <button type="button" className="button small" onClick={() => setDialog("shortcuts")} aria-label={t("shortcuts")} title={`${t("shortcuts")} (?)`}>
                  ⌨
                </button>
              </div>
              <LanguageSwitch />
              <button type="button" className="button small" onClick={openRun} data-testid="run" disabled={running} title={`${t("run")} (Ctrl+Enter)`}>
                ▶ {running ? t("running") : t("run")}
              </button>
              <button type="button" className="button small primary" onClick={() => setDialog("publish")} data-testid="publish">
                {t("publish")}
              </button>
            </header>

            {backup ? (
              <div className="dl-banner" role="status">
                <span>{t("backupFound", { time: new Date(backup.at).toLocaleString(lang === "zh" ? "zh-CN" : "en") })}</span>
                <button
                  type="button"
                  className="button small primary"
                  onClick={() => {
                    replaceGraph(backup.dsl);
                    setBackup(null);
                  }}
                >
                  {t("restoreBackup")}
                </button>
                <button
                  type="button"
                  className="button small"
                  onClick={() => {
                    clearBackup(slug);
                    setBackup(null);
                  }}
                >
                  {t("discardBackup")}
                </button>
              </div>
            ) : null}
            {notice ? (
              <div className={`dl-banner${notice.kind === "error" ? " is-error" : ""}`} role={notice.kind === "error" ? "alert" : "status"}>
                <span>{notice.message}</span>
                <button type="button" className="button small" onClick={() => setNotice(null)}>
                  {t("dismiss")}
                </button>
              </div>
            ) : null}

            <div className="dl-body">
              <Palette types={types} error={typesError} onAdd={addNode} />
              <div className="dl-canvas" ref={canvasRef} onDragOver={onDragOver} onDrop={onDrop}>
                <ReactFlow<FlowNode, FlowEdge>
                  nodes={nodes}
                  edges={shownEdges}
                  nodeTypes={nodeTypes}
                  onNodesChange={onNodesChange}
                  onEdgesChange={onEdgesChange}
                  onConnect={onConnect}
                  onReconnect={onReconnect}
                  isValidConnection={isValidConnection}
                  onBeforeDelete={onBeforeDelete}
                  onNodeDragStart={onNodeDragStart}
                  onNodeDragStop={onNodeDragStop}
                  onSelectionDragStart={onNodeDragStart}
                  onSelectionDragStop={onNodeDragStop}
                  deleteKeyCode={null}
                  defaultEdgeOptions={DEFAULT_EDGE_OPTIONS}
                  // Every node stays mounted: rendering only the visible ones made zooming out
                  // mount dozens of nodes per frame (p95 33 ms at 200 nodes); mounted and
                  // memoized, pan, drag and zoom hold 60 fps at 200 (bench/console_canvas.py).
                  onlyRenderVisibleElements={false}
                  fitView
                  fitViewOptions={FIT_OPTIONS}
                  minZoom={0.05}
                  maxZoom={2}
                  attributionPosition="top-right"
                  ariaLabelConfig={ariaLabelConfig}
                  aria-label={t("canvas")}
                >
                  <Background gap={20} size={1} />
                  <Controls showInteractive={false} />
                  <MiniMap<FlowNode> pannable zoomable nodeColor={minimapColor} nodeStrokeWidth={2} />
                </ReactFlow>
                {nodes.length === 0 ? (
                  <div className="dl-canvas-empty">
                    <p>{t("emptyCanvas")}</p>
                  </div>
                ) : null}
              </div>
              <aside className="dl-side" aria-label={t("sidePanel")}>
                <div className="tabs dl-tabs" role="tablist">
                  {(["node", "run", "problems"] as Tab[]).map((name) => (
                    <button
                      key={name}
                      type="button"
                      role="tab"
                      id={`dl-tab-${name}`}
                      aria-controls={`dl-tabpanel-${name}`}
                      aria-selected={tab === name}
                      tabIndex={tab === name ? 0 : -1}
                      data-testid={`tab-${name}`}
                      onClick={() => setTab(name)}
                      onKeyDown={(e) => {
                        const order: Tab[] = ["node", "run", "problems"];
                        const at = order.indexOf(name);
                        const next = e.key === "ArrowRight" ? order[(at + 1) % 3] : e.key === "ArrowLeft" ? order[(at + 2) % 3] : null;
                        if (!next) return;
                        e.preventDefault();
                        setTab(next);
                        document.getElementById(`dl-tab-${next}`)?.focus();
                      }}
                    >
                      {name === "node" ? t("tabNode") : name === "run" ? t("tabRun") : t("tabProblems")}
                      {name === "problems" && problems.length ? <span className="tag bad dl-tab-count">{problems.length}</span> : null}
                    </button>
                  ))}
                </div>
                <div className="dl-tabpanel" role="tabpanel" id="dl-tabpanel-node" aria-labelledby="dl-tab-node" hidden={tab !== "node"}>
                  {selected ? (
                    <NodePanel id={selected.id} data={selected.data} info={typeMap.get(selected.data.kind)} edges={edges} nodeIds={nodeIds} actions={actions} />
                  ) : selectedNodes.length > 1 ? (
                    <div className="stack">
                      <p>{t("manySelected", { n: selectedNodes.length })}</p>
                      <div className="row">
                        <button type="button" className="button small" onClick={copy}>
                          {t("copy")}
                        </button>
                        <button type="button" className="button small" onClick={duplicate}>
                          {t("duplicate")}
                        </button>
                        <button type="button" className="button small danger" onClick={() => removeNodes(new Set(selectedNodes.map((n) => n.id)))}>
                          {t("deleteSelected")}
                        </button>
                      </div>
                    </div>
                  ) : (
                    <div className="dl-empty-panel">
                      <p>{t("nothingSelected")}</p>
                      <p className="muted small">{t("nothingSelectedHint")}</p>
                      <p className="muted small">{t("graphSize", { nodes: nodes.length, edges: edges.length })}</p>
                    </div>
                  )}
                </div>
                <div className="dl-tabpanel" role="tabpanel" id="dl-tabpanel-run" aria-labelledby="dl-tab-run" hidden={tab !== "run"}>
                  <MemoRunPanel slug={slug} mode={mode} inputs={inputs} flush={flush} focusNode={focusNode} onRunning={setRunning} handle={runHandle} />
                </div>
                <div className="dl-tabpanel" role="tabpanel" id="dl-tabpanel-problems" aria-labelledby="dl-tab-problems" hidden={tab !== "problems"}>
                  <Problems problems={problems} checked={!!check} checkError={checkError} onPick={pickProblem} />
                </div>
              </aside>
            </div>
            <div className="visually-hidden" aria-live="polite" role="status">
              {announcement}
            </div>
            {dialog === "publish" ? (
              <PublishDialog
                slug={slug}
                mode={mode}
                publishedVersion={appInfo.published_version}
                flush={flush}
                problemsNow={problemsNow}
                onPublished={onPublished}
                onPickProblem={pickProblem}
                onClose={closeDialog}
              />
            ) : null}
            {dialog === "import" ? <ImportDialog slug={slug} onImported={onImported} onClose={closeDialog} /> : null}
            {dialog === "settings" ? (
              <SettingsDialog
                meta={meta}
                onApply={(next) => {
                  commit();
                  setMeta(next);
                  touch();
                }}
                onClose={closeDialog}
              />
            ) : null}
            {dialog === "shortcuts" ? <ShortcutsDialog onClose={closeDialog} /> : null}
          </div>
        </VariablesContext.Provider>
      </TypesContext.Provider>
    </OverlayContext.Provider>
  );
}

const MemoRunPanel = memo(RunPanel);

function SaveStatus({ save, problems, onRetry, onShowProblems }: { save: SaveState; problems: number; onRetry: () => void; onShowProblems: () => void }) {
  const t = useT(text);
  let label: string;
  let extra = null;
  switch (save.state) {
    case "saved":
      label = problems ? t("saveSavedProblems", { n: problems }) : t("saveSaved");
      if (problems)
        extra = (
          <button type="button" className="link" onClick={onShowProblems}>
            {t("showProblems")}
          </button>
        );
      break;
    case "saving":
      label = t("saveSaving");
      break;
    case "unsaved":
      label = t("saveUnsaved");
      break;
    case "invalid":
      label = problems ? t("saveInvalid", { n: problems }) : t("saveInvalidPlain");
      extra = (
        <button type="button" className="link" onClick={onShowProblems}>
          {t("showProblems")}
        </button>
      );
      break;
    case "error":
      label = t("saveError", { error: save.error instanceof Error ? save.error.message : String(save.error) });
      extra = (
        <button type="button" className="link" onClick={onRetry}>
          {t("retrySave")}
        </button>
      );
      break;
  }
  return (
    <span className={`dl-save is-${save.state}`} data-testid="save-status" data-state={save.state} role="status" aria-live="polite">
      <span className="dl-save-dot" aria-hidden="true" />
      <span>{label}</span>
      {extra}
    </span>
  );
}

const Problems = memo(function Problems({
  problems,
  checked,
  checkError,
  onPick,
}: {
  problems: CheckProblem[];
  checked: boolean;
  checkError: unknown;
  onPick: (p: CheckProblem) => void;
}) {
  const t = useT(text);
  return (
    <div className="stack">
      {checkError ? (
        <div className="error-note" role="alert">
          <strong>{t("checkFailed")}</strong>
          <span>{checkError instanceof Error ? checkError.message : String(checkError)}</span>
          <span>{t("checkFailedHint")}</span>
        </div>
      ) : null}
      {!checked && !checkError ? <Spinner label={t("checking")} /> : null}
      {checked && problems.length === 0 ? <p className="dl-ok">✓ {t("noProblems")}</p> : null}
      {problems.length ? (
        <>
          <p className="muted small">{t("problemsHint")}</p>
          <ProblemList problems={problems} onPick={onPick} />
        </>
      ) : null}
    </div>
  );
});
