"""The ``steward`` command: Steward's API from a shell.

The server and token come from ``STEWARD_URL`` and ``STEWARD_TOKEN`` or the config file
(``~/.config/steward/config.toml``, see ``steward_client.config``); the token is never taken on the command
line (other users could read it in the process list) and never printed. Output is for people by default;
``--json`` prints the server's JSON for scripts (errors too, on stderr).

Exit codes (``EXIT_*``):
    0  done
    1  usage: bad arguments, an unreadable config file or input file, a line that is not an event
    2  the server refused the request: not found, invalid input (the field is named), conflict (4xx)
    3  authentication or permission: no token, a bad token (401), not allowed (403)
    4  the server failed (5xx) or could not be reached
    130  interrupted (Ctrl-C); a lineage push keeps what was acknowledged
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, NoReturn, TextIO

from steward_client.client import MAX_BATCH, StewardClient
from steward_client.config import ConfigError, load_config
from steward_client.errors import (
    AuthenticationError,
    PermissionDeniedError,
    ServerError,
    StewardConnectionError,
    StewardError,
)
from steward_client.models import AccessRequest, ComplianceReport, Dataset, Grant, Model, Workspace
from steward_client.push import PushError, PushSummary, push_jsonl

__all__ = ["EXIT_AUTH", "EXIT_OK", "EXIT_REFUSED", "EXIT_SERVER", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_USAGE = 1
EXIT_REFUSED = 2
EXIT_AUTH = 3
EXIT_SERVER = 4
EXIT_INTERRUPTED = 130

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


class UsageError(Exception):
    """Bad arguments or input: exit 1."""


class Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad arguments; here 2 means "the server refused", so usage errors exit 1."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


@dataclass
class Output:
    json: bool
    out: TextIO
    err: TextIO

    def data(self, value: Any) -> None:
        print(json.dumps(value, indent=2, default=str), file=self.out)

    def line(self, text: str = "") -> None:
        print(text, file=self.out)

    def note(self, text: str) -> None:
        print(text, file=self.err)


# --- human output ------------------------------------------------------------------------------------


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def _short(text: str | None, width: int = 60) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _dataset_name(ds: Any) -> str:
    if getattr(ds, "hidden", False) or ds.name is None:
        return f"(hidden {ds.id})"
    return f"{ds.namespace} {ds.name}"


def show_dataset(o: Output, ds: Dataset) -> None:
    o.line(f"{ds.name}")
    o.line(f"  id              {ds.id}")
    o.line(f"  namespace       {ds.namespace}")
    o.line(f"  platform        {ds.platform or '-'}")
    level = ds.effective_classification or "-"
    direct = f" (set: {ds.classification})" if ds.classification and ds.classification != level else ""
    o.line(f"  classification  {level}{direct}")
    o.line(f"  owners          {', '.join(str(x) for x in ds.owners) or '-'}")
    o.line(f"  tags            {', '.join(ds.tags) or '-'}")
    if ds.description:
        o.line(f"  description     {_short(ds.description, 200)}")
    if ds.fields:
        o.line("")
        rows = [(f.name, f.type, f.classification or "", ", ".join(f.tags)) for f in ds.fields]
        o.line(table(rows, ["field", "type", "class", "tags"]))


def show_request(o: Output, r: AccessRequest) -> None:
    o.line(f"access request {r.id}: {r.state}")
    o.line(f"  datasets       {'; '.join(_dataset_name(d) for d in r.datasets)}")
    o.line(f"  purpose        {r.purpose} for {r.duration}")
    if r.awaiting:
        o.line(f"  awaiting       {', '.join(_slot(a) for a in r.awaiting)}")
    for a in r.approvals:
        o.line(f"  approved by    {a.approver} as {a.role}{f' ({a.comment})' if a.comment else ''}")
    if r.decision_reason:
        o.line(f"  reason         {r.decision_reason}")
    if r.grants:
        o.line(f"  grants         {', '.join(r.grants)}")


def _slot(a: Any) -> str:
    return a.role if not a.dataset else f"{a.role} ({a.dataset})"


def show_workspace(o: Output, w: Workspace) -> None:
    o.line(f"workspace {w.id}: {w.state}" + (f" (→ {w.desired_state})" if w.desired_state != w.state else ""))
    o.line(f"  name      {w.name or '-'}")
    o.line(f"  template  {w.template}")
    if w.url:
        o.line(f"  url       {w.url}")
    if w.message:
        o.line(f"  message   {_short(w.message, 200)}")
    for d in w.datasets:
        mounted = "mounted" if d.get("mounted") else f"not mounted: {d.get('unmounted_reason') or '?'}"
        o.line(f"  dataset   {d.get('namespace')} {d.get('name')} ({mounted})")
    if not w.datasets:
        o.line("  datasets  -")


# --- commands ----------------------------------------------------------------------------------------


def _take(items: Iterable[Any], limit: int | None) -> Iterator[Any]:
    return iter(items) if not limit else islice(items, limit)


def _emit_list(o: Output, items: Iterable[Model], headers: Sequence[str], row: Any, empty: str) -> None:
    collected = list(items)
    if o.json:
        o.data([x.to_json() for x in collected])
    elif collected:
        o.line(table([row(x) for x in collected], headers))
    else:
        o.line(empty)


def _dataset_ref(values: Sequence[str]) -> Any:
    """A dataset given as ``ID`` or ``NAMESPACE NAME``."""
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return (values[0], values[1])
    raise UsageError("give a dataset as ID or as NAMESPACE NAME")


def cmd_whoami(client: StewardClient, args: argparse.Namespace, o: Output) -> int:
    me = client.me()
    if o.json:
        o.data(me)
    else:
        o.line(f"{me['username']} ({', '.join(me.get('roles') or []) or 'no role'}) at {client.url}")
    return EXIT_OK


def cmd_search(client: StewardClient, args: argparse.Namespace, o: Output) -> int:
    found = client.search(
        " ".join(args.query),
        kind=args.kind,
        platform=args.platform,
        tag=args.tag,
        classification=args.classification,
        owner=args.owner,
        limit=args.limit,
        offset=args.offset,
    )
    if o.json:
        o.data(found.to_json())
        return EXIT_OK
    if found.results:
        rows = [(h.kind, h.qualified_name or h.name, h.classification, ", ".join(h.tags), h.id) for h in found.results]
        o.line(table(rows, ["kind", "name", "class", "tags", "id"]))
    total = f"{found.total}" if found.total_is_exact else f"at least {found.total}"
    o.line(f"{total} result{'s' if found.total != 1 else ''}")
    if args.facets:
        for name, values in found.facets.items():
            if values:
                o.line(f"{name}: " + ", ".join(f"{v.value} ({v.count})" for v in values))
    return EXIT_OK


def cmd_dataset_show(client: StewardClient, args: argparse.Namespace, o: Output) -> int:
    ref = _dataset_ref(args.dataset)
    ds = client.dataset_lookup(*ref) if isinstance(ref, tuple) else client.dataset(ref)
    if o.json:
        o.data(ds.to_json())
    else:
        show_dataset(o, ds)
    return EXIT_OK


def cmd_dataset_list(client: StewardClient, args: argparse.Namespace, o: Output) -> int:
    items = client.datasets(namespace=args.namespace, platform=args.platform, tag=args.tag)
    _emit_list(
        o,
        _take(items, args.limit),
        ["namespace", "name", "class", "tags", "id"],
        lambda d: (d.namespace, d.name, d.effective_classification, ", ".join(d.tags), d.id),
        "no dataset",
    )
    return EXIT_OK


def _resolve_id(client: StewardClient, ref: Any) -> str:
    return client.dataset_lookup(*ref).id if isinstance(ref, tuple) else str(ref)


def cmd_tag_list(client: StewardClient, args: argparse.Namespace, o: Output) -> int:
    if args.dataset:
        tags = client.dataset_tags(_resolve_id(client, _dataset_ref(args.dataset)), field=args.field)
        if o.json:
            o.data(tags.to_json())
            return EXIT_OK
        rows = [(t.tag, t.field or "", "direct", t.implied_level or "") for t in tags.direct]
        rows += [
            (t.tag, t.field or "", f"from {(t.source or {}).get('name', '?')}", t.implied_level or "")
            for t in tags.propagated
        ]
        o.line(table(rows, ["tag", "field", "how", "level"]) if rows else "no tag")
        o.line(f"effective classification: {tags.effective_classification or '-'}")
        return EXIT_OK
    _emit_list(
        o,
        client.tags(),
        ["key", "level", "propagates", "description"],
        lambda t: (t.key, t.implied_level or "", "yes" if t.propagates else "no", _short(t.description)),
        "no tag",
    )
    return EXIT_OK


def cmd_tag_add(client: StewardClient, args: argparse.Namespace, o: Output) -> int:
    ds = client.tag_add(_resolve_id(client, _dataset_ref(args.dataset)), args.key, field=args.field)
    if o.json:
        o.data(ds.to_json())
    else:
        o.line(f"tagged {ds.name}{'.' + args.field if args.field else ''} with {args.key}")
    return EXIT_OK


def cmd_tag_remove(client: StewardClient, args: argparse.Namespace, o: Output) -> int:
    dataset_id = _resolve_id(client, _dataset_ref(args.dataset))
    client.tag_remove(dataset_id, args.key, field=args.field)
    if o.json:
        o.data({"dataset": dataset_id, "removed": args.key, "field": args.field})
    else:
        o.line(f"removed {args.key}{' from ' + args.field if args.field else ''}")
    return EXIT_OK


def cmd_access_request(client: StewardClient, args: argparse.Namespace, o: Output) -> int:
    datasets: list[Any] = list(args.ids) + [tuple(pair) for pair in args.name or []]
    if not datasets:
        raise UsageError("name at least one dataset: an ID, or --name NAMESPACE NAME")
    request = client.access_request(
        datasets, purpose=args.purpose, justification=args.justification, duration=args.duration
    )
    if o.json:
        o.data(request.to_json())
    else:
        show_request(o, request)
    return EXIT_OK


def cmd_access_list(client: StewardClient, args: argparse.Namespace, o: Output) -> int:
    items = client.access_requests(state=args.state, awaiting_me=args.awaiting_me)
    _emit_list(
        o,
        _take(items, args.limit),
        ["id", "state", "requester", "purpose", "datasets", "created"],
        lambda r: (
            r.id,
            r.state,
            r.requester,
            r.purpose,
            "; ".join(_dataset_name(d) for d in r.datasets),
            (r.created_at or "")[:19],
        ),
        "no access request",
    )
    return EXIT_OK


def _request_action(name: str) -> Any:
    def run(client: StewardClient, args: argparse.Namespace, o: Output) -> int:
        if name == "withdraw":
            request = client.access_request_withdraw(args.id, reason=args.reason or "")
        elif name == "approve":
            request = client.access_request_approve(args.id, role=args.role, comment=args.comment or "")
        else:
            request = client.access_request_deny(args.id, reason=args.reason)
        if o.json:
            o.data(request.to_json())
        else:
            show_request(o, request)
        return EXIT_OK

    return run


def cmd_grants(client: StewardClient, args: argparse.Namespace, o: Output) -> int:
    dataset = _resolve_id(client, _dataset_ref(args.dataset)) if args.dataset else None
    items = client.grants(dataset=dataset, state=args.state, user=args.user)

    def row(g: Grant) -> tuple[Any, ...]:
        holder = g.subject.get("workspace_label") or g.subject.get("user") or ""
        return (g.id, g.state, holder, _dataset_name(g.dataset), g.privilege, (g.valid_until or "")[:19])

    _emit_list(o, _take(items, args.limit), ["id", "state", "holder", "dataset", "privilege", "until"], row, "no grant")
    return EXIT_OK


def cmd_lineage_push(client: StewardClient, args: argparse.Namespace, o: Output) -> int:
    bar: Any = None

    def on_start(summary: PushSummary) -> None:
        nonlocal bar
        if summary.restarted:
            o.note(
                f"{args.file} changed since the last push: sending it from the start (the server skips events it has)"
            )
        elif summary.resumed_at:
            o.note(f"resuming after line {summary.resumed_at} (acknowledged earlier; state in {summary.state_file})")
        bar = _progress_bar(summary, disable=args.no_progress)

    def progress(lines: int) -> None:
        if bar is not None:
            bar.update(lines)

    try:
        summary = push_jsonl(
            client,
            args.file,
            batch_size=args.batch_size,
            state_file=args.state_file,
            restart=args.restart,
            progress=progress,
            on_start=on_start,
        )
    finally:
        if bar is not None:
            bar.close()
    if o.json:
        o.data(summary.to_json())
    else:
        skipped = f", {summary.resumed_at} lines acknowledged before" if summary.resumed_at else ""
        o.line(
            f"pushed {summary.sent} events in {summary.batches} batches: {summary.applied} applied, "
            f"{summary.duplicate} duplicate{skipped}"
        )
    return EXIT_OK


def _progress_bar(summary: PushSummary, *, disable: bool) -> Any:
    if disable:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # the optional dependency (pip install "steward-client[progress]")
        return None
    return tqdm(
        total=summary.total_lines,
        initial=summary.resumed_at,
        unit="line",
        desc="lineage",
        file=sys.stderr,
        disable=None,  # off when stderr is not a terminal
    )


def cmd_workspace_create(client: StewardClient, args: argparse.Namespace, o: Output) -> int:
    datasets: list[Any] = list(args.dataset or []) + [tuple(pair) for pair in args.name or []]
    resources = {k: v for k, v in (("cpu", args.cpu), ("memory", args.memory), ("gpu", args.gpu)) if v is not None}
    ws = client.workspace_create(
        args.template,
        name=args.ws_name or "",
        project=args.project,
        datasets=datasets,
        resources=resources or None,
        start=not args.stopped,
    )
    return _workspace_out(o, ws)


def _workspace_out(o: Output, ws: Workspace) -> int:
    if o.json:
        o.data(ws.to_json())
    else:
        show_workspace(o, ws)
    return EXIT_OK


def cmd_workspace_list(client: StewardClient, args: argparse.Namespace, o: Output) -> int:
    _emit_list(
        o,
        _take(client.workspaces(state=args.state), args.limit),
        ["id", "name", "state", "template", "datasets", "url"],
        lambda w: (w.id, w.name, w.state, w.template, len(w.datasets), w.url),
        "no workspace",
    )
    return EXIT_OK


def _workspace_action(name: str) -> Any:
    def run(client: StewardClient, args: argparse.Namespace, o: Output) -> int:
        action = {
            "show": client.workspace,
            "stop": client.workspace_stop,
            "start": client.workspace_start,
            "delete": client.workspace_delete,
        }[name]
        return _workspace_out(o, action(args.id))

    return run


def cmd_reconstruct(client: StewardClient, args: argparse.Namespace, o: Output) -> int:
    if not args.result and not (args.model_version and args.at):
        raise UsageError("give --result ID, or --model-version ID with --at TIME")
    report = client.reconstruct(
        result=args.result, model_version=args.model_version, at=args.at, depth=args.depth, keep=args.keep
    )
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            json.dump(report.to_json(), handle, indent=2, sort_keys=True)
    if o.json:
        o.data(report.to_json())
    else:
        show_report(o, report, args.output)
    return EXIT_OK


def show_report(o: Output, report: ComplianceReport, output: str | None) -> None:
    r = (report.bundle or {}).get("reconstruction") or {}
    o.line(f"reconstruction at {r.get('at') or report.at}")
    mv = r.get("model_version") or {}
    if mv:
        state = mv.get("state") or {}
        o.line(f"  model version  {state.get('version', '?')} ({mv.get('id')})")
    allowed = r.get("allowed")
    if allowed is not None:
        o.line(f"  allowed        {'yes' if allowed else 'NO'}")
    for finding in r.get("findings") or []:
        o.line(f"  finding        {finding}")
    digest = report.digest or {}
    o.line(f"  digest         {digest.get('algorithm', 'sha256')}:{digest.get('value', '')}")
    o.line(f"  stored report  {report.id}" if report.id else "  not stored (--keep stores it as a report)")
    if output:
        o.line(f"  written to     {output}")


# --- the parser --------------------------------------------------------------------------------------


def build_parser() -> Parser:
    parser = Parser(
        prog="steward",
        description="Steward's API from the command line. Server and token: STEWARD_URL and STEWARD_TOKEN, "
        "or ~/.config/steward/config.toml (url = ..., token = ...).",
        epilog="Exit codes: 0 ok, 1 usage, 2 refused by the server (not found, invalid, conflict), "
        "3 authentication or permission, 4 server error or unreachable, 130 interrupted.",
    )
    parser.add_argument("--url", help="the server (default: STEWARD_URL or the config file)")
    parser.add_argument("--profile", help="a [profiles.NAME] of the config file (or STEWARD_PROFILE)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts (errors too, on stderr)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP request (default 30)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)

    p = commands.add_parser("whoami", help="the token's user and roles")
    p.set_defaults(run=cmd_whoami)

    p = commands.add_parser("search", help="search datasets and models")
    p.add_argument("query", nargs="*", help="words to search for")
    for facet in ("kind", "platform", "tag", "classification", "owner"):
        p.add_argument(f"--{facet}", action="append", default=[], help=f"filter on {facet} (repeatable)")
    p.add_argument("--limit", type=int, help="results per page")
    p.add_argument("--offset", type=int)
    p.add_argument("--facets", action="store_true", help="print the facet counts")
    p.set_defaults(run=cmd_search)

    dataset = commands.add_parser("dataset", help="datasets").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=Parser
    )
    p = dataset.add_parser("show", help="a dataset by ID or by NAMESPACE NAME")
    p.add_argument("dataset", nargs="+", metavar="ID | NAMESPACE NAME")
    p.set_defaults(run=cmd_dataset_show)
    p = dataset.add_parser("list", help="datasets you may see, newest first")
    p.add_argument("--namespace")
    p.add_argument("--platform")
    p.add_argument("--tag")
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100; 0: all)")
    p.set_defaults(run=cmd_dataset_list)

    tag = commands.add_parser("tag", help="tags: the vocabulary, or a dataset's").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=Parser
    )
    p = tag.add_parser("list", help="the vocabulary, or with --dataset a dataset's tags")
    p.add_argument("--dataset", nargs="+", metavar="ID | NAMESPACE NAME")
    p.add_argument("--field", help="a column of the dataset")
    p.set_defaults(run=cmd_tag_list)
    for name, run, verb in (("add", cmd_tag_add, "tag"), ("remove", cmd_tag_remove, "untag")):
        p = tag.add_parser(name, help=f"{verb} a dataset or one of its columns")
        p.add_argument("key")
        p.add_argument("dataset", nargs="+", metavar="ID | NAMESPACE NAME")
        p.add_argument("--field", help="a column of the dataset")
        p.set_defaults(run=run)

    access = commands.add_parser("access", help="access requests and grants").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=Parser
    )
    p = access.add_parser("request", help="ask to read datasets")
    p.add_argument("ids", nargs="*", metavar="ID", help="dataset ids")
    p.add_argument("--name", nargs=2, action="append", metavar=("NAMESPACE", "NAME"), help="a dataset by name")
    p.add_argument("--purpose", required=True, help="a purpose of the policy (analytics, model-training...)")
    p.add_argument("--justification", required=True)
    p.add_argument("--duration", required=True, help="ISO 8601 duration: P7D, PT8H")
    p.set_defaults(run=cmd_access_request)
    p = access.add_parser("list", help="your access requests (or --awaiting-me: the ones you approve)")
    p.add_argument("--state", choices=["pending", "approved", "denied", "withdrawn", "expired"])
    p.add_argument("--awaiting-me", action="store_true")
    p.add_argument("--limit", type=int, default=0)
    p.set_defaults(run=cmd_access_list)
    p = access.add_parser("withdraw", help="withdraw your pending request")
    p.add_argument("id")
    p.add_argument("--reason")
    p.set_defaults(run=_request_action("withdraw"))
    p = access.add_parser("approve", help="give your approval")
    p.add_argument("id")
    p.add_argument("--role", choices=["owner", "privacy-officer", "data-steward"])
    p.add_argument("--comment")
    p.set_defaults(run=_request_action("approve"))
    p = access.add_parser("deny", help="deny a request")
    p.add_argument("id")
    p.add_argument("--reason", required=True)
    p.set_defaults(run=_request_action("deny"))
    p = access.add_parser("grants", help="grants you may see")
    p.add_argument("--dataset", nargs="+", metavar="ID | NAMESPACE NAME")
    p.add_argument("--state", choices=["active", "expired", "revoked", "suspended"])
    p.add_argument("--user")
    p.add_argument("--limit", type=int, default=0)
    p.set_defaults(run=cmd_grants)

    lineage = commands.add_parser("lineage", help="OpenLineage events").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=Parser
    )
    p = lineage.add_parser("push", help="send a JSON Lines file of events, in batches, resumably")
    p.add_argument("file")
    p.add_argument("--batch-size", type=int, default=500, help=f"events per request (1 to {MAX_BATCH}; default 500)")
    p.add_argument("--state-file", help="where acknowledged lines are recorded (default FILE.steward-push.json)")
    p.add_argument("--restart", action="store_true", help="ignore the state file: send from the first line")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_lineage_push)

    workspace = commands.add_parser("workspace", help="workspaces").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=Parser
    )
    p = workspace.add_parser("create", help="a workspace from a template, with datasets your grants cover")
    p.add_argument("--template", required=True, help="jupyter-cpu, jupyter-gpu, vscode...")
    p.add_argument("--name", dest="ws_name", help="a name for it")
    p.add_argument("--project")
    p.add_argument("--dataset", action="append", metavar="ID", help="a dataset to mount (repeatable)")
    p.add_argument("--dataset-name", dest="name", nargs=2, action="append", metavar=("NAMESPACE", "NAME"))
    p.add_argument("--cpu")
    p.add_argument("--memory")
    p.add_argument("--gpu", type=int)
    p.add_argument("--stopped", action="store_true", help="create it stopped")
    p.set_defaults(run=cmd_workspace_create)
    p = workspace.add_parser("list", help="your workspaces")
    p.add_argument("--state")
    p.add_argument("--limit", type=int, default=0)
    p.set_defaults(run=cmd_workspace_list)
    for name in ("show", "stop", "start", "delete"):
        p = workspace.add_parser(name, help=f"{name} a workspace")
        p.add_argument("id")
        p.set_defaults(run=_workspace_action(name))

    p = commands.add_parser("reconstruct", help="what was in effect for a result, or a model version at a time")
    p.add_argument("--result", help="a result record's id")
    p.add_argument("--model-version", help="a model version's id (with --at)")
    p.add_argument("--at", help="ISO 8601 time with offset")
    p.add_argument("--depth", type=int, help="upstream lineage depth (default 5)")
    p.add_argument("--keep", action="store_true", help="store it as a compliance report")
    p.add_argument("--output", "-o", help="write the whole report (bundle and digest) to this JSON file")
    p.set_defaults(run=cmd_reconstruct)
    return parser


# --- errors and exit codes ---------------------------------------------------------------------------


def exit_code_for(error: StewardError) -> int:
    if isinstance(error, AuthenticationError | PermissionDeniedError):
        return EXIT_AUTH
    if isinstance(error, ServerError | StewardConnectionError) or error.status is None:
        return EXIT_SERVER
    return EXIT_REFUSED


def report_error(o: Output, error: StewardError) -> None:
    if o.json:
        body = {
            "status": error.status,
            "code": error.code,
            "detail": error.message,
            "errors": [{"field": e.field, "code": e.code, "message": e.message} for e in error.errors],
        }
        print(json.dumps(body), file=o.err)
        return
    status = f"{error.status} " if error.status else ""
    o.note(f"error: {status}{error.code}: {error.message}")
    named = [e for e in error.errors if e.field]
    if not (len(named) == 1 and error.message == f"{named[0].field}: {named[0].message}"):
        for e in named:
            o.note(f"  {e.field}: {e.message}")
    if isinstance(error, AuthenticationError):
        o.note("  check STEWARD_TOKEN (or the token in the config file): it may be wrong, expired or revoked")


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    o = Output(json=args.json, out=out, err=err)
    try:
        config = load_config(url=args.url, profile=args.profile, warn=o.note)
    except ConfigError as exc:
        o.note(f"error: {exc}")
        return EXIT_USAGE
    if not config.url:
        o.note("error: no server: set STEWARD_URL, pass --url, or put url = ... in the config file")
        return EXIT_USAGE
    if not config.token:
        o.note("error: no token: set STEWARD_TOKEN or put token = ... in the config file (Settings > API tokens)")
        return EXIT_AUTH
    client = StewardClient(config.url, config.token, timeout=args.timeout)
    try:
        code: int = args.run(client, args, o)
        return code
    except UsageError as exc:
        o.note(f"error: {exc}")
        return EXIT_USAGE
    except PushError as exc:
        o.note(f"error: {exc}")
        if exc.cause is not None:
            return exit_code_for(exc.cause)
        return EXIT_USAGE
    except StewardError as exc:
        report_error(o, exc)
        return exit_code_for(exc)
    except OSError as exc:
        o.note(f"error: {exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}".rstrip(": "))
        return EXIT_USAGE
    except KeyboardInterrupt:
        o.note("interrupted" + (": rerun the same command to continue" if args.command == "lineage" else ""))
        return EXIT_INTERRUPTED
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
