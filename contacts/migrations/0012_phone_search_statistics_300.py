"""300-bucket statistics for the phone search columns, instead of 0007's 1,000.

ANALYZE samples 300 rows per unit of the largest statistics target of the
table, and computes every column's statistics over that sample. At 1,000 it
took 300,000 rows, which at the benchmark's 1.9M contacts is a read of every
page of the table: 8.5 s of CPU per ANALYZE of contacts_contact, against
2.4 s at 300. Autovacuum analyzes the table after every 10% of it changes,
so a 1M-row import paid for one or two of them while it ran.

300 buckets still see a rare phone prefix as rare, which is what 0007 was
for: over 300 phone searches of the benchmark's 1M-contact account (last
four digits of its phones, national prefixes, "+" prefixes, random digits),
299 kept the same plan, and the other one walked the listing index instead
of the phone indexes, reading 2,257 buffers instead of 1,638. The most any
of them read was 2,257 against 1,644 at 1,000 buckets.
"""

from django.db import migrations

STATISTICS = 300

_COLUMNS = [
    "ALTER TABLE contacts_contact ALTER COLUMN phone_digits SET STATISTICS {}",
    "ALTER TABLE contacts_contact ALTER COLUMN phone_national SET STATISTICS {}",
    # The expression reverse(phone_digits), the index's second column.
    "ALTER INDEX contact_phone_reversed ALTER COLUMN 2 SET STATISTICS {}",
]


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0011_search_words_distinct_first"),
    ]

    operations = [
        migrations.RunSQL(
            [statement.format(STATISTICS) for statement in _COLUMNS] + ["ANALYZE contacts_contact"],
            [statement.format(1000) for statement in _COLUMNS],
        ),
    ]
