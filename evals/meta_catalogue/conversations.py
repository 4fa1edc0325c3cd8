# ruff: noqa: E501  (sample texts and prompt building blocks are data)
"""Sample conversations (written for this catalogue) in six languages, and a long-text builder.

Each conversation is a list of ``{"role", "content"}`` messages that starts with a user turn
and ends with an assistant turn. The renderer and the negatives generator draw from here.
"""

from __future__ import annotations

import random
from typing import Any

LANGUAGES = ("en", "de", "fr", "zh", "es", "ja")

LANGUAGE_NAMES = {
    "en": "English",
    "de": "Deutsch",
    "fr": "Français",
    "zh": "简体中文",
    "es": "Español",
    "ja": "日本語",
}
LOCALES = {"en": "en-US", "de": "de-DE", "fr": "fr-FR", "zh": "zh-CN", "es": "es-ES", "ja": "ja-JP"}


def _conv(*turns: str) -> list[dict[str, str]]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]


CONVERSATIONS: dict[str, list[list[dict[str, str]]]] = {
    "en": [
        _conv(
            "My sourdough starter has been sluggish since I started keeping it in the fridge. How do I get it active again?",
            "Take it out and feed it at room temperature twice a day for two or three days, at a 1:2:2 ratio. "
            "A little whole-grain rye helps. Once it doubles within 4-6 hours of feeding, it is ready.",
            "Can I bake tomorrow morning if I feed it tonight?",
            "Probably not at full strength. Do a late feed at 1:5:5 so it peaks in the morning, and add a pinch of instant yeast as insurance.",
        ),
        _conv(
            "What's the difference between asyncio.gather and asyncio.TaskGroup in Python 3.11?",
            "Both run coroutines concurrently. gather returns results in order and keeps other tasks running when one fails; "
            "TaskGroup cancels the remaining tasks and raises an ExceptionGroup.",
            "So how do I catch just the ValueErrors from a TaskGroup?",
            "Use except* ValueError as eg: and iterate over eg.exceptions. Other exception types are re-raised automatically.",
        ),
    ],
    "de": [
        _conv(
            "Wir fahren im Mai für eine Woche nach Südtirol. Welche Wanderungen eignen sich mit zwei Kindern (6 und 9)?",
            "Gut geeignet sind der Seiser-Alm-Rundweg, der Waalweg bei Meran und die Drei-Zinnen-Runde, falls die Hütten schon offen sind. "
            "Plant kurze Etappen von 6 bis 8 Kilometern ein.",
            "Und was machen wir, wenn es regnet?",
            "Das Naturmuseum in Bozen mit dem Ötzi, die Therme Meran oder ein Besuch auf einem Bauernhof mit Käserei.",
        ),
        _conv(
            "Wie kündige ich meinen Handyvertrag fristgerecht, wenn die Mindestlaufzeit im Juli endet?",
            "Nach der Mindestlaufzeit gilt eine Kündigungsfrist von einem Monat. Schicke die Kündigung schriftlich oder über den Kündigungsbutton auf der Website "
            "und lass dir den Eingang bestätigen.",
            "Brauche ich dafür die Kundennummer?",
            "Ja, gib Kundennummer, Rufnummer und das gewünschte Vertragsende an. Ohne Kundennummer dauert die Zuordnung länger.",
        ),
    ],
    "fr": [
        _conv(
            "Je voudrais préparer une blanquette de veau pour six personnes dimanche. Combien de viande faut-il prévoir ?",
            "Comptez environ 200 à 250 g de viande par personne, soit 1,2 à 1,5 kg d'épaule ou de tendron. "
            "Prévoyez aussi des champignons, des carottes et des oignons grelots.",
            "Est-ce que je peux la préparer la veille ?",
            "Oui, elle est même meilleure réchauffée. Ajoutez la crème et le jaune d'œuf seulement au moment de servir.",
        ),
        _conv(
            "Mon script Bash échoue avec « permission denied » alors que le fichier existe. Pourquoi ?",
            "Le fichier n'est probablement pas exécutable. Lancez chmod +x script.sh ou exécutez-le avec bash script.sh.",
            "Et si le disque est monté en noexec ?",
            "Alors seul bash script.sh fonctionnera, ou il faudra remonter la partition sans l'option noexec.",
        ),
    ],
    "zh": [
        _conv(
            "我想学习用 Python 写一个网页爬虫，应该从哪里开始？",
            "建议先掌握 requests 和 BeautifulSoup 这两个库，从抓取静态网页开始，再学习处理分页、请求头和反爬机制。",
            "如果网页是用 JavaScript 动态加载的怎么办？",
            "可以使用 Playwright 或 Selenium 渲染页面，或者在浏览器开发者工具里找到接口直接请求 JSON 数据。",
        ),
        _conv(
            "下周要去成都出差三天，有什么必吃的美食推荐吗？",
            "可以试试火锅、串串香、钟水饺、龙抄手和甜水面，晚上去玉林路或者建设路小吃街逛一逛。",
            "不太能吃辣怎么办？",
            "点火锅时选鸳鸯锅或者清汤锅底，其他小吃可以跟店家说少辣或者不要辣。",
        ),
    ],
    "es": [
        _conv(
            "¿Cómo puedo mejorar la batería de mi portátil con Windows 11?",
            "Activa el modo de ahorro de energía, baja el brillo de la pantalla, revisa qué aplicaciones se ejecutan en segundo plano "
            "y desactiva el Bluetooth cuando no lo uses.",
            "¿Vale la pena calibrar la batería?",
            "En baterías de litio modernas no es necesario; basta con evitar descargas completas frecuentes y el calor excesivo.",
        ),
        _conv(
            "Estoy planeando un viaje de diez días por Andalucía en octubre. ¿Qué ruta me recomiendas?",
            "Sevilla tres días, Córdoba uno, Granada dos con la Alhambra, y luego Ronda y la costa de Cádiz el resto del tiempo.",
            "¿Hace falta reservar la Alhambra con antelación?",
            "Sí, las entradas para los Palacios Nazaríes se agotan semanas antes; resérvalas en la web oficial en cuanto tengas fechas.",
        ),
    ],
    "ja": [
        _conv(
            "来月から在宅勤務になります。集中力を保つコツはありますか？",
            "始業と終業の時間を決め、仕事専用のスペースを作りましょう。ポモドーロ・テクニックで25分ごとに短い休憩を入れるのも効果的です。",
            "昼食後に眠くなるのはどうすればいいですか？",
            "昼食を軽めにして、食後に10分ほど散歩すると眠気が和らぎます。",
        ),
        _conv(
            "React の useEffect のクリーンアップ関数はいつ実行されますか？",
            "コンポーネントのアンマウント時と、依存配列の値が変わって次のエフェクトが実行される直前に呼ばれます。",
            "WebSocket の接続を閉じるのに使えますか？",
            "はい、クリーンアップ関数の中で socket.close() を呼ぶのが一般的な方法です。",
        ),
    ],
}

