// Every console page and the path it answers; the shell picks the first match.
import { lazy, type ComponentType } from "react";

type Page = ComponentType<{ params: Record<string, string> }>;

export interface Route {
  pattern: string;
  page: Page;
  /** Full-screen pages (the editor, public app pages) have no sidebar. */
  bare?: boolean;
  /** Public pages need no sign-in. */
  public?: boolean;
}

const page = (load: () => Promise<{ default: Page }>) => lazy(load);

export const ROUTES: Route[] = [
  { pattern: "/", page: page(() => import("./pages/home")) },
  { pattern: "/hub/:kind", page: page(() => import("./pages/hub-list")) },
  { pattern: "/hub/:kind/:owner/:name", page: page(() => import("./pages/hub-repo")) },
  { pattern: "/hub/:kind/:owner/:name/*", page: page(() => import("./pages/hub-repo")) },
  { pattern: "/playground", page: page(() => import("./pages/playground")) },
  { pattern: "/apps", page: page(() => import("./pages/apps")) },
  { pattern: "/apps/:slug/edit", page: page(() => import("./editor/page")), bare: true },
  { pattern: "/apps/:slug/insight", page: page(() => import("./pages/insight-app")) },
  { pattern: "/insight", page: page(() => import("./pages/insight-workspace")) },
  { pattern: "/knowledge", page: page(() => import("./pages/knowledge")) },
  { pattern: "/knowledge/:id", page: page(() => import("./pages/knowledge-base")) },
  { pattern: "/refinery", page: page(() => import("./pages/refinery")) },
  { pattern: "/refinery/:id", page: page(() => import("./pages/refinery-job")) },
  { pattern: "/keys", page: page(() => import("./pages/keys")) },
  { pattern: "/studio", page: page(() => import("./pages/studio")) },
  { pattern: "/studio/:slug", page: page(() => import("./pages/studio-app")) },
  { pattern: "/notifications", page: page(() => import("./pages/notifications")) },
  { pattern: "/feed", page: page(() => import("./pages/feed")) },
  { pattern: "/u/:name", page: page(() => import("./pages/user")) },
  { pattern: "/s/:slug", page: page(() => import("./pages/site")), bare: true, public: true },
];
