"""What the hostile-input suite throws at the platform: fragments, Hypothesis strategies, and the checks it makes.

Events are built as JSON documents, as an admin system would send them, from realistic values with hostile
fragments mixed in: template syntax, HTML and script, line breaks and other control characters, header
injection, bidi controls, other scripts, and sizes up to each field's limit. Contact points are almost valid.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from email.message import EmailMessage
from functools import partial
from html.parser import HTMLParser
from typing import Any, Final
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from notify_shared.rendering.bidi import without_isolates

HOSTILE: Final = settings(
    derandomize=True,  # the same examples on every run and machine: CI never flakes, failures reproduce
    database=None,
    deadline=None,
    max_examples=100,
    # No shrinking: the inputs are large (fields up to their limits), and shrinking one can take Hypothesis
    # minutes, past the suite's timeout. A failure is reported with the example as it was generated.
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
"""The settings every property in the suite starts from; each test sets its own `max_examples`."""

# --- fragments -------------------------------------------------------------------------------------------------


TEMPLATE_SYNTAX: Final = (
    "{{ 7*7 }}",
    "{{7*'7'}}",
    "{{ 1337*1001 }}",
    "{% for x in range(3) %}Q{% endfor %}",
    "{% endfor %}",
    "{{ config }}",
    "{{ config.items() }}",
    "{{ self.__init__.__globals__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ lipsum.__globals__.os.popen('id').read() }}",
    "{% if true %}Q{{ 'ran'|upper }}{% endif %}",
    "{# hidden #}",
    "{% raw %}",
    "{{",
    "}}",
    "{%",
    "%}",
    "${7*7}",
    "#{7*7}",
    "%(name)s",
    "{name}",
    "%s",
)
EXECUTED: Final = ("1338337", "7777777", "QQQ", "QRAN")
"""What the template fragments above print if anything ever runs them (`{{ 7*7 }}` gives 49, which a date or
a phone number can also hold, so it is checked where the input is known)."""

MARKUP: Final = (
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    '"><script>alert(1)</script>',
    "'><a href=javascript:alert(1)>x</a>",
    "</bdi></td></tr></table><script>alert(1)</script>",
    "</title><script>alert(1)</script>",
    "<!--",
    "-->",
    "<![CDATA[",
    "&lt;script&gt;",
    "&#60;script&#62;",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "[klikk](javascript:alert(1))",
    "<javascript:alert(1)>",
    "![bilde](javascript:alert(1))",
    '[x](https://skole.no"onmouseover="alert(1))',
    "<iframe src=//evil.example>",
    "<style>*{display:none}</style>",
    "<a href='https://skole.no' onclick='alert(1)'>x</a>",
    "<scr<script>ipt>",
    " onmouseover=alert(1) ",
    "**fet** _kursiv_ `kode`",
    "\n\n- punkt\n- punkt\n\n",
    "\n> sitat\n",
    "\n    kodeblokk\n",
    "https://skole.no/tur?a=1&b=2",
    "ola@skole.no",
)
LINE_BREAKS: Final = ("\r\n", "\n", "\r", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x00", "\x1b[31m", "\x7f", "\t")
HEADER_INJECTION: Final = (
    "\r\nBcc: evil@example.com",
    "\nTo: evil@example.com",
    "\r\n\r\n--boundary",
    "\nContent-Type: text/html",
    "=?utf-8?q?=0D=0ABcc:_evil@example.com?=",
    "\r\nX-Injected: yes",
)
UNICODE: Final = (
    "\u202e",
    "\u2066",
    "\u2069",
    "\u200f",
    "\ufeff",
    "\u200b",
    "\x9b",
    "مرحبا",
    "Kåre Ødegård",
    "Ющенко",
    "𝒜𝒷𝒸",
    "👨\u200d👩\u200d👧",
    "e\u0301",
    "ﷺ",
    '"',
    "'",
    "\\",
    ";",
    ",",
    ":",
    "\\N",
    "€",
    "^",
    "~",
)
FRAGMENTS: Final = TEMPLATE_SYNTAX + MARKUP + LINE_BREAKS + HEADER_INJECTION + UNICODE
ONE_LINE_BASES: Final = ("Kari", "Foreldremøte 7B", "Bjølsen skole", "مرحبا", "Rom 204", "Ола", "7B")
LONG_TEXT_BASES: Final = ("Hei alle!", "Husk matpakke.", "مرحبا بكم", "Привіт")

ONE_LINE_MAX: Final = 300
LONG_TEXT_MAX: Final = 20_000
REASON_MAX: Final = 2_000

ALMOST_EMAILS: Final = (
    "kari.nordmann@example.no",
    "KARI@EXAMPLE.NO",
    "kari+7b@example.no",
    "kari@bjølsen.no",
    "kari@xn--bjlsen-cya.no",
    "kåre@example.no",
    "kari@example",
    "kari@@example.no",
    "kari@example..no",
    ".kari@example.no",
    "kari.@example.no",
    "kari@-example.no",
    "kari@example.no.",
    "kari @example.no",
    '"kari"@example.no',
    "kari@[127.0.0.1]",
    "Kari <kari@example.no>",
    "kari@example.no, ola@example.no",
    "kari@example.no\r\nBcc: evil@example.com",
    "kari@example.no\nBcc: evil@example.com",
    "kari@exam\u200bple.no",
    "kari@ｅxample.no",
    "k@e.no",
    "a" * 64 + "@example.no",
    "a" * 65 + "@example.no",
    "kari@" + "a" * 63 + ".no",
    "kari@" + "a" * 64 + ".no",
    "kari@localhost",
    "mailto:kari@example.no",
    "kari%example.no@relay.example.no",
    "<kari@example.no>",
    "kari(comment)@example.no",
    "kari@example.no;x",
    "=?utf-8?q?kari?=@example.no",
    "",
)
ALMOST_PHONES: Final = (
    "912 34 567",
    "+4791234567",
    "+47 912 34 567",
    "0047 912 34 567",
    "91234567",
    "912 34 56",
    "+47912345678",
    "+47 9123456",
    "+47 (0) 912 34 567",
    "+47-912-34-567",
    "+47.912.34.567",
    "912 34 567 ext. 12",
    "tel:+4791234567",
    "+4791234567\r\nBcc: x",
    "+4791234567;",
    "++4791234567",
    "+٤٧٩١٢٣٤٥٦٧",
    "９１２３４５６７",
    "+1 202 555 0143",
    "+999 1234567",
    "00000000",
    "+47 800 12 345",
    "+46 70 123 45 67",
    "+47 912 34 567 <script>",
    "",
    " ",
    "+",
)
E164: Final = re.compile(r"\+[1-9][0-9]{6,14}")
# Both written standards, a GSM-7 and a UCS-2 language, two right-to-left ones, and tags that need normalising or
# a fallback. (Every catalog renders in notify_shared's own tests; each one more here costs template compiles.)
LANGUAGES: Final = ("nb", "nn", "en", "uk", "ar", "ur", "NB", "en-gb", "zh-Hant-TW")
TIMEZONES: Final = ("Europe/Oslo", "UTC", "Pacific/Kiritimati", "Etc/GMT+12", "America/St_Johns", "Asia/Kathmandu")

# --- strategies ------------------------------------------------------------------------------------------------

fragment = st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12))
"""A hostile fragment, or any short text (Hypothesis never puts lone surrogates in text: JSON cannot carry them)."""


def _sized(base: str, parts: list[str], repeat: int, limit: int) -> str:
    return (base + "".join(parts) * repeat)[:limit]


one_line = st.builds(
    _sized,
    st.sampled_from(ONE_LINE_BASES),
    st.lists(fragment, max_size=6),
    st.sampled_from((1, 1, 1, 1, 1, 2, 80)),
    st.just(ONE_LINE_MAX),
)
"""A name, title or place: letters first (so it is never blank once folded), then hostile parts, up to the
300-character limit."""


def long_text(limit: int = LONG_TEXT_MAX) -> st.SearchStrategy[str]:
    """An agenda, note or message body (or an absence reason, whose limit is 2,000): Markdown, markup and
    template syntax, up to the field's limit."""
    return st.builds(
        _sized,
        st.sampled_from(LONG_TEXT_BASES),
        st.lists(fragment, max_size=25),
        st.sampled_from((1, 1, 1, 1, 1, 1, 1, 1, 3, 1_000)),
        st.just(limit),
    )


