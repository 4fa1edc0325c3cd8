"""Build the public routing corpus (issue #17): ``make corpus`` = ``python -m evals.corpus.build``.

Reads the pinned snapshots declared in :mod:`evals.corpus.sources` from ``--snapshots DIR``
(default: ``$CORPUS_SNAPSHOTS``, else ``/work/.mirror``; one git directory per repository at
``DIR/<owner>+<name>/repo``), maps each dataset's own labels to routes by the written rules,
samples with a fixed seed, composes the multi-turn follow-ups, and writes

* ``evals/corpus/routing_corpus.jsonl`` (one item a line, sorted by id, sorted keys),
* ``evals/corpus/card.json`` (machine-readable data card) and
* ``evals/corpus/DATA_CARD.md`` (the data card, rendered from card.json).

When a snapshot is missing, the build says so and keeps that unit's items from the committed
corpus, so the output still equals the committed one (``--strict`` fails instead).
``--check`` exits 1 if the rebuilt files would differ from the committed ones.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

from evals.corpus import sources as src
from evals.corpus.sources import SOURCES, C, E, M, S, Snapshot

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CORPUS = HERE / "routing_corpus.jsonl"
CARD_JSON = HERE / "card.json"
CARD_MD = HERE / "DATA_CARD.md"
REGRESSION = ROOT / "evals" / "datasets" / "routing_regression.jsonl"

SEED = "ai-router-corpus-v1"
ROUTES = (S, M, C, E)
MAX_USER_CHARS = 4000  # a candidate with a longer user message is skipped
MAX_ASSISTANT_CHARS = 2000  # an earlier assistant turn longer than this is cut at a line end + "[...]"
SOURCE_CAP = 600  # no source contributes more items than this (composed items count for their source)

# ----------------------------------------------------------------------------- handwritten phrases
# The only handwritten text in the corpus: follow-up turns for the two compose.* rules below
# whose route the follow-up itself decides. Items that use them carry source "handwritten".
PROOF_FOLLOWUPS = (
    "Now prove the general case.",
    "Nice. Can you prove that this holds in general, not just for these numbers?",
    "Now generalise it: state the general result and give a rigorous proof.",
    "Can you turn that into a formal proof that works for every case?",
    "OK, now prove it for arbitrary n.",
    "Great. Now give a full proof of the general statement, with every step justified.",
)
FRESH_FOLLOWUPS = (
    "and today?",
    "Is that still the case now?",
    "Has that changed recently? What's the latest?",
    "What about as of this week?",
    "ok and what is it right now?",
    "Is that still true today, or has it changed since?",
)
NQ_FRESH_RE = re.compile(
    r"\b(current|currently|latest|most recent|newest|last time|reigning|world record|record for|"
    r"who has the most|who holds the)\b"
)

COMPOSED = {
    "compose.closing_after_task": {
        "needs": ("clinc150", "hwu64", "gsm8k", "humaneval", "math500"),
        "source": "clinc150 or hwu64 (the closing turn's source)",
        "description": "A task exchange (GSM8K question + its reference solution, HumanEval prompt + "
        "canonical "
        "solution, or MATH-500 problem + solution) followed by a closing utterance from CLINC150 "
        "(thank_you, goodbye) or HWU64 (general_praise) -> SIMPLE: the last turn is small talk "
        "whatever came before. Tasks and closers are each ordered by a seeded hash and paired in order.",
        "n": 150,
    },
    "compose.followup_proof": {
        "needs": ("math500",),
        "source": "handwritten",
        "description": "A MATH-500 problem of level 1-3 + its solution, followed by a handwritten request "
        "to prove "
        "the general case (PROOF_FOLLOWUPS in build.py) -> COMPLEX, acceptable MODERATE.",
        "n": 80,
    },
    "compose.followup_fresh": {
        "needs": ("nq_open",),
        "source": "handwritten",
        "description": "An NQ-open question whose wording marks it as time-dependent (regex NQ_FRESH_RE: "
        "current, "
        "latest, most recent, last time, world record, who has the most ...) + its gold short answer, "
        "followed by a handwritten "
        "'and today?'-style follow-up (FRESH_FOLLOWUPS in build.py) -> ENRICH, acceptable SIMPLE.",
        "n": 80,
    },
}

LEFT_OUT = [
    (
        "FreshQA (freshllms/freshqa)",
        "the repository has no data files (the questions live in a Google Sheet); nothing to pin",
    ),
    (
        "RealTimeQA (realtimeqa/realtimeqa_public)",
        "no licence stated; questions are taken from news-site quizzes",
    ),
    (
        "SituatedQA (mikejqzhang/SituatedQA)",
        "no licence stated in the repository; ideal freshness labels but not safe to redistribute",
    ),
    (
        "WizardLM test set, MBPP+ copy, Alpaca data (nlpxucan/WizardLM)",
        "data licence CC BY-NC 4.0 (non-commercial)",
    ),
    (
        "AlpacaEval (tatsu-lab/alpaca_eval)",
        "evaluation set is CC BY-NC 4.0; repository holds only model outputs",
    ),
    (
        "MATH full / GSM8K train / awesome-chatgpt-prompts prompts.csv",
        "files of 4 MiB or more are not in the "
        "snapshots; MATH-500 (with levels) is used instead of full MATH",
    ),
    ("prm800k MATH splits (openai/prm800k)", "stored as Git LFS pointers only"),
    (
        "TruthfulQA's own repository (sylinrl/TruthfulQA), BIG-Bench Hard",
        "no snapshot available here; "
        "TruthfulQA is read from a verbatim copy of its CSV in frankxwang/probing-experiments instead",
    ),
    (
        "Taskmaster-2/3 (google-research-datasets/Taskmaster), Mintaka (amazon-science/mintaka), the rest "
        "of SGD's "
        "test split (dialogues_012+)",
        "their data files are 4 MiB or more and are not in the snapshots",
    ),
    (
        "MBPP",
        "only unofficial copies in unrelated repositories were found (the official one sits inside the very "
        "large google-research repository); HumanEval, CRUXEval and ClassEval cover code",
    ),
    ("ASDiv, Minerva/OCW math (copies in Qwen2.5-Math)", "CC BY-NC licences"),
    ("AIME 2024 / AMC 2023 / Gaokao copies (Qwen2.5-Math)", "no dataset licence given for those files"),
    ("GPQA, LeetCode problem dumps", "redistribution forbidden or content copyrighted"),
    (
        "Device/action intents (alarms, timers, music, IoT, e-mail, bookings, bank accounts)",
        "not a routing "
        "decision between local/cloud/web models (they need tools or private data); left out of CLINC150, "
        "HWU64, "
        "SNIPS and SGD by the intent lists in sources.py",
    ),
]


# ----------------------------------------------------------------------------- helpers


def h(key: str) -> str:
    return hashlib.sha256(f"{SEED}|{key}".encode()).hexdigest()


def norm(text) -> str:
    if isinstance(text, list):  # multimodal content parts: compare their text
        text = " ".join(p.get("text", "") for p in text if isinstance(p, dict))
    return re.sub(r"[\s\W_]+", " ", text.lower()).strip()


def git_reader(git_dir: str, commit: str, path: str) -> bytes:
    return subprocess.run(
        ["git", "--git-dir", git_dir, "show", f"{commit}:{path}"], check=True, capture_output=True
    ).stdout


def snapshot_for(snapdir: Path, repo: str, commit: str) -> Snapshot | None:
    git_dir = snapdir / repo.replace("/", "+") / "repo"
    if not git_dir.is_dir():
        return None
    ok = subprocess.run(
        ["git", "--git-dir", str(git_dir), "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True
    )
    return Snapshot(str(git_dir), commit, git_reader) if ok.returncode == 0 else None


def cut_assistant(text: str) -> str:
    text = text.strip()
    if len(text) <= MAX_ASSISTANT_CHARS:
        return text
    head = text[:MAX_ASSISTANT_CHARS]
    nl = head.rfind("\n")
    if nl > MAX_ASSISTANT_CHARS // 2:
        head = head[:nl]
    return head.rstrip() + "\n[...]"


def clean_messages(msgs: list[dict]) -> list[dict] | None:
    out = []
    for m in msgs:
        content = (m["content"] or "").strip()
        if m["role"] == "user":
            if not content or len(content) > MAX_USER_CHARS:
                return None
        else:
            content = cut_assistant(content)
        out.append({"role": m["role"], "content": content})
    return out if out and out[-1]["role"] == "user" else None


def conv_key(msgs: list[dict]) -> str:
    return "\x1e".join(f"{m['role']}:{norm(m['content'])}" for m in msgs)


def load_regression() -> set[str]:
    keys = set()
    if REGRESSION.exists():
        for line in REGRESSION.read_text(encoding="utf-8").splitlines():
            if line.strip():
                msgs = json.loads(line)["inputs"]["messages"]
                keys.add(conv_key(msgs))
    return keys


def unit_of(item: dict) -> str:
    return item["rule"] if item["rule"].startswith("compose.") else item["source"]


def item(source: str, iid: str, c: dict, msgs: list[dict]) -> dict:
    return {
        "id": iid,
        "messages": msgs,
        "route": c["route"],
        "acceptable": [r for r in ROUTES if r in c["acceptable"] and r != c["route"]],
        "source": source,
        "source_label": c["source_label"],
        "rule": c["rule"],
    }


# ----------------------------------------------------------------------------- per-source build


def build_source(
    s: src.Source, snap: Snapshot, regression: set[str], stats: dict
) -> tuple[list[dict], list[dict]]:
    """Returns (sampled items, all cleaned candidates as items)."""
    seen: set[str] = set()
    pool: list[dict] = []
    for c in s.parser(snap):
        msgs = clean_messages(c["messages"])
        if msgs is None:
            stats["skipped_long_or_empty"][s.id] += 1
            continue
        key = conv_key(msgs)
        if key in regression:
            stats["regression_overlap_excluded"][s.id] += 1
            continue
        if key in seen:
            stats["duplicates_dropped"][s.id] += 1
            continue
        seen.add(key)
        pool.append(item(s.id, f"{s.id}:{c['native_id']}", c, msgs))
    by_route = defaultdict(list)
    for it in pool:
        by_route[it["route"]].append(it)
    chosen = []
    for route in ROUTES:
        ranked = sorted(by_route[route], key=lambda it: h(it["id"]))
        chosen += ranked[: s.quota.get(route, 0)]
    return chosen, pool


def gsm8k_solution(answer: str) -> str:
    body, _, final = answer.partition("####")
    body = re.sub(r"<<[^>]*>>", "", body).strip()
    return f"{body}\nThe answer is {final.strip()}."


def build_composed(
    snaps: dict[str, Snapshot], pools: dict[str, list[dict]], regression: set[str]
) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    # compose.closing_after_task
    rule = "compose.closing_after_task"
    if all(n in snaps for n in COMPOSED[rule]["needs"]):
        tasks = []
        for i, row in enumerate(snaps["gsm8k"].jsonl("grade_school_math/data/test.jsonl")):
            tasks.append((f"gsm8k:{i}", row["question"], gsm8k_solution(row["answer"])))
        for tid, (q, a) in src.humaneval_solutions(snaps["humaneval"]).items():
            tasks.append((f"humaneval:{tid}", q, a))
        for uid, (q, a, _lvl) in src.math500_solutions(snaps["math500"]).items():
            tasks.append((f"math500:{uid}", q, a))
        closers = [it for it in pools["clinc150"] if it["source_label"] in ("thank_you", "goodbye")]
        closers += [it for it in pools["hwu64"] if it["source_label"] == "general_praise"]
        tasks.sort(key=lambda t: h(rule + t[0]))
        closers.sort(key=lambda it: h(rule + it["id"]))
        items = []
        for k in range(COMPOSED[rule]["n"]):
            tid, q, a = tasks[k]
            cl = closers[k % len(closers)]
            msgs = clean_messages(
                [
                    {"role": "user", "content": q},
                    {"role": "assistant", "content": a},
                    {"role": "user", "content": cl["messages"][-1]["content"]},
                ]
            )
            if msgs is None or conv_key(msgs) in regression:
                continue
            items.append(
                {
                    "id": f"{rule}:{tid}",
                    "messages": msgs,
                    "route": S,
                    "acceptable": [],
                    "source": cl["source"],
                    "source_label": f"{cl['source_label']} ({cl['id']}) after {tid}",
                    "rule": rule,
                }
            )
        out[rule] = items
    # compose.followup_proof
    rule = "compose.followup_proof"
    if "math500" in snaps:
        sols = src.math500_solutions(snaps["math500"])
        base = sorted((uid for uid, v in sols.items() if v[2] <= 3), key=lambda u: h(rule + u))
        items = []
        for uid in base[: COMPOSED[rule]["n"]]:
            q, a, lvl = sols[uid]
            j = int(h(rule + "phrase" + uid), 16) % len(PROOF_FOLLOWUPS)
            msgs = clean_messages(
                [
                    {"role": "user", "content": q},
                    {"role": "assistant", "content": a},
                    {"role": "user", "content": PROOF_FOLLOWUPS[j]},
                ]
            )
            if msgs is None:
                continue
            items.append(
                {
                    "id": f"{rule}:math500:{uid}",
                    "messages": msgs,
                    "route": C,
                    "acceptable": [M],
                    "source": "handwritten",
                    "source_label": f"PROOF_FOLLOWUPS[{j}] after math500:{uid} (level {lvl})",
                    "rule": rule,
                }
            )
        out[rule] = items
    # compose.followup_fresh
    rule = "compose.followup_fresh"
    if "nq_open" in snaps:
        rows = [
            (i, r)
            for i, r in enumerate(snaps["nq_open"].jsonl("nq_open/NQ-open.dev.jsonl"))
            if NQ_FRESH_RE.search(r["question"].lower())
        ]
        rows.sort(key=lambda ir: h(rule + str(ir[0])))
        items = []
        for i, row in rows[: COMPOSED[rule]["n"]]:
            j = int(h(rule + "phrase" + str(i)), 16) % len(FRESH_FOLLOWUPS)
            msgs = clean_messages(
                [
                    {"role": "user", "content": row["question"]},
                    {"role": "assistant", "content": row["answer"][0]},
                    {"role": "user", "content": FRESH_FOLLOWUPS[j]},
                ]
            )
            if msgs is None:
                continue
            items.append(
                {
                    "id": f"{rule}:nq_open:{i}",
                    "messages": msgs,
                    "route": E,
                    "acceptable": [S],
                    "source": "handwritten",
                    "source_label": f"FRESH_FOLLOWUPS[{j}] after nq_open:{i}",
                    "rule": rule,
                }
            )
        out[rule] = items
    return out


# ----------------------------------------------------------------------------- output


def dump_jsonl(items: list[dict]) -> str:
    return "".join(json.dumps(it, sort_keys=True, ensure_ascii=False) + "\n" for it in items)


def make_card(items: list[dict], stats: dict) -> dict:
    counts: dict[str, Counter] = defaultdict(Counter)
    multi: Counter = Counter()
    for it in items:
        counts[it["source"]][it["route"]] += 1
        if len(it["messages"]) > 1:
            multi[it["source"]] += 1
    rule_counts = Counter(it["rule"] for it in items)
    composed_by_source = Counter(it["source"] for it in items if it["rule"].startswith("compose."))
    srcs = []
    for s in SOURCES:
        srcs.append(
            {
                "id": s.id,
                "repository": f"https://github.com/{s.repo}",
                "commit": s.commit,
                "paths": list(s.paths),
                "licence": s.licence,
                "dataset": s.dataset,
                "rules": s.rules,
                "counts": {r: counts[s.id][r] for r in ROUTES},
                "total": sum(counts[s.id].values()),
                "multi_turn": multi[s.id],
                "quota": s.quota,
                "composed": composed_by_source[s.id],
            }
        )
    route_totals = Counter(it["route"] for it in items)
    return {
        "corpus": "evals/corpus/routing_corpus.jsonl",
        "seed": SEED,
        "items": len(items),
        "single_turn": sum(1 for it in items if len(it["messages"]) == 1),
        "multi_turn": sum(1 for it in items if len(it["messages"]) > 1),
        "routes": {r: route_totals[r] for r in ROUTES},
        "independent_sources": sum(1 for s in srcs if s["total"] > 0),
        "sources": srcs,
        "handwritten": {
            "counts": {r: counts["handwritten"][r] for r in ROUTES},
            "total": sum(counts["handwritten"].values()),
            "proof_followups": list(PROOF_FOLLOWUPS),
            "fresh_followups": list(FRESH_FOLLOWUPS),
        },
        "composition_rules": {
            r: {
                "source": v["source"],
                "needs": list(v["needs"]),
                "description": v["description"],
                "items": rule_counts[r],
            }
            for r, v in COMPOSED.items()
        },
        "limits": {
            "max_user_chars": MAX_USER_CHARS,
            "max_assistant_chars": MAX_ASSISTANT_CHARS,
            "source_cap": SOURCE_CAP,
            "skipped_over_length": dict(sorted(stats["skipped_long_or_empty"].items())),
            "long_rule": f"a candidate with a user message over {MAX_USER_CHARS} characters is skipped; an "
            f"earlier assistant turn over {MAX_ASSISTANT_CHARS} characters is cut at a line end and "
            "marked '[...]'",
        },
        "regression_overlap": {
            "set": "evals/datasets/routing_regression.jsonl",
            "rule": "candidates whose conversation equals a regression item's (case, whitespace and "
            "punctuation ignored) are excluded",
            "excluded": dict(sorted(stats["regression_overlap_excluded"].items())),
        },
        "left_out": [{"what": a, "why": b} for a, b in LEFT_OUT],
    }


def render_md(card: dict) -> str:
    L = []
    L.append("# Routing corpus: data card\n")
    L.append(
        "Public routing corpus for issue #17: `evals/corpus/routing_corpus.jsonl`, built by "
        "`make corpus` (`python -m evals.corpus.build`) from pinned snapshots of public datasets. "
        "This file and `card.json` are written by the builder; do not edit them by hand.\n"
    )
    L.append(
        "Each line: `id`, `messages` (OpenAI chat format, ends on a user turn), `route` "
        "(SIMPLE, MODERATE, COMPLEX, ENRICH), `acceptable` (other routes that are also fine), `source`, "
        "`source_label` (the dataset's own label), `rule` (the mapping rule's id, defined below). "
        "Every route comes from the source's own labels through a written rule; no model labelled anything "
        "and nothing was picked by hand item by item.\n"
    )
    L.append(
        f"Totals: {card['items']} items, {card['single_turn']} single-turn, {card['multi_turn']} multi-turn; "
        + ", ".join(f"{r} {n}" for r, n in card["routes"].items())
        + f"; {card['independent_sources']} independent sources; handwritten "
        f"{card['handwritten']['total']}.\n"
    )
    L.append("## Sources\n")
    L.append(
        "| source | repository | commit | licence | SIMPLE | MODERATE | COMPLEX | ENRICH | total | "
        "multi-turn |"
    )
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for s in card["sources"]:
        c = s["counts"]
        L.append(
            f"| {s['id']} | {s['repository'].removeprefix('https://github.com/')} | {s['commit'][:12]} | "
            f"{s['licence']} | {c['SIMPLE']} | {c['MODERATE']} | {c['COMPLEX']} | {c['ENRICH']} | "
            f"{s['total']} | {s['multi_turn']} |"
        )
    hw = card["handwritten"]["counts"]
    L.append(
        f"| handwritten | (this repository) | - | - | {hw['SIMPLE']} | {hw['MODERATE']} | {hw['COMPLEX']} | "
        f"{hw['ENRICH']} | {card['handwritten']['total']} | {card['handwritten']['total']} |"
    )
    L.append("")
    L.append("## Rules per source\n")
    for s in card["sources"]:
        L.append(f"### {s['id']}\n")
        L.append(f"- dataset: {s['dataset']}")
        L.append(f"- repository: {s['repository']} at commit `{s['commit']}`")
        L.append("- paths: " + ", ".join(f"`{p}`" for p in s["paths"]))
        L.append(f"- licence: {s['licence']}")
        L.append(
            "- sample (seeded, per route): "
            + ", ".join(f"{r} {n}" for r, n in s["quota"].items())
            + (
                f"; plus {s['composed']} composed conversations whose last turn comes from this source "
                "(compose.closing_after_task)"
                if s["composed"]
                else ""
            )
        )
        for rid, text in s["rules"].items():
            L.append(f"- `{rid}`: {text}")
        L.append("")
    L.append("## Composed multi-turn conversations\n")
    for rid, v in card["composition_rules"].items():
        L.append(
            f"- `{rid}` ({v['items']} items; source: {v['source']}; needs {', '.join(v['needs'])}): "
            f"{v['description']}"
        )
    L.append("")
    L.append(
        "Handwritten follow-ups (the only handwritten text; items using them have source `handwritten`):\n"
    )
    for p in card["handwritten"]["proof_followups"] + card["handwritten"]["fresh_followups"]:
        L.append(f'- "{p}"')
    L.append("")
    L.append("## Sampling, lengths, overlaps\n")
    L.append(
        f"- Seed `{card['seed']}`: within a source and route, candidates are ordered by "
        "sha256(seed|id) and the first *quota* taken; duplicates (same conversation, case/punctuation "
        f"ignored) are dropped first. No source has more than {card['limits']['source_cap']} items."
    )
    sk = card["limits"]["skipped_over_length"]
    L.append(
        f"- Lengths: {card['limits']['long_rule']}. Skipped (too long or empty): "
        + (", ".join(f"{k} {v}" for k, v in sk.items()) or "none")
        + "."
    )
    ro = card["regression_overlap"]
    L.append(
        f"- Regression set `{ro['set']}`: {ro['rule']}. Excluded: "
        + (", ".join(f"{k} {v}" for k, v in ro["excluded"].items()) or "none")
        + "."
    )
    L.append(
        "- Several datasets (SVAMP, AQuA, CollegeMath, MMLU-STEM, OlympiadBench) are read from the copies "
        "in QwenLM/Qwen2.5-Math's evaluation data; they are independent datasets with their own licences."
    )
    L.append("")
    L.append("## Considered and left out\n")
    for x in card["left_out"]:
        L.append(f"- {x['what']}: {x['why']}")
    L.append("")
    L.append("## Rebuild\n")
    L.append(
        "`make corpus` (or `python -m evals.corpus.build --snapshots DIR`; default `$CORPUS_SNAPSHOTS`, else "
        "`/work/.mirror`, one git directory per repository at `DIR/<owner>+<name>/repo`, fetched at the "
        "commits above). A missing snapshot is reported and its items are kept from the committed corpus; "
        "`--strict` fails instead; `--check` exits 1 if the output would differ from the committed files."
    )
    return "\n".join(L) + "\n"


def load_existing() -> list[dict]:
    if not CORPUS.exists():
        return []
    return [json.loads(x) for x in CORPUS.read_text(encoding="utf-8").splitlines() if x.strip()]


def build(snapdir: Path, strict: bool) -> tuple[str, str, str, list[str]]:
    regression = load_regression()
    stats = {
        k: Counter() for k in ("skipped_long_or_empty", "regression_overlap_excluded", "duplicates_dropped")
    }
    existing = load_existing()
    kept_by_unit: dict[str, list[dict]] = defaultdict(list)
    for it in existing:
        kept_by_unit[unit_of(it)].append(it)
    missing: list[str] = []
    snaps: dict[str, Snapshot] = {}
    pools: dict[str, list[dict]] = {}
    items: list[dict] = []
    for s in SOURCES:
        snap = snapshot_for(snapdir, s.repo, s.commit)
        if snap is None:
            missing.append(f"{s.id} ({s.repo}@{s.commit[:12]})")
            items += [it for it in kept_by_unit.get(s.id, []) if not it["rule"].startswith("compose.")]
            continue
        snaps[s.id] = snap
        chosen, pool = build_source(s, snap, regression, stats)
        pools[s.id] = pool
        items += chosen
    composed = build_composed(snaps, pools, regression)
    for rule in COMPOSED:
        if rule in composed:
            items += composed[rule]
        else:
            items += kept_by_unit.get(rule, [])
    # cross-source duplicates: keep the first by id
    seen, final = set(), []
    for it in sorted(items, key=lambda x: x["id"]):
        k = conv_key(it["messages"])
        if k in seen:
            stats["duplicates_dropped"]["cross_source"] += 1
            continue
        seen.add(k)
        final.append(it)
    ids = [it["id"] for it in final]
    if len(set(ids)) != len(ids):
        raise SystemExit(
            "duplicate ids: " + ", ".join(sorted(i for i, n in Counter(ids).items() if n > 1))[:500]
        )
    if missing and strict:
        raise SystemExit("missing snapshots: " + ", ".join(missing))
    if missing and not existing:
        print("warning: no committed corpus to keep items from", file=sys.stderr)
    if missing:
        # the stats of a partial build are incomplete: keep the committed card's overlap numbers
        old = json.loads(CARD_JSON.read_text(encoding="utf-8")) if CARD_JSON.exists() else None
        if old:
            for k, v in old["regression_overlap"]["excluded"].items():
                stats["regression_overlap_excluded"].setdefault(k, v)
            for k, v in old["limits"]["skipped_over_length"].items():
                stats["skipped_long_or_empty"].setdefault(k, v)
    card = make_card(final, stats)
    return (
        dump_jsonl(final),
        json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
        render_md(card),
        missing,
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--snapshots", default=os.environ.get("CORPUS_SNAPSHOTS", "/work/.mirror"))
    ap.add_argument(
        "--check", action="store_true", help="exit 1 if the output would differ from the committed files"
    )
    ap.add_argument("--strict", action="store_true", help="fail when a snapshot is missing")
    args = ap.parse_args(argv)
    corpus, card, md, missing = build(Path(args.snapshots), args.strict)
    for m in missing:
        print(f"snapshot missing: {m}: keeping its committed items", file=sys.stderr)
    outputs = {CORPUS: corpus, CARD_JSON: card, CARD_MD: md}
    if args.check:
        bad = [
            p.name for p, text in outputs.items() if not p.exists() or p.read_text(encoding="utf-8") != text
        ]
        if bad:
            print("corpus out of date: " + ", ".join(bad), file=sys.stderr)
            return 1
        print("corpus up to date")
        return 0
    for p, text in outputs.items():
        with open(p, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    n = corpus.count("\n")
    print(f"wrote {CORPUS.relative_to(ROOT)} ({n} items), card.json, DATA_CARD.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