#: Sentences used to build long pasted texts (a document the user pasted into the chat).
_LONG_SENTENCES = {
    "en": [
        "The quarterly report shows that revenue grew by eight percent compared with the previous quarter.",
        "Customer churn decreased after the support team introduced weekend shifts.",
        "The migration of the billing service to the new cluster is scheduled for the second week of May.",
        "Several teams reported that the staging environment was unavailable for two days.",
        "Marketing expects the spring campaign to bring in about four thousand new trial accounts.",
        "The hiring plan includes two backend engineers and one designer.",
    ],
    "de": [
        "Der Quartalsbericht zeigt, dass der Umsatz im Vergleich zum Vorquartal um acht Prozent gestiegen ist.",
        "Die Abwanderung der Kunden ging zurück, nachdem der Support Wochenendschichten eingeführt hatte.",
        "Die Umstellung des Abrechnungsdienstes auf den neuen Cluster ist für die zweite Maiwoche geplant.",
        "Mehrere Teams meldeten, dass die Testumgebung zwei Tage lang nicht erreichbar war.",
    ],
    "fr": [
        "Le rapport trimestriel montre que le chiffre d'affaires a progressé de huit pour cent par rapport au trimestre précédent.",
        "Le taux de résiliation a baissé après la mise en place de permanences le week-end.",
        "La migration du service de facturation vers le nouveau cluster est prévue pour la deuxième semaine de mai.",
        "Plusieurs équipes ont signalé que l'environnement de test était indisponible pendant deux jours.",
    ],
    "zh": [
        "季度报告显示，与上一季度相比，收入增长了百分之八。",
        "客服团队开始周末值班后，客户流失率有所下降。",
        "计费服务迁移到新集群的工作计划在五月第二周进行。",
        "有几个团队反映测试环境连续两天无法访问。",
    ],
    "es": [
        "El informe trimestral muestra que los ingresos crecieron un ocho por ciento respecto al trimestre anterior.",
        "La tasa de abandono de clientes bajó después de que el equipo de soporte introdujera turnos de fin de semana.",
        "La migración del servicio de facturación al nuevo clúster está prevista para la segunda semana de mayo.",
        "Varios equipos informaron de que el entorno de pruebas no estuvo disponible durante dos días.",
    ],
    "ja": [
        "四半期報告書によると、売上高は前四半期と比べて8パーセント増加しました。",
        "サポートチームが週末のシフトを導入してから、顧客の解約率が下がりました。",
        "請求サービスの新しいクラスタへの移行は5月の第2週に予定されています。",
        "いくつかのチームから、ステージング環境が2日間利用できなかったという報告がありました。",
    ],
}

