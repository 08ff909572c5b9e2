// A chat transcript with a composer; used by the playground, the public app page and the editor.
import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { messages, useT } from "../i18n";

export interface Turn {
  role: "user" | "assistant";
  content: string;
  error?: boolean;
}

const text = messages(
  { placeholder: "Type a message — Enter to send, Shift+Enter for a new line", send: "Send", stop: "Stop", thinking: "…" },
  { placeholder: "输入消息 —— Enter 发送，Shift+Enter 换行", send: "发送", stop: "停止", thinking: "…" },
);

export function ChatLog({ turns, busy }: { turns: Turn[]; busy: boolean }) {
  const t = useT(text);
  const end = useRef<HTMLDivElement>(null);
  useEffect(() => {
    end.current?.scrollIntoView({ block: "end" });
  }, [turns]);
  return (
    <div className="chat-log" aria-live="polite" data-testid="chat-log">
      {turns.map((turn, i) => (
        <div key={i} className={`bubble ${turn.role}${turn.error ? " error" : ""}`} data-testid={`turn-${turn.role}`}>
          {turn.content || (busy && i === turns.length - 1 ? t("thinking") : "")}
        </div>
      ))}
      <div ref={end} />
    </div>
  );
}

export function Composer({
  onSend,
  onStop,
  busy,
  disabled,
}: {
  onSend: (message: string) => void;
  onStop?: () => void;
  busy: boolean;
  disabled?: boolean;
}) {
  const t = useT(text);
  const [draft, setDraft] = useState("");
  const send = (event?: FormEvent) => {
    event?.preventDefault();
    const message = draft.trim();
    if (!message || busy) return;
    setDraft("");
    onSend(message);
  };
  const onKey = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      send();
    }
  };
  return (
    <form className="chat-input" onSubmit={send}>
      <textarea
        value={draft}
        onChange={(e) => setDraft(e.target.value)}
        onKeyDown={onKey}
        placeholder={t("placeholder")}
        aria-label={t("placeholder")}
        rows={2}
        disabled={disabled}
        data-testid="composer"
      />
      {busy && onStop ? (
        <button type="button" className="button" onClick={onStop}>
          {t("stop")}
        </button>
      ) : (
        <button type="submit" className="button primary" disabled={busy || disabled || !draft.trim()} data-testid="send">
          {t("send")}
        </button>
      )}
    </form>
  );
}
