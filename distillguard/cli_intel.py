"""``distillguard intel``: share indicators with partners (STIX 2.1 over TAXII 2.1)."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from distillguard.errors import DistillguardError, IntelError

if TYPE_CHECKING:  # the intel stage (stix2, taxii2-client) loads when an intel command runs
    from distillguard.intel import IntelConfig, ReceivedIntel, TaxiiTarget

__all__ = ["intel_app", "load_received_intel"]

intel_app = typer.Typer(help="Share indicators with partners: STIX 2.1 bundles over TAXII 2.1.",
                        no_args_is_help=True)
out = Console()
err = Console(stderr=True)

ConfigOption = Annotated[Path | None, typer.Option(
    "--config", help="Intel config YAML (producer, secret_file, tlp, limits); the secret may "
                     "also come from DISTILLGUARD_INTEL_KEY.")]
TaxiiUrl = Annotated[str, typer.Option("--taxii", help="TAXII 2.1 API root URL, e.g. "
                                       "https://taxii.example.org/api1/")]
CollectionId = Annotated[str, typer.Option("--collection", help="Collection id.")]
User = Annotated[str | None, typer.Option("--user", help="User (HTTP Basic).")]
PASSWORD_ENV = "DISTILLGUARD_TAXII_PASSWORD"
TOKEN_ENV = "DISTILLGUARD_TAXII_TOKEN"
PasswordFile = Annotated[Path | None, typer.Option(
    "--password-file", help=f"File holding the password (HTTP Basic; or set {PASSWORD_ENV}).")]
Password = Annotated[str | None, typer.Option("--password", hidden=True)]  # refused
TokenFile = Annotated[Path | None, typer.Option(
    "--token-file", help="File holding a token, sent as 'Authorization: Bearer' (or set "
                         f"{TOKEN_ENV}).")]
Token = Annotated[str | None, typer.Option("--token", hidden=True)]  # refused
Insecure = Annotated[bool, typer.Option("--insecure", help="Do not verify the server's TLS "
                                        "certificate.")]


def _write_atomically(path: Path, data: bytes) -> None:
    """Write next to ``path`` and rename: a failed run leaves the old file untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _config(path: Path | None, tlp: str | None = None) -> IntelConfig:
    from distillguard.intel import load_intel_config

    config = load_intel_config(path)
    return config if tlp is None else dataclasses.replace(config, tlp=_tlp(tlp))


def _tlp(value: str) -> str:
    from distillguard.cli import fail
    from distillguard.intel.vocabulary import TLP_MARKINGS

    if value.lower() not in TLP_MARKINGS:
        fail(f"--tlp must be one of {', '.join(TLP_MARKINGS)}, got {value!r}")
    return value.lower()


def _attribution(items: list[str] | None) -> dict[str, str]:
    from distillguard.cli import fail

    out_map = {}
    for item in items or []:
        cid, sep, name = item.partition("=")
        if not sep or not cid.strip() or not name.strip():
            fail(f"--attribute wants CAMPAIGN=OPERATOR, got {item!r}")
        out_map[cid.strip()] = name.strip()
    return out_map


def _print_validation(text: str) -> bool:
    from distillguard.intel import validate_bundle_text

    report = validate_bundle_text(text)
    for e in report.errors:
        err.print(f"[red]invalid:[/] {e}", highlight=False)
    out.print(f"OASIS STIX 2.1 validator: {len(report.errors)} error(s), "
              f"{len(report.warnings)} warning(s)", highlight=False)
    return report.valid


