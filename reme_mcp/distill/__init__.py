"""Distilled memories: an LLM turns agent runs into task lessons, personal facts and tool guidelines."""