zones = st.sampled_from((UTC, ZoneInfo("Europe/Oslo"), timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))))
instants = st.one_of(
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=zones),
    # The edges of the supported years, in the zones furthest from UTC.
    st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2199, 12, 30), timezones=zones),
)


def email_address() -> st.SearchStrategy[str]:
    """Almost-valid addresses, valid ones, and valid ones with one character spoiled."""
    spoilers = st.sampled_from(("\r\n", "\n", " ", "@", "<", ">", ",", '"', "\x00", "å", "\u200b", ".."))
    spoiled = st.builds(
        lambda address, spoiler, at: address[:at] + spoiler + address[at:],
        st.emails(),
        spoilers,
        st.integers(min_value=0, max_value=40),
    )
    return st.one_of(st.sampled_from(ALMOST_EMAILS), st.emails(), spoiled).map(lambda text: text[:320])


def phone_number() -> st.SearchStrategy[str]:
    """Almost-valid numbers, and strings of digits and phone punctuation."""
    digits = st.text(alphabet="0123456789 +-().", min_size=1, max_size=20)
    return st.one_of(st.sampled_from(ALMOST_PHONES), digits).map(lambda text: text[:40])


@st.composite
def recipient_document(draw: st.DrawFn, number: int = 1) -> dict[str, Any]:
    document: dict[str, Any] = {
        "guardian_id": f"g-{1000 + number}",
        "name": draw(one_line),
        "language": draw(st.sampled_from(LANGUAGES)),
        "channels": draw(st.sampled_from((["email"], ["sms"], ["email", "sms"], ["sms", "email", "sms"]))),
        "has_parental_responsibility": True,
    }
    if draw(st.booleans()) or "email" in document["channels"]:
        document["email"] = draw(email_address())
    if draw(st.booleans()) or "sms" in document["channels"]:
        document["phone"] = draw(phone_number())
    if draw(st.booleans()):
        document["delivery_mode"] = draw(st.sampled_from(("instant", "daily", "weekly", "off")))
    return document


