# ruff: noqa: RUF001 -- names and text in other scripts (Cyrillic, Greek, Turkish dotless i) are the point here.
"""Demo data for one account (``manage.py seed_demo_data``): realistic, deterministic, fast.

Realistic: names in the scripts an international sender meets (Latin with
accents, Turkish, Polish, Vietnamese, Cyrillic, Greek, Arabic, CJK, Hangul,
Devanagari), mobile numbers that libphonenumber accepts as valid for their
country (stored in E.164, ``country`` derived from the number), emails on
reserved example domains, lifecycle stages, tags, metadata, channel
preferences, lists with members (20 by default, ``--lists`` for more),
segments (10 by default, up to 20 hand-written shapes and generated ones
beyond) and an activity timeline.

Deterministic: everything but the ids (random by design) and the timestamps
(laid out backwards from the moment of the run) comes from one
``random.Random(seed)`` consumed in a fixed order, so the same seed gives the
same contacts in the same order in any empty account.

Fast: contacts are generated in Python and loaded with ``COPY … FROM STDIN``
in batches, each batch (contacts, their memberships, their events) one
committed transaction. Phones and emails are unique by construction (see
``_NumberPool`` and ``_email``), so no set of issued values grows with the
run. ``member_count`` is kept by the membership table's statement triggers,
which COPY fires like any INSERT.
"""

import json
import os
import queue
import random
import re
import string
import threading
from bisect import bisect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate, islice

import phonenumbers
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Account
from contacts.constants import CHANNELS
from contacts.models import ActivityEvent, Contact
from contacts.search import fold, search_columns
from contacts_project.ids import RANDOM_LENGTH
from lists.models import ContactList, ListMembership
from lists.services import list_create
from segments.models import Segment
from segments.rules import validate_rules
from segments.services import segment_create

BATCH_SIZE = 10_000
HISTORY = timedelta(days=730)
# A pool whose prefix yields no valid number this many times in a row is a
# bug in MOBILE_PREFIXES, not bad luck (the worst prefix is ~80% valid).
MAX_ATTEMPTS = 1000

_NOT_ASCII_LETTER = re.compile(r"[^a-z]")


def _names(spec: str) -> tuple[tuple[str, str], ...]:
    """``"José|Дмитрий:dmitriy"`` → ``(("José", "jose"), ("Дмитрий", "dmitriy"))``.

    Each name comes with the ASCII form used in email addresses: given after
    a colon for non-Latin scripts, else the name folded (accents dropped).
    """
    pairs = []
    for item in spec.split("|"):
        name, _, ascii_form = item.partition(":")
        pairs.append((name, ascii_form or _NOT_ASCII_LETTER.sub("", fold(name))))
    return tuple(pairs)


class Weighted:
    """A fixed weighted choice; ``pick`` costs one ``random()`` and a bisection.

    (``random.choices`` recomputes the cumulative weights on every call, which
    shows at a million contacts.)
    """

    def __init__(self, weights: dict):
        self.items = tuple(weights)
        self.cumulative = list(accumulate(weights.values()))
        self.total = self.cumulative[-1]

    def pick(self, rng: random.Random):
        return self.items[bisect(self.cumulative, rng.random() * self.total)]


@dataclass(frozen=True)
class Culture:
    """Names of one language or region and the countries whose phones its people have."""

    weight: int
    countries: tuple[str, ...]
    first_names: tuple[tuple[str, str], ...]
    last_names: tuple[tuple[str, str], ...]


