"""Corpus files read into papers: one reader per format, titles, the deduplicated corpus."""
