"""XML in and out of our files: text XML can hold, and documents parsed without a DTD.

None of our formats needs a DOCTYPE, and a DTD is where entity expansion ("billion
laughs", external entities reading local files) lives, so a document that declares one
is refused before it is parsed (the stdlib answer to what defusedxml's
``forbid_dtd=True`` does, without a dependency).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from xml.parsers import expat

from layerctl.errors import BadResult

# Characters XML 1.0 cannot hold even escaped (https://www.w3.org/TR/xml/#charsets).
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    """``text`` with the characters XML cannot hold as U+FFFD."""
    return NOT_XML.sub("\ufffd", text)


class _Declared(Exception):
    pass


def parse(data: bytes, where: object) -> ET.Element:
    """The root element of ``data``; BadResult when it declares a DOCTYPE or entities,
    or is not well-formed XML."""
    check = expat.ParserCreate()

    def refuse(*_: object) -> None:
        raise _Declared

    check.StartDoctypeDeclHandler = refuse
    check.EntityDeclHandler = refuse
    try:
        check.Parse(data, True)
        return ET.fromstring(data)
    except _Declared:
        raise BadResult(
            f"{where}: declares a DOCTYPE or entities, which layerctl never writes"
        ) from None
    except (expat.ExpatError, ET.ParseError) as exc:
        raise BadResult(f"{where}: not well-formed XML ({str(exc)[:80]})") from None
