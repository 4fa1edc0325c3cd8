"""The HTTP edge: request schemas, OpenAI errors, access control, SSE, the chat path and the proxies."""
