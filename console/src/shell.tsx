// The console's frame: sign-in gate, sidebar, top bar with the language switch, and the page.
import { Suspense, useEffect, useState } from "react";
import { common } from "./i18n/common";
import { communityText } from "./i18n/community";
import { LANGS, useLang, useT } from "./i18n";
import { Link, match, useLocation } from "./router";
import { ROUTES } from "./routes";
import { useSession } from "./session";
import { Spinner } from "./components/ui";
import { NotificationBell } from "./components/notification-bell";
import SignIn from "./pages/sign-in";

const NAV: (
  | { to: string; key: keyof typeof common.en; icon: string }
  | { to: string; key: keyof typeof communityText.en; icon: string; table: typeof communityText }
)[] = [
  { to: "/", key: "navHome", icon: "⌂" },
  { to: "/hub/models", key: "navModels", icon: "◆" },
  { to: "/hub/datasets", key: "navDatasets", icon: "▤" },
  { to: "/playground", key: "navPlayground", icon: "✦" },
  { to: "/apps", key: "navApps", icon: "⬡" },
  { to: "/insight", key: "navInsight", icon: "◔" },
  { to: "/studio", key: "navStudio", icon: "❖", table: communityText },
  { to: "/feed", key: "navFeed", icon: "≋", table: communityText },
  { to: "/knowledge", key: "navKnowledge", icon: "❏" },
  { to: "/refinery", key: "navRefinery", icon: "♨" },
  { to: "/keys", key: "navKeys", icon: "◎" },
];

function CommunityLabel({ name }: { name: keyof typeof communityText.en }) {
  return <>{useT(communityText)(name)}</>;
}

export function LanguageSwitch() {
  const { lang, setLang } = useLang();
  const t = useT(common);
  return (
    <label className="lang-switch">
      <span className="visually-hidden">{t("language")}</span>
      <select value={lang} onChange={(e) => setLang(e.target.value as (typeof LANGS)[number])} aria-label={t("language")}>
        <option value="en">English</option>
        <option value="zh">中文</option>
      </select>
    </label>
  );
}

function NotFound() {
  const t = useT(common);
  return (
    <div className="page narrow">
      <h1>404</h1>
      <p>{t("notFound")}</p>
      <Link to="/">{t("backHome")}</Link>
    </div>
  );
}

export function Console() {
  const { path } = useLocation();
  const { me, ready, signOut } = useSession();
  const t = useT(common);
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => {
    setMenuOpen(false);
  }, [path]);

  let found: { route: (typeof ROUTES)[number]; params: Record<string, string> } | null = null;
  for (const route of ROUTES) {
    const params = match(route.pattern, path);
    if (params) {
      found = { route, params };
      break;
    }
  }
  const Page = found?.route.page;
  const body = (
    <Suspense fallback={<Spinner />}>{Page ? <Page params={found!.params} /> : <NotFound />}</Suspense>
  );
  if (found?.route.public) return body;
  if (!ready) return <Spinner />;
  if (!me) return <SignIn />;
  if (found?.route.bare) return body;

  const active = (to: string) => (to === "/" ? path === "/" : path === to || path.startsWith(to + "/"));
  return (
    <div className={`shell${menuOpen ? " menu-open" : ""}`}>
      <a className="skip-link" href="#main">
        {t("skipToContent")}
      </a>
      <aside className="sidebar">
        <Link to="/" className="brand">
          <img src="/favicon.svg" alt="" width={28} height={28} />
          <span>{t("brand")}</span>
        </Link>
        <nav aria-label={t("menu")}>
          <ul>
            {NAV.map((item) => (
              <li key={item.to}>
                <Link to={item.to} className={active(item.to) ? "active" : undefined} aria-current={active(item.to) ? "page" : undefined}>
                  <span className="nav-icon" aria-hidden="true">
                    {item.icon}
                  </span>
                  {"table" in item ? <CommunityLabel name={item.key} /> : t(item.key)}
                </Link>
              </li>
            ))}
            <li>
              <a href="/docs" target="_blank" rel="noreferrer">
                <span className="nav-icon" aria-hidden="true">
                  ↗
                </span>
                {t("navApiDocs")}
              </a>
            </li>
          </ul>
        </nav>
      </aside>
      <div className="main-column">
        <header className="topbar">
          <button type="button" className="menu-button" aria-label={t("menu")} onClick={() => setMenuOpen((o) => !o)}>
            ☰
          </button>
          <span className="workspace-name" title={t("workspace")}>
            {me.workspace}
          </span>
          <span className="spacer" />
          <NotificationBell />
          <LanguageSwitch />
          <span className="user-name">{me.username}</span>
          <button type="button" className="button small" onClick={() => void signOut()}>
            {t("signOut")}
          </button>
        </header>
        <main id="main" tabIndex={-1}>
          {body}
        </main>
      </div>
    </div>
  );
}
