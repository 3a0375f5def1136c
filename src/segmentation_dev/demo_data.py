"""Deterministic, deliberately messy demo CRM data, streamed into crm_raw with COPY.

`load(accounts=3, contacts=20000, seed=7)` truncates the crm_raw tables and loads a fresh data set
in one transaction, so a failed load leaves the previous data in place.

Determinism: every random draw comes from a numpy Generator (or a `random.Random` seeded from
one) keyed by (seed, account, chunk of contacts, stream). The data therefore depends only on the
seed, the sizes and the anchor date, never on dict/set order or on how far a previous table got.
`_loaded_at` is left to its column default (the load time): source freshness checks read it.

Memory: rows are generated per chunk of CHUNK contacts and written to COPY as text blocks; only a
chunk's rows (plus one small array per account, e.g. campaign send times) are held at once.

Timing: every event timestamp lies in the ~3 years before the anchor date's midnight in the
account's own timezone, i.e. strictly before the anchor day starts there.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
from psycopg import sql

from segmentation import settings
from segmentation.errors import DemoDataError
from segmentation.language.gating import ENTITLED_PACKAGES, PACKAGES
from segmentation.warehouse import bootstrap, database

# Contacts per generation chunk. Part of the data's identity: changing it changes the data.
CHUNK = 5000
DAY = 86_400
HISTORY_DAYS = 1095
# A copy buffer is flushed to the server once it holds this many lines.
FLUSH_LINES = 20_000

TABLES = (
    "accounts",
    "users",
    "contacts",
    "companies",
    "contact_companies",
    "deals",
    "tickets",
    "conversations",
    "campaigns",
    "campaign_events",
    "orders",
)

# Numbers that name a random stream, so each table draws from its own generator.
_CORE, _USERS, _CONTACTS, _COMPANIES, _LINKS, _DEALS = 1, 2, 3, 4, 5, 6
_TICKETS, _CONVERSATIONS, _CAMPAIGNS, _EVENTS, _ORDERS = 7, 8, 9, 10, 11

# Planted cohorts, so that the example segments have members even in a 300-contact data set.
STALE_OPEN_DEAL, QUIET_90_DAYS, TICKET_BURST, LAPSED_REPEAT_BUYER = 1, 2, 3, 4
# Lomax(1.2) activity capped at 200, with 40% dormant contacts, has a mean of about 1.96.
_ACTIVITY_ALPHA, _ACTIVITY_CAP, _DORMANT, _ACTIVITY_MEAN = 1.2, 200.0, 0.4, 1.96
# Expected rows per contact of average activity.
_PER_CONTACT = {"deals": 0.35, "tickets": 0.5, "conversations": 2.5, "orders": 1.5}
_ORPHAN_RATE, _CROSS_RATE = 0.004, 0.003

_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _esc(value: str | None) -> str:
    """One field in COPY text format."""
    if value is None:
        return _NULL
    # isprintable() rejects tab, newline and carriage return; it is far cheaper than translate().
    if value.isprintable() and "\\" not in value:
        return value
    return value.translate(_COPY_ESCAPES)


def _variants(canonical: str) -> tuple[str, ...]:
    """The canonical spelling first, then the stray case and spacing a CRM's free text collects."""
    doubled = canonical.replace(" ", "  ") if " " in canonical else canonical + " "
    forms = (
        canonical,
        canonical.lower(),
        canonical.upper(),
        canonical.title(),
        " " + canonical,
        canonical.upper() + " ",
        "  " + canonical.lower(),
        doubled,
    )
    return tuple(_esc(f) for f in forms)


# Probability of each variant index of _variants(): mostly canonical.
_VARIANT_P = np.array([0.82, 0.04, 0.03, 0.02, 0.03, 0.02, 0.02, 0.02])


# --------------------------------------------------------------------------- vocabularies

ACCOUNT_SLUGS = (
    ("acme", "Acme Retail Indonesia"),
    ("globex", "Globex Fintech"),
    ("initech", "Initech Manufaktur"),
    ("umbrella", "Umbrella Apotek"),
    ("hooli", "Hooli Digital"),
    ("wonka", "Wonka Cokelat Nusantara"),
    ("stark", "Stark Elektronik"),
    ("wayne", "Wayne Properti"),
    ("tyrell", "Tyrell Otomotif"),
    ("soylent", "Soylent Pangan"),
    ("cyberdyne", "Cyberdyne Logistik"),
    ("vandelay", "Vandelay Impor"),
)

FIRST_NAMES_M = (
    "Budi", "Agus", "Andi", "Dimas", "Rizky", "Fajar", "Hendra", "Yusuf", "Wayan", "Made",
    "Ketut", "Bayu", "Eko", "Joko", "Arif", "Rudi", "Teguh", "Ahmad", "Muhammad", "Dedi",
    "Irfan", "Kevin", "Stefanus", "Yohanes", "José", "André", "Raphaël", "Ferdinand",
)  # fmt: skip
FIRST_NAMES_F = (
    "Siti", "Dewi", "Ayu", "Putri", "Rina", "Sri", "Wulan", "Indah", "Fitri", "Nur",
    "Ratna", "Maya", "Anisa", "Intan", "Citra", "Melati", "Kartika", "Novi", "Yuni", "Zoë",
    "Renée", "Chloé", "Ni Luh", "Ni Made", "Aisyah", "Mégane",
)  # fmt: skip
LAST_NAMES = (
    "Santoso", "Wijaya", "Saputra", "Hidayat", "Kusuma", "Pratama", "Susanto", "Gunawan",
    "Setiawan", "Nugroho", "Siregar", "Nasution", "Harahap", "Simanjuntak", "Lubis",
    "Panjaitan", "Hutapea", "Tanjung", "Halim", "Lim", "Tan", "Wibowo", "Purnomo", "Rahman",
    "Hakim", "Lestari", "Permata", "Sari", "Anggraini", "Müller", "Gonçalves", "Nguyễn",
    "Đặng", "Núñez", "Sørensen", "林", "陈", "O'Neil",
)  # fmt: skip
FIRST_NAMES = FIRST_NAMES_M + FIRST_NAMES_F

# city, province
CITIES = (
    ("Jakarta Selatan", "DKI Jakarta"),
    ("Jakarta Barat", "DKI Jakarta"),
    ("Jakarta Pusat", "DKI Jakarta"),
    ("Jakarta Timur", "DKI Jakarta"),
    ("Jakarta Utara", "DKI Jakarta"),
    ("Bandung", "Jawa Barat"),
    ("Bekasi", "Jawa Barat"),
    ("Depok", "Jawa Barat"),
    ("Bogor", "Jawa Barat"),
    ("Tangerang", "Banten"),
    ("Surabaya", "Jawa Timur"),
    ("Malang", "Jawa Timur"),
    ("Semarang", "Jawa Tengah"),
    ("Surakarta", "Jawa Tengah"),
    ("Yogyakarta", "DI Yogyakarta"),
    ("Medan", "Sumatera Utara"),
    ("Palembang", "Sumatera Selatan"),
    ("Pekanbaru", "Riau"),
    ("Padang", "Sumatera Barat"),
    ("Batam", "Kepulauan Riau"),
    ("Denpasar", "Bali"),
    ("Makassar", "Sulawesi Selatan"),
    ("Manado", "Sulawesi Utara"),
    ("Balikpapan", "Kalimantan Timur"),
    ("Pontianak", "Kalimantan Barat"),
    ("Banjarmasin", "Kalimantan Selatan"),
)
_CITY_P = np.array(
    [14, 8, 5, 7, 4, 9, 5, 4, 3, 6, 9, 3, 4, 2, 3, 5, 2, 1.5, 1.5, 2, 2.5, 3, 1, 1, 1, 1],
    dtype=float,
)
_CITY_P /= _CITY_P.sum()
LANDLINE_AREAS = ("021", "022", "031", "024", "061", "0361", "0411")
MOBILE_PREFIXES = ("811", "812", "813", "821", "822", "852", "853", "857", "858", "877", "878",
                   "881", "895", "896", "897")  # fmt: skip
