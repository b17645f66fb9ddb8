"""Store a name word written with separators joined as well (``O'Brien`` → ``obrien``).

contacts/search.py now stores ``Jean-Luc O'Brien`` as ``jean luc jeanluc o
brien obrien`` and asks a term such as ``o'b`` as ``ob:*`` instead of ``'o' &
'b':*``, whose one-letter prefix walked every lexeme of the account starting
with "b" (34–78 ms on the benchmark's 1M-contact account, against ~1 ms now).

Only contacts whose name holds a character other than an ASCII letter, digit
or space can gain a lexeme; their vectors are rewritten with
``search_vector()`` in Python (folding accents needs it; the embedded server
has no ``unaccent``), a batch of contacts per transaction (keyset on the
primary key), so a table of millions is never rewritten in one transaction
and a run that stops half-way starts over cheaply: a vector already as
search.py writes it is left alone. Lexemes are only added, so the search index
keeps no entries of lexemes that no row has any more and needs no rebuild.

The vectors are the ones ``contacts.search.search_vector`` writes when the
migration runs, not a copy frozen here: a later change of what is stored
comes with a migration of its own, and contacts/tests/test_search.py runs
this one against today's code.
"""

from django.db import migrations

from contacts.search import rewrite_search_vectors


def join_name_words(apps, schema_editor):
    rewrite_search_vectors(schema_editor.connection, "first_name ~ '[^A-Za-z0-9 ]' OR last_name ~ '[^A-Za-z0-9 ]'")


class Migration(migrations.Migration):
    # Each batch commits on its own.
    atomic = False

    dependencies = [
        ("contacts", "0007_phone_search_statistics"),
    ]

    operations = [
        # Backwards, the joined lexemes stay: to the search before this
        # migration they are one more word of the contact's.
        migrations.RunPython(join_name_words, migrations.RunPython.noop, elidable=True),
    ]
