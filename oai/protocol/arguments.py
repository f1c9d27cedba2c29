"""Argument rules per verb, as data (spec section 4), checked before any query runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from oai.protocol.errors import BadArgument, BadVerb


@dataclass(frozen=True)
class Spec:
    required: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()
    exclusive: str | None = None  # an argument that must stand alone (with verb)


_LIST = Spec(frozenset({"metadataPrefix"}), frozenset({"from", "until", "set"}), "resumptionToken")

SPECS: dict[str, Spec] = {
    "Identify": Spec(),
    "ListMetadataFormats": Spec(optional=frozenset({"identifier"})),
    "ListSets": Spec(exclusive="resumptionToken"),
    "ListIdentifiers": _LIST,
    "ListRecords": _LIST,
    "GetRecord": Spec(frozenset({"identifier", "metadataPrefix"})),
}


@dataclass(frozen=True)
class OAIRequest:
    verb: str
    args: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        return self.args.get(name)


def verb_of(params: Mapping[str, Sequence[str]]) -> str:
    """The verb, or BadVerb when it is missing, repeated or unknown."""
    verbs = params.get("verb", [])
    if not verbs:
        raise BadVerb("the request has no verb argument")
    if len(verbs) > 1:
        raise BadVerb("the verb argument is repeated")
    if verbs[0] not in SPECS:
        raise BadVerb(f"{verbs[0]!r} is not an OAI-PMH verb")
    return verbs[0]


def parse_request(params: Mapping[str, Sequence[str]]) -> OAIRequest:
    """Validate the arguments against the verb's rules; raises BadVerb or BadArgument."""
    verb = verb_of(params)
    spec = SPECS[verb]
    args: dict[str, str] = {}
    for name, values in params.items():
        if name == "verb":
            continue
        allowed = spec.required | spec.optional | ({spec.exclusive} if spec.exclusive else set())
        if name not in allowed:
            raise BadArgument(f"{name!r} is not an argument of {verb}")
        if len(values) != 1:
            raise BadArgument(f"the argument {name!r} is repeated")
        if values[0] == "":
            raise BadArgument(f"the argument {name!r} is empty")
        args[name] = values[0]
    if spec.exclusive and spec.exclusive in args:
        if len(args) > 1:
            others = ", ".join(sorted(set(args) - {spec.exclusive}))
            raise BadArgument(f"resumptionToken is an exclusive argument; it cannot be combined with {others}")
        return OAIRequest(verb, args)
    missing = sorted(spec.required - set(args))
    if missing:
        raise BadArgument(f"{verb} requires the argument(s): {', '.join(missing)}")
    return OAIRequest(verb, args)
