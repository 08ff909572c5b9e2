// What the canvas shows over the graph without being part of it: each node's compile problems
// and its status in the current run. Kept outside the nodes' data so a check or a run event
// re-renders only the nodes it concerns (and never enters undo history or the saved DSL).
import { createContext, useContext, useSyncExternalStore } from "react";
import type { NodeRun } from "./types";

export interface NodeOverlay {
  problems: string[];
  run: NodeRun | null;
}

const EMPTY: NodeOverlay = { problems: [], run: null };

export class OverlayStore {
  private problems = new Map<string, string[]>();
  private runs = new Map<string, NodeRun>();
  private snapshots = new Map<string, NodeOverlay>();
  private listeners = new Set<() => void>();
  private pending = false;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  snapshot(id: string): NodeOverlay {
    return this.snapshots.get(id) ?? EMPTY;
  }

  runOf(id: string): NodeRun | null {
    return this.runs.get(id) ?? null;
  }

  private refresh(id: string): void {
    const problems = this.problems.get(id);
    const run = this.runs.get(id) ?? null;
    if (!problems && !run) this.snapshots.delete(id);
    else this.snapshots.set(id, { problems: problems ?? [], run });
  }

  /** Notify once per animation frame at most: a streamed run can send many events. */
  private notify(): void {
    if (this.pending) return;
    this.pending = true;
    const flush = () => {
      this.pending = false;
      for (const listener of [...this.listeners]) listener();
    };
    if (typeof requestAnimationFrame === "function" && document.visibilityState === "visible") requestAnimationFrame(flush);
    else setTimeout(flush, 0);
  }

  /** Replace every node's problems; only nodes whose list changed get a new snapshot. */
  setProblems(next: Map<string, string[]>): void {
    let changed = false;
    for (const id of new Set([...this.problems.keys(), ...next.keys()])) {
      const before = this.problems.get(id);
      const after = next.get(id);
      if ((before ?? []).join("\n") === (after ?? []).join("\n")) continue;
      if (after?.length) this.problems.set(id, after);
      else this.problems.delete(id);
      this.refresh(id);
      changed = true;
    }
    if (changed) this.notify();
  }

  setRun(id: string, update: (previous: NodeRun | null) => NodeRun): void {
    this.runs.set(id, update(this.runs.get(id) ?? null));
    this.refresh(id);
    this.notify();
  }

  clearRuns(): void {
    const ids = [...this.runs.keys()];
    if (!ids.length) return;
    this.runs.clear();
    for (const id of ids) this.refresh(id);
    this.notify();
  }

  /** A node that was renamed keeps its run status under its new id. */
  rename(from: string, to: string): void {
    const run = this.runs.get(from);
    if (run) {
      this.runs.delete(from);
      this.runs.set(to, run);
      this.refresh(from);
      this.refresh(to);
      this.notify();
    }
  }
}

export const OverlayContext = createContext<OverlayStore>(new OverlayStore());

export function useNodeOverlay(id: string): NodeOverlay {
  const store = useContext(OverlayContext);
  return useSyncExternalStore(store.subscribe, () => store.snapshot(id));
}
