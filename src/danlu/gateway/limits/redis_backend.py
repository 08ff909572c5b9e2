"""Limits held in Redis, shared by every server process that points at it.

One Lua script per acquire checks every limit of every scope and charges them all, or
none: Redis runs a script atomically, so processes cannot interleave between check and
charge, and admission costs one round trip. Time is Redis's own clock (``TIME`` in the
script), so the servers' clocks need not agree.

Keys, per scope (all under ``prefix``, which is a hash tag so that one script's keys
share a Redis Cluster slot):

- ``<scope>:r`` and ``<scope>:t``: hashes of bucket index -> requests / tokens (see
  :mod:`danlu.gateway.limits.base` for the window). Stale buckets are deleted when seen and
  the key expires one window after its last write, so idle scopes cost nothing.
- ``<scope>:c``: a sorted set of leases, lease id -> expiry (ms). A lease lives
  ``lease_ttl`` seconds (default 30) and the process that holds it renews all its leases in
  one round trip every ``lease_ttl / 3``; if the process dies, its slots free themselves
  within ``lease_ttl``. A lease that could not be renewed in time (Redis unreachable for
  longer than ``lease_ttl``) is not brought back, so a slot is never counted twice.

Fail closed: if Redis cannot be reached, :meth:`RedisLimiter.acquire` raises
:class:`LimitsUnavailable` (503) instead of admitting unchecked. A settle that cannot reach
Redis is logged and dropped: the lease then expires by itself and the TPM correction is
lost (estimates are usually above actual usage, so the error errs on the strict side).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from danlu.core.errors import LimitsUnavailable
from danlu.gateway.limits.base import (
    BUCKETS,
    CONCURRENCY,
    CONCURRENCY_RETRY,
    NO_PERMIT,
    RPM,
    TPM,
    WINDOW_SECONDS,
    Permit,
    Refusal,
    Scopes,
    check_request,
    check_window,
)

log = logging.getLogger(__name__)

_FAILURES = (RedisError, OSError, asyncio.TimeoutError)

# Shared head of the scripts: ``now`` in ms, from the caller (tests) or Redis's clock.
_NOW = """
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# KEYS: 3 per scope (requests, tokens, leases).
# ARGV: now|-1, bucket_ms, buckets, lease_ttl_ms, lease_id, tokens, then per scope
#       rpm, tpm, concurrency (-1: unlimited).
# Returns {1, bucket} when admitted, else the refusal that binds longest:
#       {0, scope number (1-based), kind (1 rpm, 2 tpm, 3 concurrency), wait ms (-1: never)}.
_ACQUIRE = (
    _NOW
    + """
local width = tonumber(ARGV[2])
local buckets = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local lease = ARGV[5]
local tokens = tonumber(ARGV[6])
local current = math.floor(now / width)
local oldest = current - buckets

-- ms until `cost` more fits under `limit` in the window at `key`; -2 if it fits now,
-- -1 if it never can. Buckets that left the window are deleted on the way.
local function wait(key, limit, cost)
  if cost > limit then return -1 end
  local flat = redis.call('HGETALL', key)
  local total = 0
  local seen = {}
  for i = 1, #flat, 2 do
    local index = tonumber(flat[i])
    if index < oldest then
      redis.call('HDEL', key, flat[i])
    else
      local count = tonumber(flat[i + 1])
      total = total + count
      seen[#seen + 1] = {index, count}
    end
  end
  local excess = total + cost - limit
  if excess <= 0 then return -2 end
  table.sort(seen, function(a, b) return a[1] < b[1] end)
  for _, entry in ipairs(seen) do
    excess = excess - entry[2]
    if excess <= 0 then return (entry[1] + buckets + 1) * width - now end
  end
  return width
end

local best_scope, best_kind, best_wait = 0, 0, -3
local function refuse(scope, kind, ms)
  -- keep the refusal that binds longest; "never" (-1) binds longest of all
  if best_wait == -1 then return end
  if ms == -1 or ms > best_wait then best_scope, best_kind, best_wait = scope, kind, ms end
end

local scopes = #KEYS / 3
for s = 1, scopes do
  local base = 6 + (s - 1) * 3
  local rpm, tpm, concurrency = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2]),
    tonumber(ARGV[base + 3])
  if rpm >= 0 then
    local ms = wait(KEYS[s * 3 - 2], rpm, 1)
    if ms ~= -2 then refuse(s, 1, ms) end
  end
  if tpm >= 0 then
    local ms = wait(KEYS[s * 3 - 1], tpm, tokens)
    if ms ~= -2 then refuse(s, 2, ms) end
  end
  if concurrency >= 0 then
    local key = KEYS[s * 3]
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    if redis.call('ZCARD', key) >= concurrency then
      refuse(s, 3, concurrency == 0 and -1 or tonumber(ARGV[7 + scopes * 3]))
    end
  end
end
if best_kind ~= 0 then return {0, best_scope, best_kind, best_wait} end

local keep = (buckets + 2) * width
for s = 1, scopes do
  local base = 6 + (s - 1) * 3
  if tonumber(ARGV[base + 1]) >= 0 then
    redis.call('HINCRBY', KEYS[s * 3 - 2], current, 1)
    redis.call('PEXPIRE', KEYS[s * 3 - 2], keep)
  end
  if tonumber(ARGV[base + 2]) >= 0 and tokens > 0 then
    redis.call('HINCRBY', KEYS[s * 3 - 1], current, tokens)
    redis.call('PEXPIRE', KEYS[s * 3 - 1], keep)
  end
  if tonumber(ARGV[base + 3]) >= 0 then
    redis.call('ZADD', KEYS[s * 3], now + ttl, lease)
    redis.call('PEXPIRE', KEYS[s * 3], ttl)
  end
end
return {1, current}
"""
)

