"""The ASGI application: one router per pillar, one error shape, one lifespan."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pluggy
from fastapi import FastAPI, Request
from fastapi.responses import Response

from danlu import __version__
from danlu.api.errors import install_error_handlers
from danlu.api.hub_common import Signer
from danlu.api.limits import BodyLimitMiddleware, body_limits
from danlu.api.request_id import RequestIdMiddleware
from danlu.api.routes import apps as apps_routes
from danlu.api.routes import auth as auth_routes
from danlu.api.routes import (
    billing,
    builder_meta,
    community_studio,
    discussions,
    fine_tunes,
    gateway_admin,
    health,
    hf_files,
    hf_repos,
    hf_upload,
    keys,
    modelscope,
    modelscope_files,
    openai,
    providers,
    rerank,
    served,
    sites,
)
from danlu.api.routes import community as community_routes
from danlu.api.routes import insight as insight_routes
from danlu.api.routes import knowledge as knowledge_routes
from danlu.api.sse import ClientGone
from danlu.api.state import Services
from danlu.billing import Billing as BillingService
from danlu.billing import UsageRecorder
from danlu.billing.money import yuan_to_units
from danlu.builder.app_model import install as install_app_models
from danlu.builder.apps import Apps
from danlu.builder.runtime import EngineServices
from danlu.builder.sites import Sites
from danlu.builder.ssrf import parse_allowlist
from danlu.community.service import open_community, run_background
from danlu.console import install_console
from danlu.core.bootstrap import open_core
from danlu.core.errors import ConfigError, DanluError
from danlu.core.plugins import plugin_manager
from danlu.core.secretbox import SecretBox
from danlu.core.settings import Settings
from danlu.gateway.hub_models import HubServing
from danlu.gateway.limit_rules import LimitRules
from danlu.gateway.limits import open_limiter
from danlu.gateway.metering import Meter
from danlu.gateway.metrics import GatewayMetrics
from danlu.gateway.provider_store import ProviderStore
from danlu.gateway.providers.e5 import EMBEDDED_EMBEDDING_MODEL
from danlu.gateway.providers.llama_cpp import EMBEDDED_CHAT_MODEL, embedded_gguf_path
from danlu.gateway.registry import ModelRegistry
from danlu.hub.commits import Committer
from danlu.hub.repos import Repos
from danlu.hub.seed import ensure_embedded_repo
from danlu.insight.service import Insight
from danlu.knowledge.service import KnowledgeBases
from danlu.knowledge.vectors import open_vector_store
from danlu.refinery.jobs import FineTunes
from danlu.refinery.processes import start_workers, stop_workers
from danlu.refinery.serving import serve_finished

log = logging.getLogger(__name__)
# How often each server process picks up providers added elsewhere (another replica, the CLI).
PROVIDER_SYNC_SECONDS = 5.0


def _free_quota(settings: Settings) -> int:
    try:
        return yuan_to_units(settings.free_quota)
    except DanluError:
        raise ConfigError(
            f"DANLU_FREE_QUOTA is an amount of yuan such as 10 or 0.5, not {settings.free_quota!r}"
        ) from None


async def _keep_in_sync(
    store: ProviderStore, rules: LimitRules, jobs: FineTunes, serving: HubServing
) -> None:
    """Pick up what other processes changed: providers, limit rules, refined models to serve."""
    while True:
        await asyncio.sleep(PROVIDER_SYNC_SECONDS)
        try:
            await store.sync()
            await asyncio.to_thread(rules.refresh)
            await serve_finished(jobs, serving)
        except Exception:  # a database hiccup must not end the loop
            log.exception("syncing providers and limits failed")


def _announce(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def create_app(settings: Settings, manager: pluggy.PluginManager | None = None) -> FastAPI:
    """Build the app; storage opens and models load when it starts."""
    plugins = manager or plugin_manager()
    # Built now, so a malformed providers file fails before the port opens.
    registry = ModelRegistry.from_plugins(plugins, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        core = open_core(settings, announce=_announce)
        await registry.start()
        repos = Repos(core.db, anonymous_read=settings.hub_anonymous_read)
        app.state.services = Services(
            settings=settings,
            db=core.db,
            accounts=core.accounts,
            keys=core.keys,
            blobs=core.blobs,
            models=registry,
            repos=repos,
            committer=Committer(
                core.db, core.blobs, repos, max_file_bytes=settings.hub_max_file_bytes
            ),
        )
        app.state.signer = Signer(core.secret)
        recorder = UsageRecorder(core.db)
        billing_service = BillingService(core.db, recorder)
        app.state.billing = billing_service
        rules = await asyncio.to_thread(LimitRules, core.db)
        app.state.meter = Meter(
            open_limiter(settings.redis_url or None),
            rules,
            recorder,
            GatewayMetrics(),
            billing_service if settings.billing else None,
            free_quota=_free_quota(settings),
            free_quota_days=settings.free_quota_days or None,
        )
        provider_store = ProviderStore(core.db, SecretBox(core.secret), registry)
        await provider_store.sync()
        app.state.provider_store = provider_store
        services = app.state.services
        await asyncio.to_thread(
            ensure_embedded_repo,
            core.accounts,
            repos,
            services.committer,
            core.blobs,
            embedded_gguf_path(),
            settings.home,
        )
        app.state.fine_tunes = FineTunes(core.db, repos)
        workers = start_workers(settings)
        engine = EngineServices(
            models=registry, http_allow=parse_allowlist(settings.builder_http_allow)
        )
        vector_store = await asyncio.to_thread(open_vector_store, core.db, settings.vector_index)
        knowledge = KnowledgeBases(
            core.db,
            core.blobs,
            registry,
            EMBEDDED_EMBEDDING_MODEL,
            default_chat=EMBEDDED_CHAT_MODEL if settings.embedded_models else None,
            vectors=vector_store,
        )
        app.state.knowledge = knowledge
        engine.retriever = knowledge
        apps = Apps(core.db, core.keys, engine)
        app.state.apps = apps
        insight = await asyncio.to_thread(Insight.open, settings, core.db)
        app.state.insight = insight
        apps.observers.append(insight.recorder.observe)  # every run, recorded off the hot path
        app.state.sites = Sites(core.db)
        install_app_models(apps, registry)
        community = open_community(
            core.db,
            repos,
            apps,
            SecretBox(core.secret),
            app.state.meter.limiter,
            posts_per_minute=settings.community_posts_per_minute,
        )
        app.state.community = community
        community_work = asyncio.create_task(
            run_background(community, parse_allowlist(settings.builder_http_allow))
        )
        serving = HubServing(core.db, repos, core.blobs, registry, settings)
        app.state.serving = serving
        for problem in await serving.restore():
            log.warning("a served hub model could not be loaded: %s", problem)
        ready = ", ".join(sorted(m.id for m in registry.models())) or "none"
        log.info("danlu %s ready; models: %s", __version__, ready)
        syncing = asyncio.create_task(
            _keep_in_sync(provider_store, rules, app.state.fine_tunes, serving)
        )
        try:
            yield
        finally:
            syncing.cancel()
            community_work.cancel()
            await asyncio.to_thread(stop_workers, workers)
            await app.state.meter.drain()
            await app.state.meter.limiter.aclose()
            await registry.aclose()
            await asyncio.to_thread(recorder.close)
            await asyncio.to_thread(insight.close)
            core.close()

    app = FastAPI(
        title="danlu 丹炉",
        version=__version__,
        summary="Self-hosted AI application platform: OpenAI-compatible gateway, hub, builder.",
        lifespan=lifespan,
    )
    install_error_handlers(app)

    @app.exception_handler(ClientGone)
    async def _client_gone(_: Request, __: ClientGone) -> Response:
        return Response(status_code=499)  # nobody is listening; for the access log only

    app.add_middleware(BodyLimitMiddleware, limit_for=body_limits(settings))
    app.add_middleware(RequestIdMiddleware)  # added last: outermost, so even a 413 has an id
    app.include_router(health.router)
    app.include_router(openai.router)
    app.include_router(rerank.router)
    app.include_router(providers.router)
    app.include_router(billing.router)
    app.include_router(gateway_admin.router)
    app.include_router(fine_tunes.router)
    app.include_router(keys.router)
    app.include_router(served.router)
    app.include_router(apps_routes.router)
    app.include_router(builder_meta.router)
    app.include_router(sites.router)
    app.include_router(auth_routes.router)
    app.include_router(knowledge_routes.router)
    app.include_router(insight_routes.router)
    app.include_router(community_routes.router)
    app.include_router(community_studio.router)
    # The hub's routes come last: the model-file route (/{owner}/{name}/resolve/...) is broad.
    # ModelScope's come first among them: its /api/v1/... paths would otherwise fall into the
    # Hugging Face routes' /api/{plural}/{namespace}/{name}/... patterns.
    app.include_router(modelscope.router)
    app.include_router(modelscope_files.router)
    app.include_router(discussions.router)  # /api/{type}s/{ns}/{name}/discussions…
    app.include_router(hf_upload.router)
    app.include_router(hf_repos.router)
    app.include_router(hf_files.router)
    install_console(app)
    return app