@intel_app.command("export")
def export_command(
    findings_path: Annotated[Path, typer.Argument(help="findings.json written by `scan`.")],
    out_path: Annotated[Path, typer.Option("--out", help="Bundle file to write.")],
    config: ConfigOption = None,
    tlp: Annotated[str | None, typer.Option(help="TLP marking: clear/white, green, amber "
                                            "(default), red.")] = None,
    attribute: Annotated[list[str] | None, typer.Option(
        help="CAMPAIGN=OPERATOR: the operator an analyst attributes a campaign to "
             "(an intrusion-set; repeatable).")] = None,
    validate: Annotated[bool, typer.Option(help="Run the OASIS STIX 2.1 validator on the "
                                           "bundle; write nothing if it finds errors.")] = False,
    db: Annotated[Path | None, typer.Option(
        help="The store the findings were scanned from: adds a sighting per indicator "
             "(exchanges, accounts, first and last seen).")] = None,
) -> None:
    """Write a STIX 2.1 bundle of the campaigns in findings.json."""
    from distillguard.cli import fail
    from distillguard.intel import findings_to_bundle

    try:
        findings = orjson.loads(findings_path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        fail(f"cannot read findings {findings_path}: {exc}")
        return
    if db is not None and not db.is_file():
        fail(f"no store at {db}")
    try:
        settings = _config(config, tlp)
        settings.hasher()  # a missing secret fails before the store is read
        bundle = findings_to_bundle(findings, settings, attribution=_attribution(attribute),
                                    stats=_indicator_stats(db, findings) if db else None)
        text = bundle.serialize(pretty=True)
        if validate and not _print_validation(text):
            fail("the bundle does not pass the STIX 2.1 validator; nothing written")
        _write_atomically(out_path, text.encode("utf-8"))
    except DistillguardError as exc:
        fail(str(exc))
        return
    types = orjson.loads(text)["objects"]
    out.print(f"[bold]Exported[/] {len(findings['campaigns'])} campaign(s) as {len(types)} STIX "
              f"objects ({sum(o['type'] == 'indicator' for o in types)} indicators) -> "
              f"{out_path}", highlight=False)


def _indicator_stats(db: Path, findings: dict[str, Any]) -> dict[Any, Any]:
    from distillguard.engines import ExchangeStore
    from distillguard.engines.sql_engine import DuckDBEngine
    from distillguard.intel.indicator_stats import indicator_stats

    with ExchangeStore(db) as store:
        return indicator_stats(DuckDBEngine(store.con), findings)


def _print_received(received: ReceivedIntel) -> None:
    table = Table(title="Received indicators", title_justify="left")
    for column in ("partner", "campaign", "indicators", "by kind"):
        table.add_column(column)
    for c in received.campaigns:
        mine = [i for i in received.indicators if i.campaign == c]
        kinds: dict[str, int] = {}
        for i in mine:
            kinds[i.kind] = kinds.get(i.kind, 0) + 1
        table.add_row(c.partner, c.name, f"{len(mine):,}",
                      ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    out.print(table)
    left_out = [f"{n} {what}" for n, what in ((received.unmatchable, "not matchable on API "
                                               "traffic"), (received.revoked, "revoked"),
                                              (received.expired, "expired")) if n]
    if left_out:
        out.print("indicators left out: " + ", ".join(left_out), highlight=False)


def load_received_intel(paths: list[Path], config: IntelConfig) -> ReceivedIntel:
    """Every bundle of ``paths``, checked whole before any is used."""
    from distillguard.intel import read_bundles

    return read_bundles(paths, max_bytes=config.max_bundle_bytes, max_objects=config.max_objects)


@intel_app.command("import")
def import_command(
    bundles: Annotated[list[Path], typer.Argument(help="Bundles received from partners "
                                                  "(files or folders of .json).")],
    into: Annotated[Path | None, typer.Option(
        help="Keep the checked bundles in this folder (what `scan --intel FOLDER` reads).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Check bundles received from partners and list their indicators; keep them with --into.

    A malformed or hostile bundle (bad JSON, invalid pattern, unknown types, too big,
    too deeply nested) is refused with the reason, and nothing is kept.
    """
    from distillguard.cli import fail

    try:
        settings = _config(config)
        received = load_received_intel(bundles, settings)
        if into is not None:
            for source in received.sources:
                path = Path(source)
                _write_atomically(into / path.name, path.read_bytes())
    except (DistillguardError, OSError) as exc:
        fail(str(exc))
        return
    out.print(f"[bold]Checked[/] {len(received.sources)} bundle(s): "
              f"{sum(received.objects.values()):,} objects, {len(received.indicators):,} "
              "indicators the scan matches" + (f"; kept in {into}" if into else ""),
              highlight=False)
    _print_received(received)


def _target(url: str, collection: str, *, user: str | None, password_file: Path | None,
            password: str | None, token_file: Path | None, token: str | None,
            insecure: bool) -> TaxiiTarget:
    """The server to talk to; the password and token come from files or the environment,
    never from the command line."""
    from distillguard.cli import _secret_token, fail
    from distillguard.intel import TaxiiTarget

    secret = _secret_token(password_file, password, env=PASSWORD_ENV, option="password",
                           what="TAXII password")
    bearer = _secret_token(token_file, token, env=TOKEN_ENV, option="token", what="TAXII token")
    if (user is None) != (secret is None):
        fail(f"give --user and its password (--password-file or {PASSWORD_ENV}) together")
    if bearer and user:
        fail(f"give either --user with a password or a token (--token-file or {TOKEN_ENV})")
    return TaxiiTarget(url, collection, user=user, password=secret, token=bearer,
                       verify_tls=not insecure)


@intel_app.command("push")
def push_command(
    bundle: Annotated[Path, typer.Argument(help="Bundle to push (e.g. from `intel export`).")],
    taxii: TaxiiUrl, collection: CollectionId, user: User = None,
    password_file: PasswordFile = None, password: Password = None, token_file: TokenFile = None,
    token: Token = None, insecure: Insecure = False, config: ConfigOption = None,
) -> None:
    """Add a bundle's objects to a TAXII 2.1 collection."""
    from distillguard.cli import fail
    from distillguard.intel import push_objects, read_bundle

    target = _target(taxii, collection, user=user, password_file=password_file,
                     password=password, token_file=token_file, token=token, insecure=insecure)
    try:
        settings = _config(config)
        read_bundle(bundle, max_bytes=settings.max_bundle_bytes, max_objects=settings.max_objects)
        objects = orjson.loads(bundle.read_bytes())["objects"]
        report = push_objects(target, objects)
    except DistillguardError as exc:
        fail(str(exc))
        return
    out.print(f"[bold]Pushed[/] {report.sent:,} objects in {report.envelopes} envelope(s) to "
              f"{target.collection_url}: {report.succeeded:,} added, {report.failed:,} refused "
              f"(already there or invalid), {report.pending:,} pending", highlight=False)


@intel_app.command("pull")
def pull_command(
    taxii: TaxiiUrl, collection: CollectionId,
    out_path: Annotated[Path, typer.Option("--out", help="Bundle file to write.")],
    user: User = None, password_file: PasswordFile = None, password: Password = None,
    token_file: TokenFile = None, token: Token = None, insecure: Insecure = False,
    added_after: Annotated[str | None, typer.Option(help="Only objects added after this "
                                                    "time (RFC 3339).")] = None,
    page_size: Annotated[int, typer.Option(help="Objects per request.")] = 100,
    config: ConfigOption = None,
) -> None:
    """Read every page of a TAXII 2.1 collection into one bundle (checked before it is written)."""
    from distillguard.cli import fail
    from distillguard.intel import parse_bundle, pull_objects

    target = _target(taxii, collection, user=user, password_file=password_file,
                     password=password, token_file=token_file, token=token, insecure=insecure)
    if page_size < 1:
        fail("--page-size must be at least 1")
    try:
        settings = _config(config)
        objects = pull_objects(target, per_page=page_size, added_after=added_after)
        data = _bundle_bytes(objects)
        if len(data) > settings.max_bundle_bytes:
            msg = (f"the collection holds {len(data):,} bytes of objects, more than the limit "
                   f"of {settings.max_bundle_bytes:,}")
            raise IntelError(msg)
        received = parse_bundle(data, source=target.collection_url,
                                max_objects=settings.max_objects)
        _write_atomically(out_path, data)
    except DistillguardError as exc:
        fail(str(exc))
        return
    out.print(f"[bold]Pulled[/] {len(objects):,} objects from {target.collection_url} -> "
              f"{out_path}", highlight=False)
    _print_received(received)


def _bundle_bytes(objects: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects},
                        option=orjson.OPT_INDENT_2)


@intel_app.command("validate")
def validate_command(
    bundle: Annotated[Path, typer.Argument(help="Bundle file to check.")],
) -> None:
    """Run the OASIS STIX 2.1 validator over a bundle."""
    from distillguard.cli import fail

    try:
        text = bundle.read_text(encoding="utf-8")
        valid = _print_validation(text)
    except (OSError, UnicodeDecodeError, DistillguardError) as exc:
        fail(f"cannot validate {bundle}: {exc}")
        return
    if not valid:
        raise typer.Exit(1)
