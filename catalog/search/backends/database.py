"""Search in the system-of-record database: PostgreSQL full text, or SQLite for the embedded default.

Both dialects share one projection table (``SearchEntry``), the filters, visibility and facet counting;
they differ in how text matches and ranks, and in how JSON lists are queried:

- PostgreSQL: a generated, weighted ``tsvector`` (A name, B columns, C description, tags, namespace), every
  query word matched as a prefix; facet values in an indexed ``jsonb`` list (``@>``).
- SQLite: every query word must occur in a field, scored by where it occurs (3/2/1).

Typo tolerance, both dialects: when a query finds nothing, each word that is not in the vocabulary of
asset and column names is replaced by its closest known word (pg_trgm similarity on PostgreSQL, difflib
on SQLite) and the search runs once more.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from functools import reduce
from operator import or_

from django.db import connection, transaction
from django.db.models import BooleanField, Case, F, FloatField, IntegerField, Q, QuerySet, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.functions import Length
from django.utils import timezone

from catalog.models import SearchEntry, SearchWord
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
from governance.identity import Viewer
from steward.errors import BackendUnavailable

__all__ = ["DatabaseSearchBackend"]

FACET_LIMIT = 25
MAX_WORD = 100


def _words(*texts: str) -> str:
    return " ".join(dict.fromkeys(token for text in texts for token in tokenize(text)))


def _facet_values(doc: SearchDocument) -> list[str]:
    values = [f"kind:{doc.kind}", f"classification:{doc.classification}"]
    if doc.platform:
        values.append(f"platform:{doc.platform}")
    values += [f"tag:{t}" for t in doc.tags] + [f"owner:{o}" for o in doc.owners]
    return values


class DatabaseSearchBackend:
    """The default search backend; needs nothing but the database."""

    def __init__(self, **options: object) -> None:
        self.options = options

    @property
    def is_postgres(self) -> bool:
        return connection.vendor == "postgresql"

    # --- writes -----------------------------------------------------------------------------------
    def index(self, docs: Sequence[SearchDocument]) -> None:
        if not docs:
            return
        now = timezone.now()
        entries = []
        vocabulary: set[str] = set()
        for d in docs:
            name_text = _words(d.name, d.qualified_name)
            columns_text = _words(*d.columns)
            vocabulary.update(w for w in f"{name_text} {columns_text}".split() if len(w) <= MAX_WORD)
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
                    updated_at=d.updated_at or now,
                )
            )
        with transaction.atomic():
            SearchEntry.objects.bulk_create(
                entries,
                update_conflicts=True,
                unique_fields=["kind", "object_id"],
                update_fields=[
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
                    "updated_at",
                ],
                batch_size=1000,
            )
            SearchWord.objects.bulk_create(
                [SearchWord(word=w) for w in sorted(vocabulary)], ignore_conflicts=True, batch_size=2000
            )

    def delete(self, kind: str, ids: Sequence[str]) -> None:
        SearchEntry.objects.filter(kind=kind, object_id__in=list(ids)).delete()

    def clear(self) -> None:
        SearchEntry.objects.all().delete()
        SearchWord.objects.all().delete()

    def setup(self) -> None:
        """Nothing to do: migrations create the tables, the tsvector column and the indexes."""

    def check(self) -> None:
        try:
            SearchEntry.objects.exists()
        except Exception as exc:  # the database is the backend: report it as unavailable
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
        return qs

    def _match(self, qs: QuerySet, words: list[str], raw: str) -> QuerySet:
        if not words:
            return qs.annotate(score=Value(0.0, output_field=FloatField()))
        if self.is_postgres:
            tsquery = " & ".join(f"{w}:*" for w in words)
            exact = raw.strip().lower()
            return (
                qs.alias(_m=RawSQL("search_vector @@ to_tsquery('simple', %s)", [tsquery], output_field=BooleanField()))
                .filter(_m=True)
                .annotate(
                    score=RawSQL(
                        "ts_rank(search_vector, to_tsquery('simple', %s), 1)"
                        " + CASE WHEN lower(name) = %s OR lower(qualified_name) = %s THEN 1.0 ELSE 0.0 END",
                        [tsquery, exact, exact],
                        output_field=FloatField(),
                    )
                )
            )
        score = Value(0, output_field=IntegerField())
        for w in words:
            qs = qs.filter(Q(name_text__contains=w) | Q(columns_text__contains=w) | Q(body_text__contains=w))
            score = score + Case(
                When(name_text__contains=w, then=Value(3)),
                When(columns_text__contains=w, then=Value(2)),
                default=Value(1),
                output_field=IntegerField(),
            )
        return qs.annotate(score=score)

    def _correct(self, words: list[str]) -> list[str] | None:
        """Replace words missing from the vocabulary by the closest known word; ``None`` if nothing changes."""
        known = set(SearchWord.objects.filter(word__in=words).values_list("word", flat=True))
        fixed = []
        for w in words:
            if w in known or len(w) < 3:
                fixed.append(w)
                continue
            if self.is_postgres:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT word FROM catalog_searchword WHERE word %% %s "
                        "ORDER BY similarity(word, %s) DESC, word LIMIT 1",
                        [w, w],
                    )
                    row = cursor.fetchone()
                close = [row[0]] if row else []
            else:
                vocabulary = SearchWord.objects.values_list("word", flat=True).iterator(chunk_size=5000)
                close = difflib.get_close_matches(w, list(vocabulary), n=1, cutoff=0.7)
            fixed.append(close[0] if close else w)
        return fixed if fixed != words else None

    def search(self, query: SearchQuery, viewer: Viewer) -> SearchResults:
        filtered = self._filtered(query, viewer)
        words = tokenize(query.q)
        offset = min(max(query.offset, 0), MAX_OFFSET)
        matched = self._match(filtered, words, query.q)
        page = self._page(matched, offset, query.limit)
        if not page and words and offset == 0:
            corrected = self._correct(words)
            if corrected:
                matched = self._match(filtered, corrected, " ".join(corrected))
                page = self._page(matched, offset, query.limit)
        facets = self._facets(matched)
        total = sum(n for _, n in facets.pop("_kind_all"))
        hits = [
            SearchHit(
                kind=row["kind"],
                id=row["object_id"],
                name=row["name"],
                qualified_name=row["qualified_name"],
                namespace=row["namespace"],
                platform=row["platform"],
                description=row["description"],
                classification=row["classification"],
                tags=sorted(row["tags"]),
                score=float(row["score"] or 0.0),
            )
            for row in page
        ]
        return SearchResults(total=total, hits=hits, facets=facets)

    def _page(self, matched: QuerySet, offset: int, limit: int) -> list[dict]:
        return list(
            matched.order_by(F("score").desc(), "qualified_name", "pk").values(
                "kind",
                "object_id",
                "name",
                "qualified_name",
                "namespace",
                "platform",
                "description",
                "classification",
                "tags",
                "score",
            )[offset : offset + limit]
        )

    def _facets(self, matched: QuerySet) -> dict[str, list[tuple[str, int]]]:
        """Counts of every facet value over all matches, in one pass over the matched rows."""
        sub_sql, params = matched.values("facet_values").query.sql_with_params()
        if self.is_postgres:
            sql = (
                f"SELECT v, COUNT(*) FROM ({sub_sql}) m, jsonb_array_elements_text(m.facet_values) v "
                "GROUP BY v ORDER BY 2 DESC, 1"
            )
        else:
            sql = (
                f"SELECT j.value, COUNT(*) FROM ({sub_sql}) m, json_each(m.facet_values) j "
                "GROUP BY j.value ORDER BY 2 DESC, 1"
            )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        facets: dict[str, list[tuple[str, int]]] = {name: [] for name in FACETS}
        facets["_kind_all"] = []
        for value, count in rows:
            facet, _, rest = value.partition(":")
            if facet == "kind":
                facets["_kind_all"].append((rest, count))
            if facet in facets and len(facets[facet]) < FACET_LIMIT:
                facets[facet].append((rest, count))
        return facets

    def suggest(self, prefix: str, viewer: Viewer, limit: int = 10) -> list[Suggestion]:
        words = tokenize(prefix)
        if not words:
            return []
        qs = self._filtered(SearchQuery(), viewer)
        if self.is_postgres:
            tsquery = " & ".join(f"{w}:*A" for w in words)
            qs = qs.alias(
                _m=RawSQL("search_vector @@ to_tsquery('simple', %s)", [tsquery], output_field=BooleanField())
            ).filter(_m=True)
        else:
            for w in words:
                qs = qs.filter(Q(name_text__startswith=w) | Q(name_text__contains=f" {w}"))
        rows = (
            qs.annotate(_len=Length("qualified_name"))
            .order_by("_len", "qualified_name")
            .values("kind", "object_id", "name", "qualified_name")[:limit]
        )
        return [Suggestion(r["kind"], r["object_id"], r["name"], r["qualified_name"]) for r in rows]
