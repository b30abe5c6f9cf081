"""Reading and writing data: formats, validation, ingest into a project, export, atomic files."""
