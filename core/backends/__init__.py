"""Transport to the model backends: pooled clients, retries and breakers, request bodies, stream assembly."""
