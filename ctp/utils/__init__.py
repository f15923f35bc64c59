"""Shared by every stage: errors, atomic writes, option and file checks, the checkpoint schema,
statistics. Imports nothing else of ctp."""
