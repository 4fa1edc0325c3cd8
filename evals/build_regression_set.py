# ruff: noqa: E501 - the prompts are data, one per line, so a review reads them as a list
"""Write the routing regression set, `evals/datasets/routing_regression.jsonl`.

    python -m evals.build_regression_set [--out evals/datasets/routing_regression.jsonl]

Every row is a LangSmith example (`inputs.messages`, `outputs.route`, `metadata` with its
id, category and source). Sources, listed in `evals/datasets/SOURCES.md` too:

* prompts written by hand for this set (this file, public domain like the rest of the repo);
* the client housekeeping prompts in `tests/fixtures/meta_prompts/*.json`, rendered from the
  templates of Open WebUI, LibreChat, LobeChat, Chatbox, Continue, NextChat and SillyTavern
  (each file names its upstream source; those projects are MIT/BSD/AGPL-licensed and only
  short prompt templates are quoted) → META;
* requests with an image part, written by hand → VISION;
* `tests/fixtures/meta_prompts/negatives.json`: people's own requests that look like
  housekeeping prompts (a title for my essay, tags for my listing) → labelled by hand here.

The output is deterministic: running the script twice gives the same file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "meta_prompts"
DEFAULT_OUT = Path(__file__).resolve().parent / "datasets" / "routing_regression.jsonl"
HAND = "hand-written (evals/build_regression_set.py)"

SIMPLE = {
    "greeting": [
        "hi",
        "hello!",
        "hey there",
        "good morning",
        "hi, how are you?",
        "hello, who are you?",
        "thanks!",
        "thank you so much",
        "thanks, that helped",
        "ok cool",
        "bye for now",
        "good night",
        "yo",
        "hey, what's up?",
        "nice to meet you",
        "you're awesome",
        "cheers",
        "lol",
    ],
    "trivial_fact": [
        "What is the capital of France?",
        "How many days are in a leap year?",
        "What's 12 times 8?",
        "What is 15% of 200?",
        "Who wrote Romeo and Juliet?",
        "What colour do you get mixing blue and yellow?",
        "How many legs does a spider have?",
        "What is the boiling point of water in Fahrenheit?",
        "Spell 'necessary' for me.",
        "What's the plural of 'mouse'?",
        "Convert 5 km to miles.",
        "How many minutes are in 3 hours?",
        "What is the chemical symbol for gold?",
        "What's the opposite of 'ancient'?",
        "Is a tomato a fruit?",
        "What is 2 + 2?",
        "How many continents are there?",
        "What's the square root of 81?",
        "Translate 'thank you' into Spanish.",
        "Which planet is closest to the sun?",
        "What does CPU stand for?",
        "How many sides does a hexagon have?",
    ],
    "multilingual_greeting": [
        "hola",
        "bonjour !",
        "hallo, wie geht's?",
        "ciao",
        "こんにちは",
        "你好",
        "obrigado!",
        "merci beaucoup",
    ],
}

MODERATE = {
    "coding": [
        "Write a Python function that removes duplicates from a list while keeping the order.",
        "Why does my JavaScript fetch call return a pending Promise instead of the data?",
        "Explain the difference between a process and a thread.",
        "Refactor this function to use a dict instead of the if/elif chain:\n\ndef f(x):\n    if x == 'a':\n"
        "        return 1\n    elif x == 'b':\n        return 2\n    else:\n        return 0",
        "How do I undo the last git commit but keep the changes?",
        "Write a SQL query that returns the top 5 customers by total order value.",
        'What\'s wrong with this Rust code? `let s = String::from("hi"); let t = s; println!("{}", s);`',
        "Write a bash one-liner that counts lines in all .py files recursively.",
        "How do I make a FastAPI endpoint accept a JSON body with optional fields?",
        "Convert this callback-style Node code to async/await.",
        "Explain Python's GIL and when multiprocessing beats threading.",
        "Write unit tests with pytest for a function that parses ISO dates.",
        "Why is my Docker image 2 GB and how can I make it smaller?",
        "Write a regex that matches a UK postcode.",
        "How do I center a div horizontally and vertically with CSS grid?",
        "Explain what a race condition is with a small Go example.",
        "Write a GitHub Actions workflow that runs pytest on Python 3.11 and 3.12.",
        "How do I profile a slow Python script?",
        "Explain the difference between TCP and UDP with use cases.",
        "Implement binary search in TypeScript.",
        "What does `yield` do in Python? Show an example.",
        "Help me debug: pandas says 'SettingWithCopyWarning' when I assign to a filtered frame.",
        "Write a Dockerfile for a small Flask app.",
        "How do I read a large CSV in chunks with pandas?",
        "Explain Big-O of quicksort in the average and worst case.",
        "Write a Kubernetes Deployment manifest with 3 replicas of nginx.",
        "How should I structure a React app with routing and a shared auth context?",
        "Write a C function that reverses a string in place.",
        "What is dependency injection and why would I use it?",
    ],
    "writing": [
        "Write a polite email declining a meeting invitation.",
        "Rewrite this paragraph to sound more professional: 'hey guys, the thing is broken again, pls fix asap'.",
        "Draft a cover letter for a junior data analyst position.",
        "Write a short poem about autumn rain.",
        "Proofread: 'Their going to the park tomorow, weather or not it rains.'",
        "Write a product description for a bamboo toothbrush.",
        "Give me a 3-day itinerary for a first trip to Lisbon.",
        "Write a toast for my sister's wedding, warm and a bit funny.",
        "Summarise the plot of Pride and Prejudice in five sentences.",
        "Write a LinkedIn post announcing that I started a new job as a nurse.",
        "Make this sentence shorter: 'In light of the fact that we are currently experiencing delays, we would like to "
        "inform you that shipments may arrive later than originally anticipated.'",
        "Write a bedtime story about a dragon who is afraid of the dark.",
    ],
    "analysis": [
        "Compare renting versus buying a home for someone who might move in 3 years.",
        "What are the pros and cons of microservices versus a monolith for a 5-person team?",
        "Explain how compound interest works with an example.",
        "Why did the Roman Empire fall? Give the main theories.",
        "Explain how vaccines train the immune system.",
        "What is the difference between correlation and causation? Give an example.",
        "Help me plan a weekly budget on a 2,500 dollar monthly income.",
        "Explain TCP slow start and congestion avoidance.",
        "What are the main causes of inflation?",
        "Explain the CAP theorem in distributed systems with practical examples.",
        "How does a transformer neural network use attention?",
        "Explain the difference between stocks and bonds for a beginner.",
        "Create a study plan to learn linear algebra in 8 weeks.",
        "Outline a marketing plan for a small coffee shop.",
        "Explain how photosynthesis works step by step.",
        "What should I consider when choosing between PostgreSQL and MongoDB?",
        "Explain why the sky is blue.",
        "Give me a workout plan for building strength three days a week.",
        "Summarise the main arguments for and against a four-day work week.",
        "How does public-key cryptography work?",
        "Explain the Monty Hall problem and why switching is better.",
        "What is the difference between machine learning and deep learning?",
    ],
}

COMPLEX = {
    "research_math": [
        "Prove that there are infinitely many primes of the form 4k+3.",
        "Prove the Cauchy-Schwarz inequality for inner product spaces and state when equality holds.",
        "Derive the closed form of the sum of 1/n^2 using Fourier series.",
        "Prove that every finite integral domain is a field, then generalise to finite rings without zero divisors.",
        "Show that the fundamental group of the circle is isomorphic to Z, with a covering-space argument.",
        "Prove the spectral theorem for compact self-adjoint operators on a Hilbert space.",
        "Is the Collatz conjecture known to hold for almost all integers in some sense? Explain Tao's 2019 result.",
        "Prove that a continuous function on a compact metric space is uniformly continuous.",
        "Derive the Black-Scholes PDE from a delta-hedging argument and solve it for a European call.",
        "Give a proof sketch of the prime number theorem via the non-vanishing of zeta on Re(s)=1.",
        "Prove that the set of real numbers is uncountable and that the Cantor set has the same cardinality.",
        "Find all entire functions f with |f(z)| <= |z|^2 + 1 for all z, and prove your answer.",
        "Prove that A5 is simple and explain why this implies the general quintic is not solvable by radicals.",
        "Construct a non-measurable subset of R and explain exactly where the axiom of choice is used.",
        "Prove the Banach fixed-point theorem and use it to show existence and uniqueness for an ODE (Picard-Lindelof).",
        "Characterise the graphs whose adjacency matrix has exactly two distinct eigenvalues, with proof.",
        "Prove that the halting problem is undecidable and reduce it to Hilbert's tenth problem at a high level.",
        "Show that every planar graph is 5-colourable.",
        "Evaluate the integral of exp(-x^2) cos(ax) over the real line and justify each step.",
        "Prove that the Riemann zeta function has a meromorphic continuation to the whole complex plane.",
    ],
    "research_science": [
        "Derive the Schwarzschild metric from Einstein's field equations in vacuum with spherical symmetry.",
        "Explain the Aharonov-Bohm effect and derive the phase shift from the vector potential.",
        "Derive the BCS gap equation and the ratio 2Δ/kTc ≈ 3.53 in the weak-coupling limit.",
        "Design a randomised controlled trial with adaptive allocation for a rare disease with 60 patients, "
        "and justify the statistical analysis plan.",
        "Derive the renormalisation group flow of the phi^4 coupling at one loop in 4 - epsilon dimensions.",
        "Explain why the Navier-Stokes existence and smoothness problem is hard, and what is known in 2D versus 3D.",
        "Derive the Boltzmann H-theorem and discuss Loschmidt's reversibility objection.",
        "Propose a novel experiment to distinguish between dark matter models using galaxy rotation curves and "
        "lensing data.",
        "Derive the Shockley-Queisser limit for a single-junction solar cell.",
        "Explain the mechanism of CRISPR-Cas9 off-target effects and design a strategy to quantify them genome-wide.",
        "Derive the Kalman filter equations from Bayesian estimation with Gaussian noise.",
        "Explain the measurement problem in quantum mechanics and compare decoherence, many-worlds and "
        "objective-collapse accounts quantitatively where possible.",
        "Derive the Friedmann equations from general relativity for a homogeneous isotropic universe.",
        "Estimate the critical exponent nu of the 3D Ising model with a real-space renormalisation scheme.",
        "Formulate the variational principle of density functional theory and prove the Hohenberg-Kohn theorems.",
        "Analyse the stability of the Lotka-Volterra system with logistic prey growth, including a Hopf bifurcation.",
        "Derive the Einstein coefficients relation and use it to explain why lasers need population inversion.",
        "Prove that quantum teleportation cannot transmit information faster than light using the no-signalling theorem.",
    ],
    "expert_reasoning": [
        "Design a lock-free multi-producer multi-consumer queue in C++ and prove it is linearizable.",
        "Design a consensus protocol tolerant to f Byzantine faults with 3f+1 nodes and argue its safety and liveness.",
        "Give a formal proof that this sorting network of 19 comparators sorts all 8-element inputs, "
        "using the 0-1 principle.",
        "Derive the optimal bidding strategy in a first-price sealed-bid auction with n bidders and uniform values.",
        "Design a novel cache-replacement policy for a CDN with heavy-tailed object sizes and prove a competitive "
        "ratio bound.",
        "Prove that 3-SAT is NP-complete via a reduction from circuit satisfiability, with all gadgets.",
        "Derive the information-theoretic lower bound for comparison-based sorting and show merge sort matches it.",
        "Construct a zero-knowledge proof for graph 3-colourability and prove soundness and zero-knowledge.",
        "Analyse the convergence rate of Adam on non-convex objectives and explain the counterexample of Reddi et al.",
        "Solve the Bellman equation for an infinite-horizon linear-quadratic regulator and derive the Riccati equation.",
        "Is there a polynomial-time algorithm for graph isomorphism? Explain Babai's quasipolynomial result and "
        "its key combinatorial ideas.",
        "Design a type system for a language with effect handlers and prove progress and preservation.",
        "Derive the dual of a support vector machine with soft margins and explain the KKT conditions.",
    ],
}

ENRICH = {
    "news": [
        "What's the latest news on the EU AI Act?",
        "Any news about SpaceX's next Starship launch?",
        "What happened in the stock market today?",
        "What are today's top headlines in Germany?",
        "Summarise this week's news about OpenAI.",
        "What's going on with the railway strike this week?",
        "Who won the election in the Netherlands yesterday?",
        "What's the current situation in the Red Sea shipping lanes?",
        "Is there any breaking news about the earthquake in Japan?",
        "What did the Fed announce at its last meeting?",
    ],
    "prices": [
        "What's the price of bitcoin right now?",
        "What is the current EUR to USD exchange rate?",
        "How much is an ounce of gold today?",
        "What's Nvidia's stock price?",
        "Current price of Brent crude oil?",
        "How much does a Tesla Model 3 cost in Germany now?",
        "What's the price of ethereum today?",
        "What are petrol prices in the UK this week?",
        "How much is the RTX 5090 selling for at the moment?",
        "What's the current mortgage rate in the US for a 30-year fixed loan?",
    ],
    "sports": [
        "Who won the Champions League match last night?",
        "What's the score of the Lakers game?",
        "Current Premier League table?",
        "Did Verstappen win the last Grand Prix?",
        "When is the next Wimbledon final and who's playing?",
        "Latest transfer rumours for Barcelona?",
        "How did India do in today's cricket match?",
        "What's the current NBA MVP race looking like?",
        "Who's leading the Tour de France today?",
        "What was the final score of the Super Bowl this year?",
    ],
    "weather": [
        "What's the weather in Oslo today?",
        "Will it rain in London tomorrow?",
        "Weather forecast for Tokyo this weekend?",
        "Is there a storm warning for Florida right now?",
        "How hot is it in Phoenix at the moment?",
        "Is it snowing in Denver today?",
        "What's the air quality in Delhi right now?",
        "Do I need an umbrella in Paris this afternoon?",
    ],
    "versions": [
        "What's the latest version of Python?",
        "What is the latest stable release of the Linux kernel?",
        "What's the newest version of Kubernetes and what changed?",
        "Latest version of Node.js LTS?",
        "What's new in the most recent PostgreSQL release?",
        "What is the current version of React?",
        "Has vLLM released a new version this month?",
        "What's the latest iPhone model?",
        "Which is the newest Qwen model released?",
        "Is there a new version of Open WebUI out?",
    ],
    "realtime_other": [
        "Is Heathrow airport operating normally right now?",
        "What time is it in Sydney right now?",
        "Are there any open restaurants near Times Square right now?",
        "What's trending on X today?",
        "Is GitHub down at the moment?",
        "What movies are playing in cinemas this week?",
        "Which flights from Berlin to Rome are delayed today?",
        "What's the current population of Lagos?",
        "Who is the current prime minister of Japan?",
        "How many people follow MrBeast on YouTube now?",
        "What are the opening hours of the Louvre this Sunday?",
        "Did the Artemis mission launch yet?",
        "What's the wait time at Disneyland right now?",
        "Which countries have reported bird flu cases this month?",
    ],
}

# Hard cases: the need for fresh data (or the real route) is only in the history.
FOLLOW_UPS: list[tuple[str, list[dict[str, str]], str]] = [
    (
        "and_today_weather",
        [
            {"role": "user", "content": "What was the weather like in Berlin yesterday?"},
            {
                "role": "assistant",
                "content": "Yesterday Berlin was cloudy with highs around 12°C and light rain.",
            },
            {"role": "user", "content": "and today?"},
        ],
        "ENRICH",
    ),
    (
        "and_today_price",
        [
            {"role": "user", "content": "What was the bitcoin price at the start of the month?"},
            {"role": "assistant", "content": "It opened the month at roughly 61,000 USD."},
            {"role": "user", "content": "And now?"},
        ],
        "ENRICH",
    ),
    (
        "and_in_euros",
        [
            {"role": "user", "content": "How much is gold per ounce right now?"},
            {"role": "assistant", "content": "About 2,400 USD per ounce at the last quote I found."},
            {"role": "user", "content": "in euros?"},
        ],
        "ENRICH",
    ),
    (
        "who_won_then",
        [
            {"role": "user", "content": "Is Arsenal playing Chelsea tonight?"},
            {"role": "assistant", "content": "Yes, kick-off is at 20:00 local time."},
            {"role": "user", "content": "Who won?"},
        ],
        "ENRICH",
    ),
    (
        "any_update",
        [
            {"role": "user", "content": "What's the status of the wildfire near Los Angeles?"},
            {"role": "assistant", "content": "As of this morning it was 40% contained."},
            {"role": "user", "content": "any update?"},
        ],
        "ENRICH",
    ),
    (
        "what_about_version",
        [
            {"role": "user", "content": "How do I install FastAPI?"},
            {"role": "assistant", "content": "Run `pip install fastapi uvicorn`."},
            {"role": "user", "content": "what's the newest release of it?"},
        ],
        "ENRICH",
    ),
    (
        "thanks_after_news",
        [
            {"role": "user", "content": "What's the latest news about the Mars sample return mission?"},
            {"role": "assistant", "content": "NASA announced a revised plan last week."},
            {"role": "user", "content": "thanks!"},
        ],
        "SIMPLE",
    ),
    (
        "explain_simply_after_proof",
        [
            {"role": "user", "content": "Prove that the square root of 2 is irrational."},
            {"role": "assistant", "content": "Assume sqrt(2) = p/q in lowest terms; then p^2 = 2q^2 ..."},
            {"role": "user", "content": "Can you explain that like I'm twelve?"},
        ],
        "MODERATE",
    ),
    (
        "now_generalise",
        [
            {"role": "user", "content": "Prove that there is no largest prime."},
            {"role": "assistant", "content": "Suppose p1..pn are all the primes; consider p1*...*pn + 1 ..."},
            {
                "role": "user",
                "content": "Now prove Dirichlet's theorem on primes in arithmetic progressions in full.",
            },
        ],
        "COMPLEX",
    ),
    (
        "make_it_faster",
        [
            {"role": "user", "content": "Write a Python function that checks if a number is prime."},
            {
                "role": "assistant",
                "content": "def is_prime(n): return n > 1 and all(n % d for d in range(2, n))",
            },
            {"role": "user", "content": "make it faster"},
        ],
        "MODERATE",
    ),
    (
        "same_for_tomorrow",
        [
            {"role": "user", "content": "Will it rain in Seattle today?"},
            {"role": "assistant", "content": "Showers are expected this afternoon."},
            {"role": "user", "content": "same question for tomorrow"},
        ],
        "ENRICH",
    ),
    (
        "tldr",
        [
            {"role": "user", "content": "Explain how HTTPS certificates are validated."},
            {
                "role": "assistant",
                "content": "The browser checks the chain up to a trusted root, the hostname, expiry...",
            },
            {"role": "user", "content": "tl;dr?"},
        ],
        "MODERATE",
    ),
]

# Requests with an image part: routed VISION by rule, whatever the text asks.
TINY_PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
VISION_ASKS = [
    "What's in this picture?",
    "Transcribe the text in this screenshot.",
    "Is this mole something I should get checked? Describe what you see.",
    "What is the latest price of the product in this photo?",  # needs fresh data too, but the image decides
]

# Labels for the look-alike requests in negatives.json (not META: a person's own ask).
NEGATIVE_ROUTES = {
    "emoji_facial_expression": "SIMPLE",
    "single_owui_instruction_line": "SIMPLE",
    "chinese_title_request": "MODERATE",
    "image_with_title_question": "VISION",  # an image part goes to the VISION route by rule
}


def example(
    example_id: str,
    messages: list[dict[str, Any]],
    route: str,
    category: str,
    source: str,
    hard: bool = False,
    note: str | None = None,
) -> dict[str, Any]:
    """One LangSmith example row."""
    metadata: dict[str, Any] = {
        "example_id": example_id,
        "category": category,
        "source": source,
        "hard_case": hard,
    }
    if note:
        metadata["note"] = note
    return {"inputs": {"messages": messages}, "outputs": {"route": route}, "metadata": metadata}


def build_rows() -> list[dict[str, Any]]:
    """Every row of the regression set, in a stable order."""
    rows: list[dict[str, Any]] = []
    for route, groups in (
        ("SIMPLE", SIMPLE),
        ("MODERATE", MODERATE),
        ("COMPLEX", COMPLEX),
        ("ENRICH", ENRICH),
    ):
        for category, prompts in groups.items():
            for index, prompt in enumerate(prompts, 1):
                rows.append(
                    example(
                        f"{route.lower()}-{category}-{index:03d}",
                        [{"role": "user", "content": prompt}],
                        route,
                        category,
                        HAND,
                    )
                )
    for name, messages, route in FOLLOW_UPS:
        rows.append(
            example(
                f"followup-{name}",
                messages,
                route,
                "follow_up",
                HAND,
                hard=True,
                note="the route depends on the history, not the last message alone",
            )
        )
    for index, ask in enumerate(VISION_ASKS, 1):
        content = [{"type": "text", "text": ask}, {"type": "image_url", "image_url": {"url": TINY_PNG}}]
        rows.append(
            example(
                f"vision-image-{index:03d}", [{"role": "user", "content": content}], "VISION", "image", HAND
            )
        )
    for path in sorted(FIXTURES.glob("*.json")):
        if path.name == "negatives.json":
            continue
        fixture = json.loads(path.read_text())
        rows.append(
            example(
                f"meta-{path.stem}",
                fixture["messages"],
                "META",
                f"meta_{fixture['task']}",
                f"{fixture['source']} (via tests/fixtures/meta_prompts/{path.name})",
            )
        )
    for case in json.loads((FIXTURES / "negatives.json").read_text()):
        route = NEGATIVE_ROUTES.get(case["id"], "MODERATE")
        rows.append(
            example(
                f"lookalike-{case['id']}",
                case["messages"],
                route,
                "meta_lookalike",
                f"{HAND}; prompt from tests/fixtures/meta_prompts/negatives.json",
                hard=True,
                note=case.get("why"),
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Write the regression set and print how many rows each route has."""
    parser = argparse.ArgumentParser(
        prog="python -m evals.build_regression_set",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    rows = build_rows()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["outputs"]["route"]] = counts.get(row["outputs"]["route"], 0) + 1
    print(f"wrote {len(rows)} examples to {args.out}: {counts}")  # noqa: T201 - a command's report
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