@st.composite
def school_document(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "id": "nor-0301-bjolsen",
        "name": draw(one_line),
        "timezone": draw(st.sampled_from(TIMEZONES)),
        "written_standard": draw(st.sampled_from(("nb", "nn"))),
        "sms_sender_id": draw(st.sampled_from(("Bjolsen", "Skole 7B", "A", "ABCDEFGHIJK"))),
    }


def _optional(draw: st.DrawFn, strategy: st.SearchStrategy[Any]) -> Any:
    return draw(strategy) if draw(st.booleans()) else None


@st.composite
def meeting_document(draw: st.DrawFn) -> dict[str, Any]:
    starts = draw(instants)
    # Added in UTC: wall-clock arithmetic across a daylight-saving change can end a meeting before it starts.
    length = timedelta(minutes=draw(st.integers(min_value=1, max_value=24 * 60)))
    ends = (starts.astimezone(UTC) + length).astimezone(starts.tzinfo)
    return {
        "meeting_id": "m-2026-7b-foreldremote",
        "kind": draw(st.sampled_from(("parent_meeting", "development_talk", "other"))),
        "title": draw(one_line),
        "starts_at": starts.isoformat(),
        "ends_at": ends.isoformat(),
        "location": draw(one_line),
        "agenda": _optional(draw, long_text()),
        "organizer_name": _optional(draw, one_line),
        "pupil_present": draw(st.sampled_from((None, True, False))),
    }


def _envelope(event_type: str, data: dict[str, Any], number: int) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"hostile-{event_type}-{number}",
        "source": "/visma-flyt/0301",
        "type": event_type,
        "time": "2026-11-20T09:00:00+01:00",
        "data": data,
    }