CULTURES = (
    Culture(
        18,
        ("US", "US", "US", "GB", "CA", "IE"),
        _names("James|Mary|Olivia|Liam|Emma|Noah|Ava|William|Sophia|Benjamin|Charlotte|Henry|Harper|Jack|Grace"),
        _names("Smith|Johnson|Williams|Brown|Jones|Miller|Davis|Wilson|Anderson|Taylor|O'Brien|McAllister|Moore"),
    ),
    Culture(
        10,
        ("ES", "MX", "MX", "AR"),
        _names("José|María|Jesús|Lucía|Martín|Sofía|Álvaro|Inés|Andrés|Ángela|Raúl|Begoña|Íñigo|Ximena"),
        _names("García|Fernández|González|Rodríguez|López|Martínez|Sánchez|Pérez|Núñez|Ibáñez|Muñoz|De la Cruz"),
    ),
    Culture(
        6,
        ("BR", "BR", "PT"),
        _names("João|Ana|Gonçalo|Beatriz|Tomás|Inês|Luís|Conceição|Thiago|Letícia"),
        _names("Silva|Santos|Gonçalves|Magalhães|Araújo|Simões|Conceição|Oliveira|Brandão"),
    ),
    Culture(
        6,
        ("FR",),
        _names("François|Amélie|Hélène|Jérôme|Zoë|Gaël|Chloé|Noël|Léa|Loïc|Jean-Luc"),
        _names("Dubois|Lefèvre|Girard|Bérenger|Moreau|Fournier|Lemaître|Faure|Cœur"),
    ),
    Culture(
        6,
        ("DE",),
        _names("Jürgen|Jörg|Anja|Lena|Lukas|Björn|Sören|Käthe|Uwe|Günther|Marie-Luise"),
        _names("Müller|Schröder|Weiß|Groß|Köhler|Fischer|Becker|Hoffmann|Schäfer|Bäcker"),
    ),
    Culture(
        2,
        ("NO",),
        _names("Søren|Åse|Bjørn|Øystein|Ingrid|Håkon|Sigrún"),
        _names("Hansen|Johansen|Ødegård|Kristiansen|Bråten|Løvås"),
    ),
    Culture(
        3,
        ("PL",),
        _names("Łukasz|Małgorzata|Paweł|Agnieszka|Wojciech|Zofia|Grzegorz"),
        _names("Nowak|Kowalski|Wiśniewska|Wójcik|Łuczak|Zieliński|Szczęsna"),
    ),
    Culture(
        6,
        ("TR",),
        _names("Çağla|Ömer|Şükrü|Gülşen|İbrahim|Ayşe|Yiğit|Özge|Barış|Ilgın|Işıl"),
        _names("Yılmaz|Kaya|Demir|Şahin|Çelik|Öztürk|Aydın|Arslan|Doğan|Kılıç|Güneş"),
    ),
    Culture(
        4,
        ("IT", "IT", "NL"),
        _names("Niccolò|Giulia|Lorenzo|Chiara|Matteo|Francesca|Daan|Sanne"),
        _names("Rossi|Bianchi|Esposito|Romano|Colombo|D'Angelo|de Vries|van den Berg"),
    ),
    Culture(
        3,
        ("VN",),
        _names("Thảo|Minh|Hương|Dũng|Phương|Quân|Đức"),
        _names("Nguyễn|Trần|Lê|Phạm|Hoàng|Võ|Đặng"),
    ),
    Culture(
        5,
        ("RU",),
        _names(
            "Дмитрий:dmitriy|Анна:anna|Сергей:sergey|Екатерина:ekaterina|Алексей:aleksey|Наталья:natalya|"
            "Иван:ivan|Ольга:olga|Фёдор:fyodor"
        ),
        _names(
            "Иванов:ivanov|Смирнов:smirnov|Кузнецов:kuznetsov|Попова:popova|Соколова:sokolova|"
            "Лебедев:lebedev|Щербаков:shcherbakov"
        ),
    ),
    Culture(
        3,
        ("UA",),
        _names("Олександр:oleksandr|Оксана:oksana|Андрій:andrii|Ірина:iryna|Юлія:yuliia|Тарас:taras|Євген:yevhen"),
        _names("Шевченко:shevchenko|Коваленко:kovalenko|Бондаренко:bondarenko|Ткаченко:tkachenko|Мельник:melnyk"),
    ),
    Culture(
        4,
        ("GR",),
        _names("Γιώργος:giorgos|Μαρία:maria|Δημήτρης:dimitris|Ελένη:eleni|Νίκος:nikos|Κατερίνα:katerina|Σπύρος:spyros"),
        _names(
            "Παπαδόπουλος:papadopoulos|Παπαδοπούλου:papadopoulou|Οικονόμου:oikonomou|Γεωργίου:georgiou|"
            "Νικολάου:nikolaou|Βασιλείου:vasileiou"
        ),
    ),
    Culture(
        6,
        ("SA", "EG", "AE"),
        _names(
            "محمد:mohammed|فاطمة:fatima|أحمد:ahmed|مريم:maryam|علي:ali|نور:nour|يوسف:youssef|ليلى:layla|"
            "عبد الرحمن:abdulrahman"
        ),
        _names(
            "العتيبي:alotaibi|الحربي:alharbi|حسن:hassan|إبراهيم:ibrahim|المنصوري:almansouri|عبدالله:abdullah|"
            "الشمري:alshammari"
        ),
    ),
    Culture(
        6,
        ("CN",),
        _names("伟:wei|芳:fang|娜:na|敏:min|静:jing|磊:lei|秀英:xiuying|志强:zhiqiang|欣怡:xinyi"),
        _names("王:wang|李:li|张:zhang|刘:liu|陈:chen|杨:yang|欧阳:ouyang"),
    ),
    Culture(
        4,
        ("JP",),
        _names("翔太:shota|さくら:sakura|陽菜:hina|大輔:daisuke|美咲:misaki|健:ken|ゆい:yui"),
        _names("佐藤:sato|鈴木:suzuki|高橋:takahashi|田中:tanaka|渡辺:watanabe|伊藤:ito"),
    ),
    Culture(
        3,
        ("KR",),
        _names("민준:minjun|서연:seoyeon|지훈:jihoon|하은:haeun|도윤:doyun|지우:jiwoo"),
        _names("김:kim|이:lee|박:park|최:choi|정:jung|강:kang"),
    ),
    Culture(
        6,
        ("IN",),
        _names("आरव:aarav|प्रिया:priya|अर्जुन:arjun|अनन्या:ananya|Rahul|Priyanka|Vikram|Sneha"),
        _names("शर्मा:sharma|पटेल:patel|सिंह:singh|Iyer|Reddy|Gupta|Chatterjee"),
    ),
)

