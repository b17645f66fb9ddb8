"""Keep the combining marks of a word in it (पटेल, not "पट" and "ल").

contacts/search.py cut words at every character ``\\w`` does not match, and
the vowel signs of Indic scripts, Thai and others are combining marks it
does not: प्रियंका was stored as "पर", "य", "क" and "परयक". Each such name
added one-letter lexemes shared by thousands of contacts, and a search for
the whole name intersected their posting lists. Words now keep the marks
that ``fold()`` keeps; this rewrites the vectors of the contacts whose name
or email has a character outside ASCII (the only ones whose words can
change), as 0008 did, with ``rewrite_search_vectors()``. Lexemes no row has
any more leave the search index as VACUUM clears the old row versions.
"""

from django.db import migrations

from contacts.search import rewrite_search_vectors

NOT_ASCII = " OR ".join(
    f"octet_length({column}) <> char_length({column})" for column in ("first_name", "last_name", "email")
)


def keep_marks_in_words(apps, schema_editor):
    rewrite_search_vectors(schema_editor.connection, NOT_ASCII)


class Migration(migrations.Migration):
    # Each batch commits on its own.
    atomic = False

    dependencies = [
        ("contacts", "0008_search_joined_name_words"),
    ]

    operations = [
        # Backwards, the vectors stay as they are: the search before this
        # migration asks for the pieces and would miss such names until
        # their vectors were written again with that code.
        migrations.RunPython(keep_marks_in_words, migrations.RunPython.noop, elidable=True),
    ]
