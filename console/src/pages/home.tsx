// Home: what you have, and what to do next — starting with a first app in a few minutes.
import { useState } from "react";
import { api } from "../api";
import { useAsync } from "../components/ui";
import { messages, useT } from "../i18n";
import { Link } from "../router";
import { useSession } from "../session";
import { CreateDialog } from "./apps";

const text = messages(
  {
    welcome: "Welcome, {name}",
    intro: "Build an LLM app by drag and drop, refine a dedicated model, and share both — all on this server.",
    have: "What you have",
    models: "Models served",
    repos: "Hub models",
    datasets: "Datasets",
    apps: "Apps",
    kbs: "Knowledge bases",
    jobs: "Fine-tunes",
    firstApp: "Build your first app",
    step1: "Pick a template",
    step1Text: "A chat app, a game NPC, a customer-service bot or an AI search workflow.",
    step2: "Shape it on the canvas",
    step2Text: "Drag nodes from the palette, connect them, and run it with live per-node status.",
    step3: "Publish and share",
    step3Text: "Get a public page, a share link, an iframe and a chat bubble for any website.",
    start: "Start building",
    next: "Next steps",
    tryPlayground: "Chat with a model in the Playground",
    addKnowledge: "Upload documents to a knowledge base",
    refine: "Refine a model on your own dataset",
    getKey: "Create an API key for your code",
  },
  {
    welcome: "欢迎，{name}",
    intro: "拖拽搭建大模型应用，炼制专属模型，并分享它们——全部在这台服务器上完成。",
    have: "你已拥有",
    models: "可用模型",
    repos: "模型仓库",
    datasets: "数据集",
    apps: "应用",
    kbs: "知识库",
    jobs: "微调任务",
    firstApp: "搭建你的第一个应用",
    step1: "选择模板",
    step1Text: "对话应用、游戏 NPC、智能客服或 AI 搜索工作流。",
    step2: "在画布上编排",
    step2Text: "从节点面板拖入节点、连线，运行时可实时查看每个节点的状态。",
    step3: "发布并分享",
    step3Text: "获得公开页面、分享链接、iframe 嵌入代码和可放在任何网站上的聊天气泡。",
    start: "开始搭建",
    next: "下一步",
    tryPlayground: "在调试台与模型对话",
    addKnowledge: "上传文档到知识库",
    refine: "用自己的数据集微调模型",
    getKey: "为代码创建 API 密钥",
  },
);

interface Stats {
  models: number;
  repos: number;
  datasets: number;
  apps: number;
  kbs: number;
  jobs: number;
}

async function count(path: string, pick: (body: any) => unknown[] = (b) => b.data): Promise<number> {
  try {
    return pick(await api(path)).length;
  } catch {
    return 0;
  }
}

export default function Home() {
  const t = useT(text);
  const { me } = useSession();
  const [creating, setCreating] = useState(false);
  const stats = useAsync<Stats>(
    async () => ({
      models: await count("/v1/models"),
      repos: await count("/api/models?limit=100", (b) => b),
      datasets: await count("/api/datasets?limit=100", (b) => b),
      apps: await count("/v1/apps"),
      kbs: await count("/v1/knowledge-bases"),
      jobs: await count("/v1/fine-tunes"),
    }),
    [],
  );
  const tiles: [keyof Stats, string, string][] = [
    ["models", t("models"), "/playground"],
    ["repos", t("repos"), "/hub/models"],
    ["datasets", t("datasets"), "/hub/datasets"],
    ["apps", t("apps"), "/apps"],
    ["kbs", t("kbs"), "/knowledge"],
    ["jobs", t("jobs"), "/refinery"],
  ];
  return (
    <div className="page">
      <h1>{t("welcome", { name: me?.username ?? "" })}</h1>
      <p className="muted">{t("intro")}</p>
      <h2>{t("have")}</h2>
      <div className="row stats">
        {tiles.map(([key, label, to]) => (
          <Link key={key} to={to} className="card stat">
            <b>{stats.value ? stats.value[key] : "…"}</b>
            <span>{label}</span>
          </Link>
        ))}
      </div>
      <section className="card first-app">
        <h2>{t("firstApp")}</h2>
        <ol className="steps">
          <li>
            <strong>{t("step1")}</strong>
            <span className="muted">{t("step1Text")}</span>
          </li>
          <li>
            <strong>{t("step2")}</strong>
            <span className="muted">{t("step2Text")}</span>
          </li>
          <li>
            <strong>{t("step3")}</strong>
            <span className="muted">{t("step3Text")}</span>
          </li>
        </ol>
        <button type="button" className="button primary" onClick={() => setCreating(true)} data-testid="start-building">
          {t("start")}
        </button>
      </section>
      <h2>{t("next")}</h2>
      <ul className="next-steps">
        <li>
          <Link to="/playground">{t("tryPlayground")}</Link>
        </li>
        <li>
          <Link to="/knowledge">{t("addKnowledge")}</Link>
        </li>
        <li>
          <Link to="/refinery">{t("refine")}</Link>
        </li>
        <li>
          <Link to="/keys">{t("getKey")}</Link>
        </li>
      </ul>
      {creating ? <CreateDialog onClose={() => setCreating(false)} /> : null}
    </div>
  );
}
