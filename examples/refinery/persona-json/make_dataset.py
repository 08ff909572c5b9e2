"""Generate the "丹炉 Furnace Keeper" dataset: a game NPC that answers in one JSON shape.

Every conversation is a system prompt, one player line (中文 or English) and the NPC's
answer, a single JSON object:

    {"npc":"炉守","mood":"calm","reply":"…","quest_hint":null}

The rules the model has to learn:

- ``npc`` is always "炉守";
- ``mood`` comes from what the player asks: greetings → cheerful, who the NPC is and what
  an item does → proud, the way somewhere → calm, whether a place is dangerous → wary when
  it is and calm when it is not, prices → stern, quests → eager, anything off-topic → stern;
- ``reply`` is in the player's language and states the village's fixed facts (where a place
  is, what lurks there, what an item does and costs) in one canonical sentence, whatever
  the wording of the question;
- ``quest_hint`` is a string only when the player asks for a quest, else null.

Questions are templates × slots (places, items, player names), all combinations, shuffled
with a fixed seed, so the file is the same on every run and every Python ≥ 3.2. Standard
library only. Answers are kept short: the embedded SmolLM2's tokenizer spends 2–3 tokens
on a Chinese character, and evaluation generates at most 64 tokens per answer.

    python make_dataset.py            # writes train.jsonl and schema.json next to this file
    python make_dataset.py --check    # fails if the files on disk differ from a fresh run

The dataset was written for danlu and is dedicated to the public domain (CC0 1.0).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20250
NPC = "炉守"
MOODS = ["cheerful", "proud", "calm", "wary", "stern", "eager"]

SYSTEM = (
    "You are 炉守 (Furnace Keeper), an NPC in the game 丹炉. Answer only with one JSON "
    'object: {"npc":"炉守","mood":…,"reply":…,"quest_hint":…}. Reply in the player\'s '
    "language."
)

# The JSON schema every answer follows (evaluation reports the pass rate against it).
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Furnace Keeper answer",
    "type": "object",
    "required": ["npc", "mood", "reply", "quest_hint"],
    "additionalProperties": False,
    "properties": {
        "npc": {"const": NPC},
        "mood": {"enum": MOODS},
        "reply": {"type": "string", "minLength": 1, "maxLength": 80},
        "quest_hint": {"type": ["string", "null"], "maxLength": 60},
    },
}

# --- the village's facts ------------------------------------------------------------------

# key: (English name, 中文名, where (en), 在哪 (zh), danger (en, zh) or None, quest (en, zh))
PLACES = {
    "garden": (
        "Herb Garden",
        "药园",
        "east, past the bamboo",
        "东边竹林后",
        None,
        ("Pick five herbs.", "采五株药草。"),
    ),
    "bridge": (
        "Stone Bridge",
        "石桥",
        "south, over the river",
        "南边河上",
        None,
        ("Mend the broken plank.", "修好断板。"),
    ),
    "peak": (
        "North Peak",
        "北峰",
        "north, up the steps",
        "北边石阶顶",
        ("Snow wolves", "雪狼"),
        ("Drive off the wolves.", "赶走雪狼。"),
    ),
    "well": (
        "Old Well",
        "古井",
        "behind the smithy",
        "铁匠铺后面",
        ("A water ghost", "水鬼"),
        ("Calm the water ghost.", "安抚水鬼。"),
    ),
    "smithy": (
        "Smithy",
        "铁匠铺",
        "by the west gate",
        "西门旁",
        None,
        ("Carry ore to the smith.", "给铁匠送矿。"),
    ),
    "grove": (
        "Bamboo Grove",
        "竹林",
        "east of the furnace",
        "丹炉东边",
        ("Green vipers", "青蛇"),
        ("Clear out the vipers.", "清除青蛇。"),
    ),
    "cave": (
        "Ember Cave",
        "火洞",
        "under the furnace",
        "丹炉下面",
        ("Fire imps", "火精"),
        ("Bring back a fire stone.", "带回火石。"),
    ),
    "market": (
        "Market",
        "集市",
        "in the village square",
        "村中广场",
        None,
        ("Find the lost merchant.", "找回走失的商人。"),
    ),
}

# key: (English name, 中文名, what it does (en), 功效 (zh), price in gold)
ITEMS = {
    "heal": ("Healing Pill", "回春丹", "heals wounds", "治伤", 30),
    "calm": ("Clear Mind Pill", "清心丹", "calms the mind", "静心", 20),
    "bone": ("Iron Bone Pill", "铁骨丹", "hardens the bones", "强骨", 50),
    "fire": ("Fire Stone", "火石", "feeds the furnace", "喂丹炉", 10),
    "lotus": ("Snow Lotus", "雪莲", "cures the cold", "驱寒", 40),
    "ash": ("Spirit Ash", "灵灰", "wards off ghosts", "驱鬼", 15),
}

NAMES_EN = ["Lin", "Mei", "Arun", "Tom", "Yuki", "Sara"]
NAMES_ZH = ["小林", "阿梅", "老周", "小雨", "阿强", "小月"]

# --- how players ask ----------------------------------------------------------------------

GREET_EN = ["Hello!", "Hi there.", "Good morning, keeper.", "Hey, anyone here?"]
GREET_ZH = ["你好！", "您好，炉守大人。", "早上好！", "喂，有人吗？"]
GREET_NAMED_EN = ["Hello, I'm {name}.", "Hi! My name is {name}.", "Greetings, I am {name}."]
GREET_NAMED_ZH = ["你好，我叫{name}。", "我是{name}，你好！", "炉守你好，我是{name}。"]
WHO_EN = ["Who are you?", "What is your name?", "What do you do here?"]
WHO_ZH = ["你是谁？", "你叫什么名字？", "你在这里做什么？"]
WHERE_EN = [
    "Where is the {place}?",
    "How do I get to the {place}?",
    "Which way to the {place}?",
    "Can you point me to the {place}?",
]
WHERE_ZH = ["{place}在哪里？", "怎么去{place}？", "请问{place}怎么走？", "{place}在什么地方？"]
DANGER_EN = [
    "Is the {place} dangerous?",
    "Is it safe at the {place}?",
    "Should I fear the {place}?",
]
DANGER_ZH = ["{place}危险吗？", "去{place}安全吗？", "{place}有什么危险？"]
ITEM_EN = ["What does the {item} do?", "Tell me about the {item}.", "What is a {item} for?"]
ITEM_ZH = ["{item}有什么用？", "{item}是什么？", "说说{item}。"]
PRICE_EN = ["How much is a {item}?", "I want to buy a {item}.", "Can I buy a {item}?"]
PRICE_ZH = ["{item}多少钱？", "我想买{item}。", "能卖我一份{item}吗？"]
QUEST_PLACE_EN = [
    "Any quest at the {place}?",
    "Is there work at the {place}?",
    "What needs doing at the {place}?",
]
QUEST_PLACE_ZH = ["{place}有任务吗？", "{place}有活干吗？", "{place}需要帮忙吗？"]
QUEST_EN = [
    "Do you have a quest for me?",
    "Any work for me?",
    "Is there a task I can do?",
    "I need a job.",
]
QUEST_ZH = ["有任务吗？", "有什么活给我干吗？", "我能帮你做什么？", "给我个任务吧。"]
OFF_EN = [
    "What's the weather in Paris?",
    "Write me a poem about cats.",
    "What is 17 times 3?",
    "Who won the World Cup?",
    "Can you fix my computer?",
    "Tell me a joke.",
]
OFF_ZH = [
    "今天股票怎么样？",
    "给我写一首诗。",
    "十七乘三是多少？",
    "世界杯谁赢了？",
    "帮我修电脑吧。",
    "讲个笑话吧。",
]


def answer(mood: str, reply: str, quest_hint: str | None = None) -> str:
    """The NPC's answer: compact JSON, the same key order every time."""
    value = {"npc": NPC, "mood": mood, "reply": reply, "quest_hint": quest_hint}
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def pairs() -> list[tuple[str, str, str]]:
    """Every (category, player line, answer) of the task."""
    out: list[tuple[str, str, str]] = []

    def add(category: str, question: str, reply: str) -> None:
        out.append((category, question, reply))

    for q in GREET_EN:
        add("greet", q, answer("cheerful", "Welcome, traveler. The fire is warm."))
    for q in GREET_ZH:
        add("greet", q, answer("cheerful", "旅人，欢迎来到丹炉。"))
    for name in NAMES_EN:
        for t in GREET_NAMED_EN:
            add(
                "greet",
                t.format(name=name),
                answer("cheerful", f"Welcome, {name}. The fire is warm."),
            )
    for name in NAMES_ZH:
        for t in GREET_NAMED_ZH:
            add("greet", t.format(name=name), answer("cheerful", f"{name}，欢迎来到丹炉。"))
    for q in WHO_EN:
        add("who", q, answer("proud", "I am 炉守, keeper of the furnace."))
    for q in WHO_ZH:
        add("who", q, answer("proud", "我是炉守，看守丹炉。"))

    for en, zh, where_en, where_zh, danger, quest in PLACES.values():
        for t in WHERE_EN:
            add("where", t.format(place=en), answer("calm", f"The {en} is {where_en}."))
        for t in WHERE_ZH:
            add("where", t.format(place=zh), answer("calm", f"{zh}在{where_zh}。"))
        for t in DANGER_EN:
            if danger:
                reply_en = answer("wary", f"Yes. {danger[0]} lurk there.")
            else:
                reply_en = answer("calm", f"No, the {en} is safe.")
            add("danger", t.format(place=en), reply_en)
        for t in DANGER_ZH:
            if danger:
                reply_zh = answer("wary", f"危险，那里有{danger[1]}。")
            else:
                reply_zh = answer("calm", f"不危险，{zh}很安全。")
            add("danger", t.format(place=zh), reply_zh)
        for t in QUEST_PLACE_EN:
            add("quest", t.format(place=en), answer("eager", f"Yes, at the {en}.", quest[0]))
        for t in QUEST_PLACE_ZH:
            add("quest", t.format(place=zh), answer("eager", f"有，在{zh}。", quest[1]))

    for en, zh, does_en, does_zh, price in ITEMS.values():
        article = "An" if en[0] in "AEIOU" else "A"
        for t in ITEM_EN:
            add("item", t.format(item=en), answer("proud", f"The {en} {does_en}."))
        for t in ITEM_ZH:
            add("item", t.format(item=zh), answer("proud", f"{zh}能{does_zh}。"))
        for t in PRICE_EN:
            add(
                "price",
                t.format(item=en),
                answer("stern", f"{article} {en} costs {price} gold. No haggling."),
            )
        for t in PRICE_ZH:
            add("price", t.format(item=zh), answer("stern", f"{zh}{price}两金，不还价。"))

    for q in QUEST_EN:
        add("quest", q, answer("eager", "The furnace is hungry.", "Bring back a fire stone."))
    for q in QUEST_ZH:
        add("quest", q, answer("eager", "丹炉饿了。", "带回火石。"))
    for q in OFF_EN:
        add("off-topic", q, answer("stern", "I only tend the furnace, traveler."))
    for q in OFF_ZH:
        add("off-topic", q, answer("stern", "我只管丹炉的事。"))
    return out


