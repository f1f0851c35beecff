"""Storage backends behind one protocol (base.MemoryStore)."""
