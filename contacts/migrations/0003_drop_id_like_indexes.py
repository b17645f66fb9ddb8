"""Drop the ``varchar_pattern_ops`` copies of the id indexes Django adds to text primary keys.

They serve ``LIKE 'prefix%'`` on ids, which nothing runs (lookups by id are
equality, keyset pages compare rows). Each was one more index to write per
imported contact and per activity event, and 35 MB at 300,000 contacts.
"""

from django.db import migrations

LIKE_INDEXES = {
    "contacts_contact_id_da1984c6_like": "contacts_contact",
    "contacts_activityevent_id_14908359_like": "contacts_activityevent",
}


class Migration(migrations.Migration):
    dependencies = [("contacts", "0002_preferences_activity_suppression")]

    operations = [
        migrations.RunSQL(
            sql=f"DROP INDEX IF EXISTS {name}",
            reverse_sql=f"CREATE INDEX IF NOT EXISTS {name} ON {table} (id varchar_pattern_ops)",
        )
        for name, table in LIKE_INDEXES.items()
    ]
