"""The search's vocabulary: every word lexeme the contacts' search vectors hold.

A full-name search ("James Williams") asks two prefix terms, and GIN answers
a prefix by collecting every row of every lexeme it matches into a bitmap
before intersecting: 14.9 ms of the 17.8 ms that page took on the benchmark's
1M-contact account. Asked as the words the prefixes complete to, exactly,
GIN skips through the posting lists instead (5.3 ms, same 912 contacts).
contacts/search.py looks the words up here.

The triggers add a vector's words in the transaction that writes it: a
statement trigger for inserts (an import's COPY of 5,000 contacts is one
lookup of their words, not 5,000), a row trigger for updates that change
the vector (an update of tags or metadata costs nothing). Words behind the
mark (unique to a contact) are left out: no prefix term asks for them by
way of the vocabulary. The backfill runs after the triggers exist, in the
same transaction: their lock on contacts_contact holds writers back until
both are committed, so no contact is written between them unseen.
"""

from django.db import migrations, models


def add_words(lexemes: str) -> str:
    """An INSERT of the word lexemes of ``lexemes`` (a FROM item) that the vocabulary lacks.

    Lexemes start with the account tag ("#" and 3 hex digits); a marked one
    has the mark (" ") after it.
    """
    return f"""INSERT INTO contacts_searchword (lexeme)
SELECT DISTINCT word.lexeme
  FROM {lexemes} AS word
 WHERE substr(word.lexeme, 5, 1) <> ' '
   AND NOT EXISTS (SELECT FROM contacts_searchword AS known WHERE known.lexeme = word.lexeme)"""


def trigger_function(name: str, lexemes: str) -> str:
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{add_words(lexemes)};
RETURN NULL;
END
$$;
"""


TRIGGERS = (
    trigger_function("contacts_add_search_words", "written AS contact, unnest(contact.search_vector)")
    + trigger_function("contacts_add_search_words_of_row", "unnest(NEW.search_vector)")
    + """
CREATE TRIGGER contacts_search_words_inserted
    AFTER INSERT ON contacts_contact REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION contacts_add_search_words();

CREATE TRIGGER contacts_search_words_updated
    AFTER UPDATE OF search_vector ON contacts_contact
    FOR EACH ROW WHEN (NEW.search_vector IS DISTINCT FROM OLD.search_vector)
    EXECUTE FUNCTION contacts_add_search_words_of_row();
"""
)

DROP_TRIGGERS = """
DROP TRIGGER contacts_search_words_updated ON contacts_contact;
DROP TRIGGER contacts_search_words_inserted ON contacts_contact;
DROP FUNCTION contacts_add_search_words_of_row();
DROP FUNCTION contacts_add_search_words();
"""

BACKFILL = add_words("contacts_contact AS contact, unnest(contact.search_vector)")


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0009_search_words_keep_marks"),
    ]

    operations = [
        migrations.CreateModel(
            name="SearchWord",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("lexeme", models.TextField(db_collation="C")),
            ],
            options={
                "indexes": [models.Index(fields=["lexeme"], name="search_word_lexeme")],
            },
        ),
        migrations.RunSQL(TRIGGERS, DROP_TRIGGERS),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]