PHONE_GARBAGE = ("n/a", "-", "0", "12345", "tidak ada", "N/A", "+62", "belum ada")
EMAIL_DOMAINS = ("gmail.com", "yahoo.co.id", "yahoo.com", "hotmail.com", "outlook.com",
                 "ymail.com", "icloud.com", "mail.com")  # fmt: skip
_DOMAIN_P = np.array([55, 12, 8, 6, 7, 4, 5, 3], dtype=float) / 100
EMAIL_GARBAGE = ("n/a", "-", "tidak punya email", "noemail@", "test@test")
GENDERS_M = ("M", "male", "Male", "L", "Laki-laki", "pria")
GENDERS_F = ("F", "female", "Female", "P", "Perempuan", "wanita")
JOB_TITLES = (
    "Owner", "Manager", "Staff", "Mahasiswa", "Ibu Rumah Tangga", "Wiraswasta",
    "Karyawan Swasta", "PNS", "Marketing Manager", "Purchasing", "Direktur", "Dokter",
    "Guru", "Software Engineer",
    # Untrusted data looks like this too: the pipeline must bind or quote it, never paste it.
    "Manager'; drop table crm_raw.contacts; --",
)  # fmt: skip
_JOB_P = np.array([10, 12, 14, 8, 8, 10, 12, 5, 4, 4, 4, 3, 3, 2.9, 0.1], dtype=float)
_JOB_P /= _JOB_P.sum()
LIFECYCLE_STAGES = ("Subscriber", "Lead", "Marketing Qualified Lead", "Sales Qualified Lead",
                    "Opportunity", "Customer", "Evangelist")  # fmt: skip
_LIFECYCLE_P = np.array([0.18, 0.30, 0.12, 0.07, 0.06, 0.24, 0.03])
LEAD_SOURCES = ("Organic Search", "Paid Social", "Referral", "WhatsApp Click to Chat",
                "Offline Event", "Instagram", "Website Form", "Import", "Marketplace")  # fmt: skip
TAGS = ("vip", "do_not_contact", "newsletter", "wholesale", "reseller", "churn_risk",
        "birthday_promo", "webinar_2024", "VIP", " newsletter")  # fmt: skip
_TAG_P = np.array([10, 5, 30, 8, 6, 8, 12, 8, 2, 2], dtype=float)
_TAG_P /= _TAG_P.sum()
STORES = ("Grand Indonesia", "Pakuwon Mall Surabaya", "Paris Van Java", "Online",
          "Pondok Indah Mall", "Sun Plaza Medan", "Beachwalk Bali")  # fmt: skip
SIGNUP_CHANNELS = ("instagram", "whatsapp", "website", "store", "Tokopedia", "shopee", "referral")
LOYALTY_TIERS = ("bronze", "silver", "gold", "platinum")
COMPANY_PREFIXES = ("PT", "PT.", "CV", "Toko", "UD", "Koperasi")
COMPANY_WORDS = ("Maju", "Jaya", "Abadi", "Sejahtera", "Makmur", "Sentosa", "Berkah", "Mandiri",
                 "Sinar", "Terang", "Karya", "Utama", "Nusantara", "Global", "Digital", "Niaga",
                 "Sumber", "Rezeki", "Bersama", "Indah", "Perkasa", "Cahaya", "Mulia")  # fmt: skip
INDUSTRIES = ("Retail", "Manufacturing", "Fintech", "F&B", "Logistics", "Healthcare",
              "Education", "Property", "E-commerce", "Hospitality", "Automotive",
              "Telecommunications")  # fmt: skip
TEAMS = ("Sales", "Support", "Marketing", "Customer Success")
DEAL_PIPELINES = ("Sales", "Renewal", "B2B")
OPEN_STAGES = ("Qualification", "Demo Scheduled", "Proposal Sent", "Negotiation")
TICKET_STATUSES = ("open", "pending", "resolved", "closed")
TICKET_PRIORITIES = ("low", "medium", "high", "urgent")
TICKET_CATEGORIES = ("billing", "delivery", "product", "account", "refund", "complaint")
TICKET_CHANNELS = ("whatsapp", "email", "livechat", "phone", "instagram")
CHANNELS = ("whatsapp", "email", "sms", "livechat", "instagram", "facebook")
_CHANNEL_P = np.array([0.55, 0.10, 0.05, 0.12, 0.12, 0.06])
CAMPAIGN_CHANNELS = ("whatsapp", "email", "sms")
CAMPAIGN_THEMES = ("Promo Ramadan", "Flash Sale", "Harbolnas", "Newsletter", "Welcome Series",
                   "Birthday Voucher", "Back in Stock", "Payday Sale", "Imlek Special",
                   "Year End Sale", "Webinar Invite", "Survei Kepuasan")  # fmt: skip
ORDER_STATUSES = ("completed", "refunded", "cancelled")
BOT_OR_SYSTEM = ("import", "api", "system", "zapier")

# The campaign the documentation's examples use; it lives in the first non-plus account.
EXAMPLE_CAMPAIGN_ID = "cmp_123"


# --------------------------------------------------------------------------- plan


@dataclasses.dataclass(frozen=True)
class Campaign:
    campaign_id: str
    name: str
    channel: str
    sent_off: int | None  # seconds before the account's anchor midnight; None = draft
    created_by: str
    audience: float  # extra share of eligible contacts that receive it


@dataclasses.dataclass(frozen=True)
class Account:
    index: int
    account_id: str
    name: str
    package: str
    timezone: str
    contacts: int
    users: int
    companies: int
    end: int  # epoch seconds of the anchor date's midnight in the account's timezone
    id_width: int
    campaigns: tuple[Campaign, ...]

    def contact_id(self, index: int) -> str:
        return f"{self.account_id}-c{index:0{self.id_width}d}"

    def user_id(self, index: int) -> str:
        return f"{self.account_id}-u{index:03d}"

    def company_id(self, index: int) -> str:
        return f"{self.account_id}-co{index:0{self.id_width}d}"

    def chunks(self) -> range:
        return range((self.contacts + CHUNK - 1) // CHUNK)


@dataclasses.dataclass(frozen=True)
class Plan:
    seed: int
    anchor: dt.date
    accounts: tuple[Account, ...]


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, *key])


def _split(total: int, parts: int) -> list[int]:
    """Contacts per account: decreasing sizes, summing exactly to total (largest remainder)."""
    weights = np.array([1 / (i + 1) ** 0.6 for i in range(parts)])
    exact = total * weights / weights.sum()
    sizes = np.floor(exact).astype(int)
    order = np.argsort(-(exact - sizes), kind="stable")
    sizes[order[: total - sizes.sum()]] += 1
    return [int(s) for s in sizes]


def _account_identity(index: int) -> tuple[str, str]:
    if index < len(ACCOUNT_SLUGS):
        return ACCOUNT_SLUGS[index]
    return f"acct{index:03d}", f"Demo Account {index:03d}"


def _packages(count: int) -> list[str]:
    # A lone account gets ultimate, so the non-plus example campaign still exists.
    return [ENTITLED_PACKAGES[0]] if count == 1 else [PACKAGES[i % 3] for i in range(count)]


def _timezones(count: int) -> list[str]:
    zones = [settings.DEFAULT_TIMEZONE] * count
    if count >= 2:
        zones[min(2, count - 1)] = "Asia/Makassar"
    return zones