# Mobile prefixes (national significant number) per country; the rest of the
# number has as many digits as the country's example mobile number. Checked
# by the tests: every prefix yields numbers libphonenumber accepts.
MOBILE_PREFIXES = {
    "US": ("201", "212", "305", "312", "415", "512", "617"),
    "CA": ("416", "514", "604"),
    "GB": ("740", "771", "782"),
    "IE": ("85", "87"),
    "DE": ("1512", "1522", "1701", "1761"),
    "FR": ("61", "62", "76"),
    "ES": ("61", "62", "65"),
    "PT": ("91", "93", "96"),
    "IT": ("312", "333", "347"),
    "NL": ("61", "65"),
    "NO": ("40", "48", "90"),
    "PL": ("51", "60", "79"),
    "MX": ("222", "331", "551", "811"),
    "BR": ("1196", "1198", "2198", "3199"),
    "AR": ("9112",),
    "TR": ("501", "532", "542", "555"),
    "RU": ("903", "912", "916", "926"),
    "UA": ("50", "67", "93"),
    "GR": ("691", "694", "697"),
    "SA": ("50", "51", "55"),
    "EG": ("100", "111", "122"),
    "AE": ("50", "52", "55"),
    "CN": ("1312", "1391", "1502", "1861"),
    "JP": ("701", "801", "901"),
    "KR": ("102", "103", "109"),
    "IN": ("700", "812", "900", "981"),
    "VN": ("90", "91", "98"),
}

# Reserved for documentation (RFC 2606 / 6761): demo data never reaches a real inbox.
EMAIL_DOMAINS = Weighted(
    {
        "example.com": 30,
        "example.org": 15,
        "example.net": 10,
        "mail.example.com": 10,
        "acme.example": 10,
        "globex.example": 10,
        "initech.example": 8,
        "umbrella.example": 7,
    }
)

LIFECYCLE_STAGES = Weighted(
    {"lead": 35, "subscriber": 15, "prospect": 10, "customer": 30, "churned": 7, "evangelist": 3}
)

TAGS = (
    "vip",
    "beta",
    "newsletter",
    "webinar-2026",
    "black-friday",
    "churn-risk",
    "partner",
    "trial",
    "enterprise",
    "early-adopter",
    "support:priority",
    "event:lisbon-2026",
    "referral",
    "b2b",
    "b2c",
    "wholesale",
    "Q4 campaign",
    "ios",
    "android",
    "whatsapp-first",
)
TAG_COUNTS = Weighted({0: 30, 1: 25, 2: 20, 3: 12, 4: 8, 5: 5})

PLANS = Weighted({"free": 40, "starter": 30, "pro": 22, "enterprise": 8})
PLAN_SEATS = {"free": (1, 1), "starter": (1, 5), "pro": (2, 60), "enterprise": (20, 2000)}
SIGNUP_SOURCES = Weighted({"web": 40, "ios": 12, "android": 12, "referral": 12, "import": 10, "event": 8, "partner": 6})
COMPANIES = (
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella Ltd",
    "Öztürk Yazılım A.Ş.",
    "Müller & Söhne GmbH",
    "Société Générale de Démo",
    "株式会社サクラ",
    "ООО «Ромашка»",
    "Θάλασσα Α.Ε.",
    "شركة النخبة",
)
UTM_SOURCES = ("google", "facebook", "linkedin", "newsletter", "partner-site")
CAMPAIGNS = ("welcome", "black_friday_2026", "renewal_reminder", "order_update", "webinar_invite", "survey")
LANGUAGES = ("en", "es", "pt", "fr", "de", "tr", "ru", "el", "ar", "zh", "ja", "ko", "hi")

MESSAGE_CHANNELS = Weighted({"sms": 35, "whatsapp": 30, "email": 20, "rcs": 8, "viber": 7})
EVENTS_FRACTION = 0.3
PREFERENCES_FRACTION = 0.35
OPT_IN_SHARE = 0.75


@dataclass(slots=True)
class SeedContact:
    """One generated contact, with the list memberships and events that go with it."""

    phone: phonenumbers.PhoneNumber | None
    phone_e164: str | None
    email: str | None
    first_name: str
    last_name: str
    country: str | None
    lifecycle_stage: str
    tags: list[str]
    metadata: dict
    preferences: dict
    created_at: datetime
    updated_at: datetime
    memberships: list[tuple[int, datetime]]  # (index into the generator's lists, added_at)
    events: list[tuple[str, str | None, datetime, str | None, dict]]  # type, channel, occurred_at, message_id, data


@dataclass(frozen=True)
class ListSpec:
    """A demo list: which contacts join it (``when``) and how many of those do (``rate``)."""

    name: str
    description: str
    rate: float
    when: Callable[[SeedContact], bool] | None = None


def _opted(channel: str, status: str) -> Callable[[SeedContact], bool]:
    return lambda contact: contact.preferences.get(channel) == status


