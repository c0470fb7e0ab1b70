"""The digest benchmark's plan: how many guardians, items and schools, and the week of messages they get.

Shared by the benchmark's parent (`digest_bench.py`) and its service processes (`digest_bench_service.py`)
through a JSON file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from notify_shared import samples
from notify_shared.contract import Channel, DeliveryMode, MessagePosted, PostedMessage, School

OSLO = ZoneInfo("Europe/Oslo")
WEEK_START = datetime(2026, 11, 30, 9, 0, tzinfo=OSLO)
"""Monday 09:00: the first message of the week is posted; one a school day, Monday to Friday."""
MAX_ITEMS = 75
"""Above five a day the messages go 20 minutes apart; 15 a day still end before the Friday slot."""
WEEKLY_SLOT = datetime(2026, 12, 4, 14, 0, tzinfo=OSLO)
"""Friday 14:00, the service's default weekly slot (DIGEST_WEEKLY_DAY, DIGEST_WEEKLY_AT): the digest run."""

# Five messages a school might post in a week; a guardian with --items above 5 gets them again, numbered.
MESSAGES: tuple[tuple[str, str, str], ...] = (
    (
        "Ole Lærer",
        "Tur til Sognsvann fredag",
        "Hei alle!\n\nPå fredag går vi på tur til **Sognsvann**. Husk:\n\n- matpakke og drikke\n"
        "- varme klær og gode sko\n\nVi er tilbake ca. kl. 14.",
    ),
    (
        "Kari Rektor",
        "Foreldremøte tirsdag 8. desember",
        "Velkommen til foreldremøte tirsdag kl. 18.00 i aulaen.\n\n1. Skoleåret så langt\n2. Leirskolen i mai\n"
        "3. Eventuelt\n\nGi beskjed til kontaktlæreren hvis du ikke kan komme.",
    ),
    (
        "Per Gymlærer",
        "Kroppsøving ute fra neste uke",
        "Fra mandag har vi *kroppsøving* ute. Ta med varme klær, lue og joggesko. Timeplanen ligger på "
        "https://skole.example.no/timeplan.",
    ),
    (
        "Anne Bibliotekar",
        "Lesekampanje i desember",
        "I desember leser vi om kapp! Hver elev får en leselogg. Målet er **20 minutter lesing hver dag**.\n\n"
        "Biblioteket er åpent i alle storefriminutt.",
    ),
    (
        "Kari Rektor",
        "Nytt fra skolen denne uka",
        "Takk for en fin uke!\n\n## Kommende\n\n- Juleavslutning torsdag 17. desember kl. 17\n"
        "- Siste skoledag før ferien er fredag 18. desember\n\n## Påminnelser\n\nMerk klær og sko med navn. "
        "Glemte klær legges i kurven ved inngangen og gis bort til veldedighet etter jul.\n\n"
        "Ha en god helg!",
    ),
)
GROUP_NAMES = ("1.–4. trinn", "5.–7. trinn", "8.–10. trinn")


@dataclass(frozen=True)
class Plan:
    """What to store and send; shared by the parent and its children through a JSON file."""

    guardians: int
    items: int
    per_message: int
    per_school: int
    batch_size: int
    database_url: str
    work_dir: str

    @property
    def groups(self) -> int:
        """Groups of `per_message` guardians; each group gets the same `items` messages."""
        return self.guardians // self.per_message

    @property
    def schools(self) -> int:
        return -(-self.guardians // self.per_school)

    @property
    def events(self) -> int:
        return self.groups * self.items

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> Plan:
        return cls(**json.loads(path.read_text()))


def posted_at(number: int) -> datetime:
    """When the `number`-th message (0-based) of the week is posted: 09:00 Monday, Tuesday, … Friday, then 09:20."""
    day, round_ = number % 5, number // 5
    return WEEK_START + timedelta(days=day, minutes=20 * round_)


def _school(number: int) -> School:
    return samples.sample_school(id=f"nor-bench-{number:03d}", name=f"Benkemark skole {number}")


def message_events(plan: Plan, group: int) -> list[MessagePosted]:
    """The week's `items` messages to the guardians of `group`, every guardian distinct (id, name, address).

    The recipients are built (and validated) once per group and shared by its messages: building them is the
    Kafka decoder's work in the service, not the intake's, and takes longer than the intake itself.
    """
    school_index, first_in_school = divmod(group * plan.per_message, plan.per_school)
    group_in_school = first_in_school // plan.per_message
    group_name = GROUP_NAMES[group_in_school] if group_in_school < len(GROUP_NAMES) else f"Gruppe {group_in_school}"
    school = _school(school_index)
    first = group * plan.per_message + 1
    recipients = tuple(
        samples.sample_guardian(n, channels=[Channel.EMAIL], delivery_mode=DeliveryMode.WEEKLY)
        for n in range(first, first + plan.per_message)
    )
    events = []
    for number in range(plan.items):
        author, subject, body = MESSAGES[number % len(MESSAGES)]
        if number >= len(MESSAGES):
            subject = f"{subject} ({number // len(MESSAGES) + 1})"
        at = posted_at(number)
        events.append(
            MessagePosted(
                id=samples.new_id(),
                source=samples.SOURCE,
                time=at,
                data=PostedMessage(
                    school=school,
                    message_id=f"msg-bench-{group:04d}-{number:03d}",
                    class_id=f"grp-{group:04d}",
                    class_name=group_name,
                    author_name=author,
                    subject=subject,
                    body=body,
                    posted_at=at,
                    recipients=recipients,
                ),
            )
        )
    return events
