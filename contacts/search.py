"""Contact search: what gets indexed, and how a search string becomes a query.

Two index paths serve API.md §4's ``search``:

* Words. ``search_vector`` is a ``tsvector`` whose lexemes are written here in
  Python, not by a PostgreSQL text-search configuration: the embedded
  PostgreSQL has no ``unaccent``, stemming configs stem prefixes
  (``postgres:*`` becomes ``postgr:*``), and the default parser keeps an email
  as one token. Folding in Python (NFKD, drop combining marks, casefold) gives
  ``jose`` → ``José`` and ``mull`` → ``Müller`` on every server, and the query
  side uses the very same ``fold()``. Lexemes are cast with ``::tsvector`` /
  ``::tsquery`` so PostgreSQL keeps them exactly as written. A GIN index
  answers ``@@`` with prefix (``:*``) terms.

  A prefix term costs the GIN scan one step per distinct lexeme it matches,
  so lexemes unique to one contact are kept out of the range a letters-only
  prefix walks, behind ``MARK`` (a leading space): an email's whole address,
  local part and domain when they differ from its words, and every word whose
  letters are followed by a digit (``williams123``), which is stored as its
  letters (``williams``) too. Unmarked, ``james:*`` walked every address and
  every ``james…<digits>`` word of 2M contacts, doubling a name search's cost.
  Nothing is lost: a term of letters only matches the marked lexeme's letters
  or first word instead, and a term with a separator (``ada.love``) or with
  digits after letters (``ada7``) looks behind the mark. A search string is
  split on whitespace, so no term can forge the mark.

  The index is tenant-aware: every lexeme starts with its account's tag
  (``account_tag()``: "#" and 3 hex digits of the account id's MD5), and a
  search asks for its account's tag only. A prefix term is answered by
  collecting every TID of every lexeme it matches into a bitmap; untagged,
  ``james:*`` collected the Jameses of every account, and the heap scan then
  visited them all for the account filter to drop. Accounts sharing a tag
  only share index entries: the query still filters on ``account_id``, the
  boundary is unchanged. 4,096 tags bound a search across all accounts (the
  admin's) to as many alternatives.

  Collecting is also what makes prefixes costly to intersect: for "James
  Williams", GIN gathered all 11,855 Jameses and 13,474 Williamses of the
  benchmark's big account before keeping their 912 in common. Asked as exact
  words, GIN walks the rarer posting list and skips through the other. So a
  search of one account that intersects (two terms or more, or a term of
  several words) first looks up what each word prefix completes to in the
  vocabulary (``SearchWord``: every word some stored vector holds, kept by
  triggers in the writing transaction), and asks a prefix with at most
  ``MAX_COMPLETIONS`` completions as them: ``'james' | 'jameson'``. Over
  200 full-name searches of that account, the page's SQL went from a median
  of 6.12 to 2.76 ms, the same contacts found. A word no
  contact holds any more stays in the vocabulary and only adds an
  alternative that matches nothing; a lone prefix is asked as a prefix, with
  no lookup, since it has nothing to skip through.
* Phone digits. A term of 3+ digits matches a phone whose E.164 digits or
  national number start with it, or whose digits end with it. These are btree
  range scans on ``phone_digits`` / ``phone_national`` (``"C"`` collation) and
  on the expression ``reverse(phone_digits)``; a range rather than ``LIKE``
  because a prefix ``LIKE`` cannot use a default-collation btree.

Callers (the contact services) call ``search_columns()`` on every write that
changes a phone, an email or a name, so results are visible immediately.
"""

import hashlib
import re
import sys
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

import phonenumbers
from django.contrib.postgres.search import SearchQuery
from django.db import connection, connections, transaction
from django.db.models import Q
from django.db.models.functions import Reverse

