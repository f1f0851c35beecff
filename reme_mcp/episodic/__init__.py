"""Episodic memory: episodes stored verbatim, recalled by meaning and by words."""
