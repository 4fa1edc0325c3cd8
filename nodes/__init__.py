"""The graph's nodes: one async function per file, each returning a partial state update."""
