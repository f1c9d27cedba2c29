"""The `oai` command: thin click wrappers around importable functions.

Harvester commands are mounted from the `oai.commands` entry-point group, so that `oai`
never imports `harvester`.
"""

from __future__ import annotations

import json
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

import click
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from oai.clitext import LINES, TEXT
from oai.config import ConfigError, load_config, unknown_settings
from oai.store import engine as store_engine
from oai.store.engine import SchemaError, make_engine, transaction

DEMO_DIRS = [Path(__file__).resolve().parent / "demo", Path(__file__).resolve().parents[1] / "tests" / "data" / "jats"]


def _engine(ctx: click.Context, *, check: bool = True, create: bool = True):  # noqa: ANN202
    """The writer engine for the configured database; refuses a schema that is behind (`check`), and a SQLite
    file that is not there unless the command may `create` it."""
    cfg = load_config()
    for name in unknown_settings():
        click.echo(f"warning: {name} is not a setting of ours, and is ignored (misspelt?)", err=True)
    engine = make_engine(ctx.obj.get("database") or cfg.database_url)
    ctx.call_on_close(engine.dispose)  # its connections closed when the command ends (a PostgreSQL one too)
    path = store_engine.sqlite_file(engine)
    if not create and path is not None and not Path(path).exists():  # connecting would make an empty file
        raise SchemaError(f"there is no database at {path}: `oai db upgrade` creates it")
    # the commands that make the schema only need to reach the database; the others, the schema of the code
    (store_engine.check_schema if check else store_engine.reachable)(engine)
    return engine


class _Commands(click.Group):
    """Adds the commands other packages contribute (the harvester's `source` and `harvest`), lazily."""

    def _plugins(self) -> dict[str, object]:
        return {ep.name: ep for ep in entry_points(group="oai.commands")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is None and name in (plugins := self._plugins()):
            cmd = plugins[name].load()
        return cmd

    def invoke(self, ctx: click.Context) -> object:
        """Any command's bad setting or unusable store (ConfigError, SchemaError, each saying what to do) is one
        line and exit 1, not a traceback: said here once rather than around each call that may raise them."""
        try:
            return super().invoke(ctx)
        except (ConfigError, SchemaError) as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Commands)
@click.option("--database", envvar="OAI_DATABASE_URL",
              help="SQLAlchemy URL (default: OAI_DATABASE_URL, else the config file's database_url, else "
                   "sqlite:///oai.sqlite3).")
@click.pass_context
def main(ctx: click.Context, database: str | None) -> None:
    """OAI-PMH repository server and harvester."""
    ctx.ensure_object(dict)["database"] = database


@main.group()
def db() -> None:
    """Create, upgrade and inspect the database schema."""


@db.command("upgrade")
@click.argument("revision", default="head")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Create the schema or bring it up to date."""
    engine = _engine(ctx, check=False)
    store_engine.upgrade(engine, revision)
    click.echo(f"schema at revision {store_engine.current_revision(engine)} "
               f"({engine.url.render_as_string(hide_password=True)})")


@db.command("downgrade", context_settings={"ignore_unknown_options": True})  # so that `-1` is the revision
@click.argument("revision")
@click.pass_context
def db_downgrade(ctx: click.Context, revision: str) -> None:
    """Step the schema back to REVISION (-1: one step)."""
    engine = _engine(ctx, check=False, create=False)
    store_engine.downgrade(engine, revision)
    click.echo(f"schema at revision {store_engine.current_revision(engine)}")


@db.command("copy")
@click.argument("target_url", metavar="TARGET_URL", type=TEXT)
@click.pass_context
def db_copy(ctx: click.Context, target_url: str) -> None:
    """Copy the whole store into the empty database TARGET_URL (made if it has no schema): a repository begun on
    SQLite moves to PostgreSQL with its identifiers, datestamps, sources, history and token secret."""
    from oai.store.copy import copy_store

    source = _engine(ctx)
    target = make_engine(target_url)
    ctx.call_on_close(target.dispose)
    if _same_file(store_engine.sqlite_file(target), store_engine.sqlite_file(source)):
        raise click.ClickException("the target is the store itself")
    try:
        store_engine.reachable(target)
    except SchemaError as exc:  # (its advice, to run `oai db upgrade`, is for the store, not a copy)
        raise click.ClickException(str(exc).replace(", then run `oai db upgrade`", ", then run the copy again")
                                   ) from None
    where = target.url.render_as_string(hide_password=True)
    copied = copy_store(source, target, lambda table, rows: click.echo(f"  {table}: {rows} rows"))
    click.echo(f"copied {copied.get('record', 0)} records into {where}; point OAI_DATABASE_URL at it")


def _same_file(one: str | None, other: str | None) -> bool:
    """Whether two SQLite paths name one file: by path, or by a link (a hard link too)."""
    if one is None or other is None:
        return False
    try:
        return os.path.samefile(one, other)
    except OSError:  # (the target not there yet)
        return False


@db.command("current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Show the schema revision of the database and of the code."""
    engine = _engine(ctx, check=False, create=False)
    click.echo(f"database: {store_engine.current_revision(engine)}  code: {store_engine.head_revision()}")