# KEYS: the token windows to correct, then the lease sets to leave.
# ARGV: now|-1, bucket_ms, buckets, admission bucket, delta, number of token keys, lease id.
_SETTLE = (
    _NOW
    + """
local width = tonumber(ARGV[2])
local buckets = tonumber(ARGV[3])
local admitted = tonumber(ARGV[4])
local delta = tonumber(ARGV[5])
local windows = tonumber(ARGV[6])
local current = math.floor(now / width)
for i = 1, windows do
  local key = KEYS[i]
  if admitted >= current - buckets then
    if redis.call('HINCRBY', key, admitted, delta) <= 0 then redis.call('HDEL', key, admitted) end
  elseif delta > 0 then
    redis.call('HINCRBY', key, current, delta)
  end
  redis.call('PEXPIRE', key, (buckets + 2) * width)
end
for i = windows + 1, #KEYS do redis.call('ZREM', KEYS[i], ARGV[7]) end
return 1
"""
)

# KEYS: lease sets; ARGV: now|-1, lease_ttl_ms, then the lease id for each key.
_RENEW = (
    _NOW
    + """
local ttl = tonumber(ARGV[2])
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', now + ttl, ARGV[i + 2])
  redis.call('PEXPIRE', KEYS[i], ttl)
end
return 1
"""
)

_KINDS = {1: RPM, 2: TPM, 3: CONCURRENCY}


