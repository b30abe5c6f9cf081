"""Qt-free engine, in subpackages a newcomer can guess:

- ``core.io``: formats, validation, ingest, export, atomic file writes, the JSONL line index;
- ``core.project``: records, the project store, review queries, the record table, overview, edits;
- ``core.quality``: the scanners (exact/near duplicates, embeddings, neighbours, outliers,
  leakage, heuristics), the scan that runs them, the embedding map;
- ``core.progress``: progress callbacks and cancel checks shared by all long work.

Nothing under ``ftcurate.core`` may import Qt; ``tests/test_architecture.py`` enforces it."""
