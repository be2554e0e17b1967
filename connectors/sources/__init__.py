"""Readers of outside sources (PostgreSQL catalogs, dbt artifacts): each returns a ``SourceSnapshot``.

Readers are pure: they read the outside world and describe what they saw in plain data. Writing that
description into the catalog and lineage (incrementally, marking what disappeared, never overwriting
what a person set) is the job of the app above that owns ``Source``.
"""