LISTS = (
    ListSpec("Newsletter", "Monthly product newsletter.", 0.30, lambda c: c.email is not None),
    ListSpec("VIP customers", "Hand-picked top accounts.", 0.8, lambda c: "vip" in c.tags),
    ListSpec("Beta testers", "Early access programme.", 0.6, lambda c: "beta" in c.tags),
    ListSpec("Black Friday 2026", "Audience of the Black Friday campaign.", 0.12),
    ListSpec("Webinar: Messaging at scale", "Registered for the October webinar.", 0.04),
    ListSpec("Trade show Lisbon 2026", "Badge scans from the booth.", 0.02),
    ListSpec("Churn win-back", "Former customers to win back.", 0.5, lambda c: c.lifecycle_stage == "churned"),
    ListSpec("Onboarding", "Subscribers in the welcome sequence.", 0.3, lambda c: c.lifecycle_stage == "subscriber"),
    ListSpec("Product updates", "Release notes by email.", 0.2, lambda c: c.email is not None),
    ListSpec("İstanbul meetup", "Invited to the İstanbul customer meetup.", 0.3, lambda c: c.country == "TR"),
    ListSpec("Αθήνα pilot", "Pilot customers in Athens.", 0.4, lambda c: c.country == "GR"),
    ListSpec("Клиенты в Москве", "Customers in Moscow.", 0.3, lambda c: c.country == "RU"),
    ListSpec("東京ローンチ", "Tokyo launch audience.", 0.4, lambda c: c.country == "JP"),
    ListSpec("Enterprise accounts", "", 0.9, lambda c: c.metadata["plan"] == "enterprise"),
    ListSpec("Referral programme", "", 0.7, lambda c: c.metadata["signup_source"] == "referral"),
    ListSpec("SMS promotions", "Opted in to SMS offers.", 0.9, _opted("sms", "opted_in")),
    ListSpec("WhatsApp alerts", "Order alerts on WhatsApp.", 0.9, _opted("whatsapp", "opted_in")),
    ListSpec("Survey respondents", "Answered the 2026 satisfaction survey.", 0.03),
    ListSpec(
        "Opt-out review",
        "Opted out somewhere: check before any campaign.",
        0.5,
        lambda c: "opted_out" in c.preferences.values(),
    ),
    ListSpec("Partners", "", 0.9, lambda c: "partner" in c.tags),
)

DEFAULT_LISTS = len(LISTS)
DEFAULT_SEGMENTS = 10


def list_specs(count: int = DEFAULT_LISTS) -> tuple[ListSpec, ...]:
    """The first ``count`` demo lists: ``LISTS``, then past campaigns' audiences (1% to 5.5% of contacts)."""
    campaigns = tuple(
        ListSpec(f"Campaign audience {number:03d}", "Audience of a past campaign.", 0.01 + 0.005 * (number % 10))
        for number in range(len(LISTS) + 1, count + 1)
    )
    return (LISTS + campaigns)[:count]


# The list a segment below refers to (by id, filled in when it exists).
NEWSLETTER = "Newsletter"
EUROPE = ["DE", "FR", "ES", "IT", "GB", "IE", "NL", "NO", "PL", "PT", "GR"]


def _condition(field, operator, value=None) -> dict:
    return {"field": field, "operator": operator, "value": value}


def _group(match, *conditions) -> dict:
    return {"match": match, "conditions": list(conditions)}


def segment_specs(list_ids: dict[str, str], count: int = DEFAULT_SEGMENTS) -> list[tuple[str, dict]]:
    """The first ``count`` demo segments: ``(name, rules)``, exercising every kind of field and nesting.

    Twenty are written by hand (those naming a list only when ``list_ids``
    has it); beyond them come "<stage>s in <country>" variants.
    """
    specs = [spec for spec in _written_segments(list_ids) if spec is not None]
    variants = ((stage, country) for country in MOBILE_PREFIXES for stage in LIFECYCLE_STAGES.items)
    while len(specs) < count:
        stage, country = next(variants)
        rules = _group("all", _condition("lifecycle_stage", "eq", stage), _condition("country", "eq", country))
        specs.append((f"{stage.capitalize()}s in {country}", rules))
    return specs[:count]


