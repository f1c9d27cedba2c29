"""Replay of real OAI-PMH responses copied to tests/data/oai/ (see PROVENANCE.md there).

Owns the datasets (which sample file answers which verb), the mapping from each page's
resumptionToken to the next file, and the few checks a replay can honestly make
(verb and arguments, metadataPrefix, granularity of from/until). Files are served byte
for byte; nothing here rewrites them (faults do that, in faults.py).
"""

from __future__ import annotations

import dataclasses
import pathlib

from lxml import etree

from .protocol import (DAY, LIST_VERBS, OAI_DC_NS, OAI_DC_SCHEMA, OAI_NS, SECONDS, OAIError,
                       Reply, envelope, error_reply, oai, parse_range, serialize)
from .repository import validate_arguments

DATA_DIR = pathlib.Path(__file__).resolve().parent.parent / "data" / "oai"


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Sample files of one real repository. chains: verb -> list of page chains (first = default)."""

    identify: str | None
    chains: dict[str, tuple[tuple[str, ...], ...]]
    granularity: str = SECONDS
    get_record: tuple[str, ...] = ()
    list_metadata_formats: str | None = None
    list_sets: str | None = None


DATASETS = {
    # Tethys RDR (2026): 3 pages of 3 records; the tokens say completeListSize="3" and
    # cursor 0, 1: they count pages, not records. Identify: deletedRecord persistent.
    "tethys": Dataset(
        identify="tethys/Identify.xml",
        chains={"ListRecords": (("tethys/ListRecords_page1.xml", "tethys/ListRecords_page2.xml",
                                 "tethys/ListRecords_page3.xml"),)}),
    # DSpace at Erasmus University Rotterdam (OAICat 1.5.2, 2003-2004). Its Identify (2003)
    # says deletedRecord "no", yet the 2004 ListRecords (default here; 81 records, 2 of them
    # status="deleted") carries deletions. from=2003-04-10 selects the 16-record 2003 page.
    "dspace-eur": Dataset(
        identify="pyoai-dspace-eur/Identify.xml",
        chains={"ListRecords": (("pyoai-dspace-eur/ListRecords_from2004-01-01_large.xml",),
                                ("pyoai-dspace-eur/ListRecords_from2003-04-10.xml",)),
                "ListIdentifiers": (("pyoai-dspace-eur/ListIdentifiers.xml",),)},
        get_record=("pyoai-dspace-eur/GetRecord.xml", "pyoai-dspace-eur/GetRecord_deleted.xml"),
        list_metadata_formats="pyoai-dspace-eur/ListMetadataFormats.xml",
        list_sets="pyoai-dspace-eur/ListSets.xml"),
    # BnF Gallica (2015): day-granularity datestamps, no XML declaration. Only page 1 exists;
    # its token (expired one hour after the responseDate) answers badResumptionToken here.
    # No Identify was captured: a generated one says YYYY-MM-DD.
    "bnf-gallica": Dataset(
        identify=None,
        chains={"ListRecords": (("phpoaipmh-nsdl-bnf/bnf-gallica_ListRecords_oai_dc_day-granularity.xml",),)},
        granularity=DAY),
    # NSDL (2012): ListIdentifiers, nsdl_dc, 4 pages (200+200+200+133 of 733); offset-style
    # tokens "0/200/733/nsdl_dc/null/2012-07-26/null"; the last page has an empty token.
    "nsdl": Dataset(
        identify="phpoaipmh-nsdl-bnf/nsdl_Identify_with-oai_dc-description.xml",
        chains={"ListIdentifiers": (tuple(f"phpoaipmh-nsdl-bnf/nsdl_ListIdentifiers_page{i}.xml"
                                          for i in range(1, 5)),)}),
}


def _load(name: str) -> bytes:
    return (DATA_DIR / name).read_bytes()


def _parse(body: bytes):
    return etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))


class Replay:
    """Serves one dataset of DATASETS; unknown tokens answer badResumptionToken."""

    def __init__(self, dataset: str):
        self.name = dataset
        self.dataset = DATASETS[dataset]
        self.expired = False
        self._token_page: dict[tuple[str, str], tuple[str, int]] = {}   # (verb, token) -> (file, page)
        self._chain_request: dict[tuple[str, int], dict[str, str]] = {}
        for verb, chains in self.dataset.chains.items():
            for n, chain in enumerate(chains):
                self._chain_request[verb, n] = dict(_parse(_load(chain[0])).find(oai("request")).attrib)
                for page, (this, nxt) in enumerate(zip(chain, chain[1:]), start=2):
                    token = _parse(_load(this)).find(f".//{oai('resumptionToken')}").text.strip()
                    self._token_page[verb, token] = (nxt, page)
        self._records = {}
        for name in self.dataset.get_record:
            ident = _parse(_load(name)).find(f".//{oai('header')}/{oai('identifier')}").text.strip()
            self._records[ident] = name

    def expire_tokens(self) -> None:
        """From now on every resumptionToken answers badResumptionToken."""
        self.expired = True

    def page_of(self, query: dict[str, list[str]]) -> int | None:
        verb = (query.get("verb") or [None])[0]
        if verb not in LIST_VERBS:
            return None
        token = (query.get("resumptionToken") or [None])[0]
        if token is None:
            return 1
        hit = self._token_page.get((verb, token))
        return hit[1] if hit else None

    def respond(self, query: dict[str, list[str]], base_url: str) -> Reply:
        try:
            args = validate_arguments(query)
            return Reply(body=self._answer(args.pop("verb"), args, base_url))
        except OAIError as err:
            echo = {k: v[0] for k, v in query.items() if len(v) == 1}
            return error_reply(base_url, [err], echo)

    def _answer(self, verb: str, args: dict[str, str], base_url: str) -> bytes:
        ds = self.dataset
        if verb == "Identify":
            return _load(ds.identify) if ds.identify else self._generated_identify(base_url)
        if verb == "ListMetadataFormats" and ds.list_metadata_formats:
            return _load(ds.list_metadata_formats)
        if verb == "ListMetadataFormats":
            return self._generated_formats(base_url)
        if verb == "GetRecord":
            name = self._records.get(args["identifier"])
            if name is None:
                raise OAIError("idDoesNotExist", f"no sample for {args['identifier']!r}")
            self._check_prefix(args["metadataPrefix"], verb, 0, "oai_dc")
            return _load(name)
        if verb == "ListSets" and "resumptionToken" not in args:
            if ds.list_sets:
                return _load(ds.list_sets)
            raise OAIError("noSetHierarchy", "no ListSets sample for this dataset")
        token = args.get("resumptionToken")
        if token is not None:
            hit = self._token_page.get((verb, token))
            if hit is None or self.expired:
                raise OAIError("badResumptionToken", f"unknown or expired resumptionToken {token!r}")
            return _load(hit[0])
        if verb not in ds.chains:
            raise OAIError("noRecordsMatch", f"no {verb} sample for this dataset")
        parse_range(args.get("from"), args.get("until"), ds.granularity)
        chain = self._choose_chain(verb, args)
        self._check_prefix(args["metadataPrefix"], verb, chain, None)
        return _load(ds.chains[verb][chain][0])

    def _choose_chain(self, verb, args) -> int:
        """The chain recorded with the same from/until/set, else the first one."""
        for n in range(len(self.dataset.chains[verb])):
            recorded = self._chain_request[verb, n]
            if all(recorded.get(k) == args.get(k) for k in ("from", "until", "set")):
                return n
        return 0

    def _check_prefix(self, prefix, verb, chain, fixed):
        expected = fixed or self._chain_request[verb, chain].get("metadataPrefix")
        if prefix != expected:
            raise OAIError("cannotDisseminateFormat", f"this sample holds {expected}, not {prefix}")

    def _generated_formats(self, base_url: str) -> bytes:
        """oai_dc if a chain holds it (the only format whose schema we can name), else an error."""
        prefixes = {req.get("metadataPrefix") for req in self._chain_request.values()}
        if "oai_dc" not in prefixes:
            raise OAIError("noMetadataFormats", "no ListMetadataFormats sample for this dataset")
        root, _ = envelope(base_url, {"verb": "ListMetadataFormats"})
        fmt = etree.SubElement(etree.SubElement(root, oai("ListMetadataFormats")), oai("metadataFormat"))
        for tag, text in (("metadataPrefix", "oai_dc"), ("schema", OAI_DC_SCHEMA),
                          ("metadataNamespace", OAI_DC_NS)):
            etree.SubElement(fmt, oai(tag)).text = text
        return serialize(root)

    def _generated_identify(self, base_url: str) -> bytes:
        root, _ = envelope(base_url, {"verb": "Identify"})
        el = etree.SubElement(root, f"{{{OAI_NS}}}Identify")
        for tag, text in (("repositoryName", f"Replay of the {self.name} sample (generated Identify)"),
                          ("baseURL", base_url), ("protocolVersion", "2.0"),
                          ("adminEmail", "upstream@example.org"),
                          ("earliestDatestamp", "2000-01-01" if self.dataset.granularity == DAY
                           else "2000-01-01T00:00:00Z"),
                          ("deletedRecord", "no"), ("granularity", self.dataset.granularity)):
            etree.SubElement(el, oai(tag)).text = text
        return serialize(root)
