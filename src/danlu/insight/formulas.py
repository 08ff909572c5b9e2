"""Every metric's stated formula: the text the API returns (and the console shows) beside
each number. The queries in ``metrics.py`` compute exactly these.

Terms used throughout: a *day* is a calendar day in the workspace's time zone (or the
``tz`` asked for); an end user is *active* on a day when they ran the app (any run,
failed or not) that day; the *window* is the days ``from`` … ``to``, both included.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Formula:
    name: str
    label: str
    formula: str
    unit: str = "count"


_ALL = (
    Formula(
        "active_users",
        "Active users",
        "distinct end users with at least one run on some day of the window",
    ),
    Formula("dau", "DAU", "DAU(d) = distinct end users with at least one run on day d"),
    Formula(
        "wau",
        "WAU",
        "WAU(d) = distinct end users with at least one run on days d−6 … d (trailing 7 days)",
    ),
    Formula(
        "mau",
        "MAU",
        "MAU(d) = distinct end users with at least one run on days d−29 … d (trailing 30 days)",
    ),
    Formula("avg_dau", "Average DAU", "Σ DAU(d) over the window's days ÷ number of days"),
    Formula(
        "stickiness",
        "Stickiness",
        "average DAU over the window ÷ MAU(to); per day in a series: DAU(d) ÷ MAU(d)",
        "ratio",
    ),
    Formula(
        "new_users",
        "New users",
        "end users whose first run ever (in this app, or any app of the workspace) falls in "
        "the window; per day: first run on day d",
    ),
    Formula(
        "returning_users",
        "Returning users",
        "active users − new users: active in the window, first seen before it; "
        "per day: DAU(d) − new users(d)",
    ),
    Formula(
        "churn",
        "Churn",
        "users active in the previous period of equal length (from−L … from−1) and not "
        "active in the window ÷ users active in the previous period",
        "ratio",
    ),
    Formula("runs", "Runs", "app runs started in the window (succeeded or failed)"),
    Formula("failed_runs", "Failed runs", "runs that ended in run_failed"),
    Formula("error_rate", "Error rate", "failed runs ÷ runs", "ratio"),
    Formula("messages", "Messages", "answers given: runs that succeeded"),
    Formula("conversations", "New conversations", "chat conversations started in the window"),
    Formula(
        "sessions",
        "Sessions",
        "distinct conversations with at least one run in the window",
    ),
    Formula(
        "messages_per_session",
        "Messages per session",
        "answers given in conversations ÷ sessions",
        "ratio",
    ),
    Formula("likes", "Likes", "answers whose latest rating is like, rated in the window"),
    Formula("dislikes", "Dislikes", "answers whose latest rating is dislike, rated in the window"),
    Formula(
        "comments", "Comments", "answers with a comment, last rated or commented in the window"
    ),
    Formula(
        "satisfaction",
        "Satisfaction",
        "1,000 × likes ÷ messages (likes per 1,000 answers)",
        "per 1,000 messages",
    ),
    Formula("input_tokens", "Input tokens", "Σ prompt tokens of the window's runs", "tokens"),
    Formula("output_tokens", "Output tokens", "Σ completion tokens of the window's runs", "tokens"),
    Formula(
        "cost",
        "Cost",
        "Σ run cost; a run's cost = Σ over its models ⌈(input tokens × input price + output "
        "tokens × output price) ÷ 1,000,000⌉ at the gateway's prices per million tokens "
        "(models without a price cost 0)",
        "micro-yuan",
    ),
    Formula("cost_per_user", "Cost per user", "cost ÷ active users", "micro-yuan"),
    Formula(
        "cost_per_conversation",
        "Cost per conversation",
        "cost of runs in conversations ÷ sessions",
        "micro-yuan",
    ),
    Formula(
        "latency_p50",
        "Latency p50",
        "nearest-rank median of succeeded runs' latency: the upper edge of the 2%-wide log "
        "bucket holding the ⌈0.5·n⌉-th smallest value (at most 2% above the exact value)",
        "ms",
    ),
    Formula(
        "latency_p95",
        "Latency p95",
        "nearest-rank 95th percentile of succeeded runs' latency: the upper edge of the "
        "2%-wide log bucket holding the ⌈0.95·n⌉-th smallest value",
        "ms",
    ),
    Formula(
        "ttft_p50",
        "Time to first token p50",
        "as latency p50, over the time from run start to the first streamed text or answer",
        "ms",
    ),
    Formula(
        "ttft_p95",
        "Time to first token p95",
        "as latency p95, over the time from run start to the first streamed text or answer",
        "ms",
    ),
    Formula(
        "retention_classic",
        "N-day retention (classic)",
        "cohort c = users whose first run was on day c; retention(c, N) = users of c active "
        "exactly on day c+N ÷ users of c; empty when c+N is after `to`",
        "ratio",
    ),
    Formula(
        "retention_unbounded",
        "N-day retention (unbounded)",
        "users of cohort c active on day c+N or any later day up to `to` ÷ users of c",
        "ratio",
    ),
    Formula(
        "retention_classic_week",
        "N-week retention (classic)",
        "cohort w = users whose first run was in week w (Monday to Sunday); retention(w, N) "
        "= users of w active on some day of week w+N ÷ users of w; empty when week w+N "
        "starts after `to` (the current week counts as far as it has gone)",
        "ratio",
    ),
    Formula(
        "retention_unbounded_week",
        "N-week retention (unbounded)",
        "users of cohort w active in week w+N or any later week up to `to` ÷ users of w",
        "ratio",
    ),
)

FORMULAS: dict[str, Formula] = {f.name: f for f in _ALL}


def formula(name: str) -> str:
    """The formula text of metric ``name``."""
    return FORMULAS[name].formula


__all__ = ["FORMULAS", "Formula", "formula"]
