"""Finding memories: lexical (BM25 via SQLite FTS5), dense (cosine), and their fusion."""
