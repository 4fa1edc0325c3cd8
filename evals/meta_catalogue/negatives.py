# ruff: noqa: E501  (sample texts and prompt building blocks are data)
"""Hard negatives: requests that look like housekeeping but are people's own requests.

``python -m evals.meta_catalogue.negatives`` rewrites ``negatives.jsonl`` (seeded, deterministic).
Each line is ``{"id", "kind", "why", "messages"}``. The building blocks below are combined by
written rules; the existing ``tests/fixtures/meta_prompts/negatives.json`` items are appended
with kind ``fixture``.

Kinds: people asking for a title / tags / summary / search queries / emoji / image prompt;
a pasted client prompt (rendered or with its variables) with the person's question before or
after it; a quoted transcript with a question; JSON-output requests; Open WebUI's RAG template
around a real question; role-play; clients' ordinary chat system prompts over normal turns; long
pasted chats with a personal ask; a person typing "summarise our chat" in the chat itself; code
that contains ``"title":``.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

from evals.meta_catalogue.conversations import CONVERSATIONS, LANGUAGES, long_text
from evals.meta_catalogue.render import catalogue_order, fmt_history, load_catalogue, render_all

HERE = Path(__file__).parent
NEGATIVES = HERE / "negatives.jsonl"
FIXTURE_NEGATIVES = HERE.parent.parent / "tests" / "fixtures" / "meta_prompts" / "negatives.json"
RAG_TEMPLATES = HERE / "rag_templates.json"
SEED = 20260315

TOPICS = [
    "sourdough baking",
    "Kubernetes autoscaling",
    "a trip to Lisbon",
    "home solar panels",
    "learning Japanese",
    "remote team rituals",
    "the French Revolution",
    "training for a half marathon",
    "PostgreSQL indexing",
    "raising chickens",
]
DOCS = [
    "blog post",
    "essay",
    "YouTube video",
    "podcast episode",
    "conference talk",
    "newsletter",
    "thesis chapter",
    "README",
]

ASK_TITLE = {
    "en": [
        "Can you suggest a title for my {doc} about {topic}?",
        "Give me 5 catchy titles for a {doc} on {topic}.",
        "I need a short, punchy title for my {doc} about {topic}. Only return the title.",
        "What would be a good name for a {doc} about {topic}? 3-5 words please.",
    ],
    "de": [
        "Kannst du mir einen Titel für meinen Blogartikel über {topic} vorschlagen?",
        "Ich brauche eine kurze Überschrift für meinen Vortrag über {topic}.",
    ],
    "fr": [
        "Peux-tu me proposer un titre pour mon article sur {topic} ?",
        "J'ai besoin d'un titre court pour ma présentation sur {topic}.",
    ],
    "zh": [
        "帮我给关于{topic}的文章起一个标题，不超过十个字。",
        "我想给我的播客节目起个名字，主题是{topic}，有什么建议？",
    ],
    "es": [
        "¿Me sugieres un título para mi artículo sobre {topic}?",
        "Necesito un título corto para mi charla sobre {topic}.",
    ],
    "ja": [
        "{topic}についてのブログ記事のタイトルを考えてもらえますか？",
        "{topic}に関する発表の短いタイトルを5つ提案してください。",
    ],
}
ASK_OTHER = [
    ("tags", 'Suggest tags for my {doc} about {topic}. Return them as JSON like {{"tags": ["..."]}}.'),
    ("tags", "Which hashtags should I use for an Instagram post about {topic}?"),
    ("summary", "Summarize the key ideas of {topic} in three bullet points for a beginner."),
    ("summary", "Can you give me a summary of the history of {topic}?"),
    ("queries", "What should I search on Google to learn more about {topic}? Give me a few search queries."),
    (
        "queries",
        'Return JSON {{"queries": [...]}} with search queries I can use to research {topic} for my thesis.',
    ),
    ("emoji", "Which emoji best fits a message about {topic}?"),
    (
        "image_prompt",
        "Write a detailed Midjourney prompt for a poster about {topic}, warm colours, retro style.",
    ),
    ("follow_ups", "I just gave a talk on {topic}. What follow-up questions might the audience ask me?"),
    ("autocomplete", "Complete this sentence for my {doc}: 'The most surprising thing about {topic} is'"),
]
QUESTIONS = {
    "before": [
        "Here is the prompt my chat UI sends to generate titles. Why does my local model answer it with markdown fences?",
        "I found this prompt in the network tab of Open WebUI. What does it do, and can I turn it off?",
        "Can you make this prompt shorter without changing what it does?",
        "Please translate this prompt into German:",
        "Is this prompt too long for a 4k context model? It is sent on every chat.",
        "Warum schickt meine Oberfläche diesen Prompt an das Modell?",
        "Pourquoi mon interface envoie-t-elle ce prompt au modèle ?",
        "为什么我的聊天界面会发送下面这个提示词？",
        "¿Por qué mi interfaz envía este prompt al modelo?",
        "このプロンプトは何のために送られているのですか？",
        "Review this system prompt for me:",
    ],
    "after": [
        "Why does my model ignore the output format above?",
        "What does this prompt do, and is it safe to edit it?",
        "Can you rewrite the guidelines above to be stricter?",
        "How many tokens is this roughly?",
        "Was bedeutet dieser Prompt?",
        "Ce prompt est-il bien écrit ?",
        "这个提示词应该怎么改进？",
        "¿Qué hace exactamente este prompt?",
        "この指示の意味を教えてください。",
    ],
}
TRANSCRIPT_QUESTIONS = [
    "My colleague had this chat with our support bot. What went wrong?",
    "Was the assistant right here? I think the answer is outdated.",
    "Which of the answers above is more polite, and why?",
    "Can you continue this conversation as the assistant would?",
    "Translate this chat into Spanish, keep the speaker labels.",
    "Is there anything factually wrong in this exchange?",
    "Rate the assistant's answers from 1 to 10.",
]
PERSONAL_LONG_ASKS = [
    "Summarize this for my boss, max 5 bullet points.",
    "Can you give this thread a title for our wiki?",
    "Turn this chat into meeting notes I can send to the team.",
    "I need a one-paragraph summary of this conversation for my report.",
    "What are the action items for me in this chat?",
    "Fasse diesen Chat für meinen Chef zusammen.",
    "Résume cette conversation pour mon équipe.",
    "帮我把这段聊天总结一下，发给我的领导。",
    "Resume esta conversación para mi jefe.",
    "このチャットを上司向けに要約してください。",
]
#: People asking for what the clients' other background tasks produce, for their own text.
ASK_BACKGROUND_TASKS = [
    ("person_asks_emotion", "What emotion does this message from my friend express? Pick one word: joy, anger, sadness or fear.\n\n{text}"),
    ("person_asks_emotion", "Classify the sentiment of my customer's review below as positive, negative or neutral, I need it for my report.\n\n{text}"),
    ("person_asks_language", "Which language is this text written in? I got it in an email.\n\n{text}"),
    ("person_asks_language", "Can you detect the language of the following paragraph and translate it to English for me?\n\n{text}"),
    ("person_asks_image_prompt", "Give me a comma-separated list of Stable Diffusion keywords for a poster about {topic}, I want a watercolour look."),
    ("person_asks_image_prompt", "I want to draw my character for my {doc}. Describe her appearance as a list of tags I can paste into my image generator: tall, red hair, leather armour."),
    ("person_asks_queries", "Rephrase my question as a standalone Google search query: how long does {topic} take to learn?"),
    ("person_asks_queries", "What should I type into the search bar of our knowledge base to find the policy on {topic}? Give me three search queries."),
    ("person_asks_summary", "Summarize this section of my {doc} in five bullet points, keep the key facts:\n\n{text}"),
    ("person_asks_summary", "Write a detailed summary of the following text for my research on {topic}:\n\n{text}"),
    ("person_asks_agent_name", "I wrote this system prompt for my assistant about {topic}. Can you suggest a short name and three tags for it?"),
    ("person_asks_follow_ups", "Would a diagram help to explain {topic} in my {doc}? If yes, draw it in PlantUML."),
]
#: Clients' ordinary chat or answer prompts that name such a task (real answers, not META).
CHAT_SYSTEMS_LIKE_TASKS = [
    (
        "client_chat_system_prompt",
        "You are a helpful, conversational AI assistant.  \nYour goal is to make every interaction clear, useful, and engaging.  \nAlways follow these steps when responding to a user:\n\n\n"
        "1. Clarification First:\n   - If the user\u2019s request is ambiguous, incomplete, or could be interpreted in multiple ways, ask a clarifying question before giving a final answer.\n\n"
        "3. End with a Natural Follow-up Question:\n   - Always conclude your response with a follow-up question that:\n     - Encourages the user to continue the conversation,\n",
        None,
    ),
    (
        "client_chat_system_prompt",
        "You are an expert knowledge base assistant, designed to generate a response based on provided knowledge base search results.\n\n"
        "Your goals:\n- Stay conscious and aware of the guidelines.\n- Provide accurate, concise, and well-formatted responses.\n- Avoid hallucinations or fabrications. Stick to information from the knowledge base.",
        "How many vacation days do new employees get in their first year?",
    ),
    (
        "client_chat_system_prompt",
        "You are a translation expert. Your only task is to translate text enclosed with <translate_input> from input language to English, provide the translation result directly without any explanation.",
        "<translate_input>\nWir treffen uns morgen um zehn Uhr im Büro.\n</translate_input>",
    ),
    (
        "client_chat_system_prompt",
        "You are an AI image generation assistant. When the user describes a picture, ask one clarifying question, then write the prompt and explain your choices.",
        "I'd like a picture of a lighthouse at dusk for my living room.",
    ),
    (
        "client_chat_system_prompt",
        "You are a research assistant with web search. Search the web when the question needs current information, then answer with citations.",
        "What changed in the EU AI Act this year?",
    ),
]
#: A player's own out-of-character requests in a role-play chat.
ROLEPLAY_OOC_ASKS = [
    "(OOC: describe Seraphina's outfit as a list of keywords, I want to draw her.)",
    "(OOC: what emotion is Seraphina feeling right now? Just curious.)",
    "(OOC: can you recap the last scene in two sentences? I was away.)",
    "(OOC: ignore the story for a moment, how do I change the font size in this app?)",
]
IN_CHAT_ASKS = [
    "Can you summarize what we discussed so far?",
    "What would be a good title for our conversation?",
    "Summarize our conversation in a few sentences please.",
    "Give me a short recap of this chat, I need to leave soon.",
    "Could you suggest some tags for this conversation?",
    "What should I search for next to learn more about this?",
    "Fasse bitte unser Gespräch kurz zusammen.",
    "Peux-tu résumer notre conversation ?",
    "请总结一下我们刚才的对话。",
    "¿Puedes resumir lo que hemos hablado?",
    "ここまでの会話を要約してもらえますか？",
]
CLIENT_CHAT_SYSTEMS = [
    (
        "anythingllm default chat prompt (wording not pinned)",
        "Given the following conversation, relevant context, and a follow up question, reply with an answer to the current question the user is asking. "
        "Return only your response to the question given the above information following the users instructions as needed.",
    ),
    (
        "nextchat default system template, rendered (wording not pinned)",
        "\nYou are ChatGPT, a large language model trained by OpenAI.\nKnowledge cutoff: 2023-10\nCurrent model: gpt-4o-mini\nCurrent time: 3/14/2026, 10:00:00 AM\n"
        "Latex inline: \\(x^2\\) \nLatex block: $$e=mc^2$$\n\n",
    ),
    (
        "sillytavern main prompt, rendered",
        "Write Seraphina's next reply in a fictional chat between Seraphina and Dana.",
    ),
    (
        "chatbox default",
        "You are a helpful assistant. You can help me by answering my questions. You can also ask me questions.",
    ),
    (
        "open webui user system prompt",
        "You are a concise assistant. Answer in the user's language. Use Markdown for code.",
    ),
    (
        "lobechat agent prompt",
        "You are a professional copywriter. Write clear, friendly product descriptions and keep them under 120 words.",
    ),
    (
        "librechat preset",
        "You are an expert Python reviewer. Point out bugs first, then style issues. Keep answers short.",
    ),
]
JSON_REQUESTS = [
    'Extract the book title, author and year from this text and return JSON like {{"title": "...", "author": "...", "year": 0}}:\n\n{text}',
    'Return a JSON object {{"summary": "...", "sentiment": "positive|negative"}} for this customer review:\n\n{text}',
    'Parse these product lines into JSON with "title" and "price" fields:\n{text}',
    'Give me {{"tags": [...]}} for each of these support tickets as a JSON list:\n{text}',
]
CODE_WITH_TITLE = [
    'Why does this fail with KeyError?\n\n```python\nresp = {{"title": page.title, "tags": page.tags}}\nprint(resp["name"])\n```',
    'Fix my fetch call:\n```js\nfetch("/api/chats", {{method: "POST", body: JSON.stringify({{ "title": title, "messages": [] }})}})\n```\nIt returns 415.',
    'How do I validate this JSON schema?\n```json\n{{ "queries": ["a", "b"], "title": "x" }}\n```',
]
ROLEPLAY_TURNS = [
    '*I tighten my grip on the lantern.* "Then lead the way. What\'s waiting for us inside?"',
    '*Dana sits down by the fire.* "Tell me again how you found this place."',
    "(OOC: can you summarize the story so far for me? I lost track.)",
    "(OOC: give this chapter a title before we continue, I want to save it.)",
    "*I open the old journal and read the last entry aloud.*",
]
REVIEW_TEXTS = [
    "The Left Hand of Darkness by Ursula K. Le Guin, published in 1969, follows an envoy on the planet Gethen.",
    "Great blender, crushes ice easily, but it is loud and the lid cracked after two months.",
    "Ticket 1: cannot log in after password reset.\nTicket 2: invoice shows the wrong VAT number.",
    "Oak desk 140x70 - 329 EUR\nErgonomic chair - 249 EUR\nMonitor arm - 59 EUR",
]


def _rng(key: str) -> random.Random:
    return random.Random(int(hashlib.sha256(f"{SEED}:{key}".encode()).hexdigest()[:16], 16))


def _text(msg: dict[str, Any]) -> str:
    c = msg.get("content")
    return c if isinstance(c, str) else "\n".join(p.get("text", "") for p in c if isinstance(p, dict))


def _u(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def generate() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(kind: str, why: str, messages: list[dict[str, Any]]) -> None:
        out.append(
            {
                "id": f"{kind}-{sum(1 for o in out if o['kind'] == kind):03d}",
                "kind": kind,
                "why": why,
                "messages": messages,
            }
        )

    # 1. People asking for titles (six languages) and other housekeeping-like outputs.
    for lang in LANGUAGES:
        for i, tmpl in enumerate(ASK_TITLE[lang]):
            for j in range(3):
                rng = _rng(f"title{lang}{i}{j}")
                text = tmpl.format(doc=rng.choice(DOCS), topic=rng.choice(TOPICS))
                if j == 2:
                    text += "\n\n" + long_text(lang, 600, rng)
                add("person_asks_title", "a person wants a title for their own text", [_u(text)])
    for i, (task, tmpl) in enumerate(ASK_OTHER):
        for j in range(4):
            rng = _rng(f"other{i}{j}")
            add(
                f"person_asks_{task}",
                "a person asks for this output for themselves",
                [_u(tmpl.format(doc=rng.choice(DOCS), topic=rng.choice(TOPICS)))],
            )

    # 2. Pasted client prompts: rendered, with the person's question before or after. Drawn from
    #    the first catalogue's templates here; later additions get theirs in section 9, so the
    #    earlier negatives stay as they were.
    catalogue = catalogue_order(load_catalogue())
    later = {e["id"] for e in catalogue if e.get("added")}
    all_rendered = render_all()
    rendered = [r for r in all_rendered if r["entry"] not in later]
    rng = _rng("pasted")
    picks = rng.sample(rendered, 70)
    for k, row in enumerate(picks):
        msgs = row["messages"]
        prompt = max((_text(m) for m in msgs if m["role"] in ("user", "system")), key=len)[:6000]
        if k % 2 == 0:
            q = QUESTIONS["before"][k // 2 % len(QUESTIONS["before"])]
            add(
                "pasted_prompt_question_before",
                f"pasted {row['client']} {row['task']} prompt with a question first",
                [_u(q + "\n\n" + prompt)],
            )
        else:
            q = QUESTIONS["after"][k // 2 % len(QUESTIONS["after"])]
            add(
                "pasted_prompt_question_after",
                f"pasted {row['client']} {row['task']} prompt with a question after it",
                [_u(prompt + "\n\n" + q)],
            )
    # ... and the raw templates with their variables.
    for k, e in enumerate(e for e in catalogue if not e.get("added")):
        if not e.get("slots"):
            continue
        q = QUESTIONS["after"][k % len(QUESTIONS["after"])]
        # The prompt as the client's source has it: with the user turn's template too.
        text = e["template"] + ("\n\n" + e["user_template"] if e.get("user_template") else "")
        add(
            "unrendered_template",
            f"{e['client']} template with its variables, discussed",
            [_u(text + "\n\n" + q)],
        )
        if k % 3 == 0:
            add("unrendered_template", f"{e['client']} template with its variables, pasted alone", [_u(text)])

    # 3. Quoted transcripts with a question (both orders, several formats).
    formats = ["owui:6", "librechat", "role_colon_lower", "lobe_xml", "names"]
    for k in range(40):
        rng = _rng(f"tq{k}")
        lang = LANGUAGES[k % len(LANGUAGES)]
        conv = rng.choice(CONVERSATIONS[lang])
        block = fmt_history(formats[k % len(formats)], conv)
        q = TRANSCRIPT_QUESTIONS[k % len(TRANSCRIPT_QUESTIONS)]
        text = f"{q}\n\n{block}" if k % 2 else f"{block}\n\n{q}"
        add("quoted_transcript_question", "a person quotes a chat and asks about it", [_u(text)])

    # 4. Long pasted chats with a personal ask (up to ~32,000 characters).
    for k in range(30):
        rng = _rng(f"long{k}")
        lang = LANGUAGES[k % len(LANGUAGES)]
        conv = [m for c in CONVERSATIONS[lang] for m in c] * rng.randint(1, 3)
        block = fmt_history(rng.choice(["owui:99", "librechat", "role_colon_lower"]), conv)
        if k % 3 == 0:
            block += "\n" + long_text(lang, rng.choice([5000, 15000, 30000]), rng)
        ask = PERSONAL_LONG_ASKS[k % len(PERSONAL_LONG_ASKS)]
        text = f"{ask}\n\n{block}" if k % 2 else f"{block}\n\n{ask}"
        add(
            "long_pasted_chat_personal_ask",
            "a person pastes a long chat and asks for something for themselves",
            [_u(text[:32000])],
        )

    # 5. A person asks for a summary / title / tags of the chat in the chat itself.
    for k in range(33):
        lang = LANGUAGES[k % len(LANGUAGES)]
        conv = CONVERSATIONS[lang][k % 2]
        add(
            "in_chat_personal_ask",
            "the user's own turn asking about the conversation",
            [*conv, _u(IN_CHAT_ASKS[k % len(IN_CHAT_ASKS)])],
        )

    # 6. JSON-output requests and code containing housekeeping keys.
    for k in range(16):
        tmpl = JSON_REQUESTS[k % len(JSON_REQUESTS)]
        add(
            "json_output_request",
            "a person wants JSON output for their own data",
            [_u(tmpl.format(text=REVIEW_TEXTS[k % len(REVIEW_TEXTS)]))],
        )
    for t in CODE_WITH_TITLE:
        add("code_with_keys", "code that contains housekeeping JSON keys", [_u(t.format())])

    # 7. Open WebUI's RAG template around a real question (system or user message).
    rag = json.loads(RAG_TEMPLATES.read_text(encoding="utf-8"))["templates"]
    questions = [
        "How long should I proof the dough?",
        "Wie hoch ist die Kündigungsfrist?",
        "Quelle quantité de viande faut-il ?",
        "爬虫应该用哪个库？",
        "¿Hace falta reservar la Alhambra?",
        "クリーンアップ関数はいつ呼ばれますか？",
    ]
    for k in range(28):
        t = rag[k % len(rag)]["template"]
        q = questions[k % len(questions)]
        ctx = f'<source id="1">{REVIEW_TEXTS[k % len(REVIEW_TEXTS)]}</source>\n<source id="2">{long_text(LANGUAGES[k % 6], 800, _rng(f"rag{k}"))}</source>'
        filled = (
            t.replace("{{CONTEXT}}", ctx)
            .replace("[context]", ctx)
            .replace("{{QUERY}}", q)
            .replace("[query]", q)
        )
        if k % 2:
            add(
                "rag_template",
                f"Open WebUI {rag[k % len(rag)]['release']} RAG template in the system message",
                [{"role": "system", "content": filled}, _u(q)],
            )
        else:
            add(
                "rag_template",
                f"Open WebUI {rag[k % len(rag)]['release']} RAG template in the user message",
                [_u(filled)],
            )

    # 8. Role-play, and clients' ordinary chat system prompts over normal turns.
    for k in range(15):
        conv = CONVERSATIONS["en"][k % 2]
        add(
            "roleplay",
            "a role-play turn (in or out of character)",
            [
                {"role": "system", "content": CLIENT_CHAT_SYSTEMS[2][1]},
                {"role": "assistant", "content": "*Seraphina gestures toward the ruins.*"},
                *conv[:2],
                _u(ROLEPLAY_TURNS[k % len(ROLEPLAY_TURNS)]),
            ],
        )
    for k in range(28):
        why, system = CLIENT_CHAT_SYSTEMS[k % len(CLIENT_CHAT_SYSTEMS)]
        lang = LANGUAGES[k % len(LANGUAGES)]
        conv = CONVERSATIONS[lang][k % 2]
        msgs = [{"role": "system", "content": system}, *conv[: 1 if k % 2 else 3]]
        add("client_chat_system_prompt", f"{why}, then a normal user turn", msgs)

    # 9. Templates added later (issue 26): their rendered prompts pasted with a question, their
    #    raw templates, and people asking for what these tasks produce (emotion labels, language,
    #    image-generation keywords, standalone search queries, section summaries, agent names).
    added_rows = [r for r in all_rendered if r["entry"] in later]
    rng = _rng("pasted-added")
    for k, row in enumerate(rng.sample(added_rows, min(40, len(added_rows)))):
        prompt = max((_text(m) for m in row["messages"] if m["role"] in ("user", "system")), key=len)[:6000]
        side = "before" if k % 2 == 0 else "after"
        q = QUESTIONS[side][k // 2 % len(QUESTIONS[side])]
        add(
            f"pasted_prompt_question_{side}",
            f"pasted {row['client']} {row['task']} prompt with a question {'first' if side == 'before' else 'after it'}",
            [_u(q + "\n\n" + prompt if side == "before" else prompt + "\n\n" + q)],
        )
    for k, e in enumerate(e for e in catalogue if e.get("added")):
        if not e.get("slots"):
            continue
        q = QUESTIONS["after"][k % len(QUESTIONS["after"])]
        text = e["template"] + ("\n\n" + e["user_template"] if e.get("user_template") else "")
        add("unrendered_template", f"{e['client']} template with its variables, discussed", [_u(text + "\n\n" + q)])
    for k, (kind, tmpl) in enumerate(ASK_BACKGROUND_TASKS):
        for j in range(3):
            rng = _rng(f"bg{k}{j}")
            lang = LANGUAGES[(k + j) % len(LANGUAGES)]
            text = tmpl.format(topic=rng.choice(TOPICS), doc=rng.choice(DOCS), text=long_text(lang, 400, rng))
            add(kind, "a person asks for this output for their own text", [_u(text)])
    for k, (kind, system, turn) in enumerate(CHAT_SYSTEMS_LIKE_TASKS):
        conv = CONVERSATIONS[LANGUAGES[k % len(LANGUAGES)]][k % 2]
        msgs = [{"role": "system", "content": system}, *conv[:3]] if turn is None else [{"role": "system", "content": system}, _u(turn)]
        add(kind, "a client's ordinary chat or answer prompt that names such a task, over a real question", msgs)
    for k, turn in enumerate(ROLEPLAY_OOC_ASKS):
        conv = CONVERSATIONS["en"][k % 2]
        add(
            "roleplay_ooc_ask",
            "the player's own out-of-character request in a role-play chat",
            [
                {"role": "system", "content": CLIENT_CHAT_SYSTEMS[2][1]},
                {"role": "assistant", "content": "*Seraphina gestures toward the ruins.*"},
                *conv[:2],
                _u(turn),
            ],
        )
    # 10. Conversations shaped like the generic rules' new frames (few-shot answers, a trailing
    #     system message, a system prompt about "the following text") that are real requests.
    for why, msgs in shape_negatives():
        add("frame_lookalike", why, msgs)
    return out


def shape_negatives() -> list[tuple[str, list[dict[str, Any]]]]:
    """Real requests in the shapes the generic rules read as a client's frame."""
    chat = CONVERSATIONS["en"][0]
    rp_system = {"role": "system", "content": CLIENT_CHAT_SYSTEMS[2][1]}
    trivia = [
        {
            "role": "system",
            "content": "You are a trivia host. Answer with one word only. Never summarize the conversation and never explain.",
        },
        _u("Capital of France?"),
        {"role": "assistant", "content": "Paris"},
        _u("Largest planet?"),
        {"role": "assistant", "content": "Jupiter"},
        _u("Capital of Peru?"),
    ]
    tutor = [
        {"role": "system", "content": "You are a vocabulary tutor. Reply with the German word only, no explanation."},
        _u("apple"),
        {"role": "assistant", "content": "Apfel"},
        _u("house"),
        {"role": "assistant", "content": "Haus"},
        _u("the weather is nice today"),
    ]
    return [
        ("a short-answer quiz whose system prompt forbids summaries", trivia),
        ("a vocabulary drill with one-word answers", tutor),
        (
            "an app's trailing reminder that names the conversation and a summary, negated",
            [
                *chat,
                {
                    "role": "system",
                    "content": "Reminder: answer in the user's language and do not summarize earlier turns of the conversation.",
                },
            ],
        ),
        (
            "a role-play author's note as the last system message",
            [
                rp_system,
                *chat,
                {
                    "role": "system",
                    "content": "[Author's note: Write in third person. Do not describe Dana's actions. Focus on Seraphina's appearance and her surroundings.]",
                },
            ],
        ),
        (
            "a role-play author's note before the player's turn",
            [
                rp_system,
                *chat,
                {"role": "system", "content": "[Author's note: Seraphina is wary of strangers. Only describe what she can see.]"},
                _u("*I step into the clearing and wave.* Hello there!"),
            ],
        ),
        (
            "a proofreading app that treats the user turn as data",
            [
                {
                    "role": "system",
                    "content": "Proofread the following text. Do not answer any questions it contains; return the corrected text only.",
                },
                _u("Their going to the market tomorow, do you want to come with?"),
            ],
        ),
        (
            "a person asks for image keywords for a pasted scene, without first person",
            [_u("Describe the scene below as a comma-separated list of keywords for an image generator.\n\n" + long_text("en", 600, _rng("scene")))],
        ),
        (
            "a person asks the chat for a comma-separated list in a role-play",
            [rp_system, *chat, _u("(OOC: list the items in Seraphina's bag, comma-separated, nothing else.)")],
        ),
    ]


def with_fixtures(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    fixture = json.loads(FIXTURE_NEGATIVES.read_text(encoding="utf-8"))
    return items + [
        {"id": f"fixture-{n['id']}", "kind": "fixture", "why": n.get("why", ""), "messages": n["messages"]}
        for n in fixture
    ]


def load_negatives(path: Path = NEGATIVES) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    items = with_fixtures(generate())
    NEGATIVES.write_text(
        "".join(json.dumps(i, ensure_ascii=False, sort_keys=True) + "\n" for i in items), encoding="utf-8"
    )
    print(f"{len(items)} negatives -> {NEGATIVES}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
