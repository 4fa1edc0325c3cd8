"""The library under the graph: settings, state, the route table, services, transport, routing rules, HTTP, sessions."""
