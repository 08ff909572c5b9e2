"""The real huggingface_hub client reads and writes discussions on a real danlu server."""

from __future__ import annotations

import pytest
from huggingface_hub import HfApi
from huggingface_hub.community import (
    DiscussionComment,
    DiscussionStatusChange,
    DiscussionTitleChange,
)
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.community.hostile import HOSTILE, assert_inert
from tests.community.support import POSTS_PER_MINUTE, People, client
from tests.support.server import RunningServer


def _api(server: RunningServer, key: str | bool) -> HfApi:
    return HfApi(endpoint=server.url, token=key)


def test_the_client_opens_comments_edits_renames_closes_and_hides(
    community_server: RunningServer, people: People
) -> None:
    alice = _api(community_server, people.user("hf-alice"))
    bob = _api(community_server, people.user("hf-bob"))
    alice.create_repo("hf-alice/chatty")

    opened = bob.create_discussion(
        "hf-alice/chatty", "Does it speak Chinese?", description="Hi @hf-alice, **does** it?"
    )
    assert (opened.num, opened.author, opened.status, opened.is_pull_request) == (
        1,
        "hf-bob",
        "open",
        False,
    )
    assert opened.repo_id == "hf-alice/chatty" and opened.repo_type == "model"
    first = opened.events[0]
    assert isinstance(first, DiscussionComment)
    assert first.content == "Hi @hf-alice, **does** it?"
    assert "<strong>does</strong>" in first.rendered
    assert 'href="/users/hf-alice"' in first.rendered
    assert first._event["author"]["roles"] == ["author"]

    answer = alice.comment_discussion("hf-alice/chatty", 1, "Yes, a little. <script>x()</script>")
    assert isinstance(answer, DiscussionComment) and answer.author == "hf-alice"
    assert "<script" not in answer.rendered and "&lt;script&gt;" in answer.rendered
    assert answer._event["author"]["roles"] == ["maintainer"]

    edited = bob.edit_discussion_comment("hf-alice/chatty", 1, first.id, "Does it speak 中文?")
    assert edited.edited and edited.content == "Does it speak 中文?"
    assert [h["raw"] for h in edited.edit_history] == [
        "Does it speak 中文?",
        "Hi @hf-alice, **does** it?",
    ]
    assert edited.last_edited_by == "hf-bob"
    with pytest.raises(HfHubHTTPError) as not_yours:
        alice.edit_discussion_comment("hf-alice/chatty", 1, first.id, "rewritten")
    assert not_yours.value.response.status_code == 403

    renamed = alice.rename_discussion("hf-alice/chatty", 1, "Chinese support")
    assert isinstance(renamed, DiscussionTitleChange)
    assert (renamed.old_title, renamed.new_title) == ("Does it speak Chinese?", "Chinese support")

    closed = bob.change_discussion_status("hf-alice/chatty", 1, "closed", comment="Thanks!")
    assert isinstance(closed, DiscussionStatusChange) and closed.new_status == "closed"
    assert [d.num for d in alice.get_repo_discussions("hf-alice/chatty")] == [1]
    assert not list(alice.get_repo_discussions("hf-alice/chatty", discussion_status="open"))
    assert [d.title for d in bob.get_repo_discussions("hf-alice/chatty", author="hf-bob")] == [
        "Chinese support"
    ]
    assert not list(bob.get_repo_discussions("hf-alice/chatty", discussion_type="pull_request"))

    reopened = alice.change_discussion_status("hf-alice/chatty", 1, "open")
    assert reopened.new_status == "open" and reopened.author == "hf-alice"

    details = alice.get_discussion_details("hf-alice/chatty", 1)
    assert details.status == "open" and details.title == "Chinese support"
    assert [e.type for e in details.events] == [
        "comment",
        "comment",
        "title-change",
        "comment",
        "status-change",
        "status-change",
    ]
    thanks = details.events[3]
    assert isinstance(thanks, DiscussionComment) and thanks.content == "Thanks!"

    with pytest.warns(UserWarning, match="irreversible"):
        hidden = alice.hide_discussion_comment("hf-alice/chatty", 1, thanks.id)
    assert hidden.hidden and hidden.content == "" and hidden.rendered == ""
    shown = bob.get_discussion_details("hf-alice/chatty", 1).events[3]
    assert isinstance(shown, DiscussionComment) and shown.hidden and shown.content == ""

    with pytest.raises(HfHubHTTPError) as no_prs:
        bob.create_pull_request("hf-alice/chatty", "A pull request")
    assert no_prs.value.response.status_code == 422


