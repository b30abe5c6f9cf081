"""Qt-free engine: records and formats, validation, project store, export (and, later, scanners).

Nothing under ``ftcurate.core`` may import Qt; ``tests/test_architecture.py`` enforces it."""
