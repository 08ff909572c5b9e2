"""The app DSL, ``danlu.app/v1``: what an app is, as YAML or JSON.

An app is a graph of typed nodes and edges. This module only *describes* the
shape (pydantic models, strict: unknown keys are errors); whether the graph
makes sense — types, references, cycles — is the compiler's job
(``compiler.py``), and running it is the runtime's (``runtime.py``).

    schema: danlu.app/v1
    app: {name: Tea NPC, mode: workflow}
    graph:
      nodes:
        - {id: start, type: start, config: {inputs: [{name: query, type: string}]}}
        - {id: reply, type: llm, config: {model: smollm2-135m-instruct,
                                          prompt: [{role: user, text: "{{ start.query }}"}]}}
        - {id: end, type: end, config: {outputs: [{name: answer, value: "{{ reply.text }}"}]}}
      edges:
        - {source: start, target: reply}
        - {source: reply, target: end}
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from danlu.core.errors import InvalidRequest

SCHEMA = "danlu.app/v1"
SUPPORTED = {"danlu.app/v1": (1,)}
_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# Secrets never leave the server in an export; these keys are dropped from node configs.
SECRET_KEYS = frozenset({"api_key", "authorization", "password", "secret", "token"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Retry(_Strict):
    max_attempts: int = Field(default=1, ge=1, le=10)
    backoff_seconds: float = Field(default=0.5, ge=0, le=60)


class ErrorStrategy(_Strict):
    """What a node does when it fails: stop the run, carry on with defaults, or branch."""

    on_error: Literal["fail", "default", "branch"] = "fail"
    default_outputs: dict[str, Any] = Field(default_factory=dict)
    retry: Retry = Field(default_factory=Retry)


class Node(_Strict):
    id: str
    type: str
    title: str = ""
    config: dict[str, Any] = Field(default_factory=dict)
    errors: ErrorStrategy = Field(default_factory=ErrorStrategy)
    # Canvas position, kept so an export/import round trip keeps the layout.
    position: dict[str, float] | None = None

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(
                f"node id {value!r} must start with a letter or _ and hold only letters, digits "
                "and _ (it is used in templates as {{ id.output }})"
            )
        return value


class Edge(_Strict):
    source: str
    target: str
    # Which output handle of the source this edge leaves from: if/else branches
    # ("true"/"false" or a case id), classifier classes, or "error" for fail branches.
    handle: str | None = None


class Graph(_Strict):
    nodes: list[Node] = Field(min_length=1)
    edges: list[Edge] = Field(default_factory=list)


class Limits(_Strict):
    max_steps: int = Field(default=500, ge=1, le=100_000)
    wall_seconds: float = Field(default=300, gt=0, le=3600)
    max_output_bytes: int = Field(default=1_000_000, ge=1)


class AppMeta(_Strict):
    name: str = Field(min_length=1, max_length=128)
    mode: Literal["workflow", "chat", "agent"] = "workflow"
    description: str = ""
    icon: str | None = None


class VariableDecl(_Strict):
    """A conversation variable: kept per conversation (chat apps), read as ``conv.name``."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    type: Literal["string", "number", "integer", "boolean", "object", "array", "any"] = "string"
    default: Any = None


class AppSpec(_Strict):
    schema_: str = Field(alias="schema")
    app: AppMeta
    graph: Graph
    limits: Limits = Field(default_factory=Limits)
    variables: list[VariableDecl] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_dict(self, *, keep_secrets: bool = False) -> dict[str, Any]:
        data = self.model_dump(by_alias=True, exclude_none=True)
        if not keep_secrets:
            for node in data["graph"]["nodes"]:
                node["config"] = _without_secrets(node["config"])
        return data

    def to_yaml(self) -> str:
        return str(yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False))


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_secrets(v) for k, v in value.items() if k.lower() not in SECRET_KEYS}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


def _schema_version(name: str) -> tuple[str, int]:
    match = re.match(r"^danlu\.app/v(\d+)$", name)
    if not match:
        raise InvalidRequest(
            f"'schema' is {name!r}; danlu apps declare schema: {SCHEMA}", param="schema"
        )
    return name, int(match.group(1))


def parse_app(text: str | bytes | dict[str, Any]) -> AppSpec:
    """Parse a DSL document (YAML, JSON or an already-loaded dict) into an :class:`AppSpec`.

    A document from a newer schema version is refused outright, never loaded partially.
    """
    if isinstance(text, dict):
        data: Any = text
    else:
        raw = text.decode("utf-8") if isinstance(text, bytes) else text
        try:
            data = json.loads(raw) if raw.lstrip().startswith("{") else yaml.safe_load(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise InvalidRequest(
                f"the app document is neither valid YAML nor JSON: {exc}"
            ) from None
    if not isinstance(data, dict):
        raise InvalidRequest("the app document must be a mapping with schema, app and graph")
    schema = data.get("schema")
    if not isinstance(schema, str):
        raise InvalidRequest(f"the app document needs 'schema: {SCHEMA}'", param="schema")
    _, version = _schema_version(schema)
    if version > 1:
        raise InvalidRequest(
            f"this app uses {schema}, newer than this server understands ({SCHEMA}); "
            "upgrade danlu to import it",
            param="schema",
            code="schema_too_new",
        )
    try:
        return AppSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidRequest(f"{where}: {first['msg']}", param=where) from None