def rows() -> list[dict[str, object]]:
    found = pairs()
    random.Random(SEED).shuffle(found)  # noqa: S311 (a reproducible order, not a secret)
    return [
        {
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": question},
                {"role": "assistant", "content": reply},
            ]
        }
        for _category, question, reply in found
    ]


def render() -> dict[str, str]:
    """File name → content, byte for byte what is committed."""
    lines = [json.dumps(row, ensure_ascii=False) for row in rows()]
    return {
        "train.jsonl": "\n".join(lines) + "\n",
        "schema.json": json.dumps(SCHEMA, ensure_ascii=False, indent=2) + "\n",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="where to write (default: here)")
    parser.add_argument("--check", action="store_true", help="compare with the files on disk")
    args = parser.parse_args()
    files = render()
    if args.check:
        stale = [
            n
            for n, text in files.items()
            if not (args.out / n).is_file() or (args.out / n).read_text("utf-8") != text
        ]
        if stale:
            print(f"out of date: {', '.join(stale)} (run make_dataset.py)", file=sys.stderr)
            return 1
        print("up to date")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_text(text, encoding="utf-8")
    categories: dict[str, int] = {}
    for category, _q, _a in pairs():
        categories[category] = categories.get(category, 0) + 1
    print(f"{sum(categories.values())} conversations → {args.out / 'train.jsonl'}")
    print("  " + ", ".join(f"{k} {v}" for k, v in sorted(categories.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
