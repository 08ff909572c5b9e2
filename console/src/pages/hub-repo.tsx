// One repo: its rendered card, files with sizes and downloads, commits, and copyable snippets.
import { useState } from "react";
import { api, downloadFrom, formatBytes } from "../api";
import { CopyButton, ErrorNote, Loaded, Markdown, formatTime, useAsync } from "../components/ui";
import { Discussions } from "../components/discussions";
import { useLang, useT } from "../i18n";
import { communityText } from "../i18n/community";
import { hubText } from "../i18n/hub";
import { Link, navigate, useLocation } from "../router";
import type { RepoSummary } from "./hub-list";
import { UsedBy } from "./studio";

interface RepoInfo extends RepoSummary {
  sha: string;
  siblings: { rfilename: string; size?: number; lfs?: unknown }[];
  usedStorage: number;
}

interface Commit {
  id: string;
  title: string;
  authors: { user: string }[];
  date: string;
}

/** The card's Markdown without its YAML front matter. */
function cardBody(readme: string): string {
  return readme.replace(/^---\n[\s\S]*?\n---\n?/, "");
}

function fileUrl(kind: string, repoId: string, path: string): string {
  const prefix = kind === "datasets" ? "/datasets" : "";
  return `${prefix}/${repoId}/resolve/main/${path.split("/").map(encodeURIComponent).join("/")}`;
}

function download(kind: string, repoId: string, path: string): Promise<void> {
  // Through fetch, so private repos' files go with the session's key.
  return downloadFrom(fileUrl(kind, repoId, path), path.split("/").pop() ?? path);
}

function snippets(kind: string, repoId: string): Record<string, string> {
  const endpoint = location.origin;
  if (kind === "datasets") {
    return {
      snippetDatasets: `import os\nos.environ["HF_ENDPOINT"] = "${endpoint}"\nfrom datasets import load_dataset\n\nds = load_dataset("${repoId}")`,
      snippetHub: `from huggingface_hub import snapshot_download\n\npath = snapshot_download("${repoId}", repo_type="dataset", endpoint="${endpoint}")`,
      snippetCli: `HF_ENDPOINT=${endpoint} huggingface-cli download ${repoId} --repo-type dataset`,
    };
  }
  return {
    snippetTransformers: `import os\nos.environ["HF_ENDPOINT"] = "${endpoint}"\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\ntokenizer = AutoTokenizer.from_pretrained("${repoId}")\nmodel = AutoModelForCausalLM.from_pretrained("${repoId}")`,
    snippetHub: `from huggingface_hub import snapshot_download\n\npath = snapshot_download("${repoId}", endpoint="${endpoint}")`,
    snippetModelscope: `import os\nos.environ["MODELSCOPE_DOMAIN"] = "${location.host}"\nfrom modelscope import snapshot_download\n\npath = snapshot_download("${repoId}")`,
    snippetCli: `HF_ENDPOINT=${endpoint} huggingface-cli download ${repoId}`,
  };
}

