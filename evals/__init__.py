"""Evals over the router's own traffic: datasets, replay, evaluators, reports and the review loop.

The loop: use → session records (`logs/sessions`) → a dataset (`evals.build_dataset`) →
a replay through the current graph (`evals.replay`) judged by `evals.evaluators` →
a report (`evals.report`, `python -m evals.run`) → a review with proposed prompt edits
(`python -m evals.review`) → the edit gated by the regression eval.
"""
