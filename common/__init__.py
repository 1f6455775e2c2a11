"""Plain definitions shared by training, storage and the server; imports nothing of ours."""