@st.composite
def event_document(draw: st.DrawFn, event_type: str | None = None) -> dict[str, Any]:
    """A valid CloudEvent of `event_type` (or any input type) as JSON, with hostile text in every text field."""
    chosen = event_type or draw(
        st.sampled_from(("meeting.created", "meeting.updated", "meeting.cancelled", "message.posted", "absence.noted"))
    )
    recipients = [draw(recipient_document(number)) for number in range(1, draw(st.integers(1, 3)) + 1)]
    data: dict[str, Any] = {"school": draw(school_document()), "recipients": recipients}
    if chosen.startswith("meeting."):
        data["meeting"] = draw(meeting_document())
        if chosen == "meeting.cancelled":
            data["cancellation_note"] = _optional(draw, long_text())
    elif chosen == "message.posted":
        personal = draw(st.booleans())
        data |= {
            "message_id": "msg-88213",
            "class_id": "c-7b",
            "class_name": _optional(draw, one_line),
            "pupil_id": "p-77120" if personal else None,
            "pupil_first_name": draw(one_line) if personal else None,
            "author_name": draw(one_line),
            "subject": draw(one_line),
            "body": draw(long_text()),
            "urgent": draw(st.booleans()),
            "posted_at": draw(instants).isoformat(),
        }
    else:
        lesson = st.fixed_dictionaries(
            {},
            optional={
                "period": st.integers(min_value=0, max_value=20),
                "subject": one_line,
                # A school clock's time as the contract writes it ("08:30:00"), mapped from the same draw as
                # before so that the derandomized examples of every other field stay what they were.
                "starts_at": st.times().map(partial(time.isoformat, timespec="seconds")),
            },
        )
        data |= {
            "pupil": {"pupil_id": "p-77120", "first_name": draw(one_line), "class_name": _optional(draw, one_line)},
            "date": draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2199, 12, 31))).isoformat(),
            "lessons": draw(st.lists(lesson, max_size=8)),
            "reported_by_guardian": draw(st.booleans()),
            "reason": _optional(draw, long_text(REASON_MAX)),
        }
    return _envelope(chosen, data, draw(st.integers(min_value=1, max_value=10**6)))


# --- checks ----------------------------------------------------------------------------------------------------

ALLOWED_TAGS: Final = frozenset(
    # The layout and the templates
    {"html", "head", "meta", "title", "body", "div", "table", "tr", "td", "p", "h1", "h2", "h3", "bdi", "br"}
    | {"strong", "s", "span", "ul", "li"}
    # and what Markdown in a teacher's text may become (notify_shared.rendering.markdown).
    | {"em", "ol", "a", "code", "pre", "blockquote", "hr"}
)
VOID_TAGS: Final = frozenset({"meta", "br", "hr"})
ALLOWED_ATTRIBUTES: Final = frozenset(
    {"lang", "dir", "charset", "name", "content", "style", "role", "width", "cellpadding", "cellspacing", "border"}
    | {"align", "href", "rel", "target", "start", "title"}
)
SAFE_SCHEMES: Final = ("http:", "https:", "mailto:")


