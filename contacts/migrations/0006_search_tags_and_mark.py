"""Rewrite stored search vectors as contacts/search.py now writes them.

Every lexeme gets its account's tag in front ("#" and the first 3 hex digits
of the MD5 of the account id: ``contacts.search.account_tag``), and the
lexemes unique to one contact go behind the mark (a space) after the tag:
an email's whole address, local part and domain (the stored lexemes with a
separator: names' and emails' words are runs of letters and digits, and an
address's separators are ASCII punctuation), and every word whose letters are
followed by a digit, which also gets its letters stored. The tests are on
code points, so they need no locale.

Rewritten in SQL, a batch of contacts per transaction (keyset on the primary
key): a table of millions is never rewritten in one transaction, and a run
that stops half-way is resumed (a lexeme already under its account's tag is
kept as it is). Then the search index is rebuilt, concurrently: GIN keeps the
entries of lexemes no row has any more, and a prefix scan would still walk them.
"""

from django.db import migrations

BATCH = 20_000
# As contacts/search.py was when this migration was written.
MARK = " "
TAG = "('#' || substr(md5(c.account_id), 1, 3))"
SEPARATOR = r"[!-/:-@\[-`{-~]"  # ASCII punctuation
LETTERS_THEN_DIGIT = "^[^0-9]+[0-9]"

_LEXEMES = "unnest(tsvector_to_array(c.search_vector)) AS lexeme"
_REWRITE = f"""
WITH batch AS (
    SELECT id FROM contacts_contact WHERE id > %(last)s ORDER BY id LIMIT {BATCH}
), rewritten AS (
    UPDATE contacts_contact AS c
       SET search_vector = array_to_tsvector(ARRAY(
               SELECT unnest(CASE
                          WHEN left(lexeme, 4) = {TAG} THEN ARRAY[lexeme]
                          WHEN left(lexeme, 1) = %(mark)s OR lexeme ~ %(separator)s
                              THEN ARRAY[{TAG} || %(mark)s || ltrim(lexeme, %(mark)s)]
                          WHEN lexeme ~ %(letters_then_digit)s
                              THEN ARRAY[{TAG} || substring(lexeme FROM '^[^0-9]+'), {TAG} || %(mark)s || lexeme]
                          ELSE ARRAY[{TAG} || lexeme]
                      END)
                 FROM {_LEXEMES}
           ))
      FROM batch
     WHERE c.id = batch.id AND EXISTS (SELECT FROM {_LEXEMES} WHERE left(lexeme, 4) <> {TAG})
)
SELECT max(id) FROM batch
"""
_PARAMS = {"separator": SEPARATOR, "mark": MARK, "letters_then_digit": LETTERS_THEN_DIGIT}


def tag_and_mark(apps, schema_editor):
    last = ""
    while True:
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(_REWRITE, {**_PARAMS, "last": last})
            last = cursor.fetchone()[0]
        if last is None:
            return


def untag_and_unmark(apps, schema_editor):
    # The letters stored in front of a marked word stay: to the search before
    # this migration they are one more word of the contact's.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE contacts_contact AS c
               SET search_vector = array_to_tsvector(ARRAY(
                       SELECT DISTINCT CASE WHEN left(lexeme, 4) = {TAG} THEN ltrim(substr(lexeme, 5), %(mark)s)
                                            ELSE lexeme END
                         FROM {_LEXEMES}
                   ))
             WHERE EXISTS (SELECT FROM {_LEXEMES} WHERE left(lexeme, 4) = {TAG})
            """,
            _PARAMS,
        )


class Migration(migrations.Migration):
    # Each batch commits on its own, and REINDEX CONCURRENTLY runs outside a transaction.
    atomic = False

    dependencies = [
        ("contacts", "0005_phone_stored_e164"),
    ]

    operations = [
        migrations.RunPython(tag_and_mark, untag_and_unmark, elidable=True),
        migrations.RunSQL("REINDEX INDEX CONCURRENTLY contact_search", migrations.RunSQL.noop, elidable=True),
    ]
