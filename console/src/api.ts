// The console talks to the same HTTP API as every other client, with a console session
// key (POST /v1/auth/login) as its bearer token.
const TOKEN_KEY = "danlu.token";

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

export function token(): string | null {
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null): void {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

/** Called when the server says the session is over; the shell sends people to sign-in. */
let onUnauthorized: () => void = () => {};
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  form?: FormData;
  raw?: string;
  contentType?: string;
  signal?: AbortSignal;
  auth?: boolean;
}

function headersFor(options: RequestOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  const bearer = token();
  if (bearer && options.auth !== false) headers.Authorization = `Bearer ${bearer}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.raw !== undefined) headers["Content-Type"] = options.contentType ?? "text/plain";
  return headers;
}

async function failure(response: Response): Promise<ApiError> {
  let message = `${response.status} ${response.statusText}`;
  let code: string | null = null;
  let param: string | null = null;
  try {
    const body = await response.json();
    const error = body?.error ?? body;
    if (typeof error === "string") message = error;
    else if (error?.message) {
      message = error.message;
      code = error.code ?? null;
      param = error.param ?? null;
    } else if (body?.detail) message = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch {
    /* not JSON: keep the status line */
  }
  if (response.status === 401) onUnauthorized();
  return new ApiError(message, response.status, code, param);
}

export async function request(path: string, options: RequestOptions = {}): Promise<Response> {
  const response = await fetch(path, {
    method: options.method ?? (options.body !== undefined || options.form || options.raw !== undefined ? "POST" : "GET"),
    headers: headersFor(options),
    body: options.form ?? options.raw ?? (options.body !== undefined ? JSON.stringify(options.body) : undefined),
    signal: options.signal,
  });
  if (!response.ok) throw await failure(response);
  return response;
}

export async function api<R = any>(path: string, options: RequestOptions = {}): Promise<R> {
  const response = await request(path, options);
  if (response.status === 204) return undefined as R;
  const type = response.headers.get("content-type") ?? "";
  return (type.includes("json") ? await response.json() : await response.text()) as R;
}

/** Server-sent events from a POST (or GET) as parsed JSON objects; stops at [DONE]. */
export async function* events<E = any>(path: string, options: RequestOptions = {}): AsyncGenerator<E> {
  const response = await request(path, options);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut: number;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart())
        .join("\n");
      if (!data) continue;
      if (data === "[DONE]") return;
      const parsed = JSON.parse(data);
      if (parsed?.error && !parsed.event) throw new ApiError(parsed.error.message ?? "stream failed", 500, parsed.error.code);
      yield parsed as E;
    }
  }
}

export function copyText(text: string): Promise<void> {
  if (navigator.clipboard?.writeText) return navigator.clipboard.writeText(text);
  const area = document.createElement("textarea");
  area.value = text;
  document.body.appendChild(area);
  area.select();
  document.execCommand("copy");
  area.remove();
  return Promise.resolve();
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value >= 10 || unit === 0 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

/** Offer a blob to the user as a file. */
export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Download what a GET returns, with the session's key (private files, CSV reports); the
 * server's Content-Disposition names the file when it gives a name. */
export async function downloadFrom(path: string, fallbackName: string): Promise<void> {
  const response = await request(path);
  const disposition = response.headers.get("content-disposition") ?? "";
  const name = /filename="?([^";]+)"?/.exec(disposition)?.[1] ?? fallbackName;
  saveBlob(await response.blob(), name);
}