def _written_segments(list_ids: dict[str, str]) -> list[tuple[str, dict] | None]:
    """The hand-written segments; ``None`` for one whose list the account does not have."""
    condition, group = _condition, _group
    newsletter = list_ids.get(NEWSLETTER)
    return [
        (
            "US customers",
            group("all", condition("country", "eq", "US"), condition("lifecycle_stage", "eq", "customer")),
        ),
        (
            "VIP or enterprise",
            group("any", condition("tags", "contains", "vip"), condition("metadata.plan", "eq", "enterprise")),
        ),
        ("Hot leads", group("all", condition("lifecycle_stage", "eq", "lead"), condition("metadata.score", "gte", 80))),
        ("Opted out of SMS", group("all", condition("preferences.sms", "eq", "opted_out"))),
        ("Signed up in the last 30 days", group("all", condition("created_at", "within_last", "30d"))),
        (
            "Newsletter readers still active",
            group(
                "all",
                condition("lists", "contains", newsletter),
                condition("lifecycle_stage", "not_in", ["churned"]),
            ),
        )
        if newsletter
        else None,
        (
            "Large teams in Europe",
            group("all", condition("metadata.seats", "gte", 50), condition("country", "in", EUROPE)),
        ),
        (
            "WhatsApp-reachable in Türkiye and Greece",
            group(
                "all",
                condition("country", "in", ["TR", "GR"]),
                condition("phone", "exists"),
                condition("preferences.whatsapp", "neq", "opted_out"),
            ),
        ),
        ("Email-only contacts", group("all", condition("phone", "not_exists"), condition("email", "exists"))),
        (
            "Paid plans from campaigns",
            group(
                "all",
                condition("metadata.plan", "in", ["pro", "enterprise"]),
                group(
                    "any",
                    condition("metadata.signup_source", "eq", "referral"),
                    condition("tags", "contains_any", ["black-friday", "webinar-2026"]),
                    group(
                        "all", condition("metadata.utm", "exists"), condition("created_at", "not_within_last", "365d")
                    ),
                ),
            ),
        ),
        # Beyond the default ten (``--segments``): more shapes a sender builds.
        (
            "Churned repeat buyers",
            group("all", condition("lifecycle_stage", "eq", "churned"), condition("metadata.orders", "gte", 5)),
        ),
        ("Example.org addresses", group("all", condition("email", "ends_with", "@example.org"))),
        ("First name starts with M", group("all", condition("first_name", "starts_with", "m"))),
        ("Untagged", group("all", condition("tags", "not_exists"))),
        (
            "Mobile beta and trial users",
            group(
                "all",
                condition("tags", "contains_any", ["beta", "trial"]),
                condition("tags", "contains_any", ["ios", "android"]),
            ),
        ),
        ("Viber opted in", group("all", condition("preferences.viber", "eq", "opted_in"))),
        ("Updated in the last 90 days", group("all", condition("updated_at", "within_last", "90d"))),
        (
            "Not on the newsletter",
            group("all", condition("email", "exists"), condition("lists", "not_contains", newsletter)),
        )
        if newsletter
        else None,
        ("High lifetime value", group("all", condition("metadata.ltv", "gt", 4000))),
        (
            "Enterprise decision makers outside Europe",
            group(
                "all",
                condition("metadata.plan", "eq", "enterprise"),
                condition("country", "not_in", EUROPE),
                group("any", condition("metadata.seats", "gte", 500), condition("tags", "contains", "b2b")),
            ),
        ),
    ]


