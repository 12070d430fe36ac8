"""Data shipped with specsim: texts, prompts, architecture files."""
