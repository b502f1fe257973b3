"""Sources: readers, field mapping, quarantine and the data-quality report."""

from accord.sources.ingest import SourceReport, ingest

__all__ = ["SourceReport", "ingest"]
