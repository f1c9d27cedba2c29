"""The OAI-PMH error conditions (spec 3.6), one class per code; rendered in an HTTP 200 response."""

from __future__ import annotations

from typing import ClassVar


class OAIError(Exception):
    code: ClassVar[str]
    #: badVerb and badArgument responses must not echo the request's arguments (spec 3.2).
    echo_arguments: ClassVar[bool] = True

    def __init__(self, message: str, *, also: tuple[OAIError, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        #: further errors of the same request, reported with this one (3.6: "should report all errors")
        self.also = also

    def all(self) -> list[OAIError]:
        return [self, *self.also]


class BadArgument(OAIError):
    code = "badArgument"
    echo_arguments = False


class BadResumptionToken(OAIError):
    code = "badResumptionToken"


class BadVerb(OAIError):
    code = "badVerb"
    echo_arguments = False


class CannotDisseminateFormat(OAIError):
    code = "cannotDisseminateFormat"


class IdDoesNotExist(OAIError):
    code = "idDoesNotExist"


class NoRecordsMatch(OAIError):
    code = "noRecordsMatch"


class NoMetadataFormats(OAIError):
    code = "noMetadataFormats"


class NoSetHierarchy(OAIError):
    code = "noSetHierarchy"
