"""Search in the system-of-record database: PostgreSQL full text, or SQLite for the embedded default.

Both dialects share one projection table (``SearchEntry``), the filters, visibility and facet counting;
they differ in how text matches and ranks, and in how JSON lists are queried:

- PostgreSQL: a generated, weighted ``tsvector`` (A name, B columns, C description, tags, namespace), every
  query word matched as a word prefix; facet values in an indexed ``jsonb`` list (``@>``).
- SQLite: the same word-prefix matching on the pre-tokenised text columns with ``LIKE``.

Ranking is by tiers (whole name, every word in the name, every word anywhere), then popularity (usage
counters, ``catalog.services.popularity``), then shortest name first, so a page needs no scoring of every
match: one index (popularity desc, name length, name) gives the order within every tier. Totals and facet
counts are exact up to ``exact_limit`` matches (option, default 1,000); beyond that they count the first
``exact_limit`` + 1 and say so (the count is the cost of every query that matches many: reading and
unpacking each matched row).

Typo tolerance, both dialects: when a query finds nothing, each word that is not in the vocabulary of
asset and column names is replaced by its closest known word (pg_trgm similarity on PostgreSQL, difflib
on SQLite) and the search runs once more.
"""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import reduce
from operator import or_
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.db.models import BooleanField, F, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Length
from django.utils import timezone

from catalog.models import SearchEntry, SearchPrefix, SearchWord
from catalog.search.backends.base import (
    FACETS,
    MAX_OFFSET,
    SearchHit,
    SearchQuery,
    SearchResults,
    Suggestion,
    tokenize,
)
from catalog.search.documents import SearchDocument
from steward import metrics
from steward.bulk import insert_rows
from steward.errors import BackendUnavailable
from steward.identity import Viewer

__all__ = ["DatabaseSearchBackend"]

FACET_LIMIT = 25
PAGE_FIELDS = (
    "kind",
    "object_id",
    "name",
    "qualified_name",
    "namespace",
    "platform",
    "description",
    "classification",
    "tags",
    "facet_values",
)
MAX_WORD = 100
# Buckets of the sample of a text query (``_sample``), as migration 0010 made their partial GIN indexes: runs of
# ``BUCKET_RUN`` ids dealt round to ``SAMPLE_BUCKETS`` buckets.
SAMPLE_BUCKETS = 8
BUCKET_RUN = 8192
# Every read of a search (``_fetch``) runs in this process: no parallel workers. Their start (a process forked per
# worker, 10-40 ms on a busy machine) costs more than the reads themselves, which stop after a page or a sample of
# ``exact_limit`` + 1 matches; a ``Limit`` over a ``Gather`` cannot stop the workers' bucket scans early either.
SERIAL = (("max_parallel_workers_per_gather", "0"),)
# How an index walk runs: the ordered index only.
WALK = (("enable_bitmapscan", "off"), ("enable_seqscan", "off"), *SERIAL)
REMOVED = "status:removed"
ENTRY_COLUMNS = (
    "kind",
    "object_id",
    "name",
    "qualified_name",
    "namespace",
    "platform",
    "description",
    "classification",
    "hidden",
    "tags",
    "facet_values",
    "name_text",
    "columns_text",
    "body_text",
    "popularity",
    "updated_at",
)


@dataclass
class Tier:
    """Matches of one relevance tier; ``sql``/``params`` test a row for it (PostgreSQL, for ``_stats``)."""

    score: float
    queryset: QuerySet
    sql: str
    params: list[str] = field(default_factory=list)
    # PostgreSQL, the every-word-in-the-name tier: a ``SearchPrefix`` key every row of the tier has, so its page
    # can be read in rank order from that table's index (``_by_prefix``).
    prefix: str | None = None


@dataclass
class Stats:
    facets: dict[str, list[tuple[str, int]]]
    counted: int = 0
    exact: bool = True
    tier_sizes: dict[int, int] = field(default_factory=dict)


def _words(*texts: str) -> str:
    return " ".join(dict.fromkeys(token for text in texts for token in tokenize(text)))


def name_prefixes(words: Sequence[str]) -> list[str]:
    """Distinct prefixes (``SearchPrefix.MIN_PREFIX``..``MAX_PREFIX`` characters) of these words."""
    out: dict[str, None] = {}
    for w in words:
        for i in range(SearchPrefix.MIN_PREFIX, min(len(w), SearchPrefix.MAX_PREFIX) + 1):
            out[w[:i]] = None
    return list(out)


