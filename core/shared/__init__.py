"""State several router processes share through Redis (REDIS_URL): see `core.shared.state`.

Nothing here is imported on a single-process router's request path except the rate limiter
(`core.shared.ratelimit`, which also serves the in-memory case); the Redis client library is
imported only when REDIS_URL is set.
"""
