"""Discussions over HTTP: the Hugging Face Hub protocol on repos, and the same on apps.

Repos: ``/api/{models|datasets|spaces}/{namespace}/{name}/discussions…``, exactly as the
``huggingface_hub`` client calls it (``get_repo_discussions``, ``create_discussion``,
``get_discussion_details``, ``comment_discussion``, ``change_discussion_status``,
``rename_discussion``, ``edit_discussion_comment``, ``hide_discussion_comment``). Apps: the
same routes and JSON under ``/v1/apps/{app}/discussions``. danlu adds replies (``parent`` on a
comment), pinning (``…/{num}/pin``), edit history and each author's roles.
"""

# No ``from __future__ import annotations`` here: the routes are defined inside a function,
# and FastAPI must see their dependency annotations as objects, not as names to look up.

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from danlu.api.auth import require
from danlu.api.hub_common import Caller, Writer, repo_type_from_plural
from danlu.community.discussions import PAGE_SIZE, DiscussionPage, DiscussionView, EventView, Person
from danlu.community.service import Community
from danlu.community.targets import Target, app_target, repo_target
from danlu.core.errors import InvalidRequest, Unsupported
from danlu.core.keys import Principal

router = APIRouter(tags=["Community (discussions)"])


def get_community(request: Request) -> Community:
    community: Community = request.app.state.community
    return community


CommunityDep = Annotated[Community, Depends(get_community)]


def _iso(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


def person_json(person: Person) -> dict[str, Any]:
    """A user as the Hub shows them, with danlu's roles in this discussion."""
    return {
        "name": person.name,
        "fullname": person.fullname,
        "avatarUrl": "",
        "type": "user",
        "isPro": False,
        "isHf": False,
        "isMod": person.is_admin,
        "isOwner": "maintainer" in person.roles,
        "roles": list(person.roles),
    }


def event_json(event: EventView) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": event.id,
        "type": event.type,
        "createdAt": _iso(event.created_at),
        "author": person_json(event.author),
    }
    if event.type != "comment":
        item["data"] = event.data
        return item
    history = [
        {"raw": r.raw, "html": r.html, "updatedAt": _iso(r.at), "author": {"name": r.author}}
        for r in event.history
    ]
    item["parent"] = event.parent_id
    item["data"] = {
        "edited": event.edited,
        "hidden": event.hidden,
        "hiddenBy": event.hidden_by,
        "latest": {
            "raw": event.raw,
            "html": event.html,
            "updatedAt": _iso(event.updated_at),
            "author": person_json(event.edited_by or event.author),
        },
        "numEdits": max(len(history) - 1, 0),
        "editors": sorted({r.author for r in event.history}),
        "history": history,
        "reactions": [],
        "isReport": False,
    }
    return item


def discussion_json(view: DiscussionView) -> dict[str, Any]:
    target = view.target
    return {
        "num": view.num,
        "title": view.title,
        "status": view.status,
        "pinned": view.pinned,
        "isPullRequest": False,
        "createdAt": _iso(view.created_at),
        "updatedAt": _iso(view.updated_at),
        "author": person_json(view.author),
        "repo": {"name": target.name, "type": target.kind},
        "repoOwner": {"name": target.workspace, "type": "org", "isParticipating": False},
        "numComments": view.num_comments,
        "topReactions": [],
        "numReactionUsers": 0,
    }


def details_json(view: DiscussionView) -> dict[str, Any]:
    return {
        **discussion_json(view),
        "events": [event_json(e) for e in view.events],
        "locked": False,
        "changes": {},
        "filesWithConflicts": [],
    }


def page_json(page: DiscussionPage) -> dict[str, Any]:
    return {
        "discussions": [discussion_json(d) for d in page.items],
        "count": page.total,
        "start": page.start,
        "numClosedDiscussions": page.closed,
    }


def _string(body: dict[str, Any] | None, key: str, *, required: bool = True) -> str | None:
    value = (body or {}).get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{key!r} is required and must be a string", param=key)
    return value


# --- who the discussion is about ---------------------------------------------------------


async def _repo(
    plural: str, namespace: str, name: str, principal: Caller, community: CommunityDep
) -> Target:
    repo_type = repo_type_from_plural(plural)
    return await run_in_threadpool(
        repo_target, community.repos, principal, repo_type, f"{namespace}/{name}"
    )


async def _app(app_ref: str, principal: Caller, community: CommunityDep) -> Target:
    def find() -> Target:
        with community.db.read() as session:
            return app_target(session, principal, app_ref)

    return await run_in_threadpool(find)


