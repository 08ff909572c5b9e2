"""Question-answer chunking: a chat model turns each passage into the questions it answers.

Users ask questions, so matching a question against generated questions often
beats matching it against prose. Each pair becomes a chunk whose question is
embedded and whose answer is what retrieval returns. A passage for which the
model writes no usable pair is kept as a plain passage, so no text is lost.
"""

from __future__ import annotations

import re

from danlu.gateway.provider import CallContext, ChatModel
from danlu.gateway.schemas import ChatCompletionRequest

MAX_PAIRS = 5
PROMPT = """Read the passage and write up to {n} question-answer pairs that it answers.
Write them in the passage's language. Each answer must come from the passage.
Use exactly this format, nothing else:
Q: <question>
A: <answer>

Passage:
{passage}"""

_PAIR = re.compile(
    r"^\s*(?:Q|问|问题)\s*[:：]\s*(?P<q>.+?)\s*\n\s*(?:A|答|答案)\s*[:：]\s*(?P<a>.+?)\s*"
    r"(?=^\s*(?:Q|问|问题)\s*[:：]|\Z)",
    re.MULTILINE | re.DOTALL,
)


def parse_pairs(reply: str) -> list[tuple[str, str]]:
    """The (question, answer) pairs in a model's reply, in order; malformed ones skipped."""
    pairs = []
    for match in _PAIR.finditer(reply):
        question, answer = match["q"].strip(), " ".join(match["a"].split())
        if question and answer:
            pairs.append((question, answer))
    return pairs[:MAX_PAIRS]


async def generate_pairs(model: ChatModel, passage: str, owner: str) -> list[tuple[str, str]]:
    request = ChatCompletionRequest.model_validate(
        {
            "model": model.id,
            "messages": [{"role": "user", "content": PROMPT.format(n=MAX_PAIRS, passage=passage)}],
            "temperature": 0,
            "max_tokens": 600,
        }
    )
    reply = await model.chat(request, CallContext(owner=owner))
    content = reply["choices"][0]["message"].get("content") or ""
    return parse_pairs(content)
