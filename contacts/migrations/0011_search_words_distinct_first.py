"""The vocabulary's triggers look up each distinct word once, in the index.

0010's statement trigger unnested every written vector through a function
scan per contact, then anti-joined the lexemes against a hash of the whole
vocabulary, built again for every statement. The vectors are now unnested
as arrays in the select list, the words made distinct first, and each
distinct word probed in the lexeme index. For 5,000 of the benchmark's
contacts inserted in one statement (23,315 word lexemes, 1,635 distinct,
against a vocabulary of 60,424 words), ``EXPLAIN ANALYZE`` gave the trigger
27.0 to 28.0 ms before and 12.4 to 12.7 ms after: 3 s of PostgreSQL's CPU in
a 1M-row import, and no hash that grows with the vocabulary.
"""

import importlib

from django.db import migrations


def add_words(lexemes: str) -> str:
    """An INSERT of the word lexemes of ``lexemes`` (a query whose one column is ``lexeme``) that the vocabulary lacks.

    Lexemes start with the account tag ("#" and 3 hex digits); a marked one
    has the mark (" ") after it.
    """
    return f"""INSERT INTO contacts_searchword (lexeme)
SELECT word.lexeme
  FROM (SELECT DISTINCT written.lexeme FROM ({lexemes}) AS written WHERE substr(written.lexeme, 5, 1) <> ' ') AS word
 WHERE NOT EXISTS (SELECT FROM contacts_searchword AS known WHERE known.lexeme = word.lexeme)"""


def functions(words_of_statement: str, words_of_row: str) -> str:
    return "".join(
        f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{statement};
RETURN NULL;
END
$$;
"""
        for name, statement in (
            ("contacts_add_search_words", words_of_statement),
            ("contacts_add_search_words_of_row", words_of_row),
        )
    )


FUNCTIONS = functions(
    add_words("SELECT unnest(tsvector_to_array(contact.search_vector)) AS lexeme FROM written AS contact"),
    add_words("SELECT unnest(tsvector_to_array(NEW.search_vector)) AS lexeme"),
)


def _previous_functions() -> str:
    """0010's, for reversing."""
    previous = importlib.import_module("contacts.migrations.0010_search_words")
    return functions(
        previous.add_words("written AS contact, unnest(contact.search_vector)"),
        previous.add_words("unnest(NEW.search_vector)"),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0010_search_words"),
    ]

    operations = [
        migrations.RunSQL(FUNCTIONS, _previous_functions()),
    ]
