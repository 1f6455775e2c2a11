"""Names shared by the model, the mesh and the checkpoints (kept free of JAX imports)."""

__all__ = ["AXIS", "STATE_NAMES"]

AXIS = "users"  # the one mesh axis: users (and their rows of the watch matrix) are split on it
STATE_NAMES = ("user_embeddings", "user_bias", "movie_embeddings", "movie_bias")
