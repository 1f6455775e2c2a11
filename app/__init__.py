"""The FastAPI service that serves posterior-based recommendations."""
