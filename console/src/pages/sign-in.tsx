import { useState, type FormEvent } from "react";
import { messages, useT } from "../i18n";
import { common } from "../i18n/common";
import { useSession } from "../session";
import { ErrorNote } from "../components/ui";
import { LanguageSwitch } from "../shell";

const text = messages(
  {
    title: "Sign in to danlu",
    username: "Username",
    password: "Password",
    submit: "Sign in",
    signingIn: "Signing in…",
    firstTime:
      "First time? The admin's password was printed when the server first started (or set DANLU_ADMIN_PASSWORD). Add users with `danlu users create`.",
  },
  {
    title: "登录丹炉",
    username: "用户名",
    password: "密码",
    submit: "登录",
    signingIn: "正在登录…",
    firstTime: "第一次使用？管理员密码在服务首次启动时打印（或设置 DANLU_ADMIN_PASSWORD）。用 `danlu users create` 添加用户。",
  },
);

export default function SignIn() {
  const t = useT(text);
  const c = useT(common);
  const { signIn } = useSession();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(username, password);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="sign-in">
      <form className="card sign-in-card" onSubmit={submit} aria-busy={busy}>
        <div className="sign-in-head">
          <img src="/favicon.svg" alt="" width={40} height={40} />
          <div>
            <h1>{t("title")}</h1>
            <p className="muted">{c("tagline")}</p>
          </div>
        </div>
        <label className="field">
          <span>{t("username")}</span>
          <input name="username" autoComplete="username" required value={username} onChange={(e) => setUsername(e.target.value)} autoFocus />
        </label>
        <label className="field">
          <span>{t("password")}</span>
          <input name="password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        {error ? <ErrorNote error={error} /> : null}
        <button type="submit" className="button primary wide" disabled={busy}>
          {busy ? t("signingIn") : t("submit")}
        </button>
        <p className="muted small">{t("firstTime")}</p>
        <LanguageSwitch />
      </form>
    </div>
  );
}