def _routes(
    prefix: str,
    resolve: Callable[..., Awaitable[Target]],
    poster: Callable[..., Awaitable[Principal]] | Callable[..., Principal],
) -> APIRouter:
    """The discussion routes of one kind of target (repos or apps), all alike."""
    routes = APIRouter()
    TargetDep = Annotated[Target, Depends(resolve)]
    Poster = Annotated[Principal, Depends(poster)]

    @routes.get(prefix, summary="List discussions (50 a page: ?p=0,1,…)")
    async def list_discussions(
        target: TargetDep,
        community: CommunityDep,
        p: int = Query(0, ge=0),
        status: str | None = None,
        type: str | None = None,
        author: str | None = None,
        search: str | None = None,
    ) -> dict[str, Any]:
        if type == "pull_request":
            return page_json(DiscussionPage([], 0, p * PAGE_SIZE, 0))
        page = await run_in_threadpool(
            lambda: community.discussions.listing(
                target, status=status, author=author, search=search, page=p
            )
        )
        return page_json(page)

    @routes.post(prefix, summary="Open a discussion (its description is the first comment)")
    async def create_discussion(
        target: TargetDep,
        principal: Poster,
        community: CommunityDep,
        body: Annotated[dict[str, Any], Body()],
    ) -> dict[str, Any]:
        if body.get("pullRequest"):
            raise Unsupported(
                "danlu has no pull requests yet; open a discussion, or push to a branch",
                param="pullRequest",
            )
        title = _string(body, "title") or ""
        description = _string(body, "description", required=False) or ""
        await community.posting.check(principal)
        view = await run_in_threadpool(
            community.discussions.create, principal, target, title, description
        )
        return {"num": view.num, "pullRequest": False, **details_json(view)}

    @routes.get(prefix + "/{num}", summary="A discussion with all its events")
    async def discussion_details(
        num: int, target: TargetDep, community: CommunityDep
    ) -> dict[str, Any]:
        return details_json(await run_in_threadpool(community.discussions.get, target, num))

    @routes.post(prefix + "/{num}/comment", summary="Comment (a reply with 'parent')")
    async def comment(
        num: int,
        target: TargetDep,
        principal: Poster,
        community: CommunityDep,
        body: Annotated[dict[str, Any], Body()],
    ) -> dict[str, Any]:
        text = _string(body, "comment") or ""
        parent = _string(body, "parent", required=False)
        await community.posting.check(principal)
        event = await run_in_threadpool(
            lambda: community.discussions.comment(principal, target, num, text, parent_id=parent)
        )
        return {"newMessage": event_json(event)}

    @routes.post(prefix + "/{num}/status", summary="Close or reopen")
    async def change_status(
        num: int,
        target: TargetDep,
        principal: Poster,
        community: CommunityDep,
        body: Annotated[dict[str, Any], Body()],
    ) -> dict[str, Any]:
        status = _string(body, "status") or ""
        text = _string(body, "comment", required=False)
        if text:
            await community.posting.check(principal)
        event = await run_in_threadpool(
            community.discussions.set_status, principal, target, num, status, text
        )
        return {"newStatus": event_json(event)}

    @routes.post(prefix + "/{num}/title", summary="Rename")
    async def rename(
        num: int,
        target: TargetDep,
        principal: Poster,
        community: CommunityDep,
        body: Annotated[dict[str, Any], Body()],
    ) -> dict[str, Any]:
        title = _string(body, "title") or ""
        event = await run_in_threadpool(community.discussions.rename, principal, target, num, title)
        return {"newTitle": event_json(event)}

    @routes.post(prefix + "/{num}/comment/{comment_id}/edit", summary="Edit your comment")
    async def edit_comment(
        num: int,
        comment_id: str,
        target: TargetDep,
        principal: Poster,
        community: CommunityDep,
        body: Annotated[dict[str, Any], Body()],
    ) -> dict[str, Any]:
        content = _string(body, "content") or ""
        await community.posting.check(principal)
        event = await run_in_threadpool(
            community.discussions.edit_comment, principal, target, num, comment_id, content
        )
        return {"updatedComment": event_json(event)}

    @routes.post(prefix + "/{num}/comment/{comment_id}/hide", summary="Hide a comment")
    async def hide_comment(
        num: int,
        comment_id: str,
        target: TargetDep,
        principal: Poster,
        community: CommunityDep,
        body: Annotated[dict[str, Any] | None, Body()] = None,
    ) -> dict[str, Any]:
        reason = _string(body, "reason", required=False)
        event = await run_in_threadpool(
            community.discussions.hide_comment, principal, target, num, comment_id, reason
        )
        return {"updatedComment": event_json(event)}

    @routes.post(prefix + "/{num}/pin", summary="Pin or unpin (maintainers)")
    async def pin(
        num: int,
        target: TargetDep,
        principal: Poster,
        community: CommunityDep,
        body: Annotated[dict[str, Any] | None, Body()] = None,
    ) -> dict[str, Any]:
        pinned = (body or {}).get("pinned", True)
        if not isinstance(pinned, bool):
            raise InvalidRequest("'pinned' is true or false", param="pinned")
        view = await run_in_threadpool(community.discussions.pin, principal, target, num, pinned)
        return details_json(view)

    @routes.post(prefix + "/{num}/merge", summary="Merge a pull request (not supported)")
    async def merge(num: int, target: TargetDep) -> dict[str, Any]:
        raise Unsupported("danlu has no pull requests yet; there is nothing to merge")

    return routes


def _hub_poster(principal: Writer) -> Principal:
    """Hub clients send HF_TOKEN; a missing one gets the hub's advice."""
    return principal


router.include_router(_routes("/api/{plural}/{namespace}/{name}/discussions", _repo, _hub_poster))
router.include_router(_routes("/v1/apps/{app_ref}/discussions", _app, require(None)))
