"""The serve, concurrent, static and harvest sub-benchmarks: servers side by side, runs interleaved.

Every run records wall-clock rates and the server workers' CPU time per page (robust on a busy machine).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench import clients, servers
from bench import store as S
from bench.report import median, ratio, table, write
from bench.static_server import capture

SERVERS = {"ours": servers.ours, "pyoai": servers.pyoai}


@dataclass
class Ctx:
    work: Path
    count: int
    repeat: int
    prefixes: tuple[str, ...]
    clients: int
    duration: float
    page_size: int = 100
    servers: tuple[str, ...] = ("ours", "pyoai")  # which servers `depth` measures
    tokens: dict = field(default_factory=dict)  # (kind, server, prefix) -> tokens of a full list

    @property
    def logdir(self) -> Path:
        return self.work / "logs"

    def params(self) -> dict:
        return {"count": self.count, "repeat": self.repeat, "prefixes": list(self.prefixes), "clients": self.clients,
                "duration_s": self.duration, "page_size": self.page_size}


def _order(names: list[str], rep: int) -> list[str]:
    return names if rep % 2 == 0 else list(reversed(names))


def _start(name: str, st: S.Store, ctx: Ctx):  # noqa: ANN202
    return lambda: SERVERS[name](st.env(), ctx.logdir, page_size=ctx.page_size, name=f"{name}-{st.kind}")


def serve(ctx: Ctx, stores: dict[str, S.Store]) -> list[dict]:
    """Sequential sickle harvests of ours (identity and gzip) and pyoai; page latency; deep vs first page; RSS."""
    rows: list[dict] = []
    for kind, st in stores.items():
        with servers.running(_start("ours", st, ctx), _start("pyoai", st, ctx)) as (ours, pyo):
            targets = {"ours": (ours, "identity"), "ours+gzip": (ours, "gzip, deflate"), "pyoai": (pyo, "identity")}
            runs: dict[tuple[str, str], list[dict]] = defaultdict(list)
            for rep in range(ctx.repeat):
                for prefix in ctx.prefixes:
                    for name in _order(list(targets), rep):
                        srv, encoding = targets[name]
                        cpu = srv.cpu_seconds()
                        h = clients.sickle_harvest(srv.url, prefix, encoding=encoding)
                        cpu = srv.cpu_seconds() - cpu
                        runs[(name, prefix)].append({
                            "records": h.records, "pages": h.pages, "records_s": h.rate,
                            "page_ms_p50": 1000 * median(h.latencies),
                            "page_ms_p95": 1000 * clients.percentile(h.latencies, 95),
                            "cpu_ms_page": 1000 * cpu / h.pages,
                        })
                        if name != "ours+gzip":
                            ctx.tokens[(kind, name.split("+")[0], prefix)] = h.tokens
                        print(f"  {kind} {name} {prefix} run {rep + 1}: {h.records} records, {h.rate:.0f}/s", flush=True)
            depth = {}
            for name, srv in (("ours", ours), ("pyoai", pyo)):
                for prefix in ctx.prefixes:
                    toks = ctx.tokens[(kind, name, prefix)]
                    k = math.ceil(0.9 * (len(toks) + 1))  # the page at 90% depth is fetched by tokens[k - 2]
                    depth[(name, prefix)] = clients.depth_ratio(srv.url, prefix, toks[0], toks[max(0, k - 2)])
            rss = {"ours": ours.peak_rss_mb(), "ours+gzip": ours.peak_rss_mb(), "pyoai": pyo.peak_rss_mb()}
        for (name, prefix), rs in runs.items():
            d = depth.get((name, prefix), {})
            rows.append({
                "db": kind, "server": name, "prefix": prefix, "records": rs[0]["records"], "pages": rs[0]["pages"],
                **{k: median(r[k] for r in rs) for k in ("records_s", "page_ms_p50", "page_ms_p95", "cpu_ms_page")},
                "first_ms": d.get("first_ms"), "second_ms": d.get("second_ms"), "deep_ms": d.get("deep_ms"),
                "deep/first": d.get("deep_over_first"), "deep/second": d.get("deep_over_second"),
                "worker_peak_rss_mb": rss[name], "runs": len(rs),
            })
    tables = [table(f"serve, sequential (sickle, {ctx.count} records, {ctx.page_size}/page, median of {ctx.repeat})", rows,
                    ["db", "server", "prefix", "records_s", "page_ms_p50", "page_ms_p95", "cpu_ms_page",
                     "first_ms", "deep_ms", "deep/first", "deep/second", "worker_peak_rss_mb"])]
    ratios = _ratios(rows, "records_s", "ours", "pyoai") + _ratios(rows, "cpu_ms_page", "pyoai", "ours")
    tables.append(table("serve, sequential: ratios", ratios, ["db", "prefix", "metric", "ratio"]))
    write("serve", ctx.params(), rows + ratios, tables)
    return rows


def _ratios(rows: list[dict], metric: str, a: str, b: str, *, label: str | None = None,
            paired: dict[tuple[str, str], float] | None = None) -> list[dict]:
    """a/b of `metric` per (db, prefix): the ratio of the medians, and with `paired` (by (db, prefix)) also the
    median of the ratios of the runs made one after the other (see _paired)."""
    by = {(r["db"], r["server"], r["prefix"]): r[metric] for r in rows}
    out = []
    for (db, server, prefix), value in by.items():
        if server == a and (db, b, prefix) in by:
            row = {"db": db, "prefix": prefix, "metric": label or f"{metric} {a}/{b}",
                   "ratio": ratio(value, by[(db, b, prefix)])}
            if paired is not None:
                row["paired"] = paired.get((db, prefix), float("nan"))
            out.append(row)
    return out


def _paired(kind: str, runs: dict[tuple[str, str], list[dict]], metric: str, a: str, b: str) -> dict:
    """median over repetitions of a's run / b's run of the same repetition, by (kind, prefix).

    The two runs of a repetition follow each other within seconds; the machine's speed drifts by a third over
    minutes, which moves the medians of a and b apart when their fast runs fall in different repetitions.
    """
    out = {}
    for (name, prefix), rs in runs.items():
        if name == a and (b, prefix) in runs:
            out[(kind, prefix)] = median(ratio(x[metric], y[metric]) for x, y in zip(rs, runs[(b, prefix)], strict=True))
    return out


_CORES = os.cpu_count() or 1


def _cpu_bounds(rows: list[dict], ratios: list[dict]) -> list[dict]:
    """How far the harvester/sickle ratio could go on this machine's cores with the CPU each record costs now.

    The sickle loop takes `sickle_wall` ms a record; our harvester, its workers, the server and PostgreSQL (which
    both the server and the harvester use, when the stores are there) together spend `harvester_cpu` ms of CPU a
    record. Even with every core busy all the time, the harvester needs
    harvester_cpu / cores ms a record, so its ratio cannot pass cores * sickle_wall / harvester_cpu (`ceiling`),
    and matching the loop needs harvester_cpu <= cores * sickle_wall (`budget`). `of_ceiling` is how much of the
    ceiling the run reached (what overlapping the stages won)."""
    by = {(r["db"], r["server"], r["prefix"]): r for r in rows}
    out = []
    for q in ratios:
        ours, loop = by.get((q["db"], "harvester", q["prefix"])), by.get((q["db"], "sickle", q["prefix"]))
        if ours is None or loop is None:
            continue
        wall = ratio(1000.0, loop["records_s"])
        cpu = ours["client_ms_rec"] + ours["workers_ms_rec"] + ours["server_ms_rec"] + ours["database_ms_rec"]
        ceiling = ratio(_CORES * wall, cpu)
        out.append({"db": q["db"], "prefix": q["prefix"], "metric": "cpu bound", "sickle_wall_ms_rec": wall,
                    "budget_ms_rec": _CORES * wall, "harvester_cpu_ms_rec": cpu, "ceiling": ceiling,
                    "ratio": q["ratio"], "of_ceiling": ratio(q["ratio"], ceiling)})
    return out


def _tokens(ctx: Ctx, kind: str, name: str, srv: servers.Server, prefix: str) -> list[str]:
    """Every token of a full list (from the sequential run, or walked now with raw requests)."""
    key = (kind, name, prefix)
    if key not in ctx.tokens:
        probe, toks = clients.Probe(srv.url), []
        params = {"verb": "ListRecords", "metadataPrefix": prefix}
        try:
            while True:
                _, body = probe.get(params)
                token = clients.next_token(body)
                if not token:
                    break
                toks.append(token)
                params = {"verb": "ListRecords", "resumptionToken": token}
        finally:
            probe.close()
        ctx.tokens[key] = toks
    return ctx.tokens[key]


def depth(ctx: Ctx, stores: dict[str, S.Store]) -> list[dict]:
    """First, second and 90%-deep page only (tokens walked with raw requests): the cheap check for 1M stores."""
    rows: list[dict] = []
    for kind, st in stores.items():
        with servers.running(*(_start(name, st, ctx) for name in ctx.servers)) as started:
            for name, srv in zip(ctx.servers, started, strict=True):
                for prefix in ctx.prefixes:
                    toks = _tokens(ctx, kind, name, srv, prefix)
                    k = math.ceil(0.9 * (len(toks) + 1))
                    d = clients.depth_ratio(srv.url, prefix, toks[0], toks[max(0, k - 2)], rounds=max(5, ctx.repeat * 2 + 1))
                    rows.append({"db": kind, "server": name, "prefix": prefix, "pages": len(toks) + 1, **d,
                                 "worker_rss_mb": srv.peak_rss_mb()})  # after walking every page
                    print(f"  {kind} {name} {prefix}: deep/first {d['deep_over_first']:.2f}", flush=True)
    tables = [table(f"deep vs first page ({ctx.count} records, target deep/first <= 1.1)", rows,
                    ["db", "server", "prefix", "pages", "first_ms", "second_ms", "deep_ms", "deep_over_first",
                     "deep_over_second", "rounds", "worker_rss_mb"])]
    write("depth", ctx.params(), rows, tables)
    return rows


def concurrent(ctx: Ctx, stores: dict[str, S.Store]) -> list[dict]:
    """`clients` concurrent harvesters against ours and pyoai (2 gunicorn workers each): pages/s, p99."""
    rows: list[dict] = []
    for kind, st in stores.items():
        with servers.running(_start("ours", st, ctx), _start("pyoai", st, ctx)) as (ours, pyo):
            targets = {"ours": ours, "pyoai": pyo}
            runs: dict[tuple[str, str], list[dict]] = defaultdict(list)
            starts = {}
            for name, srv in targets.items():
                for prefix in ctx.prefixes:
                    toks = _tokens(ctx, kind, name, srv, prefix)
                    starts[(name, prefix)] = [toks[i * len(toks) // ctx.clients] for i in range(ctx.clients)]
            for rep in range(ctx.repeat):
                for prefix in ctx.prefixes:
                    for name in _order(list(targets), rep):
                        srv = targets[name]
                        cpu = srv.cpu_seconds()
                        res = clients.load(srv.url, starts[(name, prefix)], clients=ctx.clients, duration=ctx.duration)
                        cpu = srv.cpu_seconds() - cpu
                        runs[(name, prefix)].append({
                            "pages_s": res.pages_per_s, "p50_ms": 1000 * median(res.latencies),
                            "p99_ms": 1000 * clients.percentile(res.latencies, 99), "errors": res.errors,
                            "pages": res.pages, "cpu_ms_page": 1000 * cpu / max(1, res.pages),
                        })
                        print(f"  {kind} {name} {prefix} run {rep + 1}: {res.pages_per_s:.1f} pages/s, "
                              f"{res.errors} errors", flush=True)
        for (name, prefix), rs in runs.items():
            rows.append({"db": kind, "server": name, "prefix": prefix, "clients": ctx.clients,
                         **{k: median(r[k] for r in rs) for k in ("pages_s", "p50_ms", "p99_ms", "cpu_ms_page")},
                         "errors": sum(r["errors"] for r in rs), "pages": sum(r["pages"] for r in rs), "runs": len(rs)})
    tables = [table(f"serve, concurrent ({ctx.clients} clients, {ctx.duration:.0f}s per run, median of {ctx.repeat})", rows,
                    ["db", "server", "prefix", "pages_s", "p50_ms", "p99_ms", "cpu_ms_page", "errors", "pages"])]
    ratios = _ratios(rows, "pages_s", "ours", "pyoai") + _ratios(rows, "cpu_ms_page", "pyoai", "ours")
    tables.append(table("serve, concurrent: ratios (targets: pages_s ours/pyoai >= 5 oai_dc, >= 3 jats)", ratios,
                        ["db", "prefix", "metric", "ratio"]))
    write("concurrent", ctx.params(), rows + ratios, tables)
    return rows


def static(ctx: Ctx, stores: dict[str, S.Store]) -> list[dict]:
    """Sickle against our server vs against the same pages as static files (target: ours >= 0.9x), asking ours
    for no compression (`ours`) and as sickle does by default, gzip (`ours+gzip`; the file server sends
    identity whatever is asked)."""
    rows: list[dict] = []
    paired: dict[tuple[str, str], float] = {}
    paired_gzip: dict[tuple[str, str], float] = {}
    for kind, st in stores.items():
        pages = ctx.work / f"static-{kind}-{ctx.count}"
        with servers.running(_start("ours", st, ctx)) as (ours,):
            for prefix in ctx.prefixes:
                capture(ours.url, prefix, pages)
            with servers.running(lambda: servers.static(pages, ctx.logdir, name=f"static-{kind}")) as (stat,):
                targets = {"ours": (ours, "identity"), "ours+gzip": (ours, "gzip, deflate"), "static": (stat, "identity")}
                runs: dict[tuple[str, str], list[dict]] = defaultdict(list)
                for rep in range(ctx.repeat):
                    for prefix in ctx.prefixes:
                        for name in _order(list(targets), rep):
                            srv, encoding = targets[name]
                            cpu = srv.cpu_seconds()
                            h = clients.sickle_harvest(srv.url, prefix, encoding=encoding)
                            cpu = srv.cpu_seconds() - cpu
                            runs[(name, prefix)].append({"records_s": h.rate, "page_ms_p50": 1000 * median(h.latencies),
                                                         "cpu_ms_page": 1000 * cpu / h.pages, "records": h.records})
                            print(f"  {kind} {name} {prefix} run {rep + 1}: {h.rate:.0f} records/s", flush=True)
        paired |= _paired(kind, runs, "records_s", "ours", "static")
        paired_gzip |= _paired(kind, runs, "records_s", "ours+gzip", "static")
        for (name, prefix), rs in runs.items():
            rows.append({"db": kind, "server": name, "prefix": prefix, "records": rs[0]["records"],
                         **{k: median(r[k] for r in rs) for k in ("records_s", "page_ms_p50", "cpu_ms_page")}})
    tables = [table(f"static baseline (sickle, {ctx.count} records, median of {ctx.repeat})", rows,
                    ["db", "server", "prefix", "records", "records_s", "page_ms_p50", "cpu_ms_page"])]
    ratios = (_ratios(rows, "records_s", "ours", "static", label="records_s ours/static (target >= 0.9)", paired=paired)
              + _ratios(rows, "records_s", "ours+gzip", "static", label="records_s ours+gzip/static", paired=paired_gzip)
              + _ratios(rows, "page_ms_p50", "static", "ours", label="page latency static/ours"))
    tables.append(table("static baseline: ratios (paired: the median of each repetition's own ratio)", ratios,
                        ["db", "prefix", "metric", "ratio", "paired"]))
    write("static", ctx.params(), rows + ratios, tables)
    return rows


def _child(args: list[str], timeout: float) -> dict:
    proc = subprocess.run([sys.executable, "-m", "bench.harvest_child", *args], cwd=servers.REPO,
                          capture_output=True, text=True, timeout=timeout)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"records": 0, "seconds": float("nan"), "peak_rss_mb": float("nan"), "workers_rss_mb": 0.0, "ok": False,
                "note": (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]}
    return json.loads(lines[-1])


def harvest(ctx: Ctx, stores: dict[str, S.Store]) -> list[dict]:
    """Our harvester into a second store vs a plain sickle loop over the same list; records/s and peak RSS."""
    rows: list[dict] = []
    paired: dict[tuple[str, str], float] = {}
    timeout = max(600.0, ctx.count / 20)
    for kind, st in stores.items():
        runs: dict[tuple[str, str], list[dict]] = defaultdict(list)
        with servers.running(_start("ours", st, ctx)) as (ours,):
            for rep in range(ctx.repeat):
                for prefix in ctx.prefixes:
                    for mode in _order(["sickle", "harvester"], rep):
                        server_cpu, database_cpu = ours.cpu_seconds(), servers.database_cpu_seconds()
                        if mode == "sickle":
                            r = _child(["sickle", ours.url, prefix], timeout)
                        else:
                            target = S.create(S.store(kind, ctx.work, "harvest_target"))
                            try:
                                r = _child(["ours", ours.url, prefix, target.url], timeout)
                            finally:
                                S.drop(target)
                        r["records_s"] = ratio(r["records"], r["seconds"])
                        r["server_cpu_s"] = ours.cpu_seconds() - server_cpu
                        # (on SQLite the store is in the processes already counted: PostgreSQL's work then is
                        # another's, which an outside audit saw counted)
                        r["database_cpu_s"] = servers.database_cpu_seconds() - database_cpu if kind == "postgresql" else 0.0
                        runs[(mode, prefix)].append(r)
                        print(f"  {kind} {mode} {prefix} run {rep + 1}: {r['records']} records, "
                              f"{r['records_s']:.0f}/s {r['note']}", flush=True)
        paired |= _paired(kind, runs, "records_s", "harvester", "sickle")
        for (mode, prefix), rs in runs.items():
            rows.append({"db": kind, "server": mode, "prefix": prefix, "records": rs[0]["records"],
                         "records_s": median(r["records_s"] for r in rs),
                         **{f"{part}_ms_rec": median(1000 * r.get(f"{part}_cpu_s", 0.0) / max(1, r["records"])
                                                     for r in rs) for part in ("client", "workers", "server", "database")},
                         "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
                         "workers_rss_mb": max(r.get("workers_rss_mb", 0.0) for r in rs),
                         "helpers_rss_mb": max(r.get("helpers_rss_mb", 0.0) for r in rs),
                         "total_rss_mb": max(r["peak_rss_mb"] + r.get("workers_rss_mb", 0.0)
                                             + r.get("helpers_rss_mb", 0.0) for r in rs),
                         "ok": all(r["ok"] for r in rs),
                         "note": "; ".join(sorted({r["note"] for r in rs if r["note"]}))[:200]})
    tables = [table(f"harvest (our server -> a second store, {ctx.count} records, median of {ctx.repeat})", rows,
                    ["db", "server", "prefix", "records", "records_s", "client_ms_rec", "workers_ms_rec",
                     "server_ms_rec", "database_ms_rec", "peak_rss_mb", "workers_rss_mb", "helpers_rss_mb",
                     "total_rss_mb", "ok", "note"])]
    ratios = _ratios(rows, "records_s", "harvester", "sickle", label="records_s harvester/sickle loop", paired=paired)
    tables.append(table("harvest: ratios (paired: the median of each repetition's own ratio)", ratios,
                        ["db", "prefix", "metric", "ratio", "paired"]))
    bounds = _cpu_bounds(rows, ratios)
    tables.append(table(f"harvest: the CPU bound on {_CORES} cores (ms of CPU a record, server and database included)", bounds,
                        ["db", "prefix", "sickle_wall_ms_rec", "budget_ms_rec", "harvester_cpu_ms_rec", "ceiling",
                         "ratio", "of_ceiling"]))
    write("harvest", ctx.params(), rows + ratios + bounds, tables)
    return rows


PAGE_SIZES = (100, 2000, 10000)  # OAI_PAGE_SIZE: the default, and the largest the server takes
WHOLE_PAGES = {"OAI_PAGE_MAX_BYTES": str(2**30)}  # a source that sends every page whole, 51 MB of jats at 10,000


def memory(ctx: Ctx, stores: dict[str, S.Store]) -> list[dict]:
    """Peak RSS whatever the page size (issue 5): a server worker serving pages of 100 to 10,000 records, and the
    harvester (its process and its workers) harvesting a source whose pages are that large and sent whole."""
    import requests
    from lxml import etree

    oai = "{http://www.openarchives.org/OAI/2.0/}"
    rows: list[dict] = []
    for kind, st in stores.items():
        for size in PAGE_SIZES:
            start = lambda: servers.ours(st.env(), ctx.logdir, page_size=size, name=f"mem-{kind}")  # noqa: B023, E731
            with servers.running(start) as (srv,):
                for prefix in ctx.prefixes:
                    url, pages, largest = f"{srv.url}?verb=ListRecords&metadataPrefix={prefix}", 0, 0
                    while url and pages < 6:  # the first pages: each as large as the page size makes it
                        body = requests.get(url, timeout=600).content
                        pages, largest = pages + 1, max(largest, len(body))
                        token = etree.fromstring(body).findtext(f".//{oai}resumptionToken")
                        url = f"{srv.url}?verb=ListRecords&resumptionToken={token}" if token else None
                    rows.append({"db": kind, "what": "server worker", "page_size": size, "prefix": prefix,
                                 "largest_page_mb": largest / 2**20, "peak_rss_mb": srv.peak_rss_mb(),
                                 "workers_rss_mb": 0.0, "helpers_rss_mb": 0.0})
                    print(f"  {kind} server page size {size} {prefix}: {rows[-1]['peak_rss_mb']:.0f} MB", flush=True)
        for size in PAGE_SIZES:
            env = {**st.env(), **WHOLE_PAGES}
            with servers.running(lambda: servers.ours(env, ctx.logdir, page_size=size, name=f"whole-{kind}")) as (srv,):
                for prefix in ctx.prefixes:
                    target = S.create(S.store(kind, ctx.work, "harvest_target"))
                    try:
                        r = _child(["ours", srv.url, prefix, target.url], max(600.0, ctx.count / 20))
                    finally:
                        S.drop(target)
                    rows.append({"db": kind, "what": "harvester, whole pages", "page_size": size, "prefix": prefix,
                                 "largest_page_mb": float("nan"), "peak_rss_mb": r["peak_rss_mb"],
                                 "workers_rss_mb": r.get("workers_rss_mb", 0.0),
                                 "helpers_rss_mb": r.get("helpers_rss_mb", 0.0),
                                 "end_pss_mb": r.get("end_pss_mb", float("nan")), "records": r["records"],
                                 "ok": r["ok"], "note": r["note"]})
                    print(f"  {kind} harvester page size {size} {prefix}: {r['peak_rss_mb']:.0f} MB "
                          f"+ workers {rows[-1]['workers_rss_mb']:.0f} MB {r['note']}", flush=True)
    for row in rows:
        row["total_rss_mb"] = row["peak_rss_mb"] + row["workers_rss_mb"] + row["helpers_rss_mb"]
    tables = [table(f"memory: peak RSS whatever the page size ({ctx.count} records)", rows,
                    ["db", "what", "page_size", "prefix", "largest_page_mb", "peak_rss_mb", "workers_rss_mb",
                     "helpers_rss_mb", "total_rss_mb", "end_pss_mb", "records", "ok", "note"])]
    write("memory", ctx.params(), rows, tables)
    return rows
