"""A question to a cited answer: its analysis, the evidence, the model (local or a server), the judge, the citation check."""
