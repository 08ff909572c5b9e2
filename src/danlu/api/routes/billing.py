"""Money over HTTP: balances, redemption and usage for everyone; prices, grants, codes for admins.

Amounts travel as exact decimal strings of yuan (``"0.000500"``) beside integer
micro-yuan (``units``); requests take yuan strings, never floats.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from danlu.api.auth import require
from danlu.api.state import Services, get_services
from danlu.billing import Billing
from danlu.billing.codes import CodeView
from danlu.billing.money import format_yuan, parse_price, yuan_to_units
from danlu.billing.prices import Price
from danlu.billing.reports import records_csv, report_csv, usage_records, usage_report
from danlu.billing.wallets import Funds, Grant
from danlu.core.errors import InvalidRequest
from danlu.core.keys import Principal, Scope

router = APIRouter(tags=["Billing"])
Caller = Annotated[Principal, Depends(require(None))]
Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]
Svc = Annotated[Services, Depends(get_services)]
Yuan = Field(pattern=r"^¥?\d+(\.\d{1,6})?$", description="Yuan as a decimal string, e.g. '12.5'")


def _billing(request: Request) -> Billing:
    billing: Billing = request.app.state.billing
    return billing


Bill = Annotated[Billing, Depends(_billing)]


def money(units: int) -> dict[str, Any]:
    return {"units": units, "yuan": format_yuan(units, symbol=False)}


def _when(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def grant_json(grant: Grant) -> dict[str, Any]:
    return {
        "id": grant.id,
        "amount": money(grant.amount),
        "remaining": money(grant.remaining),
        "expires_at": _when(grant.expires_at),
        "source": grant.source,
        "note": grant.note,
        "created_at": _when(grant.created_at),
    }


def funds_json(funds: Funds) -> dict[str, Any]:
    return {
        "balance": money(funds.balance),
        "credit": money(funds.credit),
        "held": money(funds.held),
        "available": money(funds.available),
        "grants": [grant_json(g) for g in funds.grants],
    }


def price_json(price: Price) -> dict[str, Any]:
    return {
        "model": price.model,
        "free": price.free,
        "per": "million tokens",
        "input": money(price.input_price),
        "cached_input": money(price.cached_input_price),
        "output": money(price.output_price),
        "updated_at": _when(price.updated_at),
    }


def code_json(view: CodeView) -> dict[str, Any]:
    return {
        "id": view.id,
        "prefix": view.prefix,
        "amount": money(view.amount),
        "status": view.status,
        "expires_at": _when(view.expires_at),
        "credit_days": view.credit_days,
        "max_redemptions": view.max_redemptions,
        "redeemed": view.redeemed_count,
        "note": view.note,
        "created_at": _when(view.created_at),
    }


# --- everyone: their workspace's money ----------------------------------------------------


@router.get("/v1/billing/balance", summary="Your workspace's balance, credits and holds")
async def balance(caller: Caller, billing: Bill) -> dict[str, Any]:
    funds = await run_in_threadpool(billing.wallets.funds, caller.workspace_id)
    return funds_json(funds)


@router.get("/v1/billing/prices", summary="What each model costs, per million tokens")
async def prices(_: Caller, billing: Bill) -> dict[str, Any]:
    listed = await run_in_threadpool(billing.prices.list)
    return {"object": "list", "data": [price_json(p) for p in listed]}


class Redeem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=4, max_length=64)


@router.post("/v1/billing/redeem", summary="Redeem a code into credit (兑换码)")
async def redeem(body: Redeem, caller: Caller, billing: Bill) -> dict[str, Any]:
    grant = await run_in_threadpool(billing.codes.redeem, body.code, caller.workspace_id)
    return grant_json(grant)


def _range(start: date | None, end: date | None) -> tuple[date, date]:
    today = datetime.now(UTC).date()
    end = end or today
    start = start or end - timedelta(days=29)
    if start > end:
        raise InvalidRequest("start is after end", param="start")
    if (end - start).days > 366:
        raise InvalidRequest("ask for at most a year at a time", param="start")
    return start, end


@router.get(
    "/v1/billing/usage",
    summary="Usage per key, model or day (JSON or CSV)",
    response_model=None,
)
async def usage(
    caller: Caller,
    services: Svc,
    by: Literal["key", "model", "day"] = "day",
    start: date | None = None,
    end: date | None = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> dict[str, Any] | Response:
    first, last = _range(start, end)
    rows = await run_in_threadpool(
        usage_report, services.db, caller.workspace_id, first, last, by=by
    )
    if format == "csv":
        name = f"danlu-usage-by-{by}-{first}-{last}.csv"
        return Response(
            report_csv(rows, by=by),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return {
        "object": "list",
        "by": by,
        "start": str(first),
        "end": str(last),
        "data": [
            {
                by: row.group,
                "requests": row.requests,
                "input_tokens": row.input_tokens,
                "cached_tokens": row.cached_tokens,
                "output_tokens": row.output_tokens,
                "cost": money(row.cost),
            }
            for row in rows
        ],
    }


@router.get(
    "/v1/usage", summary="Usage per key, model or day (group_by; JSON or CSV)", response_model=None
)
async def usage_alias(
    caller: Caller,
    services: Svc,
    group_by: Literal["key", "model", "day"] = "day",
    start: date | None = None,
    end: date | None = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> dict[str, Any] | Response:
    return await usage(caller, services, group_by, start, end, format)


@router.get("/v1/billing/records.csv", summary="Every request of a period, as CSV")
async def records(
    caller: Caller, services: Svc, start: date | None = None, end: date | None = None
) -> Response:
    first, last = _range(start, end)
    entries = await run_in_threadpool(usage_records, services.db, caller.workspace_id, first, last)
    return Response(
        records_csv(entries),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="danlu-requests-{first}-{last}.csv"'
        },
    )


# --- admins: prices, funds, codes -----------------------------------------------------------


class PriceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: str = Yuan
    output: str = Yuan
    cached_input: str | None = Field(default=None, pattern=r"^¥?\d+(\.\d{1,6})?$")
    per: Literal["million", "thousand"] = "million"
    free: bool = False


@router.put("/v1/admin/prices/{model:path}", summary="Set a model's price (yuan per M tokens)")
async def set_price(model: str, body: PriceBody, _: Admin, billing: Bill) -> dict[str, Any]:
    cached = None if body.cached_input is None else parse_price(body.cached_input, per=body.per)
    price = await run_in_threadpool(
        lambda: billing.prices.set(
            model,
            input_price=parse_price(body.input, per=body.per),
            output_price=parse_price(body.output, per=body.per),
            cached_input_price=cached,
            free=body.free,
        )
    )
    return price_json(price)


@router.delete("/v1/admin/prices/{model:path}", summary="Remove a model's price (it stops billing)")
async def delete_price(model: str, _: Admin, billing: Bill) -> Response:
    await run_in_threadpool(billing.prices.delete, model)
    return Response(status_code=204)


class FundsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: str = Yuan
    valid_days: int | None = Field(default=None, ge=1, le=3650)
    note: str = Field(default="", max_length=500)


@router.post("/v1/admin/workspaces/{slug}/top-up", summary="Add paid balance to a workspace")
async def top_up(
    slug: str, body: FundsBody, _: Admin, billing: Bill, services: Svc
) -> dict[str, Any]:
    workspace = await run_in_threadpool(services.accounts.workspace, slug)
    funds = await run_in_threadpool(
        billing.wallets.top_up, workspace.id, yuan_to_units(body.amount)
    )
    return funds_json(funds)


@router.post("/v1/admin/workspaces/{slug}/grants", status_code=201, summary="Grant credit (抵扣金)")
async def grant(
    slug: str, body: FundsBody, _: Admin, billing: Bill, services: Svc
) -> dict[str, Any]:
    workspace = await run_in_threadpool(services.accounts.workspace, slug)
    made = await run_in_threadpool(
        lambda: billing.wallets.grant(
            workspace.id, yuan_to_units(body.amount), valid_days=body.valid_days, note=body.note
        )
    )
    return grant_json(made)


@router.get("/v1/admin/workspaces/{slug}/balance", summary="A workspace's money")
async def workspace_balance(slug: str, _: Admin, billing: Bill, services: Svc) -> dict[str, Any]:
    workspace = await run_in_threadpool(services.accounts.workspace, slug)
    return funds_json(await run_in_threadpool(billing.wallets.funds, workspace.id))


class CodeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: str = Yuan
    credit_days: int | None = Field(default=None, ge=1, le=3650)
    expires_at: datetime | None = None
    max_redemptions: int = Field(default=1, ge=1, le=1_000_000)
    note: str = Field(default="", max_length=500)


@router.post(
    "/v1/admin/redemption-codes", status_code=201, summary="Make a redemption code (shown once)"
)
async def create_code(body: CodeBody, caller: Admin, billing: Bill) -> dict[str, Any]:
    expires = body.expires_at
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    view, code = await run_in_threadpool(
        lambda: billing.codes.create(
            yuan_to_units(body.amount),
            expires_at=expires,
            credit_days=body.credit_days,
            max_redemptions=body.max_redemptions,
            note=body.note,
            created_by=caller.user_id,
        )
    )
    return {**code_json(view), "code": code}


@router.get("/v1/admin/redemption-codes", summary="Codes (never the codes themselves)")
async def list_codes(_: Admin, billing: Bill) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [code_json(v) for v in await run_in_threadpool(billing.codes.list)],
    }


@router.delete("/v1/admin/redemption-codes/{code_id}", summary="Disable a code")
async def disable_code(code_id: str, _: Admin, billing: Bill) -> dict[str, Any]:
    return code_json(await run_in_threadpool(billing.codes.disable, code_id))