_LONG_ASK = {
    "en": "Here are my notes from the last months, can you turn them into a short status update?\n\n",
    "de": "Hier sind meine Notizen der letzten Monate, kannst du daraus ein kurzes Status-Update machen?\n\n",
    "fr": "Voici mes notes des derniers mois, peux-tu en faire un court point d'étape ?\n\n",
    "zh": "这是我过去几个月的笔记，能帮我整理成一份简短的进度汇报吗？\n\n",
    "es": "Aquí están mis notas de los últimos meses, ¿puedes convertirlas en un breve informe de estado?\n\n",
    "ja": "これはここ数か月のメモです。短い進捗報告にまとめてもらえますか？\n\n",
}
_LONG_ANSWER = {
    "en": "Status update: revenue is up 8%, churn is down, the billing migration is planned for May, and staging had a two-day outage.",
    "de": "Status: Umsatz plus 8 %, weniger Abwanderung, Umzug der Abrechnung im Mai, zwei Tage Ausfall der Testumgebung.",
    "fr": "Point d'étape : chiffre d'affaires +8 %, moins de résiliations, migration de la facturation en mai, deux jours de panne en test.",
    "zh": "进度汇报：收入增长8%，客户流失下降，计费迁移定于五月，测试环境曾中断两天。",
    "es": "Informe: ingresos +8 %, menos abandonos, migración de facturación en mayo y dos días sin entorno de pruebas.",
    "ja": "進捗報告：売上は8%増、解約率は低下、請求サービスの移行は5月予定、ステージング環境は2日間停止しました。",
}


def long_text(lang: str, chars: int, rng: random.Random) -> str:
    """A pasted document of about ``chars`` characters in ``lang`` (seeded shuffle of sentences)."""
    sentences = _LONG_SENTENCES[lang]
    out: list[str] = []
    size = 0
    n = 0
    while size < chars:
        s = sentences[rng.randrange(len(sentences))]
        n += 1
        line = f"{n}. {s}"
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)[:chars]


def conversation(lang: str, index: int, length: str, rng: random.Random) -> list[dict[str, str]]:
    """A conversation in ``lang``: ``short`` (2 or 4 messages) or ``long`` (a ~30,000-character paste first)."""
    base = [dict(m) for m in CONVERSATIONS[lang][index % len(CONVERSATIONS[lang])]]
    if length == "short":
        return base[:2] if rng.random() < 0.4 else base
    paste = _LONG_ASK[lang] + long_text(lang, 30000, rng)
    return [*base, {"role": "user", "content": paste}, {"role": "assistant", "content": _LONG_ANSWER[lang]}]


def strip_code(text: str) -> str:
    """Continue removes code blocks from the message it describes."""
    import re

    return re.sub(r"```.*?```", "", text, flags=re.S).strip()


def all_texts() -> list[Any]:
    return [m["content"] for convs in CONVERSATIONS.values() for c in convs for m in c]
