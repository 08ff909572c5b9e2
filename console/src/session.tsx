// Who is signed in. The token is a console session key from POST /v1/auth/login.
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from "react";
import { api, setToken, token, whenUnauthorized } from "./api";

export interface Me {
  username: string;
  is_admin: boolean;
  workspace: string;
  workspaces: { slug: string; role: string }[];
}

interface SessionState {
  me: Me | null;
  ready: boolean;
  signIn: (username: string, password: string) => Promise<void>;
  signOut: () => Promise<void>;
}

const SessionContext = createContext<SessionState | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<Me | null>(null);
  const [ready, setReady] = useState(false);

  const load = useCallback(async () => {
    if (!token()) {
      setMe(null);
      setReady(true);
      return;
    }
    try {
      setMe(await api<Me>("/v1/auth/me"));
    } catch {
      setToken(null);
      setMe(null);
    } finally {
      setReady(true);
    }
  }, []);

  useEffect(() => {
    whenUnauthorized(() => {
      setToken(null);
      setMe(null);
    });
    void load();
  }, [load]);

  const signIn = useCallback(
    async (username: string, password: string) => {
      const answer = await api<{ token: string }>("/v1/auth/login", {
        body: { username, password },
        auth: false,
      });
      setToken(answer.token);
      await load();
    },
    [load],
  );

  const signOut = useCallback(async () => {
    try {
      await api("/v1/auth/logout", { method: "POST" });
    } finally {
      setToken(null);
      setMe(null);
    }
  }, []);

  return (
    <SessionContext.Provider value={{ me, ready, signIn, signOut }}>{children}</SessionContext.Provider>
  );
}

export function useSession(): SessionState {
  const state = useContext(SessionContext);
  if (!state) throw new Error("useSession outside SessionProvider");
  return state;
}
