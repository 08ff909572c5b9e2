// The bell in the top bar: how many notifications are unread, refreshed every half minute,
// on every page change, and whenever a page says it marked some read.
import { useEffect, useState } from "react";
import { api } from "../api";
import { useT } from "../i18n";
import { communityText } from "../i18n/community";
import { Link, useLocation } from "../router";
import { Icon } from "./community";
import "./community.css";

export const NOTIFICATIONS_CHANGED = "danlu:notifications";

/** Tell the bell to look again (after marking notifications read). */
export function notificationsChanged(): void {
  window.dispatchEvent(new Event(NOTIFICATIONS_CHANGED));
}

export function NotificationBell() {
  const t = useT(communityText);
  const { path } = useLocation();
  const [unread, setUnread] = useState(0);
  const [round, setRound] = useState(0);
  useEffect(() => {
    const again = () => setRound((r) => r + 1);
    const timer = window.setInterval(again, 30_000);
    window.addEventListener(NOTIFICATIONS_CHANGED, again);
    return () => {
      window.clearInterval(timer);
      window.removeEventListener(NOTIFICATIONS_CHANGED, again);
    };
  }, []);
  useEffect(() => {
    let live = true;
    api<{ unread: number }>("/v1/notifications?unread=true&limit=1").then(
      (answer) => live && setUnread(answer.unread),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [path, round]);
  const label = unread ? t("bellUnread", { n: unread }) : t("notifications");
  return (
    <Link to="/notifications" className={`bell${path === "/notifications" ? " active" : ""}`} aria-label={label} title={label} data-testid="notification-bell">
      <Icon name="bell" size={18} />
      {unread ? (
        <span className="bell-count" data-testid="bell-count">
          {unread > 99 ? "99+" : unread}
        </span>
      ) : null}
    </Link>
  );
}