class RedisLimiter:
    """A :class:`~danlu.gateway.limits.Limiter` shared through Redis (``redis://...``).

    ``prefix`` separates deployments (and tests) sharing one Redis. ``clock`` (seconds) and
    ``window`` are for tests: without ``clock`` the scripts read Redis's clock. ``timeout``
    bounds every round trip (and the wait for a pooled connection), so an unreachable Redis
    fails requests fast.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "{danlu-limits}:",
        window: float = WINDOW_SECONDS,
        lease_ttl: float = 30.0,
        timeout: float = 1.0,
        max_connections: int = 32,
        clock: Callable[[], float] | None = None,
    ):
        check_window(window)
        if round(window * 1000) % BUCKETS:
            raise ValueError(f"window must be a multiple of {BUCKETS} ms, got {window} s")
        if lease_ttl <= 0:
            raise ValueError(f"lease_ttl must be positive, got {lease_ttl}")
        # One retry, at once, on a connection error: it replaces a pooled connection that a
        # Redis restart broke. No retry on timeouts: the script may have run.
        retry = Retry(NoBackoff(), 1, (RedisConnectionError,))
        # A blocking pool: past ``max_connections`` acquires wait (up to ``timeout``) for a
        # connection instead of failing; each holds one for a single short script call.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=retry,
        )
        self._redis = aioredis.Redis.from_pool(pool)
        kwargs = pool.connection_kwargs
        self._where = f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
        self._prefix = prefix
        self._window = window
        self._width_ms = round(window * 1000) // BUCKETS
        self._lease_ttl = lease_ttl
        self._clock = clock
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._settle_script = self._redis.register_script(_SETTLE)
        self._renew = self._redis.register_script(_RENEW)
        # Leases this process holds: lease id -> its lease-set keys (renewed together).
        self._held: dict[str, list[str]] = {}
        self._renewer: asyncio.Task[None] | None = None

    def _now(self) -> int:
        return -1 if self._clock is None else round(self._clock() * 1000)

    async def acquire(self, scopes: Scopes, tokens: int) -> Permit:
        check_request(scopes, tokens)
        limited = [(name, policy) for name, policy in scopes if not policy.unlimited]
        if not limited:
            return NO_PERMIT
        keys: list[str] = []
        args: list[int | str] = [
            self._now(),
            self._width_ms,
            BUCKETS,
            round(self._lease_ttl * 1000),
            "",
            tokens,
        ]
        token_keys: list[str] = []
        lease_keys: list[str] = []
        for name, policy in limited:
            base = f"{self._prefix}{name}:"
            keys += (base + "r", base + "t", base + "c")
            for value in (policy.rpm, policy.tpm, policy.concurrency):
                args.append(-1 if value is None else value)
            if policy.tpm is not None:
                token_keys.append(base + "t")
            if policy.concurrency is not None:
                lease_keys.append(base + "c")
        lease = uuid.uuid4().hex if lease_keys else ""
        args[4] = lease
        args.append(round(CONCURRENCY_RETRY * 1000))
        try:
            reply = await self._acquire(keys=keys, args=args)
        except _FAILURES as exc:
            raise self._unavailable(exc) from exc
        if reply[0] != 1:
            _, scope, kind, wait_ms = (int(part) for part in reply)
            name, policy = limited[scope - 1]
            limit = {1: policy.rpm, 2: policy.tpm, 3: policy.concurrency}[kind]
            wait = None if wait_ms == -1 else wait_ms / 1000
            assert limit is not None  # the script only refuses limits it was given
            raise Refusal(name, _KINDS[kind], limit, wait, tokens).error(self._window)
        if lease:
            self._hold(lease, lease_keys)
        return _RedisPermit(self, int(reply[1]), tokens, token_keys, lease, lease_keys)

    def _unavailable(self, exc: BaseException) -> LimitsUnavailable:
        return LimitsUnavailable(
            f"rate limits cannot be checked: Redis at {self._where} is unreachable or failing "
            f"({exc}); requests are refused until it is back (see DANLU_REDIS_URL)"
        )

    async def _settle(
        self, bucket: int, delta: int, token_keys: list[str], lease: str, lease_keys: list[str]
    ) -> None:
        if lease:
            self._held.pop(lease, None)
        if not lease_keys and not (token_keys and delta):
            return
        windows = token_keys if delta else []
        args: list[int | str] = [
            self._now(),
            self._width_ms,
            BUCKETS,
            bucket,
            delta,
            len(windows),
            lease,
        ]
        try:
            await self._settle_script(keys=windows + lease_keys, args=args)
        except _FAILURES as exc:
            log.warning("could not settle a rate-limit permit in Redis at %s: %s", self._where, exc)

    def _hold(self, lease: str, keys: list[str]) -> None:
        self._held[lease] = keys
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_while_held())

    async def _renew_while_held(self) -> None:
        """Renew every held lease each ``lease_ttl / 3``; ends when none is held."""
        while self._held:
            await asyncio.sleep(self._lease_ttl / 3)
            keys: list[str] = []
            leases: list[str] = []
            for lease, lease_keys in self._held.items():
                keys += lease_keys
                leases += [lease] * len(lease_keys)
            if not keys:
                break
            try:
                ttl_ms = round(self._lease_ttl * 1000)
                await self._renew(keys=keys, args=[self._now(), ttl_ms, *leases])
            except _FAILURES as exc:
                log.warning("could not renew rate-limit leases at %s: %s", self._where, exc)

    async def aclose(self) -> None:
        """Stop renewing (held leases then expire) and close the connections."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        self._held.clear()
        await self._redis.aclose()

    async def ping(self) -> None:
        """Raise :class:`LimitsUnavailable` unless Redis answers (for health checks)."""
        try:
            await self._redis.ping()
        except _FAILURES as exc:
            raise self._unavailable(exc) from exc


class _RedisPermit:
    __slots__ = ("_bucket", "_estimate", "_lease", "_lease_keys", "_limiter", "_token_keys")

    def __init__(
        self,
        limiter: RedisLimiter,
        bucket: int,
        estimate: int,
        token_keys: list[str],
        lease: str,
        lease_keys: list[str],
    ):
        self._limiter: RedisLimiter | None = limiter
        self._bucket = bucket
        self._estimate = estimate
        self._token_keys = token_keys
        self._lease = lease
        self._lease_keys = lease_keys

    async def settle(self, actual_tokens: int) -> None:
        limiter, self._limiter = self._limiter, None
        if limiter is None:
            return
        delta = max(actual_tokens, 0) - self._estimate
        await limiter._settle(self._bucket, delta, self._token_keys, self._lease, self._lease_keys)