def _facet_values(doc: SearchDocument) -> list[str]:
    values = [f"kind:{doc.kind}", f"classification:{doc.classification}"]
    if doc.platform:
        values.append(f"platform:{doc.platform}")
    values += [f"tag:{t}" for t in doc.tags] + [f"owner:{o}" for o in doc.owners]
    if doc.removed:
        values.append(REMOVED)  # not a facet of FACETS: filtered on, never counted
    return values


def _decoded(names: Sequence[str], rows: Sequence[tuple]) -> list[dict]:
    """Rows of raw SQL as the ORM's ``values()`` would give them: dicts, the JSON lists decoded."""
    out = [dict(zip(names, row, strict=True)) for row in rows]
    for row in out:
        for key in ("tags", "facet_values"):
            if isinstance(row.get(key), str):
                row[key] = json.loads(row[key])
    return out


class DatabaseSearchBackend:
    """The default search backend; needs nothing but the database."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self._rows_at: tuple[float, int] | None = None

    @property
    def is_postgres(self) -> bool:
        return connection.vendor == "postgresql"

    # --- writes -----------------------------------------------------------------------------------
    def index(self, docs: Sequence[SearchDocument], *, fresh: bool = False) -> None:
        """Insert or replace these entries; ``fresh`` (a rebuild after ``clear``): none exists yet, so on
        PostgreSQL they are written with ``COPY`` instead of an upsert."""
        if not docs:
            return
        now = timezone.now()
        entries = []
        vocabulary: set[str] = set()
        for d in docs:
            name_text = _words(d.name, d.qualified_name)
            columns_text = _words(*d.columns)
            # Numbers (``orders_2024``, ``t_00042``) are no word a typo should be corrected to.
            words = f"{name_text} {columns_text}".split()
            vocabulary.update(w for w in words if len(w) <= MAX_WORD and not w.isdigit())
            entries.append(
                SearchEntry(
                    kind=d.kind,
                    object_id=d.id,
                    name=d.name[:512],
                    qualified_name=d.qualified_name[:800],
                    namespace=d.namespace,
                    platform=d.platform,
                    description=d.description,
                    classification=d.classification,
                    hidden=d.hidden,
                    tags=d.tags,
                    facet_values=_facet_values(d),
                    name_text=name_text,
                    columns_text=columns_text,
                    body_text=_words(d.description, " ".join(d.tags), d.namespace),
                    popularity=d.popularity,
                    updated_at=d.updated_at or now,
                )
            )
        with transaction.atomic():
            if fresh and self.is_postgres:
                insert_rows(SearchEntry, ENTRY_COLUMNS, ([getattr(e, c) for c in ENTRY_COLUMNS] for e in entries))
            else:
                SearchEntry.objects.bulk_create(
                    entries,
                    update_conflicts=True,
                    unique_fields=["kind", "object_id"],
                    update_fields=[c for c in ENTRY_COLUMNS if c not in ("kind", "object_id")],
                    batch_size=1000,
                )
            SearchWord.objects.bulk_create(
                [SearchWord(word=w) for w in sorted(vocabulary)], ignore_conflicts=True, batch_size=2000
            )
            self._index_prefixes(docs, fresh=fresh)

    def _index_prefixes(self, docs: Sequence[SearchDocument], *, fresh: bool = False) -> None:
        """Replace the typeahead rows of these entries: each distinct prefix of each name word, once."""
        ids: dict[str, list[str]] = {}
        for d in docs:
            ids.setdefault(d.kind, []).append(str(d.id))
        entry_ids: dict[tuple[str, str], int] = {}
        for kind, object_ids in ids.items():
            for pk, object_id in SearchEntry.objects.filter(kind=kind, object_id__in=object_ids).values_list(
                "pk", "object_id"
            ):
                entry_ids[(kind, str(object_id))] = pk
        if not fresh:
            SearchPrefix.objects.filter(entry_id__in=list(entry_ids.values())).delete()
        rows = [
            (entry_ids[(d.kind, str(d.id))], prefix, d.popularity, len(d.qualified_name[:800]))
            for d in docs
            for prefix in name_prefixes(_words(d.name, d.qualified_name).split())
        ]
        # About 25 rows per asset: COPY on PostgreSQL (steward.bulk), not one INSERT per 5,000.
        insert_rows(SearchPrefix, ["entry", "prefix", "popularity", "name_length"], rows)

    def delete(self, kind: str, ids: Sequence[str]) -> None:
        SearchEntry.objects.filter(kind=kind, object_id__in=list(ids)).delete()

    def clear(self) -> None:
        SearchPrefix.objects.all().delete()
        SearchEntry.objects.all().delete()
        SearchWord.objects.all().delete()

    def rebuild(self, batches: Iterable[Sequence[SearchDocument]]) -> None:
        """Clear and refill in one transaction: readers see the old entries until it commits."""
        with transaction.atomic():
            self.clear()
            for batch in batches:
                self.index(batch, fresh=True)
            if self.is_postgres:
                # Fresh statistics with the new rows: the planner's row estimates and ``_table_rows`` (which picks
                # walks) would otherwise describe the old (or, after a first fill, an empty) table until autovacuum.
                with connection.cursor() as cursor:
                    cursor.execute(f"ANALYZE {SearchEntry._meta.db_table}, {SearchPrefix._meta.db_table}")
                self._rows_at = None

    def setup(self) -> None:
        """Nothing to do: migrations create the tables, the tsvector column and the indexes."""

    def check(self) -> None:
        try:
            SearchEntry.objects.exists()
        except Exception as exc:  # the database is the backend: report it as unavailable
            metrics.backend_error("search", "database")
            raise BackendUnavailable(f"search tables unavailable: {exc}") from exc

    # --- reads ------------------------------------------------------------------------------------
    def _has_any(self, facet: str, values: Sequence[str]) -> Q:
        """Entries whose ``facet`` takes any of ``values``."""
        if self.is_postgres:
            return reduce(or_, (Q(facet_values__contains=[f"{facet}:{v}"]) for v in values))
        # SQLite: the JSON text holds each value as a quoted string.
        return reduce(or_, (Q(facet_values__icontains=f'"{facet}:{v}"') for v in values))

    def _filtered(self, query: SearchQuery, viewer: Viewer) -> QuerySet:
        qs = SearchEntry.objects.all()
        if not viewer.sees_all:
            qs = (
                qs.filter(Q(hidden=False) | self._has_any("owner", sorted(viewer.principals)))
                if viewer.principals
                else qs.filter(hidden=False)
            )
        if query.kinds:
            qs = qs.filter(kind__in=query.kinds)
        if query.platforms:
            qs = qs.filter(platform__in=query.platforms)
        if query.classifications:
            qs = qs.filter(classification__in=query.classifications)
        if query.tags:
            qs = qs.filter(self._has_any("tag", query.tags))
        if query.owners:
            qs = qs.filter(self._has_any("owner", query.owners))
        if not query.include_removed:
            qs = qs.exclude(self._has_any("status", ["removed"]))
        return qs

    def _matches(self, qs: QuerySet, words: list[str], *, in_name: bool = False) -> QuerySet:
        """Entries where every word occurs (as a word prefix), anywhere or (``in_name``) in the name."""
        if self.is_postgres:
            weight = "A" if in_name else ""
            tsquery = " & ".join(f"{w}:*{weight}" for w in words)
            return qs.alias(
                **{
                    f"_m{weight}": RawSQL(
                        "search_vector @@ to_tsquery('simple', %s)", [tsquery], output_field=BooleanField()
                    )
                }
            ).filter(**{f"_m{weight}": True})
        for w in words:
            q = Q(name_text__startswith=w) | Q(name_text__contains=f" {w}")
            if not in_name:
                q |= Q(columns_text__startswith=w) | Q(columns_text__contains=f" {w}")
                q |= Q(body_text__startswith=w) | Q(body_text__contains=f" {w}")
            qs = qs.filter(q)
        return qs

    def _tiers(self, filtered: QuerySet, words: list[str], raw: str) -> tuple[QuerySet, list[Tier]]:
        """All matches, and the relevance tiers that partition them, best first.

        Tier 3: the whole query is the asset's name; tier 2: every word in the name; tier 1: every word
        somewhere (columns, description, tags, namespace). Within a tier, shorter names come first.
        """
        if not words:
            return filtered, [Tier(0.0, filtered, "true")]
        matched = self._matches(filtered, words)
        exact = Q(name__iexact=raw.strip()) | Q(qualified_name__iexact=raw.strip())
        if not self.is_postgres:
            in_name = self._matches(filtered, words, in_name=True)
            return matched, [
                Tier(3.0, matched.filter(exact), ""),
                Tier(2.0, in_name.exclude(exact), ""),
                Tier(1.0, matched.exclude(pk__in=in_name.values("pk")), ""),
            ]
        name_query = " & ".join(f"{w}:*" for w in words)
        in_name_sql = "name_vector @@ to_tsquery('simple', %s)"
        exact_value = raw.strip().upper()
        exact_sql = "(upper(name) = %s OR upper(qualified_name) = %s)"
        in_name_expr = RawSQL(in_name_sql, [name_query], output_field=BooleanField())
        # An exact name match has every word in the name, which has every word somewhere: each tier's query
        # needs only its own condition, so PostgreSQL can use the narrowest index for it.
        return matched, [
            Tier(3.0, filtered.filter(exact), exact_sql, [exact_value, exact_value]),
            Tier(
                2.0,
                filtered.alias(_in=in_name_expr).filter(_in=True).exclude(exact),
                f"({in_name_sql}) AND NOT {exact_sql}",
                [name_query, exact_value, exact_value],
                prefix=self._name_prefix(words),
            ),
            Tier(1.0, matched.alias(_in=in_name_expr).filter(_in=False), f"NOT ({in_name_sql})", [name_query]),
        ]

    @staticmethod
    def _name_prefix(words: list[str]) -> str | None:
        """The ``SearchPrefix`` key of the longest query word (likely the rarest): every entry with all the words in
        its name has a row for it. ``None`` when that word is shorter than the table's shortest prefix."""
        longest = max(words, key=len)
        return longest[: SearchPrefix.MAX_PREFIX] if len(longest) >= SearchPrefix.MIN_PREFIX else None

    def _correct(self, words: list[str]) -> list[str] | None:
        """Replace words missing from the vocabulary by the closest known word; ``None`` if nothing changes.

        PostgreSQL: one statement for all the words (each known word kept, each other word's closest by trigram
        similarity, pg_trgm's GIN index)."""
        candidates = [w for w in words if len(w) >= 3 and not w.isdigit()]
        if not candidates:
            return None
        if self.is_postgres:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT w, CASE WHEN EXISTS (SELECT 1 FROM catalog_searchword k WHERE k.word = w) THEN w ELSE "
                    "(SELECT word FROM catalog_searchword WHERE word %% w ORDER BY similarity(word, w) DESC, word "
                    "LIMIT 1) END FROM unnest(%s::text[]) AS w",
                    [candidates],
                )
                closest = {w: best for w, best in cursor.fetchall()}
        else:
            known = set(SearchWord.objects.filter(word__in=candidates).values_list("word", flat=True))
            closest = {}
            vocabulary: list[str] | None = None
            for w in candidates:
                if w in known:
                    closest[w] = w
                    continue
                if vocabulary is None:
                    vocabulary = list(SearchWord.objects.values_list("word", flat=True).iterator(chunk_size=5000))
                close = difflib.get_close_matches(w, vocabulary, n=1, cutoff=0.7)
                closest[w] = close[0] if close else w
        fixed = [closest.get(w) or w for w in words]
        return fixed if fixed != words else None

    def search(self, query: SearchQuery, viewer: Viewer) -> SearchResults:
        filtered = self._filtered(query, viewer)
        words = tokenize(query.q)
        offset = min(max(query.offset, 0), MAX_OFFSET)
        corrected: list[str] | None = None
        if self.is_postgres:
            stats, page = self._ranked(filtered, words, query.q, offset, query.limit)
            if stats.counted == 0 and words:
                corrected = self._correct(words)
                if corrected:
                    stats, page = self._ranked(filtered, corrected, " ".join(corrected), offset, query.limit)
        else:
            matched, tiers = self._tiers(filtered, words, query.q)
            stats = self._stats(matched, tiers)
            if stats.counted == 0 and words:
                corrected = self._correct(words)
                if corrected:
                    matched, tiers = self._tiers(filtered, corrected, " ".join(corrected))
                    stats = self._stats(matched, tiers)
            page = self._page(tiers, stats, offset, query.limit)
        hits = [
            SearchHit(
                kind=row["kind"],
                id=row["object_id"] if isinstance(row["object_id"], UUID) else UUID(row["object_id"]),
                name=row["name"],
                qualified_name=row["qualified_name"],
                namespace=row["namespace"],
                platform=row["platform"],
                description=row["description"],
                classification=row["classification"],
                tags=sorted(row["tags"]),
                score=row["score"],
                removed=REMOVED in (row["facet_values"] or []),
            )
            for row in page
        ]
        return SearchResults(
            total=min(stats.counted, self.exact_limit),
            hits=hits,
            facets=stats.facets,
            exact=stats.exact,
            fuzzy=bool(corrected),
            corrected=" ".join(corrected or []),
        )

    def _ranked(
        self, filtered: QuerySet, words: list[str], raw: str, offset: int, limit: int
    ) -> tuple[Stats, list[dict]]:
        """PostgreSQL, one statement: read at most ``exact_limit`` + 1 matches once (GIN), and from that sample
        the facet counts, the tier sizes and, when the sample is every match, the page itself (tier, then
        popularity, then shortest name; the page's display columns fetched for its rows only). Only a query
        matching more than ``exact_limit`` assets needs more: its page comes from ``_page``."""
        matched, tiers = self._tiers(filtered, words, raw)
        if words:
            # The tiers of ``_tiers`` as one expression: 0 the whole query is the name, 1 every word in the name.
            tier_case = (
                "CASE WHEN (upper(name) = %s OR upper(qualified_name) = %s) THEN 0 "
                "WHEN name_vector @@ to_tsquery('simple', %s) THEN 1 ELSE 2 END"
            )
            exact_value = raw.strip().upper()
            tier_params = [exact_value, exact_value, " & ".join(f"{w}:*" for w in words)]
        else:
            tier_case, tier_params = "0", []
        extra = (
            f", catalog_searchentry.id AS eid, {tier_case} AS tier, length(qualified_name) AS nl, qualified_name AS qn"
        )
        sub_sql, params = self._sample(matched, bucketed=bool(words), extra=extra, extra_params=tier_params)
        columns = ", ".join(f"'{c}', e.{c}" for c in PAGE_FIELDS)
        sql = (
            f"WITH m AS MATERIALIZED ({sub_sql}), "
            "pg AS (SELECT eid, tier, popularity, nl, qn FROM m ORDER BY tier, popularity DESC, nl, qn, eid "
            "LIMIT %s OFFSET %s) "
            "SELECT 'f', v, COUNT(*) FROM m, jsonb_array_elements_text(m.facet_values) v GROUP BY v "
            "UNION ALL SELECT 't', tier::text, COUNT(*) FROM m GROUP BY tier "
            f"UNION ALL SELECT 'p', json_agg(json_build_object({columns}, 'tier', pg.tier) "
            "ORDER BY pg.tier, pg.popularity DESC, pg.nl, pg.qn, pg.eid)::text, 0 "
            "FROM pg JOIN catalog_searchentry e ON e.id = pg.eid"
        )
        all_params: tuple = (*params, limit, offset)
        if words:
            # The exact-name tier over every match, not only the sample (an index lookup): with more matches than
            # the sample holds, the page then starts without a statement of its own for this tier.
            exact_sql, exact_params = (
                tiers[0]
                .queryset.order_by((F("popularity") + 0).desc(), Length("qualified_name"), "qualified_name")
                .values(*PAGE_FIELDS)[: offset + limit]
                .query.sql_with_params()
            )
            sql += f" UNION ALL SELECT 'x', json_agg(row_to_json(x))::text, 0 FROM ({exact_sql}) x"
            all_params = (*all_params, *exact_params)
        _, rows = self._fetch(sql, all_params)
        stats = Stats(facets={name: [] for name in FACETS})
        page_json = "null"
        exact_rows: list[dict] | None = None
        facet_rows = []
        for what, value, count in rows:
            if what == "p":
                page_json = value or "null"
            elif what == "x":
                exact_rows = json.loads(value) if value else []
            elif what == "t":
                stats.tier_sizes[int(value)] = count
            else:
                facet_rows.append((value, count))
        for value, count in sorted(facet_rows, key=lambda r: (-r[1], r[0])):
            facet, _, rest = value.partition(":")
            if facet == "kind":
                stats.counted += count  # every entry has exactly one kind
            if facet in stats.facets and len(stats.facets[facet]) < FACET_LIMIT:
                stats.facets[facet].append((rest, count))
        stats.exact = stats.counted <= self.exact_limit
        if not words:
            stats.tier_sizes = {0: stats.tier_sizes.get(0, 0)}
        if stats.exact:
            page = json.loads(page_json) or []
            for row in page:
                row["score"] = tiers[row.pop("tier")].score
            return stats, page
        return stats, self._page(tiers, stats, offset, limit, known={0: exact_rows} if exact_rows is not None else {})

    def _sample(self, matched: QuerySet, *, bucketed: bool, extra: str, extra_params: list[str]) -> tuple[str, list]:
        """SQL for at most ``exact_limit`` + 1 matches (facet values, popularity, and ``extra`` columns).

        ``bucketed`` (a text query): the matches of each bucket of the table (runs of ``BUCKET_RUN`` ids, each
        bucket with a partial GIN index of its own, migration 0010) one after another under the ``LIMIT``, which
        stops once the sample is full. A GIN bitmap scan computes every match before the first row: a query
        matching a fifth of 100k entries (``customer email``) computed 17,700 to keep 1,001; from one bucket it
        computes 2,200. A query matching fewer than ``exact_limit`` reads every bucket, which together cost what
        the whole index does."""
        limit = self.exact_limit + 1

        def in_bucket(bucket: int) -> str:  # spelt as the partial indexes' predicates are: each bucket's own index
            return f'mod("catalog_searchentry"."id" / {BUCKET_RUN}, {SAMPLE_BUCKETS}) = {bucket}'

        qs = matched
        if bucketed:
            qs = qs.alias(_bucket=RawSQL(in_bucket(0), [], output_field=BooleanField())).filter(_bucket=True)
        # Compiled once; the other buckets' parts differ only in the bucket number (the ORM's compiling of the
        # filters, eight times over, was a third of a search's Python time).
        part_sql, part_params = qs.values("facet_values", "popularity").query.sql_with_params()
        part_sql = part_sql.replace(" FROM ", f"{extra} FROM ", 1)
        params = [*extra_params, *part_params]
        if not bucketed:
            return f"{part_sql} LIMIT {limit}", params
        if part_sql.count(in_bucket(0)) != 1:  # not the expected shape: no sample by buckets
            return f"{part_sql.replace(in_bucket(0), 'true')} LIMIT {limit}", params
        parts = [part_sql.replace(in_bucket(0), in_bucket(b)) for b in range(SAMPLE_BUCKETS)]
        return (
            "SELECT * FROM (" + " UNION ALL ".join(f"({p})" for p in parts) + f") AS b LIMIT {limit}",
            params * SAMPLE_BUCKETS,
        )

    @property
    def exact_limit(self) -> int:
        """Totals and facet counts are exact up to this many matches; beyond, they count the first this many."""
        return int(self.options.get("exact_limit", 1_000))

    def _stats(self, matched: QuerySet, tiers: list[Tier]) -> Stats:
        """One pass over (at most ``exact_limit`` + 1) matches: facet counts, the total, and tier sizes."""
        tier_sql = ", ".join(f"({t.sql}) AS t{i}" for i, t in enumerate(tiers) if t.sql) if self.is_postgres else ""
        tier_params = [p for t in tiers if t.sql for p in t.params] if self.is_postgres else []
        sub = matched.values("facet_values")[: self.exact_limit + 1]
        sub_sql, params = sub.query.sql_with_params()
        if self.is_postgres and tier_sql:
            # Add the tier flags to the sample's select list so one scan yields facets and tier sizes.
            sub_sql = sub_sql.replace(" FROM ", f", {tier_sql} FROM ", 1)
            params = (*tier_params, *params)
        if self.is_postgres:
            flags = [f"t{i}" for i, t in enumerate(tiers) if t.sql]
            sql = (
                f"WITH m AS MATERIALIZED ({sub_sql}) "
                "SELECT v, COUNT(*) FROM m, jsonb_array_elements_text(m.facet_values) v GROUP BY v"
                + "".join(f" UNION ALL SELECT '~{f}', COUNT(*) FILTER (WHERE {f}) FROM m" for f in flags)
            )
        else:
            sql = f"SELECT j.value, COUNT(*) FROM ({sub_sql}) m, json_each(m.facet_values) j GROUP BY j.value"
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = sorted(cursor.fetchall(), key=lambda r: (-r[1], r[0]))
        stats = Stats(facets={name: [] for name in FACETS})
        for value, count in rows:
            if value.startswith("~t"):
                stats.tier_sizes[int(value[2:])] = count
                continue
            facet, _, rest = value.partition(":")
            if facet == "kind":
                stats.counted += count  # every entry has exactly one kind
            if facet in stats.facets and len(stats.facets[facet]) < FACET_LIMIT:
                stats.facets[facet].append((rest, count))
        stats.exact = stats.counted <= self.exact_limit
        return stats

    def _page(
        self, tiers: list[Tier], stats: Stats, offset: int, limit: int, known: dict[int, list[dict]] | None = None
    ) -> list[dict]:
        """One page across the tiers, best tier first.

        Per tier, PostgreSQL either walks the (popularity, name length, name) index and stops after a page (when the
        tier is dense enough that a page is near) or sorts the tier's rows (when they are few); the tier sizes
        measured by ``_stats`` decide, so neither plan can degrade into a scan of the whole table.
        """
        page: list[dict] = []
        skip = offset
        table_rows = self._table_rows() if self.is_postgres else 0
        for index, tier in enumerate(tiers):
            want = skip + limit - len(page)
            size = stats.tier_sizes.get(index)
            if size == 0 and stats.exact:
                continue
            # A walk of the (popularity, name length, name) index visits about want * table_rows / size rows;
            # sorting the tier costs about size. PostgreSQL misjudges prefix text queries, so we choose, not the
            # planner.
            # Beyond exact_limit the sizes come from a sample of the matches: a tier that is a large share of a
            # broad match set is dense enough to walk, however small its sampled count.
            walk = (
                self.is_postgres
                and size is not None
                and (size * size >= want * table_rows or (not stats.exact and size * 20 >= stats.counted))
            )
            order: list[Any] = [F("popularity").desc(), Length("qualified_name"), "qualified_name"]
            if self.is_postgres and not walk:
                order[0] = (F("popularity") + 0).desc()  # not the indexed expression: sort the few rows
            query = tier.queryset.order_by(*order).values(*PAGE_FIELDS)[:want]
            rows: list[dict] | None = None
            if known and index in known:  # already read (``_ranked``: the exact-name tier)
                rows = known[index][:want]
            elif self.is_postgres and tier.prefix and size != 0:
                # Through the prefix table when the sample holds some of this tier (none: the tier is small, and
                # the name index's GIN, which intersects every word, finds it faster than one word's prefix rows).
                rows = self._by_prefix(tier, want)
            if rows is None:
                rows = self._rows(query, WALK if walk else SERIAL) if self.is_postgres else list(query)
            for row in rows[skip:]:
                row["score"] = tier.score
                page.append(row)
            skip = max(0, skip - len(rows))
            if len(page) >= limit:
                break
        return page[:limit]

    def _by_prefix(self, tier: Tier, want: int) -> list[dict] | None:
        """The first ``want`` rows of a name tier in rank order, read through ``SearchPrefix``: its index (prefix,
        popularity, name length) lists only the entries with a name word starting with the prefix, already in rank
        order (ties of popularity and length are sorted by name, as the rank index has them); each is joined to its
        entry and tested against the tier's conditions. Walking the rank index of every entry instead visits
        thousands of rows for a long word, since long words make long names, which that index keeps for last.
        ``None`` if the tier's query has an unexpected shape (the caller walks the rank index then)."""
        sql, params = tier.queryset.values(*PAGE_FIELDS).query.sql_with_params()
        entries = f'"{SearchEntry._meta.db_table}"'
        source = f" FROM {entries} WHERE "
        if sql.count(source) != 1:
            return None
        sql = sql.replace(
            source,
            f" FROM {entries} JOIN (SELECT entry_id, popularity AS p_popularity, name_length AS p_length "
            f"FROM {SearchPrefix._meta.db_table} WHERE prefix = %s) p ON p.entry_id = {entries}.id WHERE ",
        )
        sql += f" ORDER BY p.p_popularity DESC, p.p_length, {entries}.qualified_name LIMIT %s"
        return _decoded(*self._fetch(sql, [tier.prefix, *params, want]))

    def _rows(self, query: QuerySet, settings: Sequence[tuple[str, str]]) -> list[dict]:
        """PostgreSQL: the rows of a ``values(*PAGE_FIELDS)`` query run under ``settings`` (``_fetch``)."""
        sql, params = query.query.sql_with_params()
        return _decoded(*self._fetch(sql, params, settings))

    @staticmethod
    def _fetch(sql: str, params: Sequence[Any], settings: Sequence[tuple[str, str]] = SERIAL) -> tuple[list, list]:
        """PostgreSQL: run ``sql`` under these planner ``settings`` (``SERIAL``: no parallel workers; ``WALK``: walk
        the ordered index too, stopping early); returns the column names and the rows.

        Outside a transaction, one round trip: ``SET LOCAL …; SELECT …`` sent together runs as one implicit
        transaction, so the settings end with it. Inside one (tests, callers' atomic blocks) they are set and
        restored around the query."""
        if not connection.in_atomic_block:
            prefix = "".join(f"SET LOCAL {name} = {value}; " for name, value in settings)
            with connection.cursor() as cursor:
                cursor.execute(f"{prefix}{sql}", params)
                while cursor.description is None and cursor.cursor.nextset():
                    pass
                return [c.name for c in cursor.description], cursor.fetchall()
        names = [name for name, _ in settings]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT " + ", ".join(f"current_setting('{n}')" for n in names))
            before = cursor.fetchone()
            cursor.execute("SELECT " + ", ".join(f"set_config('{n}', '{v}', true)" for n, v in settings))
            try:
                cursor.execute(sql, params)
                return [c.name for c in cursor.description], cursor.fetchall()
            finally:
                cursor.execute(
                    "SELECT " + ", ".join(f"set_config('{n}', %s, true)" for n in names),
                    list(before),
                )

    def _table_rows(self) -> int:
        """The planner's row estimate of the table (refreshed at most once a minute: it only picks a plan)."""
        now = time.monotonic()
        if self._rows_at is None or now - self._rows_at[0] > 60:
            with connection.cursor() as cursor:
                cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = 'catalog_searchentry'::regclass")
                row = cursor.fetchone()
            self._rows_at = (now, max(int(row[0]) if row else 0, 1))
        return self._rows_at[1]

    def suggest(self, prefix: str, viewer: Viewer, limit: int = 10) -> list[Suggestion]:
        """Most used, then shortest names first. The word being typed (the last) is looked up in
        ``SearchPrefix``, whose index is already in rank order, so the scan stops after ``limit`` rows; earlier
        words must occur in the name too."""
        words = tokenize(prefix)
        if not words:
            return []
        last = words[-1]
        if len(last) < SearchPrefix.MIN_PREFIX:
            return []
        qs = SearchPrefix.objects.filter(prefix=last[: SearchPrefix.MAX_PREFIX])
        if not viewer.sees_all:
            visible = Q(entry__hidden=False)
            if viewer.principals:
                visible |= reduce(
                    or_,
                    (
                        Q(entry__facet_values__contains=[f"owner:{p}"])
                        if self.is_postgres
                        else Q(entry__facet_values__icontains=f'"owner:{p}"')
                        for p in sorted(viewer.principals)
                    ),
                )
            qs = qs.filter(visible)
        qs = qs.exclude(
            Q(entry__facet_values__contains=[REMOVED])
            if self.is_postgres
            else Q(entry__facet_values__icontains=f'"{REMOVED}"')
        )
        rest = words[:-1] + ([last] if len(last) > SearchPrefix.MAX_PREFIX else [])
        if rest:
            qs = qs.filter(entry_id__in=self._matches(SearchEntry.objects.all(), rest, in_name=True).values("pk"))
        rows = qs.order_by(F("popularity").desc(), "name_length", "entry_id").values(
            "entry__kind", "entry__object_id", "entry__name", "entry__qualified_name"
        )[:limit]
        return [
            Suggestion(r["entry__kind"], r["entry__object_id"], r["entry__name"], r["entry__qualified_name"])
            for r in rows
        ]
