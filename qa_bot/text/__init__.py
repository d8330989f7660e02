"""Text rules every stage shares: citation markers, sentences, language, hygiene of what comes in and goes out."""
