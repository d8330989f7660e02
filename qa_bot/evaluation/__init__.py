"""Question sets, their measures, and the report of an evaluation."""