def _unit(rng: random.Random, modulus: int) -> int:
    """A multiplier coprime to ``modulus`` (a power of ten): it ends in 1, 3, 7 or 9."""
    return rng.randrange(modulus // 10) * 10 + rng.choice((1, 3, 7, 9))


class _NumberPool:
    """Distinct valid mobile numbers under one national prefix, in a seeded scrambled order.

    Candidate ``i`` is a bijection of ``i`` over the free digits (an affine
    map, the digits reversed, another affine map), so candidates never repeat
    and nothing needs remembering to keep numbers unique. Candidates that
    libphonenumber rejects, or that belong to another region sharing the
    country code (+1), are skipped.
    """

    def __init__(self, rng: random.Random, region: str, prefix: str, length: int):
        self.region = region
        self.country_code = phonenumbers.country_code_for_region(region)
        self.digits = length - len(prefix)
        self.modulus = 10**self.digits
        self.base = int(prefix) * self.modulus
        self.first = (_unit(rng, self.modulus), rng.randrange(self.modulus))
        self.second = (_unit(rng, self.modulus), rng.randrange(self.modulus))
        self.index = 0

    def _candidate(self) -> int:
        if self.index >= self.modulus:
            raise RuntimeError(f"All numbers under {self.region} prefix {self.base // self.modulus} are used.")
        multiplier, offset = self.first
        value = (multiplier * self.index + offset) % self.modulus
        self.index += 1
        value = int(f"{value:0{self.digits}d}"[::-1])
        multiplier, offset = self.second
        return self.base + (multiplier * value + offset) % self.modulus

    def take(self, taken: set[str]) -> tuple[phonenumbers.PhoneNumber, str]:
        for _ in range(MAX_ATTEMPTS):
            number = phonenumbers.PhoneNumber(country_code=self.country_code, national_number=self._candidate())
            # Valid for the region itself: for +1 a plain is_valid_number would
            # also accept (and spend time finding) another NANP country.
            if phonenumbers.is_valid_number_for_region(number, self.region):
                # No prefix starts with 0, so E.164 is the plain concatenation.
                e164 = f"+{self.country_code}{number.national_number}"
                if e164 not in taken:
                    return number, e164
        raise RuntimeError(f"No valid number found under {self.region} prefix {self.base // self.modulus}.")


def _mobile_length(region: str) -> int:
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    return len(phonenumbers.national_significant_number(example))


class DemoData:
    """The seeded generator of contacts (pure Python, no database)."""

    def __init__(
        self,
        *,
        seed: int,
        count: int,
        anchor: datetime,
        taken_phones: set[str] | None = None,
        taken_emails: set[str] | None = None,
        lists: tuple[ListSpec, ...] = LISTS,
    ):
        self.rng = random.Random(seed)
        self.lists = lists
        self.count = count
        self.anchor = anchor
        self.taken_phones = taken_phones or set()
        self.taken_emails = taken_emails or set()
        self.pools = {
            region: [_NumberPool(self.rng, region, prefix, _mobile_length(region)) for prefix in prefixes]
            for region, prefixes in MOBILE_PREFIXES.items()
        }
        # Email numbers: a bijection of the contact's index onto [0, 10^d).
        self.email_modulus = 10 ** max(2, len(str(count)))
        self.email_map = (_unit(self.rng, self.email_modulus), self.rng.randrange(self.email_modulus))
        self.cultures = Weighted({culture: culture.weight for culture in CULTURES})

    def contacts(self) -> Iterator[SeedContact]:
        """``count`` contacts, oldest first (``created_at`` strictly increasing)."""
        step = HISTORY / max(self.count, 1)
        start = self.anchor - HISTORY
        for index in range(self.count):
            # Jitter below one step keeps the order strict, so "newest first" is the generation order reversed.
            created_at = start + step * (index + 0.9 * self.rng.random())
            yield self._contact(index, created_at)

    def _contact(self, index: int, created_at: datetime) -> SeedContact:
        rng = self.rng
        culture = self.cultures.pick(rng)
        first_name, first_ascii = rng.choice(culture.first_names)
        last_name, last_ascii = rng.choice(culture.last_names)
        # Expats: one in ten has a phone from another culture's country.
        region = rng.choice(culture.countries if rng.random() >= 0.1 else rng.choice(CULTURES).countries)
        kind = rng.random()
        has_phone, has_email = kind < 0.92, kind >= 0.12  # 80% both, 12% phone only, 8% email only
        phone = phone_e164 = email = None
        if has_phone:
            phone, phone_e164 = rng.choice(self.pools[region]).take(self.taken_phones)
            country = region
        else:
            country = region if rng.random() < 0.6 else None
        if has_email:
            email = self._email(index, first_ascii, last_ascii)
        stage = LIFECYCLE_STAGES.pick(rng)
        tags = rng.sample(TAGS, TAG_COUNTS.pick(rng))
        updated_at = created_at if rng.random() < 0.5 else created_at + (self.anchor - created_at) * rng.random()
        contact = SeedContact(
            phone=phone,
            phone_e164=phone_e164,
            email=email,
            first_name=first_name,
            last_name=last_name,
            country=country,
            lifecycle_stage=stage,
            tags=tags,
            metadata=self._metadata(),
            preferences=self._preferences(),
            created_at=created_at,
            updated_at=updated_at,
            memberships=[],
            events=[],
        )
        for position, spec in enumerate(self.lists):
            if (spec.when is None or spec.when(contact)) and rng.random() < spec.rate:
                contact.memberships.append((position, self._after(created_at)))
        if rng.random() < EVENTS_FRACTION:
            contact.events = self._events(created_at)
        return contact

    def _after(self, moment: datetime) -> datetime:
        """A moment between ``moment`` and the anchor."""
        return moment + (self.anchor - moment) * self.rng.random()

    def _email(self, index: int, first: str, last: str) -> str:
        rng = self.rng
        multiplier, offset = self.email_map
        # The number is unique per contact and the local part's letters end
        # where it starts, so two contacts never share an address.
        number = (multiplier * index + offset) % self.email_modulus
        local = (f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}", f"{last}.{first}", f"{first}{last}")[
            rng.randrange(5)
        ]
        domain = EMAIL_DOMAINS.pick(rng)
        email = f"{local}{number}@{domain}"
        while email in self.taken_emails:
            # Only when seeding an account that already has contacts.
            email = f"{local}{number}.{rng.randrange(10**6)}@{domain}"
        return email

    def _metadata(self) -> dict:
        rng = self.rng
        plan = PLANS.pick(rng)
        low, high = PLAN_SEATS[plan]
        metadata = {
            "plan": plan,
            "seats": rng.randint(low, high),
            "signup_source": SIGNUP_SOURCES.pick(rng),
            "score": rng.randint(0, 100),
        }
        if rng.random() < 0.35:
            metadata["company"] = rng.choice(COMPANIES)
        if rng.random() < 0.25:
            metadata["ltv"] = round(rng.uniform(0, 5000), 2)
        if rng.random() < 0.15:
            metadata["utm"] = {
                "source": rng.choice(UTM_SOURCES),
                "medium": rng.choice(("cpc", "email", "social")),
                "campaign": rng.choice(CAMPAIGNS),
            }
        if rng.random() < 0.1:
            metadata["languages"] = rng.sample(LANGUAGES, rng.randint(1, 3))
        if rng.random() < 0.2:
            metadata["newsletter"] = rng.random() < 0.7
        if rng.random() < 0.2:
            metadata["orders"] = rng.randint(1, 40)
        if rng.random() < 0.1:
            # A date, not a moment of the run's timeline: metadata stays the same for a seed.
            metadata["birthday"] = f"{rng.randint(1950, 2006)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        return metadata

    def _preferences(self) -> dict:
        """Most contacts never set a channel (stored as an absent key); some opted in or out of a few."""
        rng = self.rng
        if rng.random() >= PREFERENCES_FRACTION:
            return {}
        channels = rng.sample(CHANNELS, rng.randint(1, 3))
        return {channel: "opted_in" if rng.random() < OPT_IN_SHARE else "opted_out" for channel in channels}

    def _events(self, created_at: datetime) -> list[tuple]:
        """A few message flows (sent → delivered → opened → clicked), some replies and agent calls."""
        rng = self.rng
        events = []
        for _ in range(rng.choice((1, 1, 2, 3))):
            channel = MESSAGE_CHANNELS.pick(rng)
            message_id = f"msg_{rng.getrandbits(64):016x}"
            data = {"campaign": rng.choice(CAMPAIGNS)}
            moment = self._after(created_at)
            events.append(("message.sent", channel, moment, message_id, data))
            if rng.random() < 0.05:
                failed_at = min(moment + timedelta(seconds=rng.randint(1, 30)), self.anchor)
                events.append(("message.failed", channel, failed_at, message_id, {**data, "error": "unreachable"}))
                continue
            moment = min(moment + timedelta(seconds=rng.randint(1, 60)), self.anchor)
            events.append(("message.delivered", channel, moment, message_id, data))
            if channel != "sms" and rng.random() < 0.4:
                moment = min(moment + timedelta(minutes=rng.randint(1, 600)), self.anchor)
                events.append(("message.opened", channel, moment, message_id, data))
                if rng.random() < 0.3:
                    moment = min(moment + timedelta(seconds=rng.randint(5, 300)), self.anchor)
                    events.append(
                        ("message.clicked", channel, moment, message_id, {**data, "url": "https://example.com/offer"})
                    )
        if rng.random() < 0.2:
            channel = rng.choice(("sms", "whatsapp"))
            text = rng.choice(("STOP", "Yes please!", "Thanks 🙏", "Где мой заказ?", "¿Cuándo llega?", "Teşekkürler"))
            message_id = f"msg_{rng.getrandbits(64):016x}"
            events.append(("message.received", channel, self._after(created_at), message_id, {"text": text}))
        if rng.random() < 0.1:
            data = {
                "agent": rng.choice(("Ayşe", "Tom", "Мария", "Kenji")),
                "outcome": rng.choice(("resolved", "follow_up")),
            }
            events.append(("agent.interaction", rng.choice(("voice", "whatsapp")), self._after(created_at), None, data))
        return events


