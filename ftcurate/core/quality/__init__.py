"""Quality scanners: duplicates, embeddings, neighbours, outliers, leakage, heuristics, the scan."""
