"""Search in the system-of-record database: PostgreSQL full text + pg_trgm, or SQLite for embedded use.

Both dialects share the projection tables (``SearchEntry``, ``SearchTerm``), filters, visibility and
facet counting; they differ only in how text matches and ranks:

- PostgreSQL: a generated, weighted ``tsvector`` (A name, B columns, C description, tags, namespace)
  with prefix matching on every query word, OR a trigram word-similarity match on the name for typos.
- SQLite: every query word must occur in a field, scored by where it occurs (3/2/1); when nothing
  matches, misspelt words are replaced by the closest known name words (difflib) and searched again.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Sequence

from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Length
from django.utils import timezone

from catalog.models import SearchEntry, SearchTerm
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


def _words(*texts: str) -> str:
    seen: dict[str, None] = {}
    for text in texts:
        for token in tokenize(text):
            seen.setdefault(token, None)
    return " ".join(seen)


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
        entries = [
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
                name_text=_words(d.name, d.qualified_name),
                columns_text=_words(*d.columns),
                body_text=_words(d.description, " ".join(d.tags), d.namespace),
                updated_at=d.updated_at or now,
            )
            for d in docs
        ]
        with transaction.atomic():
            SearchEntry.objects.bulk_create(
                entries,
                update_conflicts=True,
                unique_fields=["kind", "object_id"],
                update_fields=[
                    "name", "qualified_name", "namespace", "platform", "description", "classification",
                    "hidden", "name_text", "columns_text", "body_text", "updated_at",
                ],
                batch_size=1000,
            )
            by_kind: dict[str, list] = defaultdict(list)
            for d in docs:
                by_kind[d.kind].append(d.id)
            entry_ids: dict[tuple[str, str], int] = {}
            for kind, ids in by_kind.items():
                for pk, object_id in SearchEntry.objects.filter(kind=kind, object_id__in=ids).values_list(
                    "pk", "object_id"
                ):
                    entry_ids[(kind, str(object_id))] = pk
            SearchTerm.objects.filter(entry_id__in=entry_ids.values()).delete()
            terms = []
            for d in docs:
                entry_id = entry_ids[(d.kind, str(d.id))]
                values = [("kind", d.kind), ("classification", d.classification)]
                if d.platform:
                    values.append(("platform", d.platform))
                values += [("tag", t) for t in d.tags] + [("owner", o) for o in d.owners]
                terms += [SearchTerm(entry_id=entry_id, facet=f, value=v[:255]) for f, v in values]
            SearchTerm.objects.bulk_create(terms, batch_size=5000)

    def delete(self, kind: str, ids: Sequence[str]) -> None:
        SearchEntry.objects.filter(kind=kind, object_id__in=list(ids)).delete()

    def clear(self) -> None:
        SearchTerm.objects.all().delete()
        SearchEntry.objects.all().delete()

    def setup(self) -> None:
        """Nothing to do: the migrations create the tables, the tsvector column and the indexes."""

    def check(self) -> None:
        try:
            SearchEntry.objects.exists()
        except Exception as exc:  # the database is the backend: report it as unavailable
            raise BackendUnavailable(f"search tables unavailable: {exc}") from exc

    # --- reads ------------------------------------------------------------------------------------
    def _visible(self, qs: QuerySet, viewer: Viewer) -> QuerySet:
        if viewer.sees_all:
            return qs
        owned = SearchTerm.objects.filter(entry=OuterRef("pk"), facet="owner", value__in=list(viewer.principals))
        return qs.filter(Q(hidden=False) | Exists(owned))

    def _filtered(self, query: SearchQuery, viewer: Viewer) -> QuerySet:
        qs = self._visible(SearchEntry.objects.all(), viewer)
        if query.kinds:
            qs = qs.filter(kind__in=query.kinds)
        if query.platforms:
            qs = qs.filter(platform__in=query.platforms)
        if query.classifications:
            qs = qs.filter(classification__in=query.classifications)
        for facet, values in (("tag", query.tags), ("owner", query.owners)):
            if values:
                qs = qs.filter(Exists(SearchTerm.objects.filter(entry=OuterRef("pk"), facet=facet, value__in=values)))
        return qs

    def _match_postgres(self, qs: QuerySet, words: list[str], raw: str) -> QuerySet:
        tsquery = " & ".join(f"{w}:*" for w in words)
        phrase = " ".join(words)
        match = RawSQL(
            "(search_vector @@ to_tsquery('simple', %s) OR %s <%% name_text)",
            [tsquery, phrase],
            output_field=BooleanField(),
        )
        score = RawSQL(
            "ts_rank(search_vector, to_tsquery('simple', %s), 1) + word_similarity(%s, name_text)"
            " + CASE WHEN lower(name) = %s OR lower(qualified_name) = %s THEN 1.0 ELSE 0.0 END",
            [tsquery, phrase, raw.lower(), raw.lower()],
            output_field=FloatField(),
        )
        return qs.alias(_m=match).filter(_m=True).annotate(score=score)

    def _match_sqlite(self, qs: QuerySet, words: list[str]) -> QuerySet:
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

    def _corrected(self, words: list[str]) -> list[str] | None:
        vocabulary: set[str] = set()
        for text in SearchEntry.objects.values_list("name_text", flat=True).iterator(chunk_size=2000):
            vocabulary.update(text.split())
        fixed = []
        for w in words:
            if w in vocabulary:
                fixed.append(w)
                continue
            close = difflib.get_close_matches(w, vocabulary, n=1, cutoff=0.75)
            if not close:
                return None
            fixed.append(close[0])
        return fixed if fixed != words else None

    def _matched(self, query: SearchQuery, viewer: Viewer) -> QuerySet:
        qs = self._filtered(query, viewer)
        words = tokenize(query.q)
        if not words:
            return qs.annotate(score=Value(0.0, output_field=FloatField()))
        if self.is_postgres:
            return self._match_postgres(qs, words, query.q.strip())
        matched = self._match_sqlite(qs, words)
        if not matched.exists():
            fixed = self._corrected(words)
            if fixed:
                return self._match_sqlite(qs, fixed)
        return matched

    def search(self, query: SearchQuery, viewer: Viewer) -> SearchResults:
        matched = self._matched(query, viewer)
        offset = min(max(query.offset, 0), MAX_OFFSET)
        page = list(
            matched.order_by(F("score").desc(), "qualified_name", "pk").values(
                "pk", "kind", "object_id", "name", "qualified_name", "namespace", "platform", "description",
                "classification", "score",
            )[offset : offset + query.limit]
        )
        tags: dict[int, list[str]] = defaultdict(list)
        for entry_id, value in SearchTerm.objects.filter(
            entry_id__in=[row["pk"] for row in page], facet="tag"
        ).values_list("entry_id", "value"):
            tags[entry_id].append(value)
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
                tags=sorted(tags[row["pk"]]),
                score=float(row["score"] or 0.0),
            )
            for row in page
        ]
        total = matched.count() if len(page) == query.limit or offset else len(page)
        return SearchResults(total=total, hits=hits, facets=self._facets(matched))

    def _facets(self, matched: QuerySet) -> dict[str, list[tuple[str, int]]]:
        counts = (
            SearchTerm.objects.filter(entry__in=matched.values("pk"), facet__in=FACETS)
            .values("facet", "value")
            .annotate(n=Count("id"))
            .order_by("facet", "-n", "value")
        )
        facets: dict[str, list[tuple[str, int]]] = {name: [] for name in FACETS}
        for row in counts:
            bucket = facets[row["facet"]]
            if len(bucket) < FACET_LIMIT:
                bucket.append((row["value"], row["n"]))
        return facets

    def suggest(self, prefix: str, viewer: Viewer, limit: int = 10) -> list[Suggestion]:
        words = tokenize(prefix)
        if not words:
            return []
        qs = self._visible(SearchEntry.objects.all(), viewer)
        if self.is_postgres:
            tsquery = " & ".join(f"{w}:*A" for w in words)
            qs = qs.alias(_m=RawSQL("search_vector @@ to_tsquery('simple', %s)", [tsquery],
                                    output_field=BooleanField())).filter(_m=True)
        else:
            for w in words:
                qs = qs.filter(Q(name_text__startswith=w) | Q(name_text__contains=f" {w}"))
        rows = qs.annotate(_len=Length("qualified_name")).order_by("_len", "qualified_name").values(
            "kind", "object_id", "name", "qualified_name"
        )[:limit]
        return [Suggestion(r["kind"], r["object_id"], r["name"], r["qualified_name"]) for r in rows]