_WORD = re.compile(r"[^\W_]+")
_PHONE_TERM = re.compile(r"^[\d+\-.()\s]+$")
_PHONE_NOISE = re.compile(r"[+\-.()\s]")
# Letters NFKD does not decompose but that readers treat as a base letter.
_EXTRA_FOLDS = str.maketrans({"ø": "o", "đ": "d", "ł": "l", "\u0131": "i", "ħ": "h", "þ": "th", "æ": "ae", "œ": "oe"})
MIN_PHONE_DIGITS = 3
# A digit string is always below the same string followed by ":" (the next
# ASCII character after "9"), so [p, p + ":") is exactly "starts with p".
_RANGE_END = ":"
# Before lexemes unique to one contact (see the docstring).
MARK = " "
# Letters (anything but ASCII digits) followed by a digit: a word stored behind the mark.
_LETTERS_THEN_DIGIT = re.compile(r"[^0-9]+(?=[0-9])")
# Tags start with a character no untagged lexeme starts with (words start with
# a letter or digit, marked lexemes with the mark).
TAG_START = "#"
TAG_DIGITS = 3


@lru_cache(maxsize=4096)
def account_tag(account_id: str) -> str:
    """The prefix of every lexeme of the account's contacts (see the docstring)."""
    return TAG_START + hashlib.md5(account_id.encode(), usedforsecurity=False).hexdigest()[:TAG_DIGITS]


@lru_cache(maxsize=1 << 16)
def fold(text: str) -> str:
    """Lower-case, accent-free form of ``text`` used on both sides of search.

    Remembered: names repeat across millions of imported contacts.
    """
    if text.isascii():  # nothing to decompose or strip: the common case, and every email
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", stripped.translate(_EXTRA_FOLDS))


def _words(text: str) -> list[str]:
    return _split(fold(text))


def _split(folded: str) -> list[str]:
    """The words of folded text: runs of letters and digits, with the marks ``fold()`` keeps.

    Vowel signs of Indic scripts, Thai and others are combining marks that
    NFKD does not separate from their letters and ``fold()`` keeps (dropping
    them would turn पिता and पता into one word); to ``\\w`` they are not word
    characters, and ``_WORD`` cut पटेल into "पट" and "ल". Every such name then
    stored one- and two-letter lexemes shared by thousands of contacts, which
    a search for the whole name had to intersect (a full-name search's GIN
    scan read the posting lists of "ल", "य", "क"…).
    """
    if folded.isascii():
        return _WORD.findall(folded)
    words, start = [], None
    for index, char in enumerate(folded):
        if char.isalnum() or unicodedata.category(char)[0] == "M":
            if start is None:
                start = index
        elif start is not None:
            words.append(folded[start:index])
            start = None
    if start is not None:
        words.append(folded[start:])
    return words


def _is_one_word(folded: str) -> bool:
    return _WORD.fullmatch(folded) is not None if folded.isascii() else _split(folded) == [folded]


