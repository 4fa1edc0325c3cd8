"""What traffic costs and who may spend more: the usage ledger (`ledger`) and per-key budgets (`budgets`).

Both sit below the HTTP edge and the sessions: a finished session hands its backend calls to
the ledger and its tokens to the budgets; the edge asks the budgets before a request.
"""