def _campaigns(seed: int, index: int, account_id: str, users: int, base: int, contacts: int,
               example: bool) -> tuple[Campaign, ...]:  # fmt: skip
    rng = _rng(seed, index, 0, _CAMPAIGNS)
    count = max(24, min(120, contacts // 1000))
    sent_days = rng.uniform(1, HISTORY_DAYS, count)
    draft = rng.random(count) < 0.05
    draft[-1] = True  # every account has a draft (sent_at NULL)
    channel = rng.choice(3, count, p=[0.6, 0.3, 0.1])
    theme = rng.integers(0, len(CAMPAIGN_THEMES), count)
    creator = rng.integers(0, users, count)
    audience = rng.uniform(0.0, 0.02, count)
    out = []
    for j in range(count):
        number = base + j
        sent_off = None if draft[j] else int(sent_days[j] * DAY)
        chan = CAMPAIGN_CHANNELS[channel[j]]
        share = float(audience[j])
        if example and number == 123:
            sent_off, chan, share = 20 * DAY + 3 * 3600, "whatsapp", 0.5
        when = "draft" if sent_off is None else f"#{j + 1}"
        out.append(
            Campaign(
                campaign_id=f"cmp_{number}",
                name=f"{CAMPAIGN_THEMES[theme[j]]} {when}",
                channel=chan,
                sent_off=sent_off,
                created_by=f"{account_id}-u{int(creator[j]):03d}",
                audience=share,
            )
        )
    return tuple(out)


def make_plan(accounts: int, contacts: int, seed: int, anchor: dt.date | None = None) -> Plan:
    if accounts < 1 or accounts > 999:
        raise DemoDataError(f"--accounts must be between 1 and 999, not {accounts}")
    if contacts < accounts:
        raise DemoDataError(
            f"--contacts ({contacts}) must be at least --accounts ({accounts}): "
            "every account needs a contact"
        )
    if seed < 0:
        raise DemoDataError(f"--seed must be zero or positive, not {seed}")
    if anchor is None:
        anchor = dt.datetime.now(ZoneInfo(settings.DEFAULT_TIMEZONE)).date()
    packages, zones = _packages(accounts), _timezones(accounts)
    first_non_plus = next(i for i, p in enumerate(packages) if p != "plus")
    built = []
    for i, size in enumerate(_split(contacts, accounts)):
        account_id, name = _account_identity(i)
        users = max(3, min(60, size // 500))
        midnight = dt.datetime.combine(anchor, dt.time(), ZoneInfo(zones[i]))
        # Campaign ids are 'cmp_<n>' (not account-prefixed); blocks of 1000 keep them unique.
        base = 100 if i == first_non_plus else 1000 * (i + 1) + 100
        built.append(
            Account(
                index=i,
                account_id=account_id,
                name=name,
                package=packages[i],
                timezone=zones[i],
                contacts=size,
                users=users,
                companies=max(3, size // 12),
                end=int(midnight.timestamp()),
                id_width=max(6, len(str(2 * size))),
                campaigns=_campaigns(seed, i, account_id, users, base, size, i == first_non_plus),
            )
        )
    return Plan(seed=seed, anchor=anchor, accounts=tuple(built))


# --------------------------------------------------------------------------- contact core


@dataclasses.dataclass
class Core:
    """What every table needs to know about one chunk of an account's contacts."""

    start: int
    activity: np.ndarray  # relative activity level; mean over contacts about 1
    created: np.ndarray  # seconds before the account's anchor midnight
    recent: np.ndarray  # seconds before anchor midnight of the contact's latest activity
    deleted: np.ndarray  # bool
    scenario: np.ndarray  # 0 or one of the planted cohorts
    company: np.ndarray  # primary company index, or -1

    def __len__(self) -> int:
        return len(self.activity)


def _core(plan: Plan, acct: Account, chunk: int) -> Core:
    rng = _rng(plan.seed, acct.index, chunk, _CORE)
    start = chunk * CHUNK
    n = min(CHUNK, acct.contacts - start)
    activity = np.minimum(rng.pareto(_ACTIVITY_ALPHA, n), _ACTIVITY_CAP)
    activity[rng.random(n) < _DORMANT] = 0.0
    activity /= _ACTIVITY_MEAN
    created_days = 1 + (HISTORY_DAYS - 1) * rng.random(n) ** 0.8
    recent_days = np.minimum(created_days * 0.95, rng.exponential(120, n) / (1 + activity))
    deleted = rng.random(n) < 0.02
    scenario = rng.choice(5, n, p=[0.92, 0.02, 0.02, 0.02, 0.02])
    company = np.where(rng.random(n) < 0.35, rng.integers(0, acct.companies, n), -1)
    # Fixed positions so every account of any size has each case.
    for position, cohort in ((1, 1), (2, 2), (3, 3), (4, 4)):
        if start <= position < start + n:
            scenario[position - start] = cohort
    if start <= 5 < start + n:
        scenario[5 - start] = 0
        deleted[5 - start] = True
        activity[5 - start] = max(activity[5 - start], 5.0)
    planted = scenario > 0
    deleted[planted] = False
    created_days = np.where(
        planted, np.maximum(created_days, 200 + created_days % 300), created_days
    )
    offset = rng.integers(0, DAY, n)
    return Core(
        start=start,
        activity=activity,
        created=(created_days * DAY).astype(np.int64) + offset,
        recent=(recent_days * DAY).astype(np.int64),
        deleted=deleted,
        scenario=scenario,
        company=company,
    )


# --------------------------------------------------------------------------- formatting


def _ts(end: int, offsets: np.ndarray) -> list[str]:
    """timestamptz text for offsets (seconds before `end`), in UTC."""
    # At least one second before midnight: the anchor day itself has not happened yet.
    stamps = (end - np.maximum(offsets.astype(np.int64), 1)).astype("datetime64[s]")
    return [s + "+00" for s in np.datetime_as_string(stamps, unit="s").tolist()]


def _midway(end: int, newer: int, older: int) -> str:
    """A timestamp strictly between two offsets (an older version's updated_at)."""
    return _ts(end, np.array([(int(newer) + int(older)) // 2 + 1]))[0]


def _dates(days_since_epoch: np.ndarray) -> list[str]:
    return np.datetime_as_string(days_since_epoch.astype("datetime64[D]")).tolist()


def _nullable(values: list[str], null: np.ndarray) -> list[str]:
    return [_NULL if n else v for v, n in zip(values, null.tolist(), strict=True)]


def _pick(rng: np.random.Generator, options: Sequence[str], n: int, p=None) -> list[str]:
    escaped = [_esc(o) for o in options]
    return [escaped[i] for i in rng.choice(len(options), n, p=p).tolist()]


def _pick_messy(rng: np.random.Generator, options: Sequence[str], n: int, p=None) -> list[str]:
    forms = [_variants(o) for o in options]
    which = rng.choice(len(options), n, p=p).tolist()
    variant = rng.choice(len(_VARIANT_P), n, p=_VARIANT_P).tolist()
    return [forms[w][v] for w, v in zip(which, variant, strict=True)]


def _amounts(values: np.ndarray, step: int) -> list[str]:
    return [str(v) for v in (np.round(values / step).astype(np.int64) * step).tolist()]


def _ascii_slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "".join(ch for ch in plain if ch.isalnum())


_FIRST_SLUGS = [_ascii_slug(n) for n in FIRST_NAMES]
_LAST_SLUGS = [_ascii_slug(n) for n in LAST_NAMES]


def _mixed_case_email(local: str, domain: str) -> str:
    """'budi.santoso', 'gmail.com' -> 'Budi.Santoso@Gmail.COM'."""
    head, _, tld = domain.partition(".")
    return (
        ".".join(p.capitalize() for p in local.split("."))
        + "@"
        + head.capitalize()
        + "."
        + (tld.upper())
    )


def _phone(kind: int, number: str, area: str, landline: str) -> str | None:
    if kind == 0:
        return "0" + number
    if kind == 1:
        return f"0{number[:3]}-{number[3:7]}-{number[7:]}"
    if kind == 2:
        return f"+62 {number[:3]} {number[3:7]} {number[7:]}"
    if kind == 3:
        return "62" + number
    if kind == 4:
        return "+62" + number
    if kind == 5:
        return f"{number[:3]} {number[3:7]} {number[7:]}"
    if kind == 6:
        return f"({area}) {landline[:3]}-{landline[3:]}"
    return None


_PHONE_P = np.array([0.30, 0.15, 0.12, 0.08, 0.10, 0.05, 0.05, 0.03, 0.12])
_EMAIL_P = np.array([0.68, 0.10, 0.06, 0.08, 0.02, 0.02, 0.04])  # see _contacts_chunk


# --------------------------------------------------------------------------- tables


def _accounts_rows(plan: Plan) -> Iterator[list[str]]:
    yield [
        "\t".join(_esc(v) for v in (a.account_id, a.name, a.package, a.timezone))
        for a in plan.accounts
    ]


def _users_rows(plan: Plan) -> Iterator[list[str]]:
    for acct in plan.accounts:
        rng = _rng(plan.seed, acct.index, 0, _USERS)
        n = acct.users
        first = rng.integers(0, len(FIRST_NAMES), n).tolist()
        last = rng.integers(0, len(LAST_NAMES), n).tolist()
        team = _pick(rng, TEAMS, n)
        lines = []
        for j in range(n):
            email = f"{_FIRST_SLUGS[first[j]]}.{_LAST_SLUGS[last[j]]}@{acct.account_id}.co.id"
            name = f"{FIRST_NAMES[first[j]]} {LAST_NAMES[last[j]]}"
            lines.append(
                "\t".join((_esc(acct.user_id(j)), acct.account_id, _esc(name), email, team[j]))
            )
        yield lines


def _contacts_chunk(plan: Plan, acct: Account, chunk: int) -> list[str]:
    core = _core(plan, acct, chunk)
    rng = _rng(plan.seed, acct.index, chunk, _CONTACTS)
    n = len(core)
    aid = acct.account_id
    first = rng.integers(0, len(FIRST_NAMES), n).tolist()
    last = rng.integers(0, len(LAST_NAMES), n).tolist()
    name_style = rng.choice(6, n, p=[0.84, 0.04, 0.04, 0.05, 0.02, 0.01]).tolist()
    email_kind = rng.choice(7, n, p=_EMAIL_P).tolist()
    email_form = rng.integers(0, 4, n).tolist()
    email_digits = rng.integers(1, 999, n).tolist()
    domain = rng.choice(len(EMAIL_DOMAINS), n, p=_DOMAIN_P).tolist()
    garbage = rng.integers(0, 64, n).tolist()
    phone_kind = rng.choice(len(_PHONE_P), n, p=_PHONE_P).tolist()
    prefix = rng.integers(0, len(MOBILE_PREFIXES), n).tolist()
    mobile = rng.integers(10_000_000, 100_000_000, n).tolist()
    area = rng.integers(0, len(LANDLINE_AREAS), n).tolist()
    landline = rng.integers(1_000_000, 10_000_000, n).tolist()
    gender_kind = rng.choice(len(GENDERS_M) + 2, n, p=[0.3, 0.1, 0.1, 0.1, 0.05, 0.05, 0.2, 0.1])
    gender_kind = gender_kind.tolist()
    # Birth dates: ages 17..70; a few 29 Februarys and the 1900-01-01 placeholder.
    anchor_day = (plan.anchor - dt.date(1970, 1, 1)).days
    dob = _dates(anchor_day - rng.integers(17 * 365, 70 * 365, n))
    dob_kind = rng.choice(4, n, p=[0.675, 0.30, 0.015, 0.01]).tolist()
    leap_year = rng.choice(np.arange(1960, 2005, 4), n).tolist()
    job = _nullable(_pick(rng, JOB_TITLES, n, _JOB_P), rng.random(n) < 0.4)
    if chunk == 0 and n > 7:
        job[7] = _esc(JOB_TITLES[-1])  # every account carries the hostile-looking value
    city_idx = rng.choice(len(CITIES), n, p=_CITY_P)
    city_forms = [_variants(c) for c, _ in CITIES]
    province_forms = [_variants(p) for _, p in CITIES]
    city_var = rng.choice(len(_VARIANT_P), n, p=_VARIANT_P).tolist()
    city_null = (rng.random(n) < 0.12).tolist()
    province_null = (rng.random(n) < 0.4).tolist()
    country = _pick(rng, ("Indonesia", "ID", " indonesia", "INDONESIA", "Singapore"), n,
                    p=[0.88, 0.04, 0.03, 0.03, 0.02])  # fmt: skip
    country = _nullable(country, rng.random(n) < 0.1)
    stage = _nullable(_pick_messy(rng, LIFECYCLE_STAGES, n, _LIFECYCLE_P), rng.random(n) < 0.05)
    source = _nullable(_pick_messy(rng, LEAD_SOURCES, n), rng.random(n) < 0.2)
    owner = rng.integers(0, acct.users, n).tolist()
    owner_kind = rng.choice(3, n, p=[0.84, 0.15, 0.01]).tolist()
    tag_count = rng.choice(5, n, p=[0.3, 0.1, 0.35, 0.17, 0.08]).tolist()  # 0 NULL, 1 '{}'
    tag_pick = rng.choice(len(TAGS), (n, 3), p=_TAG_P).tolist()
    cf_kind = rng.choice(3, n, p=[0.75, 0.2, 0.05]).tolist()  # fields, NULL, {}
    vip_level = rng.integers(0, 6, n).tolist()
    vip_as_text = (rng.random(n) < 0.05).tolist()
    store = rng.integers(-1, len(STORES), n).tolist()
    signup = rng.integers(-1, len(SIGNUP_CHANNELS), n).tolist()
    consent = rng.choice(3, (n, 3), p=[0.55, 0.25, 0.2]).tolist()
    points = np.minimum(np.floor(rng.pareto(1.3, n) * 400), 10_000_000).astype(np.int64)
    tier_null = (rng.random(n) < 0.3).tolist()
    tier_var = rng.choice(len(_VARIANT_P), n, p=_VARIANT_P).tolist()
    tier = np.searchsorted([1000, 5000, 20000], points, side="right").tolist()
    points = points.tolist()
    tier_forms = [_variants(t) for t in LOYALTY_TIERS]
    created = core.created
    updated = (created * rng.random(n) ** 2).astype(np.int64)
    updated = np.clip(updated, 1, created - 60)
    deleted_off = np.maximum((updated * rng.random(n)).astype(np.int64), 1)
    consent_off = (created * rng.random(n)).astype(np.int64)
    created_s = _ts(acct.end, created)
    updated_s = _ts(acct.end, updated)
    deleted_s = _ts(acct.end, deleted_off)
    consent_s = _ts(acct.end, consent_off)
    by_kind = rng.choice(3, (n, 2), p=[0.6, 0.3, 0.1]).tolist()  # user, bot/system, NULL
    by_user = rng.integers(0, acct.users, (n, 2)).tolist()
    by_bot = rng.integers(0, len(BOT_OR_SYSTEM), (n, 2)).tolist()
    dup = (rng.random(n) < 0.03).tolist()
    dup_extra = (rng.random(n) < 0.2).tolist()
    dup_after = (rng.random(n) < 0.5).tolist()
    dup_change = rng.integers(0, 4, n).tolist()
    dup_when = rng.random(n).tolist()
    deleted = core.deleted.tolist()
    scenario = core.scenario.tolist()
    if chunk == 0:
        dup[0] = True  # every account has a duplicated contact
        if n > 5:
            dup[5] = True  # ... and a deleted one whose older version is not deleted

    user_ids = [acct.user_id(u) for u in range(acct.users)]
    lines: list[str] = []
    for j in range(n):
        f, la = first[j], last[j]
        style = name_style[j]
        if style == 3:
            name: str | None = FIRST_NAMES[f]
        elif style == 5:
            name = None
        else:
            name = f"{FIRST_NAMES[f]} {LAST_NAMES[la]}"
            if style == 1:
                name = name.upper()
            elif style == 2:
                name = "  " + name.lower().replace(" ", "  ")
            elif style == 4:
                name += " 🌸"
        fs, ls = _FIRST_SLUGS[f], _LAST_SLUGS[la]
        local = (
            f"{fs}.{ls}",
            f"{fs}{ls}{email_digits[j]}",
            f"{fs}_{ls}",
            f"{fs}{email_digits[j]}",
        )[email_form[j]].strip("._") or f"user{email_digits[j]}"
        dom = EMAIL_DOMAINS[domain[j]]
        kind = email_kind[j]
        if kind == 0:
            email: str | None = f"{local}@{dom}"
        elif kind == 1:
            email = _mixed_case_email(local, dom)
        elif kind == 2:
            email = " " + _mixed_case_email(local, dom) + " "
        elif kind == 3:
            email = None
        elif kind == 4:
            email = ""
        elif kind == 5:
            email = EMAIL_GARBAGE[garbage[j] % len(EMAIL_GARBAGE)]
        else:
            email = f"{local}@{dom.partition('.')[0]}"  # missing TLD
        pk = phone_kind[j]
        number = MOBILE_PREFIXES[prefix[j]] + str(mobile[j])
        if pk == 7:
            phone = PHONE_GARBAGE[garbage[j] % len(PHONE_GARBAGE)]
        else:
            phone = _phone(pk, number, LANDLINE_AREAS[area[j]], str(landline[j]))
        gk = gender_kind[j]
        male = f < len(FIRST_NAMES_M)
        if gk < len(GENDERS_M):
            gender = (GENDERS_M if male else GENDERS_F)[gk]
        elif gk == len(GENDERS_M):
            gender = None
        else:
            gender = "unknown"
        dk = dob_kind[j]
        birth = (dob[j], _NULL, f"{leap_year[j]}-02-29", "1900-01-01")[dk]
        ci = city_idx[j]
        city = _NULL if city_null[j] else city_forms[ci][city_var[j]]
        province = _NULL if province_null[j] else province_forms[ci][city_var[j] % 2]
        ok = owner_kind[j]
        owner_id = (
            user_ids[owner[j]] if ok == 0 else _NULL if ok == 1 else acct.user_id(900 + owner[j])
        )
        tc = tag_count[j]
        if tc == 0:
            tags = _NULL
        elif tc == 1:
            tags = "{}"
        else:
            tags = "{" + ",".join(f'"{TAGS[t]}"' for t in tag_pick[j][: tc - 1]) + "}"
        ck = cf_kind[j]
        if ck == 1:
            custom = _NULL
        elif ck == 2:
            custom = "{}"
        else:
            fields: dict[str, object] = {
                "vip_level": str(vip_level[j]) if vip_as_text[j] else vip_level[j]
            }
            if store[j] >= 0:
                fields["preferred_store"] = STORES[store[j]]
            if signup[j] >= 0:
                fields["signup_channel"] = SIGNUP_CHANNELS[signup[j]]
            else:
                fields["signup_channel"] = None
            custom = _esc(json.dumps(fields, ensure_ascii=False))
        cons = [("t", "f", _NULL)[c] for c in consent[j]]
        consent_at = _NULL if cons == [_NULL] * 3 else consent_s[j]
        if tier_null[j]:
            tier_s, points_s = _NULL, _NULL
        else:
            tier_s, points_s = tier_forms[tier[j]][tier_var[j]], str(points[j])
        who = []
        for k in range(2):
            bk = by_kind[j][k]
            who.append(
                user_ids[by_user[j][k]]
                if bk == 0
                else BOT_OR_SYSTEM[by_bot[j][k]]
                if bk == 1
                else _NULL
            )
        row = [
            acct.contact_id(core.start + j),
            aid,
            _esc(name),
            _esc(email),
            _esc(phone),
            _esc(gender),
            birth,
            job[j],
            city,
            province,
            country[j],
            stage[j],
            source[j],
            owner_id,
            _esc(tags) if tags != _NULL else tags,
            custom,
            *cons,
            consent_at,
            tier_s,
            points_s,
            created_s[j],
            who[0],
            updated_s[j],
            who[1],
            deleted_s[j] if deleted[j] else _NULL,
        ]
        if chunk == 0 and j == 8:
            # A bare contact: every optional column NULL, as a minimal import leaves it.
            row = [row[0], aid, *[_NULL] * 20, row[22], _NULL, row[24], _NULL, _NULL]
        current = "\t".join(row)
        if not dup[j] or scenario[j] or (chunk == 0 and j == 8):
            lines.append(current)
            continue
        # Older versions: an earlier updated_at, never deleted, and one field that changed since.
        versions = []
        # Two distinct steps back, both still after created_at (span >= 60 seconds).
        span = int(created[j] - updated[j])
        first_back = 2 + int((span - 3) * (0.5 + 0.5 * dup_when[j]))
        for extra in range(2 if dup_extra[j] else 1):
            old = list(row)
            back = first_back if extra == 0 else 1 + (first_back - 2) // 2
            old[24] = _ts(acct.end, np.array([int(updated[j]) + back]))[0]
            old[26] = _NULL
            change = (dup_change[j] + extra) % 4
            if change == 0:
                old[3] = _esc(f"{local}.old@{dom}")
            elif change == 1:
                old[4] = _esc("0" + MOBILE_PREFIXES[(prefix[j] + 1) % len(MOBILE_PREFIXES)]
                              + str(mobile[j])[::-1])  # fmt: skip
            elif change == 2:
                old[11] = "Subscriber" if stage[j] == "Lead" else "Lead"
            else:
                old[8] = city_forms[(ci + 1) % len(CITIES)][0]
            versions.append("\t".join(old))
        lines.extend([*versions, current] if dup_after[j] else [current, *versions])
    return lines


def _companies_rows(plan: Plan) -> Iterator[list[str]]:
    industry_forms = [_variants(i) for i in INDUSTRIES]
    for acct in plan.accounts:
        for chunk in range((acct.companies + CHUNK - 1) // CHUNK):
            rng = _rng(plan.seed, acct.index, chunk, _COMPANIES)
            start = chunk * CHUNK
            n = min(CHUNK, acct.companies - start)
            prefix = rng.integers(0, len(COMPANY_PREFIXES), n).tolist()
            words = rng.integers(0, len(COMPANY_WORDS), (n, 2)).tolist()
            industry = rng.integers(0, len(INDUSTRIES), n).tolist()
            ind_var = rng.choice(len(_VARIANT_P), n, p=_VARIANT_P).tolist()
            ind_null = (rng.random(n) < 0.1).tolist()
            staff = np.minimum(1 + np.floor(rng.pareto(1.1, n) * 8), 250_000).astype(np.int64)
            employees = _nullable(
                [str(v) for v in staff.tolist()],
                rng.random(n) < 0.2,
            )
            revenue = _nullable(
                _amounts(rng.lognormal(np.log(2e9), 1.5, n), 1_000_000), rng.random(n) < 0.4
            )
            city = _pick_messy(rng, [c for c, _ in CITIES], n, _CITY_P)
            city = _nullable(city, rng.random(n) < 0.15)
            created = (rng.uniform(30, HISTORY_DAYS, n) * DAY).astype(np.int64)
            updated = (created * rng.random(n)).astype(np.int64)
            created_s, updated_s = _ts(acct.end, created), _ts(acct.end, updated)
            dup = (rng.random(n) < 0.02).tolist()
            dup[0] = dup[0] or chunk == 0  # every account has a duplicated company
            lines = []
            for j in range(n):
                name = f"{COMPANY_PREFIXES[prefix[j]]} {COMPANY_WORDS[words[j][0]]}"
                name += f" {COMPANY_WORDS[words[j][1]]}"
                row = [
                    acct.company_id(start + j),
                    acct.account_id,
                    _esc(name),
                    _NULL if ind_null[j] else industry_forms[industry[j]][ind_var[j]],
                    employees[j],
                    revenue[j],
                    city[j],
                    "Indonesia",
                    created_s[j],
                    updated_s[j],
                ]
                lines.append("\t".join(row))
                if dup[j]:
                    old = list(row)
                    old[2] = _esc(name.upper())
                    old[9] = _midway(acct.end, updated[j], created[j])
                    lines.append("\t".join(old))
            yield lines


def _contact_companies_rows(plan: Plan) -> Iterator[list[str]]:
    for acct in plan.accounts:
        for chunk in acct.chunks():
            core = _core(plan, acct, chunk)
            rng = _rng(plan.seed, acct.index, chunk, _LINKS)
            n = len(core)
            extra = rng.choice(3, n, p=[0.75, 0.18, 0.07]).tolist()
            other = rng.integers(1, max(2, acct.companies), (n, 2)).tolist()
            flag_null = (rng.random((n, 2)) < 0.2).tolist()
            company = core.company.tolist()
            lines = []
            for j in range(n):
                if company[j] < 0:
                    continue
                cid = acct.contact_id(core.start + j)
                lines.append(f"{acct.account_id}\t{cid}\t{acct.company_id(company[j])}\tt")
                seen = {company[j]}
                for k in range(extra[j]):
                    co = (company[j] + other[j][k]) % acct.companies
                    if co in seen:
                        continue
                    seen.add(co)
                    flag = _NULL if flag_null[j][k] else "f"
                    lines.append(f"{acct.account_id}\t{cid}\t{acct.company_id(co)}\t{flag}")
            yield lines


@dataclasses.dataclass
class _Activity:
    """Rows of one activity table for one chunk: who they belong to and when they happened."""

    owner: np.ndarray  # chunk-local contact index
    offset: np.ndarray  # seconds before anchor midnight
    contact_ids: list[str]


def _activity(
    plan: Plan,
    acct: Account,
    core: Core,
    rng: np.random.Generator,
    per_contact: float,
    chunk: int,
    suppress: int = 0,
    planted: Callable[[np.random.Generator, int, Core], tuple[np.ndarray, np.ndarray]]
    | None = None,
) -> _Activity:
    """Power-law row counts per contact, timed between creation and latest activity.

    Contacts of cohort `suppress` get no random rows; `planted` adds the cohort's fixed rows.
    Some rows then point at a contact that does not exist, or at another account's contact.
    """
    lam = per_contact * core.activity
    if suppress:
        lam = np.where(core.scenario == suppress, 0.0, lam)
    counts = rng.poisson(lam)
    owner = np.repeat(np.arange(len(core)), counts)
    u = rng.random(len(owner)) ** 1.7
    recent, created = core.recent[owner], core.created[owner]
    offset = (recent + (created - recent) * u).astype(np.int64) + 1
    if planted is not None:
        extra_owner, extra_offset = planted(rng, len(core), core)
        owner = np.concatenate([owner, extra_owner])
        offset = np.concatenate([offset, extra_offset])
        order = np.argsort(owner, kind="stable")
        owner, offset = owner[order], offset[order]
    mess = rng.random(len(owner))
    if chunk == 0:  # one of each kind in every account, appended so no cohort row is lost
        owner = np.concatenate([owner, [0, 0]])
        offset = np.concatenate([offset, core.created[[0, 0]] // 2 + 1])
        mess = np.concatenate([mess, [0.0, _ORPHAN_RATE]])
    others = [a for a in plan.accounts if a.index != acct.index]
    target = rng.integers(0, 1 << 62, len(owner)).tolist()
    contact_ids = []
    for m, o, t in zip(mess.tolist(), owner.tolist(), target, strict=True):
        if m < _ORPHAN_RATE:
            # An ID shaped like a real one, beyond the last contact: hard-deleted upstream.
            contact_ids.append(acct.contact_id(acct.contacts + t % max(1, acct.contacts)))
        elif m < _ORPHAN_RATE + _CROSS_RATE and others:
            other = others[t % len(others)]
            contact_ids.append(other.contact_id((t >> 20) % other.contacts))
        else:
            contact_ids.append(acct.contact_id(core.start + o))
    return _Activity(owner=owner, offset=offset, contact_ids=contact_ids)


def _cohort(cohort: int, low: int, high: int, per: tuple[int, int]):
    """Rows for one planted cohort: `per` rows each, `low`..`high` days before the anchor."""

    def planted(rng: np.random.Generator, n: int, core: Core) -> tuple[np.ndarray, np.ndarray]:
        members = np.flatnonzero(core.scenario == cohort)
        counts = rng.integers(per[0], per[1] + 1, len(members))
        owner = np.repeat(members, counts)
        offset = (rng.uniform(low, high, len(owner)) * DAY).astype(np.int64)
        return owner, offset

    return planted


# build(account, core, rng, chunk, first_number) -> (lines, next_number)
_ChunkBuilder = Callable[[Account, Core, np.random.Generator, int, int], tuple[list[str], int]]


def _per_chunk(plan: Plan, stream: int, build: _ChunkBuilder) -> Iterator[list[str]]:
    """Run `build` over every chunk of every account; row numbers run on across chunks."""
    for acct in plan.accounts:
        number = 0
        for chunk in acct.chunks():
            core = _core(plan, acct, chunk)
            rng = _rng(plan.seed, acct.index, chunk, stream)
            lines, number = build(acct, core, rng, chunk, number)
            yield lines


def _deals_rows(plan: Plan) -> Iterator[list[str]]:
    pipelines = [_esc(p) for p in DEAL_PIPELINES]
    open_stages = [_esc(s) for s in OPEN_STAGES]
    status_forms = [_variants(s) for s in ("open", "won", "lost")]

    def build(
        acct: Account, core: Core, rng: np.random.Generator, chunk: int, number: int
    ) -> tuple[list[str], int]:
        act = _activity(plan, acct, core, rng, _PER_CONTACT["deals"], chunk,
                        planted=_cohort(STALE_OPEN_DEAL, 35, 180, (1, 2)))  # fmt: skip
        r = len(act.owner)
        created = act.offset
        young = created < 90 * DAY
        status = np.where(
            young,
            rng.choice(3, r, p=[0.6, 0.2, 0.2]),
            rng.choice(3, r, p=[0.15, 0.45, 0.4]),
        )
        planted = core.scenario[act.owner] == STALE_OPEN_DEAL
        status[planted & (created > 30 * DAY)] = 0
        closed = (created * rng.uniform(0.05, 0.95, r)).astype(np.int64)
        updated = np.where(status == 0, (created * rng.random(r)).astype(np.int64), closed)
        amount = _nullable(_amounts(rng.lognormal(np.log(8e6), 1.2, r), 1000), rng.random(r) < 0.08)
        currency = _nullable(_pick(rng, ("IDR", "idr"), r, p=[0.98, 0.02]), rng.random(r) < 0.02)
        stage = rng.integers(0, len(OPEN_STAGES), r).tolist()
        pipeline = rng.integers(0, len(DEAL_PIPELINES), r).tolist()
        status_var = np.where(rng.random(r) < 0.04, rng.integers(1, 8, r), 0).tolist()
        anchor_day = (plan.anchor - dt.date(1970, 1, 1)).days
        expected = _dates(anchor_day - created // DAY + rng.integers(14, 120, r))
        expected = _nullable(expected, rng.random(r) < 0.2)
        company = core.company[act.owner]
        with_company = ((company >= 0) & (rng.random(r) < 0.7)).tolist()
        company = company.tolist()
        owner = rng.integers(0, acct.users, r).tolist()
        owner_null = (rng.random(r) < 0.1).tolist()
        dup = rng.random(r) < 0.03
        if chunk == 0 and (~planted).any():  # every account has a duplicated deal
            dup[np.argmax(~planted)] = True
        dup = dup.tolist()
        created_s, updated_s, closed_s = (_ts(acct.end, x) for x in (created, updated, closed))
        status_l, planted_l = status.tolist(), planted.tolist()
        lines = []
        for j in range(r):
            st = status_l[j]
            row = [
                f"{acct.account_id}-d{number + j + 1:07d}",
                acct.account_id,
                act.contact_ids[j],
                acct.company_id(company[j]) if with_company[j] else _NULL,
                pipelines[pipeline[j]],
                open_stages[stage[j]] if st == 0 else ("Closed Won", "Closed Lost")[st - 1],
                status_forms[st][status_var[j]],
                amount[j],
                currency[j],
                created_s[j],
                updated_s[j],
                _NULL if st == 0 else closed_s[j],
                expected[j],
                _NULL if owner_null[j] else acct.user_id(owner[j]),
            ]
            lines.append("\t".join(row))
            if dup[j] and not planted_l[j]:
                # The same deal as an earlier extract saw it: still open, a different amount.
                old = list(row)
                old[5], old[6], old[11] = open_stages[0], "open", _NULL
                old[7] = "1000000" if amount[j] == _NULL else str(int(amount[j]) * 4 // 5000 * 1000)
                old[10] = _midway(acct.end, updated[j], created[j])
                lines.append("\t".join(old))
        return lines, number + r

    return _per_chunk(plan, _DEALS, build)


def _tickets_rows(plan: Plan) -> Iterator[list[str]]:
    priority_forms = [_variants(p) for p in TICKET_PRIORITIES]

    def build(
        acct: Account, core: Core, rng: np.random.Generator, chunk: int, number: int
    ) -> tuple[list[str], int]:
        act = _activity(plan, acct, core, rng, _PER_CONTACT["tickets"], chunk,
                        planted=_cohort(TICKET_BURST, 0.5, 28, (3, 5)))  # fmt: skip
        r = len(act.owner)
        created = act.offset
        fresh = created < 7 * DAY
        status = np.where(
            fresh,
            rng.choice(4, r, p=[0.5, 0.2, 0.2, 0.1]),
            rng.choice(4, r, p=[0.04, 0.03, 0.5, 0.43]),
        )
        resolved = (created * rng.uniform(0.3, 0.99, r)).astype(np.int64)
        updated = np.where(status >= 2, resolved, (created * rng.random(r)).astype(np.int64))
        priority = rng.integers(0, 4, r).tolist()
        priority_var = rng.choice(len(_VARIANT_P), r, p=_VARIANT_P).tolist()
        priority_null = (rng.random(r) < 0.1).tolist()
        category = _nullable(_pick(rng, TICKET_CATEGORIES, r), rng.random(r) < 0.15)
        channel = _pick(rng, TICKET_CHANNELS, r, p=[0.5, 0.2, 0.15, 0.1, 0.05])
        dup = rng.random(r) < 0.02
        if chunk == 0 and (status >= 2).any():  # every account has a duplicated ticket
            dup[np.argmax(status >= 2)] = True
        dup = dup.tolist()
        created_s, updated_s, resolved_s = (_ts(acct.end, x) for x in (created, updated, resolved))
        status_l = status.tolist()
        lines = []
        for j in range(r):
            st = status_l[j]
            row = [
                f"{acct.account_id}-t{number + j + 1:07d}",
                acct.account_id,
                act.contact_ids[j],
                TICKET_STATUSES[st],
                _NULL if priority_null[j] else priority_forms[priority[j]][priority_var[j]],
                category[j],
                channel[j],
                created_s[j],
                updated_s[j],
                resolved_s[j] if st >= 2 else _NULL,
            ]
            lines.append("\t".join(row))
            if dup[j] and st >= 2:
                old = list(row)
                old[3], old[9] = "open", _NULL
                old[8] = _midway(acct.end, updated[j], created[j])
                lines.append("\t".join(old))
        return lines, number + r

    return _per_chunk(plan, _TICKETS, build)


def _conversations_rows(plan: Plan) -> Iterator[list[str]]:
    def build(
        acct: Account, core: Core, rng: np.random.Generator, chunk: int, number: int
    ) -> tuple[list[str], int]:
        act = _activity(plan, acct, core, rng, _PER_CONTACT["conversations"], chunk,
                        suppress=QUIET_90_DAYS,
                        planted=_cohort(QUIET_90_DAYS, 100, 190, (1, 3)))  # fmt: skip
        r = len(act.owner)
        started = act.offset
        duration = np.minimum(rng.exponential(3 * 3600, r).astype(np.int64), started - 1)
        last = started - duration
        channel = _pick(rng, CHANNELS, r, _CHANNEL_P)
        status = np.where(
            last < 2 * DAY,
            rng.choice(3, r, p=[0.5, 0.4, 0.1]),
            rng.choice(3, r, p=[0.03, 0.95, 0.02]),
        ).tolist()
        messages = np.minimum(1 + np.floor(rng.pareto(1.5, r) * 4), 500).astype(np.int64)
        messages = _nullable([str(m) for m in messages.tolist()], rng.random(r) < 0.02)
        agent = rng.integers(0, acct.users, r).tolist()
        agent_null = (rng.random(r) < 0.2).tolist()
        anonymous = (rng.random(r) < 0.005).tolist()
        started_s, last_s = _ts(acct.end, started), _ts(acct.end, last)
        lines = []
        for j in range(r):
            chan = channel[j]
            row = (
                f"{acct.account_id}-cv{number + j + 1:08d}",
                acct.account_id,
                _NULL if anonymous[j] and chan == "livechat" else act.contact_ids[j],
                chan,
                ("open", "closed", "snoozed")[status[j]],
                started_s[j],
                last_s[j],
                messages[j],
                _NULL if agent_null[j] else acct.user_id(agent[j]),
            )
            lines.append("\t".join(row))
        return lines, number + r

    return _per_chunk(plan, _CONVERSATIONS, build)


def _orders_rows(plan: Plan) -> Iterator[list[str]]:
    status_forms = [_variants(s) for s in ORDER_STATUSES]

    def build(
        acct: Account, core: Core, rng: np.random.Generator, chunk: int, number: int
    ) -> tuple[list[str], int]:
        def lapsed(rng: np.random.Generator, n: int, core: Core) -> tuple[np.ndarray, np.ndarray]:
            recent_owner, recent_off = _cohort(LAPSED_REPEAT_BUYER, 32, 88, (2, 3))(rng, n, core)
            old_owner, old_off = _cohort(LAPSED_REPEAT_BUYER, 120, 190, (0, 2))(rng, n, core)
            return np.concatenate([recent_owner, old_owner]), np.concatenate([recent_off, old_off])

        act = _activity(plan, acct, core, rng, _PER_CONTACT["orders"], chunk,
                        suppress=LAPSED_REPEAT_BUYER, planted=lapsed)  # fmt: skip
        r = len(act.owner)
        status = rng.choice(3, r, p=[0.85, 0.06, 0.09])
        status[core.scenario[act.owner] == LAPSED_REPEAT_BUYER] = 0
        status = status.tolist()
        status_var = np.where(rng.random(r) < 0.05, rng.integers(1, 8, r), 0).tolist()
        amount = _nullable(
            _amounts(rng.lognormal(np.log(350e3), 1.0, r), 100), rng.random(r) < 0.01
        )
        ordered_s = _ts(acct.end, act.offset)
        lines = []
        for j in range(r):
            row = (
                f"{acct.account_id}-o{number + j + 1:08d}",
                acct.account_id,
                act.contact_ids[j],
                amount[j],
                "IDR",
                status_forms[status[j]][status_var[j]],
                ordered_s[j],
            )
            lines.append("\t".join(row))
        return lines, number + r

    return _per_chunk(plan, _ORDERS, build)


def _campaigns_rows(plan: Plan) -> Iterator[list[str]]:
    for acct in plan.accounts:
        sent = np.array([c.sent_off or 0 for c in acct.campaigns], dtype=np.int64)
        sent_s = _ts(acct.end, sent)
        yield [
            "\t".join(
                (
                    c.campaign_id,
                    acct.account_id,
                    _esc(c.name),
                    c.channel,
                    _NULL if c.sent_off is None else sent_s[k],
                    c.created_by,
                )
            )
            for k, c in enumerate(acct.campaigns)
        ]


_EVENT_TYPES = ("sent", "delivered", "read", "replied", "clicked", "failed", "unsubscribed")


def _funnel(r: random.Random, sent_off: int) -> list[tuple[int, int]]:
    """(event type index, offset) for one contact receiving one campaign."""
    t = sent_off - r.randrange(0, 600)
    steps = [(0, t)]
    if r.random() < 0.06:
        return [*steps, (5, t - r.randrange(5, 300))]
    t -= r.randrange(5, 300)
    steps.append((1, t))
    if r.random() < 0.6:
        t -= int(r.expovariate(1 / 7200))
        steps.append((2, t))
        if r.random() < 0.2:
            steps.append((4, t - r.randrange(10, 3600)))
        if r.random() < 0.1:
            steps.append((3, t - r.randrange(30, 7200)))
    if r.random() < 0.01:
        steps.append((6, t - r.randrange(60, 86_400)))
    return steps


def _campaign_events_rows(plan: Plan) -> Iterator[list[str]]:
    for acct in plan.accounts:
        # Most recent first, so a contact's eligible campaigns are a prefix of the list.
        sent = sorted((c.sent_off, c.campaign_id) for c in acct.campaigns if c.sent_off)
        sent_off = np.array([s[0] for s in sent], dtype=np.int64)
        audience = np.array([c.audience for c in sorted(
            (c for c in acct.campaigns if c.sent_off), key=lambda c: (c.sent_off, c.campaign_id)
        )])  # fmt: skip
        others = [a for a in plan.accounts if a.index != acct.index]
        number = 0
        for chunk in acct.chunks():
            core = _core(plan, acct, chunk)
            n = len(core)
            rng = _rng(plan.seed, acct.index, chunk, _EVENTS)
            r = random.Random(int(rng.integers(0, 1 << 62)))
            # Campaigns sent after the contact was created (sent_off < created_off).
            eligible = np.searchsorted(sent_off, core.created)
            wanted = rng.poisson(0.5 * (0.5 + np.minimum(core.activity, 5))).tolist()
            # Broadcast audiences: each campaign also reaches a share of all eligible contacts.
            reached = (rng.random((n, len(sent))) < audience) & (
                np.arange(len(sent)) < eligible[:, None]
            )
            rows, cols = np.nonzero(reached)
            bounds = np.searchsorted(rows, np.arange(n + 1)).tolist()
            cols = cols.tolist()
            eligible = eligible.tolist()
            forced = 0
            lines_meta: list[tuple[str, int, int]] = []  # contact id, campaign, event type
            offsets: list[int] = []
            for j in range(n):
                pool = eligible[j]
                if not pool:
                    continue
                chosen = set(r.sample(range(pool), min(wanted[j], pool)))
                chosen.update(cols[bounds[j] : bounds[j + 1]])
                for k in sorted(chosen):
                    m = r.random()
                    if chunk == 0 and forced < 2:  # an orphan, then a cross-account reference
                        m, forced = (0.0, _ORPHAN_RATE)[forced], forced + 1
                    if m < _ORPHAN_RATE:
                        cid = acct.contact_id(acct.contacts + r.randrange(max(1, acct.contacts)))
                    elif m < _ORPHAN_RATE + _CROSS_RATE and others:
                        other = others[r.randrange(len(others))]
                        cid = other.contact_id(r.randrange(other.contacts))
                    else:
                        cid = acct.contact_id(core.start + j)
                    for kind, offset in _funnel(r, int(sent_off[k])):
                        lines_meta.append((cid, k, kind))
                        offsets.append(offset)
            stamps = _ts(acct.end, np.array(offsets, dtype=np.int64))
            lines = []
            for (cid, k, kind), stamp in zip(lines_meta, stamps, strict=True):
                number += 1
                lines.append(
                    f"{acct.account_id}-e{number:09d}\t{acct.account_id}\t{sent[k][1]}\t"
                    f"{cid}\t{_EVENT_TYPES[kind]}\t{stamp}"
                )
            yield lines


def _contacts_rows(plan: Plan) -> Iterator[list[str]]:
    for acct in plan.accounts:
        for chunk in acct.chunks():
            yield _contacts_chunk(plan, acct, chunk)


# Column order of each COPY; it is the order the row builders write fields in.
COLUMNS: dict[str, tuple[str, ...]] = {
    table: tuple(columns.split())
    for table, columns in {
        "accounts": "account_id name package timezone",
        "users": "user_id account_id name email team",
        "contacts": """contact_id account_id full_name email phone gender date_of_birth job_title
            city province country lifecycle_stage lead_source owner_user_id tags custom_fields
            consent_whatsapp consent_email consent_sms consent_updated_at loyalty_tier
            loyalty_points created_at created_by updated_at updated_by deleted_at""",
        "companies": """company_id account_id name industry employee_count annual_revenue city
            country created_at updated_at""",
        "contact_companies": "account_id contact_id company_id is_primary",
        "deals": """deal_id account_id contact_id company_id pipeline stage status amount currency
            created_at updated_at closed_at expected_close_date owner_user_id""",
        "tickets": """ticket_id account_id contact_id status priority category channel created_at
            updated_at resolved_at""",
        "conversations": """conversation_id account_id contact_id channel status started_at
            last_message_at message_count agent_user_id""",
        "campaigns": "campaign_id account_id name channel sent_at created_by",
        "campaign_events": "event_id account_id campaign_id contact_id event_type occurred_at",
        "orders": "order_id account_id contact_id amount currency status ordered_at",
    }.items()
}

_BUILDERS: dict[str, Callable[[Plan], Iterator[list[str]]]] = {
    "accounts": _accounts_rows,
    "users": _users_rows,
    "contacts": _contacts_rows,
    "companies": _companies_rows,
    "contact_companies": _contact_companies_rows,
    "deals": _deals_rows,
    "tickets": _tickets_rows,
    "conversations": _conversations_rows,
    "campaigns": _campaigns_rows,
    "campaign_events": _campaign_events_rows,
    "orders": _orders_rows,
}


def iter_copy_text(plan: Plan, table: str) -> Iterator[str]:
    """The table's rows in COPY text format, in blocks of whole lines."""
    buffered: list[str] = []
    for lines in _BUILDERS[table](plan):
        buffered.extend(lines)
        if len(buffered) >= FLUSH_LINES:
            yield "\n".join(buffered) + "\n"
            buffered = []
    if buffered:
        yield "\n".join(buffered) + "\n"


# --------------------------------------------------------------------------- loading


def _schema_ready(conn: psycopg.Connection) -> bool:
    found = conn.execute(
        "select count(*) from information_schema.tables"
        " where table_schema = %s and table_name = any(%s)",
        (settings.SCHEMA_RAW, list(TABLES)),
    ).fetchone()
    return bool(found and found[0] == len(TABLES))


def load(
    accounts: int = 3,
    contacts: int = 20000,
    seed: int = 7,
    anchor: dt.date | None = None,
    dbname: str | None = None,
) -> dict[str, int]:
    """Replace the crm_raw tables' contents with a generated data set; returns rows per table.

    anchor: the date timestamps are relative to (default: today in Asia/Jakarta).
    dbname: the database (default: PGDATABASE).
    """
    plan = make_plan(accounts, contacts, seed, anchor)
    with database.connect(dbname, autocommit=True) as probe:
        ready = _schema_ready(probe)
    if not ready:
        bootstrap.init_db(dbname)
    counts: dict[str, int] = {}
    try:
        with database.transaction(dbname) as conn:
            conn.execute(
                sql.SQL("truncate {}").format(
                    sql.SQL(", ").join(sql.Identifier(settings.SCHEMA_RAW, t) for t in TABLES)
                )
            )
            for table in TABLES:
                counts[table] = _copy_table(conn, plan, table)
            for table in TABLES:
                conn.execute(
                    sql.SQL("analyze {}").format(sql.Identifier(settings.SCHEMA_RAW, table))
                )
    except psycopg.Error as exc:
        raise DemoDataError(
            f"Loading demo data failed; the previous crm_raw data is unchanged: {exc}"
        ) from exc
    return counts


def _copy_table(conn: psycopg.Connection, plan: Plan, table: str) -> int:
    # FREEZE is allowed because the table was truncated in this transaction; it spares the
    # first vacuum from rewriting every page of a large load.
    statement = sql.SQL("copy {} ({}) from stdin with (freeze)").format(
        sql.Identifier(settings.SCHEMA_RAW, table),
        sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS[table]),
    )
    rows = 0
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for block in iter_copy_text(plan, table):
            rows += block.count("\n")
            copy.write(block)
    return rows