def _quote(lexeme: str) -> str:
    """Quote a lexeme for tsvector/tsquery input syntax."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _vector(lexemes: list[str], tag: str) -> str | None:
    """The lexemes, each tagged and quoted, as tsvector input; None for none."""
    if not lexemes:
        return None
    together = "".join(lexemes)
    if "'" in together or "\\" in together:
        return " ".join(_quote(tag + lexeme) for lexeme in lexemes)
    # Nothing to escape (every lexeme of a name, most of an email's): one join
    # instead of a quoting call per lexeme, 7 a contact on average.
    return f"'{tag}" + f"' '{tag}".join(lexemes) + "'"


def _word_lexemes(word: str, lexemes: list[str]) -> None:
    """Append what stores ``word``: itself, or its letters and itself behind the mark."""
    letters = _LETTERS_THEN_DIGIT.match(word)
    if letters is None:
        lexemes.append(word)
    else:
        lexemes += (letters.group(), MARK + word)


def _query_lexeme(word: str) -> str:
    return MARK + word if _LETTERS_THEN_DIGIT.match(word) else word


@lru_cache(maxsize=1 << 16)
def _name_lexemes(name: str) -> tuple[str, ...]:
    """A name's lexemes, remembered: names repeat across millions of imported contacts.

    A name word written with separators (``O'Brien``, ``Jean-Luc``) is stored
    as its words and joined (``obrien``), so that a term typed with the
    separator is asked as one prefix (``o'b`` as ``ob:*``), not as a
    one-letter prefix that walks every lexeme starting with that letter.
    """
    lexemes = []
    for written in name.split():
        words = _words(written)
        for word in words:
            _word_lexemes(word, lexemes)
        if len(words) > 1:
            _word_lexemes("".join(words), lexemes)
    return tuple(lexemes)


@lru_cache(maxsize=1 << 12)
def _domain_lexemes(domain: str) -> tuple[tuple[str, ...], bool]:
    """An email domain's word lexemes, and whether the domain is also stored whole, behind the mark.

    Remembered: an import repeats a few domains a million times.
    """
    lexemes = []
    for word in _split(domain):
        _word_lexemes(word, lexemes)
    return tuple(lexemes), bool(domain) and not _is_one_word(domain)


def contact_lexemes(*, first_name: str, last_name: str, email: str | None) -> list[str]:
    lexemes = [*_name_lexemes(first_name), *_name_lexemes(last_name)]
    if email:
        # fold() without its cache, which emails (each one different) would only churn.
        folded = email.lower() if email.isascii() else fold(email)
        # "@" is no word character: the address's words are its local part's, then its domain's.
        local, at, domain = folded.partition("@")
        for word in _split(local):
            _word_lexemes(word, lexemes)
        domain_words, whole_domain = _domain_lexemes(domain)
        lexemes += domain_words
        # A one-word local part or domain is already one of the words; an
        # address holding "@" never is one.
        if at or not _is_one_word(folded):
            lexemes.append(MARK + folded)
        if local and not _is_one_word(local):
            lexemes.append(MARK + local)
        if whole_domain:
            lexemes.append(MARK + domain)
    # Order kept for readability of the stored vector; duplicates dropped.
    return [lexeme for lexeme in dict.fromkeys(lexemes) if lexeme]


def search_vector(*, account_id: str, email: str | None, first_name: str, last_name: str) -> str | None:
    """The ``search_vector`` of a contact of the account with these fields, as tsvector input."""
    return _vector(contact_lexemes(first_name=first_name, last_name=last_name, email=email), account_tag(account_id))


def search_columns(*, account_id: str, phone, email: str | None, first_name: str, last_name: str) -> dict:
    """Values of the search columns for a contact of the account with these fields."""
    vector = search_vector(account_id=account_id, email=email, first_name=first_name, last_name=last_name)
    number = phone if isinstance(phone, phonenumbers.PhoneNumber) else None
    if number is None and phone:
        number = phonenumbers.parse(phone, None)
    if number is None:
        return {"search_vector": vector, "phone_digits": None, "phone_national": None}
    national = phonenumbers.national_significant_number(number)
    # The E.164 digits: what format_number(number, E164) writes after its "+".
    return {"search_vector": vector, "phone_digits": f"{number.country_code}{national}", "phone_national": national}


_REWRITE_BATCH = 20_000
_REWRITE_CANDIDATES = """
SELECT id, account_id, email, first_name, last_name
  FROM contacts_contact
 WHERE id > %s AND ({condition})
 ORDER BY id
 LIMIT %s
"""
_REWRITE = """
UPDATE contacts_contact AS c
   SET search_vector = rewritten.vector::tsvector
  FROM unnest(%s::text[], %s::text[]) AS rewritten (id, vector)
 WHERE c.id = rewritten.id AND c.search_vector IS DISTINCT FROM rewritten.vector::tsvector
"""


def rewrite_search_vectors(connection, condition: str) -> None:
    """Write ``search_vector()`` into the vectors of the contacts matching ``condition`` (SQL), for migrations.

    A batch of contacts per statement (keyset on the primary key), each
    committed on its own when the caller is not in a transaction, so a table
    of millions is never rewritten in one transaction and a run that stops
    half-way starts over cheaply: a vector already as this module writes it
    is left alone.
    """
    last = ""
    candidates = _REWRITE_CANDIDATES.format(condition=condition)
    while True:
        with connection.cursor() as cursor:
            cursor.execute(candidates, [last, _REWRITE_BATCH])
            rows = cursor.fetchall()
        if not rows:
            return
        vectors = [
            search_vector(account_id=account_id, email=email, first_name=first_name, last_name=last_name)
            for _, account_id, email, first_name, last_name in rows
        ]
        with connection.cursor() as cursor:
            cursor.execute(_REWRITE, [[row[0] for row in rows], vectors])
        last = rows[-1][0]


# Each batch holds writers of contacts back while it looks its words up (~0.4 ms a word on 2M contacts).
_PURGE_BATCH = 200
_HELD_BY_NO_CONTACT = """
SELECT word.id
  FROM unnest(%s::bigint[], %s::tsquery[]) AS word (id, query)
 WHERE NOT EXISTS (SELECT FROM contacts_contact AS contact WHERE contact.search_vector @@ word.query)
"""


def purge_unused_search_words(*, batch_size: int = _PURGE_BATCH) -> int:
    """Delete the vocabulary's words no contact holds any more (deleted or renamed contacts'); how many.

    Searches never need it: such a word only adds an alternative that
    matches nothing. It keeps the names of deleted contacts from outliving
    them. A batch of words at a time, each in a transaction that first
    takes a SHARE lock on the contacts (writers wait, readers do not): a
    contact being written with a word the batch found unused would
    otherwise commit after the word was deleted, and be missed by searches.
    """
    from contacts.models import SearchWord

    purged, last = 0, ""
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("LOCK TABLE contacts_contact IN SHARE MODE")
            batch = list(
                SearchWord.objects.filter(lexeme__gt=last).order_by("lexeme").values_list("id", "lexeme")[:batch_size]
            )
            if not batch:
                return purged
            cursor.execute(_HELD_BY_NO_CONTACT, [[id for id, _ in batch], [_quote(lexeme) for _, lexeme in batch]])
            unused = [id for (id,) in cursor.fetchall()]
            purged += SearchWord.objects.filter(id__in=unused).delete()[0]
        last = batch[-1][1]


class LexemeQuery(SearchQuery):
    """A tsquery written in tsquery syntax and cast as is, without a text-search config."""

    def __init__(self, tsquery: str):
        super().__init__(tsquery)
        self.tsquery = tsquery

    def as_sql(self, compiler, connection, **extra_context):
        return "%s::tsquery", [self.tsquery]


def _prefix_range(column: str, digits: str) -> Q:
    return Q(**{f"{column}__gte": digits, f"{column}__lt": digits + _RANGE_END})


def _lexeme_query(
    lexeme: str, tags: tuple[str, ...], *, prefix: bool, completions: Mapping[str, Sequence[str]] | None = None
) -> str:
    """``lexeme`` (``:*`` a prefix) in tsquery syntax, under each tag.

    A prefix of one tag that ``completions`` completes (``word_completions()``)
    is asked as those words, exactly.
    """
    if prefix and completions is not None and len(tags) == 1 and not lexeme.startswith(MARK):
        words = completions.get(tags[0] + lexeme)
        if words is not None:
            # None stored starts with the prefix: the prefix itself, exactly, matches nothing as cheaply.
            alternatives = [_quote(word) for word in words] or [_quote(tags[0] + lexeme)]
            return alternatives[0] if len(alternatives) == 1 else "( " + " | ".join(alternatives) + " )"
    suffix = ":*" if prefix else ""
    alternatives = [_quote(tag + lexeme) + suffix for tag in tags]
    return alternatives[0] if len(alternatives) == 1 else "( " + " | ".join(alternatives) + " )"


def parse_terms(
    text: str, tags: tuple[str, ...] = ("",), completions: Mapping[str, Sequence[str]] | None = None
) -> list[tuple[str, str]]:
    """Split a search string into ``("phone", digits)`` and ``("words", tsquery)`` terms.

    A search that is entirely phone-like (``+1 (415) 555-2671``) is one phone
    term, so the spaces of a written number do not split it. The tsquery's
    lexemes are under ``tags``, the searched accounts' (``account_tag()``);
    a word prefix ``completions`` completes is asked as its completions.
    """
    text = text.strip()
    if _PHONE_TERM.match(text):
        digits = _PHONE_NOISE.sub("", text)
        if len(digits) >= MIN_PHONE_DIGITS:
            return [("phone", digits)]
    terms = []
    for raw in text.split():
        digits = _PHONE_NOISE.sub("", raw)
        if digits.isdigit() and len(digits) >= MIN_PHONE_DIGITS:
            terms.append(("phone", digits))
            continue
        words = _words(raw)
        if not words:
            continue
        # Within one term ("o'brien", "ada.love"), the words before a separator
        # were typed whole: only the last is a prefix, and after a separator
        # only from two letters on. 'o':* would match every lexeme starting
        # with "o" and cost a GIN scan of all of them; the joined form below
        # finds the name being typed ("o'b" as 'ob':*, O'Brien is stored as
        # "obrien" too).
        last = len(words) - 1
        parts = " & ".join(
            _lexeme_query(
                _query_lexeme(word),
                tags,
                prefix=index == last and (last == 0 or len(word) > 1),
                completions=completions,
            )
            for index, word in enumerate(words)
        )
        whole = fold(raw)
        if len(words) > 1 or whole != words[0]:
            # "ada@example.com": the whole address (behind the mark), a name
            # written with separators (joined), or all of its parts.
            alternatives = [_lexeme_query(MARK + "".join(whole.split()), tags, prefix=True)]
            if len(words) > 1:
                alternatives.append(
                    _lexeme_query(_query_lexeme("".join(words)), tags, prefix=True, completions=completions)
                )
            parts = " | ".join([*alternatives, f"( {parts} )"])
        terms.append(("words", f"( {parts} )"))
    # "Conceição Conceição": the same term twice is one condition, not two for the planner to misjudge.
    return list(dict.fromkeys(terms))


# A word prefix with at most this many completions in the vocabulary is asked as them (see the docstring).
MAX_COMPLETIONS = 64
_COMPLETIONS = """
SELECT asked.prefix,
       ARRAY(SELECT DISTINCT word.lexeme
               FROM contacts_searchword AS word
              WHERE word.lexeme >= asked.prefix AND word.lexeme < asked.bound
              ORDER BY word.lexeme
              LIMIT %s)
  FROM unnest(%s::text[], %s::text[]) AS asked (prefix, bound)
"""


class _Asked(dict):
    """A ``completions`` mapping that completes nothing and keeps what ``parse_terms()`` asked it."""

    def get(self, key, default=None):
        self[key] = default
        return default


def _prefix_bound(prefix: str) -> str | None:
    """The least text above every text starting with ``prefix``, in code-point (the "C" collation's) order."""
    following = ord(prefix[-1]) + 1
    if following == 0xD800:  # surrogates are no characters: UTF-8 has none to order
        following = 0xE000
    return prefix[:-1] + chr(following) if following <= sys.maxunicode else None


def word_completions(prefixes: Iterable[str], connection) -> dict[str, list[str]]:
    """The vocabulary's words starting with each prefix that has at most ``MAX_COMPLETIONS`` of them.

    Read in a statement of its own, just before the search's: a contact
    committed in between with a word no contact had before is found from the
    next search on, as if it had been committed a moment later. In one
    statement the planner would be blind: it cannot look a tsquery a
    subquery makes up in the column's statistics (it put "James Williams"
    at 25 contacts, against 912), and a search it misjudged as common could
    be planned as a walk of the newest contacts.
    """
    asked = [(prefix, bound) for prefix in prefixes if prefix and (bound := _prefix_bound(prefix)) is not None]
    if not asked:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            _COMPLETIONS,
            [MAX_COMPLETIONS + 1, [prefix for prefix, _ in asked], [bound for _, bound in asked]],
        )
        return {prefix: words for prefix, words in cursor.fetchall() if len(words) <= MAX_COMPLETIONS}


def apply_search(queryset, text: str, account_ids: Iterable[str]):
    """``queryset`` narrowed to contacts matching ``text``; it holds contacts of ``account_ids`` only."""
    tags = tuple(sorted({account_tag(account_id) for account_id in account_ids}))
    completions = None
    if len(tags) == 1:
        asked = _Asked()
        terms = parse_terms(text, tags, asked)
        # Exact words pay where GIN intersects: a lone prefix collects the same rows either way.
        if len(terms) > 1 or len(asked) > 1:
            completions = word_completions(asked, connections[queryset.db])
    terms = parse_terms(text, tags, completions)
    if not terms or not tags:
        return queryset.none()
    queryset = queryset.alias(phone_reversed=Reverse("phone_digits"))
    for kind, value in terms:
        if kind == "phone":
            reversed_digits = value[::-1]
            queryset = queryset.filter(
                _prefix_range("phone_digits", value)
                | _prefix_range("phone_national", value)
                | _prefix_range("phone_reversed", reversed_digits)
                | Q(search_vector=LexemeQuery(_lexeme_query(value, tags, prefix=True)))
            )
        else:
            queryset = queryset.filter(search_vector=LexemeQuery(value))
    return queryset
