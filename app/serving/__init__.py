"""Serving without HTTP: the model holder and hot swap (`model_state`), scoring
(`recommend`), the cache of precomputed arrays (`picks_cache`) and the queries routes ask
(`queries`). Routers in `app/routes/` only translate HTTP to these calls."""
