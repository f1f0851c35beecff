"""Model clients shared by every capability: embeddings now, the LLM client next."""
