"""Crawled sources: ``Source`` (a kind, a connection, encrypted credentials, a schedule), ``SourceRun`` (one crawl),
and the applier from a ``connectors.sources.base.SourceSnapshot`` to the catalog and lineage (docs/sources.md)."""
