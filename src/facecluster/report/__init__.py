"""Reports over finished results: the summary table (and, later, plots)."""
