"""The routing graph: `graph` is the compiled LangGraph state machine."""
