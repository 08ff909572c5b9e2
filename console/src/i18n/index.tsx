// Languages: every visible string lives in a message table with an English and a Chinese
// text; the type of `messages` makes a missing translation a compile error.
import { createContext, useContext, useEffect, useMemo, useState, type ReactNode } from "react";

export type Lang = "en" | "zh";
export const LANGS: Lang[] = ["en", "zh"];
const STORAGE_KEY = "danlu.lang";

export type Messages<E extends Record<string, string>> = { en: E; zh: { [K in keyof E]: string } };

/** A module's message table; `zh` must translate every key of `en`. */
export function messages<const E extends Record<string, string>>(
  en: E,
  zh: { [K in keyof E]: string },
): Messages<E> {
  return { en, zh };
}

export type Vars = Record<string, string | number>;
export type T<E> = (key: keyof E & string, vars?: Vars) => string;

export function format(text: string, vars?: Vars): string {
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in vars ? String(vars[name]) : whole,
  );
}

/** The browser's choice, unless the user switched before. */
export function initialLang(): Lang {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved === "en" || saved === "zh") return saved;
  const wanted = navigator.languages?.length ? navigator.languages : [navigator.language];
  for (const tag of wanted) {
    const lower = (tag || "").toLowerCase();
    if (lower.startsWith("zh")) return "zh";
    if (lower.startsWith("en")) return "en";
  }
  return "en";
}

interface LangState {
  lang: Lang;
  setLang: (lang: Lang) => void;
}

const LangContext = createContext<LangState>({ lang: "en", setLang: () => {} });

export function LangProvider({ children }: { children: ReactNode }) {
  const [lang, setLangState] = useState<Lang>(initialLang);
  useEffect(() => {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  }, [lang]);
  const value = useMemo(
    () => ({
      lang,
      setLang: (next: Lang) => {
        localStorage.setItem(STORAGE_KEY, next);
        setLangState(next);
      },
    }),
    [lang],
  );
  return <LangContext.Provider value={value}>{children}</LangContext.Provider>;
}

export function useLang(): LangState {
  return useContext(LangContext);
}

/** A translator for one message table, in the current language. */
export function useT<E extends Record<string, string>>(table: Messages<E>): T<E> {
  const { lang } = useLang();
  return useMemo(() => {
    const dictionary = table[lang] as Record<string, string>;
    return (key, vars) => format(dictionary[key] ?? String(key), vars);
  }, [lang, table]);
}