export default function HubRepo({ params }: { params: Record<string, string> }) {
  const t = useT(hubText);
  const { lang } = useLang();
  const kind = params.kind === "datasets" ? "datasets" : "models";
  const repoId = `${params.owner}/${params.name}`;
  const ct = useT(communityText);
  const { path, query } = useLocation();
  const wanted = query.get("tab");
  const tab = wanted === "files" || wanted === "commits" || wanted === "discussions" ? wanted : "card";
  const setTab = (name: string) => navigate(name === "card" ? path : `${path}?tab=${name}`, true);
  const info = useAsync(() => api<RepoInfo>(`/api/${kind}/${repoId}?blobs=true`), [kind, repoId]);
  const readme = useAsync(async () => {
    try {
      return await api<string>(fileUrl(kind, repoId, "README.md"));
    } catch {
      return "";
    }
  }, [kind, repoId]);
  const commits = useAsync(() => api<Commit[]>(`/api/${kind}/${repoId}/commits/main`), [kind, repoId]);
  const [downloadError, setDownloadError] = useState<unknown>(null);
  const code = snippets(kind, repoId);
  const [snippet, setSnippet] = useState(Object.keys(code)[0]);

  return (
    <div className="page">
      <Loaded state={info}>
        {(repo) => (
          <>
            <div className="page-head">
              <Link to={`/hub/${kind}`} className="muted">
                {kind === "models" ? t("models") : t("datasets")}
              </Link>
              <span className="muted">/</span>
              <h1 data-testid="repo-title">{repo.id}</h1>
              {repo.private ? <span className="tag">🔒</span> : null}
              <span className="tag">♥ {repo.likes}</span>
              <span className="tag">↓ {repo.downloads}</span>
            </div>
            <div className="row tags">
              {repo.tags.map((name) => (
                <span className="tag" key={name}>
                  {name}
                </span>
              ))}
            </div>
            <div className="repo-layout">
              <div>
                <div className="tabs" role="tablist">
                  {(["card", "files", "commits", "discussions"] as const).map((name) => (
                    <button key={name} type="button" role="tab" aria-selected={tab === name} onClick={() => setTab(name)}>
                      {name === "card" ? (kind === "models" ? t("card") : t("datasetCard")) : name === "discussions" ? ct("discussions") : t(name)}
                    </button>
                  ))}
                </div>
                {tab === "card" ? (
                  <Loaded state={readme}>
                    {(text) => (text ? <div className="card"><Markdown source={cardBody(text)} /></div> : <div className="empty">{t("noCard")}</div>)}
                  </Loaded>
                ) : null}
                {tab === "files" ? (
                  <>
                    <p className="muted">{t("totalSize", { n: repo.siblings.length, size: formatBytes(repo.usedStorage) })}</p>
                    {downloadError ? <ErrorNote error={downloadError} /> : null}
                    <table className="table" data-testid="repo-files">
                      <thead>
                        <tr>
                          <th>{t("path")}</th>
                          <th>{t("size")}</th>
                          <th />
                        </tr>
                      </thead>
                      <tbody>
                        {repo.siblings.map((file) => (
                          <tr key={file.rfilename}>
                            <td>
                              <code>{file.rfilename}</code> {file.lfs ? <span className="tag">LFS</span> : null}
                            </td>
                            <td>{file.size !== undefined ? formatBytes(file.size) : "—"}</td>
                            <td>
                              <button type="button" className="button small" onClick={() => download(kind, repo.id, file.rfilename).catch(setDownloadError)}>
                                {t("download")}
                              </button>
                            </td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  </>
                ) : null}
                {tab === "commits" ? (
                  <Loaded state={commits}>
                    {(list) => (
                      <table className="table">
                        <thead>
                          <tr>
                            <th>{t("message")}</th>
                            <th>{t("author")}</th>
                            <th>{t("date")}</th>
                          </tr>
                        </thead>
                        <tbody>
                          {list.map((commit) => (
                            <tr key={commit.id}>
                              <td>
                                {commit.title} <code className="muted">{commit.id.slice(0, 8)}</code>
                              </td>
                              <td>{commit.authors.map((a) => a.user).join(", ")}</td>
                              <td>{formatTime(commit.date, lang)}</td>
                            </tr>
                          ))}
                        </tbody>
                      </table>
                    )}
                  </Loaded>
                ) : null}
                {tab === "discussions" ? <Discussions base={`/api/${kind}/${repo.id}/discussions`} workspace={repo.id.split("/")[0]} /> : null}
              </div>
              <aside className="card snippet-card">
                <h3>{t("useIt")}</h3>
                <div className="tabs" role="tablist">
                  {Object.keys(code).map((name) => (
                    <button key={name} type="button" role="tab" aria-selected={snippet === name} onClick={() => setSnippet(name)}>
                      {t(name as keyof typeof hubText.en)}
                    </button>
                  ))}
                </div>
                <pre>{code[snippet]}</pre>
                <CopyButton text={code[snippet]} />
                <UsedBy kind={kind === "datasets" ? "dataset" : "model"} repoId={repo.id} />
              </aside>
            </div>
          </>
        )}
      </Loaded>
    </div>
  );
}
