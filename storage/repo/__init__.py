"""Repository functions, one module per aggregate. Every function takes the session first
and raises domain errors; none of them commits (the caller's transaction does)."""