class HtmlScan(HTMLParser):
    """Every element, attribute and piece of text in an HTML document, as a browser's tokenizer sees them; and
    whether the elements nest properly (user text that closed an element would show here)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.text: list[str] = []
        self.open_elements: list[str] = []
        self.misnested: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend((name, value or "") for name, value in attrs)
        if tag not in VOID_TAGS:
            self.open_elements.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend((name, value or "") for name, value in attrs)

    def handle_endtag(self, tag: str) -> None:
        if not self.open_elements or self.open_elements[-1] != tag:
            self.misnested.append(tag)
            return
        self.open_elements.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def visible_text(self) -> str:
        return "".join(self.text)


def scan_html(html: str) -> HtmlScan:
    scan = HtmlScan()
    scan.feed(html)
    scan.close()
    return scan


def assert_no_active_content(html: str) -> HtmlScan:
    """No script or other active element, no event handler, no `javascript:` (or any non-web) link target, and
    every element closed where it was opened."""
    scan = scan_html(html)
    assert "<script" not in html.lower()
    assert set(scan.tags) <= ALLOWED_TAGS, sorted(set(scan.tags) - ALLOWED_TAGS)
    for name, value in scan.attributes:
        assert name in ALLOWED_ATTRIBUTES, name
        assert not name.startswith("on"), name
        assert "javascript:" not in value.lower().replace(" ", ""), (name, value)
        if name == "href":
            assert value.strip().lower().startswith(SAFE_SCHEMES), value
    assert not scan.misnested, scan.misnested
    assert not scan.open_elements, scan.open_elements
    return scan


def assert_nothing_executed(user_text: str, *outputs: str) -> None:
    for result in EXECUTED:
        if result not in user_text:
            for output in outputs:
                assert result not in output, f"template syntax was executed: {result!r} in output"


def shown(text: str) -> str:
    """Text as a reader compares it: without the isolate marks the renderer adds, whitespace runs as one space."""
    return " ".join(without_isolates(text).split())


def parse_wire(wire: bytes) -> EmailMessage:
    """The message as a strict mail client parses it: any defect in the headers raises."""
    parsed = email.message_from_bytes(wire, policy=email.policy.strict)
    assert isinstance(parsed, EmailMessage)
    return parsed


def every_string(value: object) -> Iterable[str]:
    """Every string in a JSON document, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from every_string(item)
    elif isinstance(value, list):
        for item in value:
            yield from every_string(item)