def _set_option(value: str) -> tuple[str, str | None]:
    spec, _, name = value.partition("=")
    from oai.store.validation import check_set_spec

    try:
        check_set_spec(spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return spec, name or None


def _refuse_sources_sets(engine, specs: list[str]) -> None:  # noqa: ANN001
    from oai.store.records import source_of_set

    with transaction(engine) as session:
        for spec in specs:
            if (source := source_of_set(session, spec)) is not None:
                raise click.ClickException(f"the set {spec!r} is where the harvest source {source!r} serves its "
                                           "records; local records and sets go elsewhere")


def _template_option(value: str | None) -> str | None:
    """An --identifier-template checked before anything is read: a usage error, as a bad --set is."""
    from oai.loader import LoadError, template_fields

    if value is not None:
        try:
            template_fields(value)
        except LoadError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


@main.command("load")
@click.argument("paths", nargs=-1, required=True)
@click.option("--set", "set_values", multiple=True, metavar="SPEC[=NAME]", type=TEXT,
              help="Put the records in this set (created if needed). Repeatable.")
@click.option("--identifier-template", default=None, type=TEXT, callback=lambda _c, _p, v: _template_option(v),
              help="OAI identifier: {repository_identifier}, {doi}, {stem}, {doi_or_stem} "
                   "(default oai:{repository_identifier}:{doi_or_stem}).")
@click.option("--withhold-full-text", is_flag=True, help="Serve JATS front matter only (full text is not ours to share).")
@click.option("--jobs", type=click.IntRange(1, 64), default=None,
              help="Parser processes (default: 2, or 1 on a machine of one core).")
@click.pass_context
def load_cmd(ctx: click.Context, paths: tuple[str, ...], set_values: tuple[str, ...],
             identifier_template: str | None, withhold_full_text: bool, jobs: int | None) -> None:
    """Load JATS articles or oai_dc records from files, directories (recursively) or - (stdin)."""
    from oai.loader import DEFAULT_TEMPLATE, discover, load

    cfg = load_config()
    engine = _engine(ctx)
    sets = [_set_option(v) for v in set_values]
    _refuse_sources_sets(engine, [spec for spec, _ in sets])
    names = list(discover(paths))
    show = sys.stderr.isatty()
    with open(os.devnull, "w") as devnull, click.progressbar(length=len(names), label="loading",
                                                            file=sys.stderr if show else devnull) as bar:
        try:
            summary = load(engine, paths, repository_identifier=cfg.repository_identifier, sets=sets,
                           identifier_template=identifier_template or DEFAULT_TEMPLATE,
                           full_text=not withhold_full_text, workers=jobs, on_progress=bar.update)
        except SQLAlchemyError as exc:  # the database went away, or ended a batch left idle (a stopped load)
            raise click.ClickException(
                f"the database failed the load: {store_engine.error_reason(exc)}. What was committed before "
                "stays; load the same paths again to finish (what is there already comes back unchanged)") from None
    for name, reason in summary.failed:
        click.echo(f"failed: {name}: {reason}", err=True)
    for name, warning in summary.warnings:
        click.echo(f"warning: {name}: {warning}", err=True)
    click.echo(f"loaded {summary.new}, updated {summary.updated}, unchanged {summary.unchanged}, "
               f"failed {len(summary.failed)}")
    if summary.failed:
        ctx.exit(1)


@main.command("delete")
@click.argument("identifier", type=TEXT)
@click.pass_context
def delete_cmd(ctx: click.Context, identifier: str) -> None:
    """Delete a record: it stays as a tombstone, served as deleted."""
    from oai.store.records import Change, delete_record

    with transaction(_engine(ctx)) as session:
        change = delete_record(session, identifier)
    if change is None:
        raise click.ClickException(f"there is no record {identifier}")
    click.echo("already deleted" if change is Change.UNCHANGED else f"deleted {identifier}")


@main.group()
def sets() -> None:
    """List and add sets."""


@sets.command("list")
@click.pass_context
def sets_list(ctx: click.Context) -> None:
    """List the sets: spec and name."""
    from oai.store.models import OAISet

    with transaction(_engine(ctx)) as session:
        for s in session.scalars(select(OAISet).order_by(OAISet.spec)):
            click.echo(f"{s.spec}\t{s.name}")


@sets.command("add")
@click.argument("spec", type=TEXT)
@click.argument("name", required=False, type=TEXT)
@click.option("--description", type=LINES, help="A plain-text description (served as oai_dc:description).")
@click.pass_context
def sets_add(ctx: click.Context, spec: str, name: str | None, description: str | None) -> None:
    """Create a set (or rename it)."""
    from oai.formats.dc import build_dc
    from oai.formats.safexml import canonical_bytes
    from oai.store.records import set_info

    spec, _ = _set_option(spec)
    engine = _engine(ctx)
    _refuse_sources_sets(engine, [spec])
    desc = canonical_bytes(build_dc([("description", description, None)])).decode() if description else None
    with transaction(engine) as session:
        set_info(session, spec, name or spec, desc)
    click.echo(f"set {spec}: {name or spec}")


@main.group()
def records() -> None:
    """A quick look at what the store holds."""


@records.command("list")
@click.option("--limit", type=click.IntRange(1, 2**31 - 1), default=50, show_default=True, help="Newest records shown.")
@click.pass_context
def records_list(ctx: click.Context, limit: int) -> None:
    """The newest records, by datestamp."""
    from sqlalchemy import func

    from oai.store.models import Record

    with transaction(_engine(ctx)) as session:
        rows = session.execute(
            select(Record.identifier, Record.datestamp, Record.deleted, Record.set_specs)
            .order_by(Record.datestamp.desc(), Record.id.desc()).limit(limit)
        ).all()
        for r in rows:
            flag = " (deleted)" if r.deleted else ""
            click.echo(f"{r.datestamp:%Y-%m-%dT%H:%M:%SZ}  {r.identifier}{flag}  {r.set_specs}")
        if len(rows) == limit:
            total = session.scalar(select(func.count()).select_from(Record))
            if total > limit:
                click.echo(f"(the newest {limit} of {total} records; --limit N shows more)")


@records.command("show")
@click.argument("identifier", type=TEXT)
@click.option("--prefix", default=None, type=TEXT,
              help="Print this format's metadata (default: list formats and oai_dc).")
@click.pass_context
def records_show(ctx: click.Context, identifier: str, prefix: str | None) -> None:
    """Print a record's header and formats, and its metadata (oai_dc unless --prefix names another)."""
    from oai.store import queries
    from oai.store.models import Source

    with transaction(_engine(ctx)) as session:
        rec = queries.record_by_identifier(session, identifier)
        if rec is None:
            raise click.ClickException(f"there is no record {identifier}")
        prefixes = queries.record_prefixes(session, rec.id)
        click.echo(f"identifier: {rec.identifier}\ndatestamp:  {rec.datestamp:%Y-%m-%dT%H:%M:%SZ}\n"
                   f"deleted:    {rec.deleted}\nsets:       {rec.set_specs or '-'}\nformats:    {' '.join(prefixes)}")
        if rec.upstream_identifier is not None:  # where it came from, as its provenance says (an outside audit)
            source = session.get(Source, rec.source_id) if rec.source_id is not None else None
            came = f"{source.name} ({source.base_url})" if source else "a source removed since"
            when = f"{rec.harvested_at:%Y-%m-%dT%H:%M:%SZ}" if rec.harvested_at else "?"
            click.echo(f"harvested:  from {came} as {rec.upstream_identifier}, datestamp "
                       f"{rec.upstream_datestamp or '?'}, on {when}")
        if prefix is not None and prefix not in prefixes:  # (it printed the header and nothing, an outside audit)
            raise click.ClickException(f"{identifier} has no {prefix} metadata; its formats: {' '.join(prefixes)}")
        item = queries.get_item(session, identifier, prefix or "oai_dc")
        if rec.citation and prefix is None:
            click.echo("citation:   " + json.dumps(json.loads(rec.citation), ensure_ascii=False))
        if item is not None and item.xml:
            from lxml import etree

            click.echo(etree.tostring(etree.fromstring(item.xml), pretty_print=True, encoding="unicode"))
        elif not rec.deleted and (prefix or "oai_dc") in prefixes:  # (it printed nothing, an outside audit)
            click.echo(f"({prefix or 'oai_dc'} withdrawn: served as deleted for this record; a version of it without "
                       "that format was loaded)")


def _check_port(host: str, port: int) -> None:
    """Say a port in use, naming --port, before anything else is done (`oai demo` loaded its records first)."""
    import errno
    import socket

    if port == 0:
        return
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
            probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(f"cannot listen on {host} port {port} ({exc.strerror}): stop the program "
                                       "using it, or choose another port with --port N") from None
        if exc.errno == errno.EACCES:
            raise click.ClickException(f"cannot listen on {host} port {port} ({exc.strerror}): ports below 1024 "
                                       "need privileges; choose another with --port N") from None
        raise click.ClickException(f"cannot listen on {host} ({exc.strerror or exc}): --host must name an address "
                                   "of this machine, such as 127.0.0.1") from None


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, type=click.IntRange(0, 65535), show_default=True)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Run the development server (production: gunicorn 'oai:create_app()')."""
    from oai.web.app import create_app

    _check_port(host, port)
    overrides = {"database_url": ctx.obj["database"]} if ctx.obj.get("database") else {}
    app = create_app(overrides)
    from werkzeug.serving import make_server

    # Bound before the URL is printed: a port in use is said (by Werkzeug, exit 1), not a URL that answers nothing.
    server = make_server(host, port, app, threaded=True)
    path = app.config["OAI"].endpoint_path
    click.echo(f"OAI-PMH endpoint: http://{host}:{server.server_port}{path}?verb=Identify", err=True)
    click.echo(f"browser view:     http://{host}:{server.server_port}{path.rstrip('/')}/view?verb=Identify", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@main.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, type=click.IntRange(0, 65535), show_default=True)
@click.option("--no-serve", is_flag=True, help="Only create the store and load the demo records.")
@click.pass_context
def demo(ctx: click.Context, host: str, port: int, no_serve: bool) -> None:
    """Create the store, load the demo articles, and serve them."""
    from oai.loader import load

    if not no_serve:
        _check_port(host, port)
    engine = _engine(ctx, check=False)
    store_engine.upgrade(engine)
    cfg = load_config()
    dirs = [str(d) for d in DEMO_DIRS if d.is_dir()]
    summary = load(engine, dirs, repository_identifier=cfg.repository_identifier,
                   sets=[("demo", "Demo articles")])
    click.echo(f"demo records: loaded {summary.new}, updated {summary.updated}, unchanged {summary.unchanged}, "
               f"failed {len(summary.failed)} ({engine.url.render_as_string(hide_password=True)})", err=True)
    for name, reason in summary.failed:
        click.echo(f"failed: {name}: {reason}", err=True)
    if summary.warnings:  # not each: a page of them before the URL; `oai load` on the same files lists them
        warned = len({name for name, _ in summary.warnings})
        database = f"--database {ctx.obj['database']} " if ctx.obj.get("database") else ""
        click.echo(f"{warned} of them loaded with warnings, which `oai {database}load --set demo {' '.join(dirs)}` "
                   "prints (an "
                   "article JATS Publishing 1.4 does not validate whole is served as front matter, or as oai_dc only)",
                   err=True)
    if not no_serve:
        ctx.invoke(serve, host=host, port=port)