def test_datasets_and_spaces_have_discussions_too(
    community_server: RunningServer, people: People
) -> None:
    carol = _api(community_server, people.user("hf-carol"))
    for repo_type in ("dataset", "space"):
        sdk = {"space_sdk": "static"} if repo_type == "space" else {}
        carol.create_repo(f"hf-carol/{repo_type}-one", repo_type=repo_type, **sdk)
        made = carol.create_discussion(f"hf-carol/{repo_type}-one", "Hello", repo_type=repo_type)
        assert made.repo_type == repo_type and made.num == 1
        listed = list(carol.get_repo_discussions(f"hf-carol/{repo_type}-one", repo_type=repo_type))
        assert [d.title for d in listed] == ["Hello"]
        assert listed[0].url.endswith(f"/{repo_type}s/hf-carol/{repo_type}-one/discussions/1")


def test_private_repos_discussions_are_invisible_to_others(
    community_server: RunningServer, people: People
) -> None:
    owner_key = people.user("hf-dana")
    outsider_key = people.user("hf-eve")
    owner, outsider = _api(community_server, owner_key), _api(community_server, outsider_key)
    owner.create_repo("hf-dana/secret", private=True)
    owner.create_discussion(
        "hf-dana/secret", "Internal plans", description="@hf-eve should never see this"
    )

    for api in (outsider, _api(community_server, False)):
        with pytest.raises(RepositoryNotFoundError):
            list(api.get_repo_discussions("hf-dana/secret"))
        with pytest.raises(RepositoryNotFoundError):
            api.get_discussion_details("hf-dana/secret", 1)
    with pytest.raises(RepositoryNotFoundError):
        outsider.comment_discussion("hf-dana/secret", 1, "let me in")
    with pytest.raises(RepositoryNotFoundError):
        outsider.create_discussion("hf-dana/secret", "Hello there")

    # Mentioning an outsider in a private repo does not tell them anything.
    with client(community_server, outsider_key) as http:
        assert http.get("/v1/notifications").json()["data"] == []


def test_pages_of_fifty_like_the_hub(community_server: RunningServer) -> None:
    admin = _api(community_server, community_server.admin_key)
    admin.create_repo("admin/busy")
    with client(community_server, community_server.admin_key) as http:
        for n in range(55):  # site admins are not rate limited
            made = http.post(
                "/api/models/admin/busy/discussions",
                json={"title": f"question {n}", "description": "?"},
            )
            assert made.status_code == 200, made.text
        first_page = http.get("/api/models/admin/busy/discussions").json()
    assert (first_page["count"], first_page["start"], len(first_page["discussions"])) == (55, 0, 50)
    nums = [d.num for d in admin.get_repo_discussions("admin/busy")]
    assert nums == list(range(55, 0, -1))


def test_posting_too_fast_gets_429_saying_when_to_retry(
    community_server: RunningServer, people: People
) -> None:
    key = people.user("hf-fast")
    api = _api(community_server, key)
    api.create_repo("hf-fast/noisy")
    api.create_discussion("hf-fast/noisy", "First")  # one post
    for n in range(POSTS_PER_MINUTE - 1):
        api.comment_discussion("hf-fast/noisy", 1, f"comment {n}")
    with pytest.raises(HfHubHTTPError) as limited:
        api.comment_discussion("hf-fast/noisy", 1, "one too many")
    response = limited.value.response
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert "posting too fast" in response.headers["X-Error-Message"]
    assert "retry in" in response.json()["error"]
    # Reading is not limited, and the refused comment was not stored.
    details = api.get_discussion_details("hf-fast/noisy", 1)
    assert len(details.events) == POSTS_PER_MINUTE


def test_hostile_comments_come_back_inert(community_server: RunningServer) -> None:
    admin = _api(community_server, community_server.admin_key)
    admin.create_repo("admin/hostile")
    made = admin.create_discussion("admin/hostile", "XSS", description="\n\n".join(HOSTILE))
    comment = made.events[0]
    assert isinstance(comment, DiscussionComment)
    assert comment.content == "\n\n".join(HOSTILE)  # what was written, as text
    assert_inert(comment.rendered)
    assert "&lt;script&gt;" in comment.rendered