def at_path(document: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


def paths(document: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every path to a value in a JSON document, the document itself excluded."""
    found: list[tuple[str | int, ...]] = []
    items: Iterable[tuple[str | int, Any]] = (
        document.items() if isinstance(document, dict) else enumerate(document) if isinstance(document, list) else ()
    )
    for key, value in items:
        found.append((*prefix, key))
        found.extend(paths(value, (*prefix, key)))
    return found


# --- records ---------------------------------------------------------------------------------------------------

CLOUDEVENTS_JSON: Final = b"application/cloudevents+json"
STRUCTURED: Final = (("content-type", CLOUDEVENTS_JSON),)
Headers = tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True)
class HostileRecord:
    """A Kafka record that must be dead-lettered with `reason`, on the meeting.created topic."""

    name: str
    value: bytes | None
    headers: Headers
    reason: str


def sample_document(event_type: str = "meeting.created", number: int = 1) -> dict[str, Any]:
    """A valid event as JSON, realistic and harmless, to spoil one thing in."""
    starts = "2026-12-03T18:00:00+01:00"
    data: dict[str, Any] = {
        "school": {
            "id": "nor-0301-bjolsen",
            "name": "Bjølsen skole",
            "timezone": "Europe/Oslo",
            "written_standard": "nb",
            "sms_sender_id": "Bjolsen",
        },
        "recipients": [
            {
                "guardian_id": "g-1001",
                "name": "Kari Nordmann",
                "email": "guardian1@example.no",
                "phone": "+4791234567",
                "channels": ["email", "sms"],
                "has_parental_responsibility": True,
            }
        ],
    }
    if event_type == "message.posted":
        data |= {
            "message_id": "msg-1",
            "author_name": "Ole Lærer",
            "subject": "Tur",
            "body": "Husk matpakke.",
            "posted_at": starts,
        }
    else:
        data["meeting"] = {
            "meeting_id": f"m-hostile-{number}",
            "kind": "parent_meeting",
            "title": "Foreldremøte 7B",
            "starts_at": starts,
            "ends_at": "2026-12-03T19:30:00+01:00",
            "location": "Rom 204",
        }
    return {
        "specversion": "1.0",
        "id": f"e-hostile-{number}",
        "source": "/visma-flyt/0301",
        "type": event_type,
        "time": "2026-11-20T09:00:00+01:00",
        "data": data,
    }


def _json(document: Any) -> bytes:
    # surrogatepass: a lone surrogate becomes the (invalid) UTF-8 bytes a careless producer would send.
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _spoiled(path: tuple[str | int, ...], value: Any, number: int) -> bytes:
    document = sample_document(number=number)
    target = at_path(document, path[:-1])
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return _json(document)


_DELETE: Final = object()


def _binary_headers(document: dict[str, Any], **overrides: bytes | None) -> Headers:
    attributes: dict[str, bytes | None] = {
        f"ce_{name}": str(value).encode() for name, value in document.items() if name != "data"
    }
    return (*(attributes | overrides).items(), ("content-type", b"application/json"))


def hostile_records() -> list[HostileRecord]:
    """Records every service must dead-letter with the reason given, whatever FastStream's parser is."""
    sample = sample_document(number=900)
    big_agenda = _spoiled(("data", "meeting", "agenda"), "Ta med matpakke. " * 55_000, 901)
    many_wrong = sample_document(number=902)
    many_wrong["data"]["recipients"] = [{"guardian_id": f"g {n}", "email": n} for n in range(2_000)]
    return [
        HostileRecord("truncated-json", b'{"specversion": "1.0", "id": ', STRUCTURED, "malformed_json"),
        HostileRecord(
            "not-utf8-value", _json(sample).replace(b"Bj\xc3\xb8lsen", b"Bj\xf8lsen"), STRUCTURED, "malformed_json"
        ),
        HostileRecord("utf8-bom", b"\xef\xbb\xbf" + _json(sample), STRUCTURED, "malformed_json"),
        HostileRecord(
            "nested-100000-deep",
            b'{"specversion": "1.0", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            STRUCTURED,
            "malformed_json",
        ),
        HostileRecord(
            "5000-digit-number", b'{"specversion": "1.0", "id": ' + b"9" * 5_000 + b"}", STRUCTURED, "malformed_json"
        ),
        HostileRecord("tombstone", None, STRUCTURED, "malformed_json"),
        HostileRecord("json-array", b"[1, 2, 3]", STRUCTURED, "not_a_cloudevent"),
        HostileRecord("no-specversion", b'{"id": "e-1", "type": "meeting.created"}', STRUCTURED, "not_a_cloudevent"),
        HostileRecord("xml", b"<event/>", (("content-type", b"application/xml"),), "unsupported_content_type"),
        HostileRecord(
            "unknown-type", _spoiled(("type",), "meeting.rescheduled", 903), STRUCTURED, "unknown_event_type"
        ),
        HostileRecord(
            "message-on-meeting-topic", _json(sample_document("message.posted", 904)), STRUCTURED, "topic_mismatch"
        ),
        HostileRecord("missing-meeting", _spoiled(("data", "meeting"), _DELETE, 905), STRUCTURED, "schema_violation"),
        HostileRecord(
            "recipients-not-a-list",
            _spoiled(("data", "recipients"), "Kari Nordmann", 906),
            STRUCTURED,
            "schema_violation",
        ),
        HostileRecord(
            "crlf-in-id",
            _spoiled(("id",), "e-1\r\n2026-11-20 INFO forged log line", 907),
            STRUCTURED,
            "schema_violation",
        ),
        HostileRecord(
            "lone-surrogate-in-id",
            _spoiled(("id",), "\ud800", 908).replace(b"\xed\xa0\x80", b"\\ud800"),
            STRUCTURED,
            "schema_violation",
        ),
        HostileRecord(
            "year-9999-west-of-utc",
            _spoiled(("data", "meeting", "starts_at"), "9999-12-31T20:00:00-12:00", 909),
            STRUCTURED,
            "schema_violation",
        ),
        HostileRecord(
            "timezone-is-a-directory",
            _spoiled(("data", "school", "timezone"), "Europe", 910),
            STRUCTURED,
            "schema_violation",
        ),
        HostileRecord(
            "100000-character-key", _spoiled(("data", "meeting", "k" * 100_000), 1, 911), STRUCTURED, "schema_violation"
        ),
        HostileRecord("4000-errors", _json(many_wrong), STRUCTURED, "schema_violation"),
        HostileRecord("near-1-mib", big_agenda, STRUCTURED, "schema_violation"),
        HostileRecord("binary-data-not-json", b"{data", _binary_headers(sample), "malformed_json"),
        HostileRecord(
            "binary-wrong-types",
            _json({"school": 5, "meeting": [], "recipients": {}}),
            _binary_headers(sample),
            "schema_violation",
        ),
    ]


def non_utf8_header_records() -> list[HostileRecord]:
    """Records whose header values FastStream's own parser cannot decode (see `parse_record_leniently`)."""
    sample = sample_document(number=950)
    return [
        HostileRecord(
            "binary-ce-id-not-utf8",
            _json(sample["data"]),
            _binary_headers(sample, ce_id=b"\xff\xfe"),
            "malformed_header",
        ),
        HostileRecord("content-type-not-utf8", _json(sample), (("content-type", b"\xff\xfe"),), "malformed_header"),
        HostileRecord(
            "binary-ce-type-without-value",
            _json(sample["data"]),
            _binary_headers(sample, ce_type=None),
            "unknown_event_type",
        ),
    ]


def _filled(base: str, limit: int) -> str:
    pattern = "".join(FRAGMENTS)
    return (base + pattern * (limit // len(pattern) + 1))[:limit]


def document_at_limits(event_type: str, language: str) -> dict[str, Any]:
    """An event whose every text field is full to its limit with hostile fragments, for one guardian."""
    document = sample_document("message.posted" if event_type == "message.posted" else "meeting.created", 990)
    document["type"] = event_type
    data = document["data"]
    data["school"]["name"] = _filled("Bjølsen ", ONE_LINE_MAX)
    data["recipients"][0] |= {"name": _filled("Kari ", ONE_LINE_MAX), "language": language}
    if event_type.startswith("meeting."):
        data["meeting"] |= {
            "title": _filled("Møte ", ONE_LINE_MAX),
            "location": _filled("Rom ", ONE_LINE_MAX),
            "organizer_name": _filled("Ole ", ONE_LINE_MAX),
            "agenda": _filled("Agenda ", LONG_TEXT_MAX),
        }
        if event_type == "meeting.cancelled":
            data["cancellation_note"] = _filled("Avlyst ", LONG_TEXT_MAX)
    elif event_type == "message.posted":
        data |= {
            "class_name": _filled("7B ", ONE_LINE_MAX),
            "author_name": _filled("Ole ", ONE_LINE_MAX),
            "subject": _filled("Tur ", ONE_LINE_MAX),
            "body": _filled("Hei ", LONG_TEXT_MAX),
            "urgent": True,
        }
    else:
        del data["meeting"]
        data |= {
            "pupil": {"pupil_id": "p-1", "first_name": _filled("Emma ", ONE_LINE_MAX), "class_name": "7B"},
            "date": "2026-12-07",
            "lessons": [{"period": period, "subject": _filled("Norsk ", ONE_LINE_MAX)} for period in range(20)],
            "reason": _filled("Syk ", REASON_MAX),
        }
    return document


@dataclass
class TextField:
    """One free-text field of a JSON document, to overwrite in place."""

    parent: dict[str, Any]
    key: str

    @property
    def value(self) -> str:
        text: str = self.parent[self.key]
        return text

    @value.setter
    def value(self, text: str) -> None:
        self.parent[self.key] = text


TEXT_FIELDS: Final = frozenset(
    {"name", "title", "location", "agenda", "organizer_name", "cancellation_note", "class_name", "author_name"}
    | {"subject", "body", "first_name", "pupil_first_name"}
)
"""The fields people type into: names, titles, places, subjects, bodies (not ids, contact points or the reason)."""


def every_field_of_text(document: Any) -> list[TextField]:
    fields: list[TextField] = []
    if isinstance(document, dict):
        for key, value in document.items():
            if key in TEXT_FIELDS and isinstance(value, str):
                fields.append(TextField(document, key))
            else:
                fields.extend(every_field_of_text(value))
    elif isinstance(document, list):
        for item in document:
            fields.extend(every_field_of_text(item))
    return fields
