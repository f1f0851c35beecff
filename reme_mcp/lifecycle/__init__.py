"""A memory's life after `remember`: time filters and expiry, consolidation of duplicates, and forgetting.

when.py reads the times and durations users type; consolidate.py merges near-duplicates;
forget.py removes memories, and everything that mentions something, leaving no trace.
"""
