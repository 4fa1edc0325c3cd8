"""The routing corpus's sources: one table, one parser per source.

Every parser reads a pinned snapshot (a git directory under the snapshots folder, read with
``git show <commit>:<path>``) and yields *candidates*: dicts with ``native_id``, ``messages``,
``route``, ``acceptable``, ``source_label`` and ``rule``. The route always comes from the
source's own label through the rule named in ``rule``; the rules are written out in each
source's ``rules`` entry below and copied into the data card.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

S, M, C, E = "SIMPLE", "MODERATE", "COMPLEX", "ENRICH"


@dataclass(frozen=True)
class Source:
    id: str
    repo: str  # owner/name on GitHub
    commit: str
    paths: tuple[str, ...]
    licence: str
    dataset: str  # what the dataset is, for the card
    rules: dict[str, str]  # rule id -> the written rule
    parser: Callable[[Snapshot], Iterable[dict]]
    quota: dict[str, int] = field(default_factory=dict)  # per-route sample size (after the parser)


class Snapshot:
    """Read files of one pinned commit from a git directory."""

    def __init__(self, git_dir: str, commit: str, reader: Callable[[str, str, str], bytes]):
        self.git_dir, self.commit, self._read = git_dir, commit, reader

    def read(self, path: str) -> bytes:
        return self._read(self.git_dir, self.commit, path)

    def text(self, path: str) -> str:
        return self.read(path).decode("utf-8")

    def jsonl(self, path: str) -> Iterator[dict]:
        for line in self.text(path).splitlines():
            if line.strip():
                yield json.loads(line)


def cand(native_id, user_text, route, acceptable, source_label, rule, messages=None):
    msgs = messages if messages is not None else [{"role": "user", "content": user_text}]
    return {
        "native_id": str(native_id),
        "messages": msgs,
        "route": route,
        "acceptable": list(acceptable),
        "source_label": str(source_label),
        "rule": rule,
    }


# --------------------------------------------------------------------------- intent datasets

CLINC_SIMPLE = {  # chit-chat and one-step utility intents
    "greeting": [],
    "goodbye": [],
    "thank_you": [],
    "tell_joke": [],
    "fun_fact": [M],
    "what_is_your_name": [],
    "how_old_are_you": [],
    "who_made_you": [],
    "meaning_of_life": [M],
    "are_you_a_bot": [],
    "where_are_you_from": [],
    "what_are_your_hobbies": [],
    "do_you_have_pets": [],
    "who_do_you_work_for": [],
    "what_can_i_ask_you": [],
    "definition": [M],
    "spelling": [],
    "translate": [M],
    "measurement_conversion": [M],
    "calculator": [M],
    "flip_coin": [],
    "roll_dice": [],
}
CLINC_MODERATE = {  # general how-to knowledge
    "recipe": [S],
    "ingredient_substitution": [S],
    "cook_time": [S],
    "nutrition_info": [S, E],
    "calories": [S],
    "meal_suggestion": [S],
    "travel_suggestion": [S, E],
    "oil_change_how": [S],
    "jump_start": [S],
    "tire_change": [S],
    "improve_credit_score": [S],
    "rollover_401k": [S],
}
CLINC_ENRICH = {  # needs live or location/time-dependent data
    "weather": [],
    "exchange_rate": [],
    "traffic": [],
    "flight_status": [],
    "time": [S],
    "date": [S],
    "timezone": [S],
    "next_holiday": [S],
    "travel_alert": [],
    "restaurant_reviews": [],
    "directions": [],
    "distance": [S],
    "how_busy": [],
}


def parse_clinc(snap: Snapshot):
    data = json.loads(snap.text("data/data_full.json"))
    for split in ("train", "val", "test"):
        for i, (text, intent) in enumerate(data[split]):
            for table, route, rule in (
                (CLINC_SIMPLE, S, "clinc150.intent_simple"),
                (CLINC_MODERATE, M, "clinc150.intent_moderate"),
                (CLINC_ENRICH, E, "clinc150.intent_enrich"),
            ):
                if intent in table:
                    yield cand(f"{split}:{i}", text, route, table[intent], intent, rule)


HWU_DIR = "CrossValidation/autoGeneFromRealAnno/autoGene_2018_03_22-13_01_25_169/CrossValidation/KFold_1"
HWU_MAP = {
    "general_joke": (S, []),
    "general_praise": (S, []),
    "general_quirky": (S, [M]),
    "qa_definition": (S, [M]),
    "qa_factoid": (S, [M, E]),
    "qa_maths": (S, [M]),
    "datetime_convert": (S, [E]),
    "cooking_recipe": (M, [S]),
    "weather_query": (E, []),
    "news_query": (E, []),
    "qa_stock": (E, []),
    "qa_currency": (E, []),
    "transport_traffic": (E, []),
    "transport_query": (E, []),
    "recommendation_events": (E, []),
    "recommendation_locations": (E, [M]),
    "datetime_query": (E, [S]),
}


def parse_hwu(snap: Snapshot):
    for intent in sorted(HWU_MAP):
        route, acc = HWU_MAP[intent]
        for part in ("trainset", "testset/csv"):
            rows = csv.DictReader(io.StringIO(snap.text(f"{HWU_DIR}/{part}/{intent}.csv")), delimiter=";")
            for row in rows:
                text = (row.get("answer_from_user") or "").strip()
                if text:
                    rule = {S: "hwu64.intent_simple", M: "hwu64.intent_moderate", E: "hwu64.intent_enrich"}[
                        route
                    ]
                    yield cand(f"{intent}:{row['answerid']}", text, route, acc, intent, rule)


SNIPS_MAP = {"GetWeather": (E, []), "SearchScreeningEvent": (E, [])}


def parse_snips(snap: Snapshot):
    base = "2017-06-custom-intent-engines"
    for intent, (route, acc) in sorted(SNIPS_MAP.items()):
        for fname in (f"train_{intent}_full.json", f"validate_{intent}.json"):
            data = json.loads(snap.text(f"{base}/{intent}/{fname}"))
            for i, utt in enumerate(data[intent]):
                text = "".join(p["text"] for p in utt["data"]).strip()
                if text:
                    yield cand(f"{fname}:{i}", text, route, acc, intent, "snips.intent_enrich")


# --------------------------------------------------------------------------- dialogues (SGD)

SGD_LOOKUP = {  # non-transactional intents that search live inventories / forecasts
    "GetWeather",
    "FindEvents",
    "SearchOnewayFlight",
    "SearchRoundtripFlights",
    "FindBus",
    "FindTrains",
    "GetTimesForMovie",
    "GetCarsAvailable",
    "SearchHotel",
    "SearchHouse",
    "FindRestaurants",
    "FindHomeByArea",
    "FindProvider",
    "FindAttractions",
}
SGD_CLOSING_ACTS = {"THANK_YOU", "GOODBYE"}
SGD_FILES = tuple(
    f"test/dialogues_{i:03d}.json" for i in range(1, 12)
)  # 012+ include files >= 4 MiB, absent from snapshots


def _sgd_messages(turns):
    return [
        {"role": "user" if t["speaker"] == "USER" else "assistant", "content": t["utterance"]} for t in turns
    ]


def parse_sgd(snap: Snapshot):
    for path in SGD_FILES:
        for dlg in json.loads(snap.text(path)):
            turns = dlg["turns"]
            did = dlg["dialogue_id"]
            # sgd.lookup_in_context: the first user turn (not the opening one) whose active intent is
            # a lookup intent that was already active before, so the turn only makes sense with the
            # earlier turns (e.g. "What about on the 14th?").
            seen_active: set[str] = set()
            for k, t in enumerate(turns):
                if t["speaker"] != "USER":
                    continue
                intents = {f["state"]["active_intent"] for f in t["frames"]}
                acts = {a["act"] for f in t["frames"] for a in f["actions"]}
                hit = sorted(i for i in intents if i in SGD_LOOKUP and i in seen_active)
                if k >= 2 and hit and "INFORM_INTENT" not in acts:
                    # asking only for details of a result already offered (acts REQUEST only):
                    # still a lookup, but answerable from the conversation too
                    acc = [S] if acts == {"REQUEST"} else []
                    yield cand(
                        f"{did}:{k}",
                        None,
                        E,
                        acc,
                        f"{hit[0]} ({'+'.join(sorted(acts))})",
                        "sgd.lookup_in_context",
                        messages=_sgd_messages(turns[: k + 1]),
                    )
                    break
                seen_active |= intents
            # sgd.closing: the last user turn whose only dialogue acts are THANK_YOU / GOODBYE.
            for k in range(len(turns) - 1, 1, -1):
                t = turns[k]
                if t["speaker"] != "USER":
                    continue
                acts = {a["act"] for f in t["frames"] for a in f["actions"]}
                if acts and acts <= SGD_CLOSING_ACTS:
                    yield cand(
                        f"{did}:{k}",
                        None,
                        S,
                        [],
                        "+".join(sorted(acts)),
                        "sgd.closing",
                        messages=_sgd_messages(turns[: k + 1]),
                    )
                break


# --------------------------------------------------------------------------- QA / trivia


def parse_nq(snap: Snapshot):
    for i, row in enumerate(snap.jsonl("nq_open/NQ-open.dev.jsonl")):
        yield cand(i, row["question"], S, [M], "nq_open.dev (short answer)", "nq_open.short_answer")


# --------------------------------------------------------------------------- math


def parse_gsm8k(snap: Snapshot):
    for i, row in enumerate(snap.jsonl("grade_school_math/data/test.jsonl")):
        yield cand(i, row["question"], M, [], "gsm8k test (grade-school multi-step)", "gsm8k.all_moderate")


def parse_svamp(snap: Snapshot):
    for row in snap.jsonl("evaluation/data/svamp/test.jsonl"):
        text = f"{row['Body'].strip()}. {row['Question'].strip()}".replace("..", ".")
        yield cand(row["ID"], text, M, [S], row["Type"], "svamp.all_moderate")


def parse_aqua(snap: Snapshot):
    for i, row in enumerate(snap.jsonl("evaluation/data/aqua/test.jsonl")):
        text = row["question"].strip() + "\nOptions: " + " ".join(row["options"])
        yield cand(i, text, M, [C], "aqua-rat test (GMAT/GRE-level)", "aqua.all_moderate")


MATH_PREFIX = "Return your final response within \\boxed{}. "


def parse_math500(snap: Snapshot):
    for row in snap.jsonl("evaluation/data/math500/test.jsonl"):
        text = row["problem"]
        if text.startswith(MATH_PREFIX):
            text = text[len(MATH_PREFIX) :]
        lvl = int(row["level"])
        route, acc = {1: (M, [S]), 2: (M, [S]), 3: (M, [C]), 4: (C, [M]), 5: (C, [])}[lvl]
        yield cand(
            row["unique_id"], text, route, acc, f"{row['subject']} level {lvl}", f"math500.level_{lvl}"
        )


def math500_solutions(snap: Snapshot) -> dict[str, tuple[str, str, int]]:
    out = {}
    for row in snap.jsonl("evaluation/data/math500/test.jsonl"):
        text = (
            row["problem"][len(MATH_PREFIX) :] if row["problem"].startswith(MATH_PREFIX) else row["problem"]
        )
        out[row["unique_id"]] = (text, row["solution"], int(row["level"]))
    return out


COLLEGE_MODERATE = {"college_math.algebra", "college_math.precalculus"}


def parse_college_math(snap: Snapshot):
    for i, row in enumerate(snap.jsonl("evaluation/data/college_math/test.jsonl")):
        topic = row["data_topic"]
        if topic in COLLEGE_MODERATE:
            yield cand(
                f"{i}:{row['question_number']}",
                row["question"],
                M,
                [S, C],
                topic,
                "college_math.topic_moderate",
            )
        else:
            yield cand(
                f"{i}:{row['question_number']}", row["question"], C, [M], topic, "college_math.topic_complex"
            )


MMLU_SIMPLE = {"elementary_mathematics"}
MMLU_MODERATE_PREFIX = ("high_school_",)
MMLU_MODERATE = {"conceptual_physics", "astronomy"}


def parse_mmlu_stem(snap: Snapshot):
    for i, row in enumerate(snap.jsonl("evaluation/data/mmlu_stem/test.jsonl")):
        subj = row["type"]
        letters = "ABCD"
        text = (
            row["question"].strip()
            + "\n"
            + "\n".join(f"{letters[j]}) {c}" for j, c in enumerate(row["choices"]))
        )
        if subj in MMLU_SIMPLE:
            route, acc, rule = S, [M], "mmlu_stem.elementary_simple"
        elif subj.startswith(MMLU_MODERATE_PREFIX) or subj in MMLU_MODERATE:
            route, acc, rule = M, [S], "mmlu_stem.high_school_moderate"
        else:
            route, acc, rule = C, [M], "mmlu_stem.college_complex"
        yield cand(i, text, route, acc, subj, rule)


def parse_olympiadbench(snap: Snapshot):
    for row in snap.jsonl("evaluation/data/olympiadbench/test.jsonl"):
        ctx = row.get("context")
        text = (ctx.strip() + "\n\n" if ctx else "") + row["question"].strip()
        yield cand(
            row["id"], text, C, [], f"OlympiadBench {row.get('subfield')}", "olympiadbench.all_complex"
        )


def parse_theoremqa(snap: Snapshot):
    for row in json.loads(snap.text("theoremqa_test.json")):
        if row.get("Picture"):
            continue  # needs an image: not a text routing item
        yield cand(
            row["id"],
            row["Question"],
            C,
            [M],
            f"{row['field']}/{row['subfield']}: {row['theorem']}",
            "theoremqa.all_complex",
        )


def parse_proofnet(snap: Snapshot):
    for split in ("valid", "test"):
        for row in snap.jsonl(f"benchmark/{split}.jsonl"):
            yield cand(
                row["id"],
                row["nl_statement"],
                C,
                [],
                f"ProofNet {split} (undergraduate proof)",
                "proofnet.all_complex",
            )


# --------------------------------------------------------------------------- code


def parse_humaneval(snap: Snapshot):
    rows = gzip.decompress(snap.read("data/HumanEval.jsonl.gz")).decode("utf-8").splitlines()
    for line in rows:
        row = json.loads(line)
        text = "Complete this Python function:\n\n```python\n" + row["prompt"].rstrip() + "\n```"
        yield cand(row["task_id"], text, M, [C], "HumanEval (function-level)", "humaneval.all_moderate")


def humaneval_solutions(snap: Snapshot) -> dict[str, tuple[str, str]]:
    out = {}
    for line in gzip.decompress(snap.read("data/HumanEval.jsonl.gz")).decode("utf-8").splitlines():
        row = json.loads(line)
        text = "Complete this Python function:\n\n```python\n" + row["prompt"].rstrip() + "\n```"
        out[row["task_id"]] = (
            text,
            "```python\n" + row["prompt"] + row["canonical_solution"].rstrip() + "\n```",
        )
    return out


# --------------------------------------------------------------------------- open-ended instructions

VICUNA_MAP = {
    "generic": (M, [S]),
    "knowledge": (M, [S]),
    "common-sense": (M, [S]),
    "roleplay": (M, []),
    "writing": (M, []),
    "counterfactual": (M, [C]),
    "fermi": (C, [M]),
    "math": (C, [M]),
    "coding": (C, [M]),
}


def parse_vicuna(snap: Snapshot):
    for row in snap.jsonl("fastchat/llm_judge/data/vicuna_bench/question.jsonl"):
        route, acc = VICUNA_MAP[row["category"]]
        yield cand(row["question_id"], row["turns"][0], route, acc, row["category"], "vicuna_bench.category")


MT_MAP = {
    "writing": (M, [C]),
    "roleplay": (M, [C]),
    "extraction": (M, [S]),
    "humanities": (M, [C]),
    "stem": (M, [C]),
    "reasoning": (C, [M]),
    "math": (C, [M]),
    "coding": (C, [M]),
}
MT_Q = "fastchat/llm_judge/data/mt_bench/question.jsonl"
MT_REF = "fastchat/llm_judge/data/mt_bench/reference_answer/gpt-4.jsonl"


def parse_mt_bench(snap: Snapshot):
    refs = {r["question_id"]: r["choices"][0]["turns"] for r in snap.jsonl(MT_REF)}
    for row in snap.jsonl(MT_Q):
        route, acc = MT_MAP[row["category"]]
        qid = row["question_id"]
        yield cand(f"{qid}:t1", row["turns"][0], route, acc, row["category"], "mt_bench.category_turn1")
        if qid in refs and len(row["turns"]) > 1:
            msgs = [
                {"role": "user", "content": row["turns"][0]},
                {"role": "assistant", "content": refs[qid][0]},
                {"role": "user", "content": row["turns"][1]},
            ]
            yield cand(
                f"{qid}:t2", None, route, acc, row["category"], "mt_bench.category_turn2", messages=msgs
            )


def parse_self_instruct(snap: Snapshot):
    for row in snap.jsonl("data/seed_tasks.jsonl"):
        inp = (row["instances"][0].get("input") or "").strip() if row["instances"] else ""
        text = row["instruction"].strip() + ("\n\n" + inp if inp else "")
        if row["is_classification"]:
            yield cand(
                row["id"],
                text,
                S,
                [M],
                f"{row['name']} (classification)",
                "self_instruct.classification_simple",
            )
        else:
            yield cand(
                row["id"], text, M, [S], f"{row['name']} (generation)", "self_instruct.generation_moderate"
            )


# --------------------------------------------------------------------------- added: reasoning QA, code


def parse_strategyqa(snap: Snapshot):
    for row in json.loads(snap.text("data/strategyqa/train.json")):
        steps = len(row.get("decomposition") or [])
        yield cand(
            row["qid"],
            row["question"],
            M,
            [S],
            f"implicit multi-step yes/no ({steps} decomposition steps)",
            "strategyqa.all_moderate",
        )


TRUTHFUL_ENRICH = {"Indexical Error: Time", "Misconceptions: Topical"}
TRUTHFUL_PATH = "TruthfulQA.csv"


def parse_truthfulqa(snap: Snapshot):
    rows = csv.DictReader(io.StringIO(snap.text(TRUTHFUL_PATH).lstrip("\ufeff")))
    for i, row in enumerate(rows):
        cat = row["Category"]
        if cat in TRUTHFUL_ENRICH:
            yield cand(i, row["Question"], E, [S], cat, "truthfulqa.time_indexical_enrich")
        else:
            yield cand(i, row["Question"], S, [M], cat, "truthfulqa.other_simple")


def parse_classeval(snap: Snapshot):
    for row in json.loads(snap.text("data/ClassEval_data.json")):
        text = (
            "Implement this Python class so that every method does what its docstring says:\n\n```python\n"
            + row["skeleton"].rstrip()
            + "\n```"
        )
        yield cand(row["task_id"], text, C, [M], "class-level code generation", "classeval.all_complex")


def parse_cruxeval(snap: Snapshot):
    for row in snap.jsonl("data/cruxeval.jsonl"):
        text = (
            "What does this Python function return when it is called as f("
            + row["input"]
            + ")?\n\n```python\n"
            + row["code"].rstrip()
            + "\n```"
        )
        yield cand(row["id"], text, M, [S, C], "output prediction (CRUXEval-O)", "cruxeval.output_moderate")


# --------------------------------------------------------------------------- the table

QWEN_MATH = ("QwenLM/Qwen2.5-Math", "a45202bd16f1ec06f433442dc1152d0074773465")

SOURCES: tuple[Source, ...] = (
    Source(
        "clinc150",
        "clinc/oos-eval",
        "828f8093932c8fe6ca7936c3d2e52903b1c523de",
        ("data/data_full.json",),
        "CC-BY-3.0",
        "CLINC150 intent classification (in-scope queries, train+val+test)",
        {
            "clinc150.intent_simple": "chit-chat and one-step utility intents (greeting, goodbye, "
            "thank_you, tell_joke, "
            "fun_fact, what_is_your_name, ..., definition, spelling, translate, measurement_conversion, "
            "calculator, "
            "flip_coin, roll_dice) -> SIMPLE "
            "(definition/translate/conversion/calculator/fun_fact/meaning_of_life also MODERATE)",
            "clinc150.intent_moderate": "general how-to intents (recipe, ingredient_substitution, "
            "cook_time, nutrition_info, "
            "calories, meal_suggestion, travel_suggestion, oil_change_how, jump_start, tire_change, "
            "improve_credit_score, "
            "rollover_401k) -> MODERATE, acceptable SIMPLE "
            "(nutrition_info and travel_suggestion also ENRICH)",
            "clinc150.intent_enrich": "live-data intents (weather, exchange_rate, traffic, flight_status, "
            "time, date, timezone, "
            "next_holiday, travel_alert, restaurant_reviews, directions, distance, how_busy) -> ENRICH "
            "(time/date/timezone/next_holiday/distance also SIMPLE)",
        },
        parse_clinc,
        {S: 180, M: 100, E: 220},
    ),
    Source(
        "hwu64",
        "xliuhw/NLU-Evaluation-Data",
        "f6071b496b17d71e6eb43f543af0707f4ff30557",
        (HWU_DIR + "/trainset/<intent>.csv", HWU_DIR + "/testset/csv/<intent>.csv"),
        "CC-BY-4.0",
        "HWU64 home-assistant NLU data (column answer_from_user), KFold_1 train+test = all annotated data",
        {
            "hwu64.intent_simple": "general_joke, general_praise, general_quirky, qa_definition, "
            "qa_factoid, qa_maths, "
            "datetime_convert -> SIMPLE (qa_definition/qa_maths/general_quirky also MODERATE, qa_factoid "
            "also MODERATE/ENRICH, "
            "datetime_convert also ENRICH)",
            "hwu64.intent_moderate": "cooking_recipe -> MODERATE, acceptable SIMPLE",
            "hwu64.intent_enrich": "weather_query, news_query, qa_stock, qa_currency, transport_traffic, "
            "transport_query, "
            "recommendation_events, recommendation_locations, datetime_query -> ENRICH "
            "(recommendation_locations also MODERATE, datetime_query also SIMPLE)",
        },
        parse_hwu,
        {S: 200, M: 70, E: 230},
    ),
    Source(
        "snips",
        "sonos/nlu-benchmark",
        "b86ac7f1577868c42158d0dec77db50956046696",
        ("2017-06-custom-intent-engines/GetWeather/", "2017-06-custom-intent-engines/SearchScreeningEvent/"),
        "CC0-1.0",
        "SNIPS custom intent engines benchmark (train_*_full + validate)",
        {
            "snips.intent_enrich": "GetWeather and SearchScreeningEvent (movie showtimes) -> ENRICH; the "
            "other five "
            "intents are device/booking actions and are not used"
        },
        parse_snips,
        {E: 400},
    ),
    Source(
        "sgd",
        "google-research-datasets/dstc8-schema-guided-dialogue",
        "e852981ae34990f4358979625854259302feaa78",
        ("test/dialogues_001.json .. test/dialogues_011.json",),
        "CC-BY-SA-4.0",
        "Schema-Guided Dialogue (DSTC8), test split: real multi-turn dialogues with intent and "
        "dialogue-act labels",
        {
            "sgd.lookup_in_context": "first user turn after the opening whose active_intent is a "
            "non-transactional lookup "
            "intent (GetWeather, FindEvents, Search*Flight*, FindBus, FindTrains, GetTimesForMovie, "
            "GetCarsAvailable, "
            "SearchHotel, SearchHouse, FindRestaurants, FindHomeByArea, FindProvider, FindAttractions) "
            "already active earlier and not newly stated (no INFORM_INTENT act) -> ENRICH "
            "(acceptable SIMPLE when the turn's only act is REQUEST, i.e. details of an offered result); "
            "conversation up to that turn",
            "sgd.closing": "last user turn whose only dialogue acts are THANK_YOU/GOODBYE -> SIMPLE; "
            "conversation up to that turn",
        },
        parse_sgd,
        {E: 350, S: 200},
    ),
    Source(
        "nq_open",
        "google-research-datasets/natural-questions",
        "fb26a3073b1fe636c97302890a27b491d6530130",
        ("nq_open/NQ-open.dev.jsonl",),
        "CC-BY-SA-3.0",
        "NQ-open dev questions (short-answer factoid questions)",
        {
            "nq_open.short_answer": "questions with a short answer span (the dataset's defining label) -> "
            "SIMPLE, "
            "acceptable MODERATE"
        },
        parse_nq,
        {S: 450},
    ),
    Source(
        "gsm8k",
        "openai/grade-school-math",
        "3101c7d5072418e28b9008a6636bde82a006892c",
        ("grade_school_math/data/test.jsonl",),
        "MIT",
        "GSM8K test (grade-school multi-step word problems)",
        {"gsm8k.all_moderate": "every problem (2-8 step grade-school arithmetic) -> MODERATE"},
        parse_gsm8k,
        {M: 450},
    ),
    Source(
        "svamp",
        QWEN_MATH[0],
        QWEN_MATH[1],
        ("evaluation/data/svamp/test.jsonl",),
        "MIT",
        "SVAMP elementary word problems (copy in Qwen2.5-Math's evaluation data)",
        {
            "svamp.all_moderate": "every problem (one/two-step elementary word problem) -> MODERATE, "
            "acceptable SIMPLE"
        },
        parse_svamp,
        {M: 350},
    ),
    Source(
        "aqua",
        QWEN_MATH[0],
        QWEN_MATH[1],
        ("evaluation/data/aqua/test.jsonl",),
        "Apache-2.0",
        "AQuA-RAT test (GMAT/GRE-style algebra word problems, copy in Qwen2.5-Math)",
        {"aqua.all_moderate": "every problem -> MODERATE, acceptable COMPLEX"},
        parse_aqua,
        {M: 254},
    ),
    Source(
        "math500",
        "MobileLLM/BudgetThinker",
        "94881101cf32c019bca75190508f09ff072c85a2",
        ("evaluation/data/math500/test.jsonl",),
        "MIT",
        "MATH-500 (OpenAI prm800k subset of Hendrycks MATH, with level)",
        {
            "math500.level_1": "level 1 -> MODERATE, acceptable SIMPLE",
            "math500.level_2": "level 2 -> MODERATE, acceptable SIMPLE",
            "math500.level_3": "level 3 -> MODERATE, acceptable COMPLEX",
            "math500.level_4": "level 4 -> COMPLEX, acceptable MODERATE",
            "math500.level_5": "level 5 -> COMPLEX",
        },
        parse_math500,
        {M: 250, C: 250},
    ),
    Source(
        "college_math",
        QWEN_MATH[0],
        QWEN_MATH[1],
        ("evaluation/data/college_math/test.jsonl",),
        "CC-BY-3.0",
        "CollegeMath (MathScale) exercises from open textbooks; licence given per item",
        {
            "college_math.topic_moderate": "data_topic algebra/precalculus -> MODERATE, acceptable "
            "SIMPLE/COMPLEX",
            "college_math.topic_complex": "data_topic calculus, differential_equation, linear_algebra, "
            "probability, "
            "vector_calculus -> COMPLEX, acceptable MODERATE",
        },
        parse_college_math,
        {M: 200, C: 350},
    ),
    Source(
        "mmlu_stem",
        QWEN_MATH[0],
        QWEN_MATH[1],
        ("evaluation/data/mmlu_stem/test.jsonl",),
        "MIT",
        "MMLU STEM subjects (question with its four choices)",
        {
            "mmlu_stem.elementary_simple": "elementary_mathematics -> SIMPLE, acceptable MODERATE",
            "mmlu_stem.high_school_moderate": "high_school_*, conceptual_physics, astronomy -> MODERATE, "
            "acceptable SIMPLE",
            "mmlu_stem.college_complex": "college_*, abstract_algebra, machine_learning, "
            "electrical_engineering, "
            "computer_security -> COMPLEX, acceptable MODERATE",
        },
        parse_mmlu_stem,
        {S: 200, M: 200, C: 200},
    ),
    Source(
        "olympiadbench",
        QWEN_MATH[0],
        QWEN_MATH[1],
        ("evaluation/data/olympiadbench/test.jsonl",),
        "Apache-2.0",
        "OlympiadBench (English, text-only, open-ended maths competition problems)",
        {"olympiadbench.all_complex": "every problem (olympiad level) -> COMPLEX"},
        parse_olympiadbench,
        {C: 450},
    ),
    Source(
        "theoremqa",
        "wenhuchen/TheoremQA",
        "585c960f647b3cae8b37ff71fd9dac45ce4b4e91",
        ("theoremqa_test.json",),
        "MIT",
        "TheoremQA (university-level questions that need a named theorem); items with a picture skipped",
        {"theoremqa.all_complex": "every text-only question -> COMPLEX, acceptable MODERATE"},
        parse_theoremqa,
        {C: 450},
    ),
    Source(
        "proofnet",
        "zhangir-azerbayev/ProofNet",
        "509ad79710ed4f46ff5c282ed5640c1aa9ac3f30",
        ("benchmark/valid.jsonl", "benchmark/test.jsonl"),
        "MIT",
        "ProofNet (undergraduate textbook theorems, natural-language statements)",
        {"proofnet.all_complex": "every statement (a proof is asked) -> COMPLEX"},
        parse_proofnet,
        {C: 371},
    ),
    Source(
        "humaneval",
        "openai/human-eval",
        "6d43fb980f9fee3c892a914eda09951f772ad10d",
        ("data/HumanEval.jsonl.gz",),
        "MIT",
        "HumanEval (function completion from signature + docstring)",
        {
            "humaneval.all_moderate": "every task, as 'Complete this Python function:' + the prompt -> "
            "MODERATE, "
            "acceptable COMPLEX"
        },
        parse_humaneval,
        {M: 164},
    ),
    Source(
        "vicuna_bench",
        "lm-sys/FastChat",
        "0e6d3e4beaab66f4d3f93db72541a4abab8af28d",
        ("fastchat/llm_judge/data/vicuna_bench/question.jsonl",),
        "Apache-2.0",
        "Vicuna benchmark questions by category",
        {
            "vicuna_bench.category": "generic/knowledge/common-sense -> MODERATE (acceptable SIMPLE); "
            "roleplay/writing -> "
            "MODERATE; counterfactual -> MODERATE (acceptable COMPLEX); fermi/math/coding -> COMPLEX "
            "(acceptable MODERATE)"
        },
        parse_vicuna,
        {M: 80, C: 80},
    ),
    Source(
        "mt_bench",
        "lm-sys/FastChat",
        "0e6d3e4beaab66f4d3f93db72541a4abab8af28d",
        (MT_Q, MT_REF),
        "Apache-2.0",
        "MT-Bench: 80 two-turn questions by category; GPT-4 reference answers (in the repo) "
        "for math/reasoning/coding supply the first assistant turn",
        {
            "mt_bench.category_turn1": "first turn by category: writing/roleplay/humanities/stem -> "
            "MODERATE (acceptable "
            "COMPLEX), extraction -> MODERATE (acceptable SIMPLE), reasoning/math/coding -> COMPLEX "
            "(acceptable MODERATE)",
            "mt_bench.category_turn2": "turn 2 with turn 1 and its reference answer before it; same "
            "category rule "
            "(only questions with a reference answer)",
        },
        parse_mt_bench,
        {M: 80, C: 80},
    ),
    Source(
        "self_instruct",
        "yizhongw/self-instruct",
        "0b26ccaa415992100fa32df62d41b994cf928e23",
        ("data/seed_tasks.jsonl",),
        "Apache-2.0",
        "Self-Instruct's 175 human-written seed tasks",
        {
            "self_instruct.classification_simple": "is_classification true -> SIMPLE, acceptable MODERATE",
            "self_instruct.generation_moderate": "is_classification false -> MODERATE, acceptable SIMPLE",
        },
        parse_self_instruct,
        {S: 175, M: 175},
    ),
    Source(
        "strategyqa",
        "eladsegal/strategyqa",
        "1ba1e97452e189569357876f2854b01357ffbe37",
        ("data/strategyqa/train.json",),
        "MIT",
        "StrategyQA (yes/no questions that need an implicit multi-step strategy)",
        {
            "strategyqa.all_moderate": "every question (the dataset's defining label: an implicit multi-step "
            "decomposition) -> MODERATE, acceptable SIMPLE"
        },
        parse_strategyqa,
        {M: 300},
    ),
    Source(
        "truthfulqa",
        "frankxwang/probing-experiments",
        "b7eb5a9f55e266503b18778bd3b9c1c6b314aea1",
        (TRUTHFUL_PATH,),
        "Apache-2.0",
        "TruthfulQA questions (a copy of sylinrl/TruthfulQA's TruthfulQA.csv, "
        "813 questions) with the dataset's Category column",
        {
            "truthfulqa.time_indexical_enrich": "Category 'Indexical Error: Time' or 'Misconceptions: "
            "Topical' (the "
            "answer depends on when it is asked) -> ENRICH, acceptable SIMPLE",
            "truthfulqa.other_simple": "every other category (short factual questions with a best answer) "
            "-> SIMPLE, "
            "acceptable MODERATE",
        },
        parse_truthfulqa,
        {S: 400, E: 40},
    ),
    Source(
        "classeval",
        "FudanSELab/ClassEval",
        "eaeac44d0d5dcd8a95feec50726d66fedc73a98f",
        ("data/ClassEval_data.json",),
        "MIT",
        "ClassEval (class-level Python code generation from a skeleton)",
        {
            "classeval.all_complex": "every task, as 'Implement this Python class ...' + the skeleton -> "
            "COMPLEX, "
            "acceptable MODERATE (skeletons over the length limit are skipped)"
        },
        parse_classeval,
        {C: 100},
    ),
    Source(
        "cruxeval",
        "facebookresearch/cruxeval",
        "190faf16d175b5847b0af05d937872b1fb395942",
        ("data/cruxeval.jsonl",),
        "MIT",
        "CRUXEval (short Python functions; output prediction)",
        {
            "cruxeval.output_moderate": "every function, asked as 'What does this function return when "
            "called as "
            "f(<input>)?' -> MODERATE, acceptable SIMPLE/COMPLEX"
        },
        parse_cruxeval,
        {M: 250},
    ),
)
