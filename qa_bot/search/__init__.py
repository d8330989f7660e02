"""Papers to ranked hits: terms (both languages), the BM25 index, its stored and updated form, retrieval."""
