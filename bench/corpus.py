"""Deterministic benchmark corpus: N JATS front-matter articles (4-7 KB) plus a sidecar manifest.

`python bench/corpus.py --count 100000 --out /tmp/corpus` writes NNN/NNNNNNN.xml files (what `oai load`
takes) and manifest.jsonl (sets, store datestamp, deletion time per file) for the bench loader.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import words as W

VERSION = 1
ISSUE_SIZE = 20  # articles loaded together share a store datestamp (one issue loaded at once)
START = datetime(2010, 1, 1)
END = datetime(2025, 6, 30)
MANIFEST = "manifest.jsonl"
INFO = "corpus.json"


@dataclass(frozen=True)
class Journal:
    slug: str
    abbrev: str
    title: str
    title_ru: str | None
    issn_print: str
    issn_online: str
    publisher: str
    doi_prefix: str
    discipline: int
    founded: int


@dataclass(frozen=True)
class Entry:
    """One manifest line: the file, its DOI, its sets, when it entered the store, when it was deleted."""

    path: str
    doi: str
    sets: tuple[str, ...]
    datestamp: datetime
    deleted: datetime | None


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _issn(rng: random.Random) -> str:
    digits = [rng.randrange(10) for _ in range(7)]
    check = (11 - sum(d * w for d, w in zip(digits, range(8, 1, -1), strict=True)) % 11) % 11
    s = "".join(map(str, digits)) + ("X" if check == 10 else str(check))
    return f"{s[:4]}-{s[4:]}"


def _orcid(rng: random.Random) -> str:
    digits = [0, 0, 0, 0, 0, 0, 0, rng.choice((1, 2, 3))] + [rng.randrange(10) for _ in range(7)]
    total = 0
    for d in digits:  # ISO 7064 MOD 11-2
        total = (total + d) * 2
    check = (12 - total % 11) % 11
    s = "".join(map(str, digits)) + ("X" if check == 10 else str(check))
    return f"https://orcid.org/{s[0:4]}-{s[4:8]}-{s[8:12]}-{s[12:16]}"


def journals(seed: int, count: int) -> list[Journal]:
    """The journals of a corpus of `count` articles (about one per 300 articles, 5 to 300)."""
    out = []
    for j in range(max(5, min(300, count // 300))):
        rng = random.Random(f"{seed}:journal:{j}")
        place, place_ru = rng.choice(W.PLACES)
        d = rng.randrange(len(W.DISCIPLINES))
        _, field, field_ru = W.DISCIPLINES[d]
        title = rng.choice(W.JOURNAL_PATTERNS_EN).format(place=place, field=field)
        title_ru = rng.choice(W.JOURNAL_PATTERNS_RU).format(place_ru=place_ru, field_ru=field_ru) if rng.random() < 0.5 else None
        abbrev = "".join(w[0] for w in title.replace(".", " ").replace(":", " ").split() if w[0].isupper()).lower()
        out.append(Journal(
            slug=f"{abbrev}-{j}", abbrev=abbrev, title=title, title_ru=title_ru,
            issn_print=_issn(rng), issn_online=_issn(rng),
            publisher=rng.choice(W.PUBLISHERS).format(place=place),
            doi_prefix=f"10.{rng.randrange(10000, 40000)}", discipline=d, founded=rng.randrange(1960, 2010),
        ))
    return out


def set_names(seed: int, count: int) -> dict[str, str]:
    """Every setSpec the corpus uses (ancestors included) with its setName."""
    names = {"journal": "Journals", "subject": "Subjects", "openaire": "OpenAIRE: funded research"}
    for j in journals(seed, count):
        names[f"journal:{j.slug}"] = j.title
    for spec, en, _ in W.DISCIPLINES:
        parts = spec.split(":")
        for k in range(1, len(parts)):
            names.setdefault("subject:" + ":".join(parts[:k]), parts[k - 1].replace("-", " ").title())
        names[f"subject:{spec}"] = en
    return names


def _issue_datestamp(seed: int, g: int, issues: int) -> datetime:
    """When issue g entered the store: spread over START..END, jittered; 3% were reloaded much later."""
    rng = random.Random(f"{seed}:issue-date:{g}")
    span = (END - START).total_seconds()
    at = (g + 0.5) / issues * span + rng.uniform(-3, 3) * span / issues
    if rng.random() < 0.03:
        at = rng.uniform(at, span)
    return START + timedelta(seconds=int(min(max(at, 0), span)))


def _sentences(rng: random.Random, patterns: tuple[str, ...], fill: dict[str, tuple[str, ...]]) -> list[str]:
    """Most of the patterns, in their order (they follow an abstract's argument), slots filled."""
    n = rng.randrange(max(2, len(patterns) - 3), len(patterns) + 1)
    chosen = sorted(rng.sample(range(len(patterns)), n))
    return [patterns[k].format(**{k2: rng.choice(v) for k2, v in fill.items()}) for k in chosen]


_CONTRACTIONS = {
    "pt": ((" em os ", " nos "), (" em as ", " nas "), (" em o ", " no "), (" em a ", " na "), (" a os ", " aos "),
           (" a as ", " às "), (" a o ", " ao "), (" de os ", " dos "), (" de as ", " das "), (" de o ", " do "),
           (" de a ", " da ")),
    "es": ((" a el ", " al "), (" de el ", " del ")),
}


def _contract(lang: str, text: str) -> str:
    for a, b in _CONTRACTIONS.get(lang, ()):
        text = text.replace(a, b)
    return text


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _en_text(rng: random.Random) -> tuple[str, list[str], list[str]]:
    topic, topic2 = rng.sample(W.EN_TOPICS, 2)
    fill = {
        "topic": (topic,), "topic2": (topic2,), "object": W.EN_OBJECTS, "method": W.EN_METHODS,
        "source": W.EN_SOURCES, "finding": W.EN_FINDINGS, "finding2": W.EN_FINDINGS,
    }
    title = rng.choice(W.EN_TITLE_PATTERNS).format(
        Topic=topic.title(), topic=topic, topic2=topic2, object=rng.choice(W.EN_OBJECTS).removeprefix("the "),
        adj=rng.choice(W.EN_ADJECTIVES), source=rng.choice(W.EN_SOURCES), method=rng.choice(W.EN_METHODS),
        year=rng.randrange(1991, 2021),
    )
    keywords = [topic, topic2, *rng.sample(W.EN_TOPICS, rng.randrange(1, 3)), *rng.sample(W.EN_KEYWORDS_EXTRA, rng.randrange(1, 4))]
    return _cap(title), _sentences(rng, W.EN_SENTENCES, fill), list(dict.fromkeys(keywords))


def _ru_text(rng: random.Random) -> tuple[str, list[str], list[str]]:
    t = rng.randrange(len(W.RU_TOPICS))
    t2 = rng.randrange(len(W.RU_TOPICS_GEN))
    y1 = rng.randrange(1995, 2015)
    fill = {
        "topic": (W.RU_TOPICS[t],), "topic_gen": (W.RU_TOPICS_GEN[min(t, len(W.RU_TOPICS_GEN) - 1)],),
        "topic_gen2": (W.RU_TOPICS_GEN[t2],), "object_prep": W.RU_OBJECTS_PREP, "object_gen": W.RU_OBJECTS_GEN,
        "method": W.RU_METHODS_INS, "finding": W.RU_FINDINGS, "finding2": W.RU_FINDINGS,
        "year1": (str(y1),), "year2": (str(y1 + rng.randrange(3, 12)),),
    }
    title = rng.choice(W.RU_TITLE_PATTERNS).format(
        Topic=_cap(W.RU_TOPICS[t]), topic_gen=fill["topic_gen"][0], topic_gen2=W.RU_TOPICS_GEN[t2],
        object_prep=rng.choice(W.RU_OBJECTS_PREP), object_gen=rng.choice(W.RU_OBJECTS_GEN), year=y1,
    )
    keywords = [W.RU_TOPICS[t], *rng.sample(W.RU_TOPICS, rng.randrange(1, 3)), *rng.sample(W.RU_KEYWORDS_EXTRA, rng.randrange(1, 3))]
    return title, _sentences(rng, W.RU_SENTENCES, fill), list(dict.fromkeys(keywords))


def _iberian_text(rng: random.Random, lang: str) -> tuple[str, list[str]]:
    topics, objects, pats, tpats = (
        (W.ES_TOPICS, W.ES_OBJECTS, W.ES_SENTENCES, W.ES_TITLE_PATTERNS) if lang == "es"
        else (W.PT_TOPICS, W.PT_OBJECTS, W.PT_SENTENCES, W.PT_TITLE_PATTERNS)
    )
    topic, topic2 = rng.sample(topics, 2)
    y1 = rng.randrange(1995, 2015)
    fill = {"topic": (topic,), "topic2": (topic2,), "object": objects,
            "year1": (str(y1),), "year2": (str(y1 + rng.randrange(3, 12)),)}
    title = rng.choice(tpats).format(Topic=_cap(topic), topic=topic, topic2=topic2, object=rng.choice(objects))
    return _contract(lang, title), [_contract(lang, x) for x in _sentences(rng, pats, fill)]


def _paras(sentences: list[str], budget: int, minimum: int, rng: random.Random) -> str:
    """An abstract of as many sentences as fit in `budget` bytes (at least `minimum`), in one or two <p>."""
    kept, used = [], 0
    for sentence in sentences:
        size = len(sentence.encode()) + 1
        if len(kept) >= minimum and used + size > budget:
            break
        kept.append(_esc(sentence))
        used += size
    if len(kept) > 4 and rng.random() < 0.4:
        cut = len(kept) // 2
        return f"\n        <p>{' '.join(kept[:cut])}</p>\n        <p>{' '.join(kept[cut:])}</p>\n      "
    return f"\n        <p>{' '.join(kept)}</p>\n      "


def _date(tag: str, d: datetime, attrs: str) -> str:
    return f"<{tag}{attrs}><day>{d.day:02d}</day><month>{d.month:02d}</month><year>{d.year}</year></{tag}>"


def article(seed: int, i: int, jlist: list[Journal], issues: int) -> tuple[str, Entry]:
    """The XML text of article i and its manifest entry (a pure function of seed and i)."""
    g = i // ISSUE_SIZE
    irng = random.Random(f"{seed}:issue:{g}")
    journal = jlist[irng.randrange(len(jlist))]
    stamp = _issue_datestamp(seed, g, issues)
    backfile = irng.random() < 0.15  # digitised back issues: published long before they were loaded
    year = max(journal.founded, stamp.year - (irng.randrange(1, 20) if backfile else irng.randrange(0, 2)))
    issue_no = irng.randrange(1, 5)
    pub = datetime(year, min(12, issue_no * 3), irng.randrange(1, 28))

    rng = random.Random(f"{seed}:article:{i}")
    russian = rng.random() < 0.2
    lang = "ru" if russian else "en"
    doi = f"{journal.doi_prefix}/{journal.abbrev}.{year}.{i:07d}"
    fpage = 1 + (i % ISSUE_SIZE) * 12 + rng.randrange(0, 4)
    lpage = fpage + rng.randrange(6, 16)
    spec, field_en, field_ru = W.DISCIPLINES[journal.discipline]

    if russian:
        title, abstract, kwds = _ru_text(rng)
        trans_title, trans_abstract, trans_kwds = _en_text(rng)
        trans_lang = "en"
    else:
        title, abstract, kwds = _en_text(rng)
        trans_lang = rng.choice(("es", "pt"))
        trans_title, trans_abstract = _iberian_text(rng, trans_lang)
        trans_kwds = []

    cities = rng.sample(W.CITIES, rng.randrange(1, 4))
    affs = []
    for n, (city, postcode, cc, country) in enumerate(cities, start=1):
        if russian and cc == "RU":
            dept, alang = rng.choice(W.DEPARTMENTS_RU), "ru"
        else:
            dept, alang = rng.choice(W.DEPARTMENTS_EN), "en"
        affs.append(
            f'<aff id="aff{n}" xml:lang="{alang}"><institution content-type="dept">{_esc(dept)}</institution>, '
            f"<institution>{_esc(city)} State University</institution>, <addr-line>{_esc(rng.choice(W.STREETS))}</addr-line>, "
            f'<city>{_esc(city)}</city>, <postal-code>{postcode}</postal-code>, <country country="{cc}">{country}</country></aff>'
        )
    contribs = []
    for a in range(rng.randrange(1, 7)):
        orcid = f'\n            <contrib-id contrib-id-type="orcid">{_orcid(rng)}</contrib-id>' if rng.random() < 0.4 else ""
        if russian:
            s = rng.randrange(len(W.RU_SURNAMES))
            g_ru, initials = W.RU_GIVEN[s % len(W.RU_GIVEN)]
            name = (
                "<name-alternatives>\n"
                f'              <name name-style="western" xml:lang="ru"><surname>{W.RU_SURNAMES[s][0]}</surname>'
                f'<given-names initials="{initials}">{g_ru}</given-names></name>\n'
                f'              <name name-style="western" xml:lang="en"><surname>{W.RU_SURNAMES[s][1]}</surname>'
                f"<given-names>{W.RU_GIVEN_LATIN[s % len(W.RU_GIVEN_LATIN)]}</given-names></name>\n"
                "            </name-alternatives>"
            )
            mail_name = W.RU_SURNAMES[s][1].lower()
        else:
            surname, given = rng.choice(W.EN_SURNAMES), rng.choice(W.EN_GIVEN)
            name = (f'<name name-style="western"><surname>{_esc(surname)}</surname>'
                    f'<given-names initials="{given[0]}.">{given}</given-names></name>')
            mail_name = "".join(c for c in surname.lower() if c.isascii() and c.isalpha())
        email = f"\n            <email>{mail_name}{rng.randrange(1, 99)}@example.org</email>" if a == 0 else ""
        corresp = ' corresp="yes"' if a == 0 else ""
        contribs.append(
            f'        <contrib contrib-type="author"{corresp}>{orcid}\n            {name}{email}\n'
            f'            <xref ref-type="aff" rid="aff{rng.randrange(1, len(affs) + 1)}"/>\n        </contrib>'
        )

    sets = [f"journal:{journal.slug}"]
    if rng.random() < 0.7:
        sets.append(f"subject:{spec}")
    funded = rng.random() < 0.25
    if funded:
        sets.append("openaire")
    received = pub - timedelta(days=rng.randrange(60, 300))
    accepted = received + timedelta(days=rng.randrange(20, 50))
    lic_url, lic_text = rng.choice(W.LICENSES)
    jt_ru = (f'\n        <trans-title-group xml:lang="ru"><trans-title>{_esc(journal.title_ru)}</trans-title></trans-title-group>'
             if journal.title_ru else "")
    kwd_groups = f'      <kwd-group xml:lang="{lang}">' + "".join(f"<kwd>{_esc(k)}</kwd>" for k in kwds) + "</kwd-group>\n"
    if trans_kwds:
        kwd_groups += '      <kwd-group xml:lang="en">' + "".join(f"<kwd>{_esc(k)}</kwd>" for k in trans_kwds) + "</kwd-group>\n"
    funding = (
        "      <funding-group><award-group><funding-source>Russian Science Foundation</funding-source>"
        f"<award-id>{rng.randrange(17, 25)}-{rng.randrange(10, 99)}-{rng.randrange(10000, 99999)}</award-id></award-group></funding-group>\n"
        if funded else ""
    )
    subject = field_ru if russian else field_en
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<article xmlns:xlink="http://www.w3.org/1999/xlink" article-type="{rng.choice(W.ARTICLE_TYPES)}" dtd-version="1.4" xml:lang="{lang}">
  <front>
    <journal-meta>
      <journal-id journal-id-type="publisher-id">{journal.abbrev}</journal-id>
      <journal-title-group>
        <journal-title xml:lang="en">{_esc(journal.title)}</journal-title>{jt_ru}
      </journal-title-group>
      <issn pub-type="ppub" publication-format="print">{journal.issn_print}</issn>
      <issn pub-type="epub" publication-format="electronic">{journal.issn_online}</issn>
      <publisher>
        <publisher-name xml:lang="en">{_esc(journal.publisher)}</publisher-name>
      </publisher>
    </journal-meta>
    <article-meta>
      <article-id pub-id-type="doi">{doi}</article-id>
      <article-categories><subj-group subj-group-type="heading"><subject>{_esc(subject)}</subject></subj-group></article-categories>
      <title-group>
        <article-title xml:lang="{lang}">{_esc(title)}</article-title>
        <trans-title-group xml:lang="{trans_lang}"><trans-title>{_esc(trans_title)}</trans-title></trans-title-group>
      </title-group>
      <contrib-group>
{chr(10).join(contribs)}
        {chr(10).join("        " + a if k else a for k, a in enumerate(affs))}
      </contrib-group>
      {_date("pub-date", pub, ' date-type="pub" publication-format="electronic"')}
      <volume>{year - journal.founded + 1}</volume>
      <issue>{issue_no}</issue>
      <fpage>{fpage}</fpage>
      <lpage>{lpage}</lpage>
      <history>
        {_date("date", received, ' date-type="received"')}
        {_date("date", accepted, ' date-type="accepted"')}
      </history>
      <permissions>
        <copyright-statement>© {year} The Authors</copyright-statement>
        <copyright-year>{year}</copyright-year>
        <license license-type="open-access" xlink:href="{lic_url}"><license-p>{lic_text}</license-p></license>
      </permissions>
      <abstract xml:lang="{lang}">\0A\0</abstract>
      <trans-abstract xml:lang="{trans_lang}">\0T\0</trans-abstract>
{kwd_groups}{funding}    </article-meta>
  </front>
</article>
"""
    # Abstracts take what the file size target (4.6-6.7 KB) leaves: 60% original, 40% translation.
    budget = rng.randrange(4600, 6700) - len(xml.encode())
    xml = xml.replace("\0A\0", _paras(abstract, budget * 6 // 10, 2, rng), 1)
    xml = xml.replace("\0T\0", _paras(trans_abstract, budget * 4 // 10, 1, rng), 1)
    deleted = None
    if rng.random() < 0.02:
        deleted = min(END, stamp + timedelta(days=rng.randrange(1, 900), seconds=rng.randrange(86400)))
    path = f"{i // 1000:04d}/{i:07d}.xml"
    return xml, Entry(path, doi, tuple(sets), stamp, deleted)


def _stamp(d: datetime | None) -> str | None:
    return None if d is None else d.strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_chunk(job: tuple[int, int, int, int, str]) -> list[str]:
    seed, start, stop, count, out = job
    jlist = journals(seed, count)
    issues = (count + ISSUE_SIZE - 1) // ISSUE_SIZE
    lines = []
    for i in range(start, stop):
        xml, e = article(seed, i, jlist, issues)
        target = Path(out) / e.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(xml, encoding="utf-8")
        lines.append(json.dumps({"path": e.path, "doi": e.doi, "sets": list(e.sets),
                                 "datestamp": _stamp(e.datestamp), "deleted": _stamp(e.deleted)}))
    return lines


def generate(out: Path, count: int, *, seed: int = 1, jobs: int | None = None) -> Path:
    """Write the corpus under `out` (files, manifest.jsonl, corpus.json); returns `out`."""
    out.mkdir(parents=True, exist_ok=True)
    chunks = [(seed, s, min(s + 1000, count), count, str(out)) for s in range(0, count, 1000)]
    jobs = jobs or min(2, os.cpu_count() or 1)
    with open(out / MANIFEST, "w", encoding="utf-8") as manifest:
        if jobs <= 1 or len(chunks) == 1:
            for lines in map(_write_chunk, chunks):
                manifest.write("\n".join(lines) + "\n")
        else:  # shut down here: left to the interpreter's exit, the pool's hook failed on a closed pipe
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                for lines in pool.map(_write_chunk, chunks):
                    manifest.write("\n".join(lines) + "\n")
    info = {"version": VERSION, "count": count, "seed": seed, "sets": set_names(seed, count)}
    (out / INFO).write_text(json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8")
    return out


def read_info(root: Path) -> dict:
    return json.loads((root / INFO).read_text(encoding="utf-8"))


def read_manifest(root: Path) -> Iterator[Entry]:
    def when(s: str | None) -> datetime | None:
        return None if s is None else datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ")

    with open(root / MANIFEST, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            yield Entry(d["path"], d["doi"], tuple(d["sets"]), when(d["datestamp"]), when(d["deleted"]))


def ensure(root: Path, count: int, seed: int = 1) -> Path:
    """The corpus at `root`, generated unless a complete one with the same parameters is there."""
    try:
        info = read_info(root)
        if (info["count"], info["seed"], info["version"]) == (count, seed, VERSION):
            return root
    except (OSError, ValueError, KeyError):
        pass
    print(f"generating corpus of {count} articles in {root} ...", file=sys.stderr, flush=True)
    return generate(root, count, seed=seed)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=None)
    args = ap.parse_args(argv)
    generate(args.out, args.count, seed=args.seed, jobs=args.jobs)
    print(f"{args.count} articles in {args.out} (manifest: {args.out / MANIFEST})")


if __name__ == "__main__":
    main()
