import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { Console } from "./shell";
import { LangProvider } from "./i18n";
import { SessionProvider } from "./session";
import "./styles.css";

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <LangProvider>
      <SessionProvider>
        <Console />
      </SessionProvider>
    </LangProvider>
  </StrictMode>,
);