@dataclass(frozen=True)
class SeedSummary:
    contacts: int
    lists: int
    memberships: int
    segments: int
    events: int


_CONTACT_COLUMNS = (
    "id",
    "account_id",
    "phone",
    "email",
    "first_name",
    "last_name",
    "country",
    "lifecycle_stage",
    "tags",
    "metadata",
    "preferences",
    "search_vector",
    "phone_digits",
    "phone_national",
    "created_at",
    "updated_at",
)
_MEMBERSHIP_COLUMNS = ("account_id", "contact_list_id", "contact_id", "added_at")
_EVENT_COLUMNS = (
    "id",
    "account_id",
    "contact_id",
    "type",
    "channel",
    "occurred_at",
    "message_id",
    "data",
    "created_at",
)


ID_ALPHABET = string.ascii_letters + string.digits  # contacts_project.ids' alphabet
_ID_TABLE = bytes(ord(ID_ALPHABET[byte % len(ID_ALPHABET)]) for byte in range(256))
_ID_REJECTED = bytes(range(256 - 256 % len(ID_ALPHABET), 256))


class IdMinter:
    """Ids of ``contacts_project.ids.new_id``'s format and randomness, minted in bulk.

    ``new_id`` draws each of the 16 characters with ``secrets.choice`` (one
    ``os.urandom`` call each): about 30 µs an id, over a minute for a million
    contacts and their events. Here one ``os.urandom`` call serves a whole
    batch: a byte below 248 (4 * 62) maps to ``ID_ALPHABET[byte % 62]`` and the
    rest are dropped, so every character stays uniform over the alphabet.
    """

    def __init__(self, prefix: str):
        self.prefix = f"{prefix}_"
        self._pending = ""

    def take(self, count: int) -> list[str]:
        needed = count * RANDOM_LENGTH
        while len(self._pending) < needed:
            self._pending += os.urandom(needed + needed // 8 + 64).translate(_ID_TABLE, _ID_REJECTED).decode()
        chars, self._pending = self._pending[:needed], self._pending[needed:]
        return [self.prefix + chars[start : start + RANDOM_LENGTH] for start in range(0, needed, RANDOM_LENGTH)]


@dataclass
class _PreparedBatch:
    contacts: list[tuple]
    memberships: list[tuple]
    events: list[tuple]


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _prepare_batch(
    account_id: str, batch: list[SeedContact], list_ids: list[str], contact_ids: IdMinter, event_ids: IdMinter
) -> _PreparedBatch:
    """The COPY rows of one batch: contacts with their search columns, memberships, events."""
    prepared = _PreparedBatch([], [], [])
    ids = iter(contact_ids.take(len(batch)))
    new_event_ids = iter(event_ids.take(sum(len(contact.events) for contact in batch)))
    for contact in batch:
        contact_id = next(ids)
        columns = search_columns(
            account_id=account_id,
            phone=contact.phone,
            email=contact.email,
            first_name=contact.first_name,
            last_name=contact.last_name,
        )
        prepared.contacts.append(
            (
                contact_id,
                account_id,
                contact.phone_e164,
                contact.email,
                contact.first_name,
                contact.last_name,
                contact.country,
                contact.lifecycle_stage,
                contact.tags,
                _dumps(contact.metadata),
                _dumps(contact.preferences),
                columns["search_vector"],
                columns["phone_digits"],
                columns["phone_national"],
                contact.created_at,
                contact.updated_at,
            )
        )
        prepared.memberships.extend(
            (account_id, list_ids[position], contact_id, added_at) for position, added_at in contact.memberships
        )
        prepared.events.extend(
            (next(new_event_ids), account_id, contact_id, kind, channel, at, message_id, _dumps(data), at)
            for kind, channel, at, message_id, data in contact.events
        )
    return prepared


_DONE = object()


def prepared_ahead(batches: Iterator[list[SeedContact]], prepare: Callable) -> Iterator[_PreparedBatch]:
    """``prepare(batch)`` for each batch, computed one batch ahead in a thread.

    While PostgreSQL ingests one batch's COPY (the main thread then only waits
    on the socket, without the GIL), the next batch is generated and turned
    into rows. The thread never touches the database. Order, and so
    determinism, is kept: one producer, one FIFO queue.
    """
    ready: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def produce():
        try:
            for batch in batches:
                item = prepare(batch)
                while not stop.is_set():
                    try:
                        ready.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(_DONE)
        except BaseException as error:  # handed to the consumer, which re-raises it
            ready.put(error)

    producer = threading.Thread(target=produce, name="seed-demo-data", daemon=True)
    producer.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        producer.join()


def _copy(cursor, model, columns: tuple[str, ...], rows: list[tuple]) -> None:
    quote = connection.ops.quote_name
    statement = f"COPY {quote(model._meta.db_table)} ({', '.join(quote(column) for column in columns)}) FROM STDIN"
    with cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _load(prepared: _PreparedBatch) -> None:
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor: Django's debug wrapper hides copy()'s options
        _copy(raw, Contact, _CONTACT_COLUMNS, prepared.contacts)
        # One statement for the batch's memberships: the statement trigger adds
        # each list's new members to its member_count once.
        _copy(raw, ListMembership, _MEMBERSHIP_COLUMNS, prepared.memberships)
        _copy(raw, ActivityEvent, _EVENT_COLUMNS, prepared.events)


def _free_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name (2)``, ``name (3)``… when the account already uses it (case-insensitively)."""
    candidate, suffix = name, 2
    while candidate.lower() in taken:
        candidate, suffix = f"{name} ({suffix})", suffix + 1
    taken.add(candidate.lower())
    return candidate


def _create_lists(account: Account, specs: tuple[ListSpec, ...]) -> list[ContactList]:
    taken = {name.lower() for name in ContactList.objects.for_account(account).values_list("name", flat=True)}
    return [
        list_create(account=account, name=_free_name(spec.name, taken), description=spec.description) for spec in specs
    ]


def _create_segments(account: Account, list_ids: dict[str, str], count: int) -> list[Segment]:
    taken = {name.lower() for name in Segment.objects.for_account(account).values_list("name", flat=True)}
    segments = []
    for name, rules in segment_specs(list_ids, count):
        validate_rules(rules)
        segments.append(segment_create(account=account, name=_free_name(name, taken), rules=rules))
    return segments


def _taken_identifiers(account: Account) -> tuple[set[str], set[str]]:
    """Phones and emails the account already uses (empty sets for a new account, the usual case)."""
    contacts = Contact.objects.for_account(account)
    if not contacts.exists():
        return set(), set()
    phones = {str(phone) for phone in contacts.exclude(phone=None).values_list("phone", flat=True).iterator()}
    emails = set(contacts.exclude(email=None).values_list("email", flat=True).iterator())
    return phones, emails


def _batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def seed_demo_data(
    *,
    account: Account,
    contacts: int,
    seed: int,
    batch_size: int = BATCH_SIZE,
    lists: int = DEFAULT_LISTS,
    segments: int = DEFAULT_SEGMENTS,
    on_contacts: Callable[[int], None] | None = None,
) -> SeedSummary:
    """Add ``contacts`` generated contacts, ``lists`` lists with members, ``segments`` segments and activity.

    Each batch commits on its own, so an interrupted run keeps what it
    loaded; ``on_contacts(n)`` is called after each batch.
    """
    specs = list_specs(lists)
    with transaction.atomic():
        contact_lists = _create_lists(account, specs)
        created_segments = _create_segments(
            account, {spec.name: item.pk for spec, item in zip(specs, contact_lists, strict=True)}, segments
        )
    taken_phones, taken_emails = _taken_identifiers(account)
    generator = DemoData(
        seed=seed,
        count=contacts,
        anchor=timezone.now().replace(microsecond=0),
        taken_phones=taken_phones,
        taken_emails=taken_emails,
        lists=specs,
    )
    list_ids = [item.pk for item in contact_lists]
    contact_ids, event_ids = IdMinter("con"), IdMinter("act")
    memberships = events = 0
    prepared_batches = prepared_ahead(
        _batches(generator.contacts(), batch_size),
        lambda batch: _prepare_batch(account.pk, batch, list_ids, contact_ids, event_ids),
    )
    for prepared in prepared_batches:
        with transaction.atomic():
            _load(prepared)
        memberships += len(prepared.memberships)
        events += len(prepared.events)
        if on_contacts is not None:
            on_contacts(len(prepared.contacts))
    return SeedSummary(
        contacts=contacts,
        lists=len(contact_lists),
        memberships=memberships,
        segments=len(created_segments),
        events=events,
    )
