"""The project: records, the SQLite store, review queries, the record table, overview, edits."""
