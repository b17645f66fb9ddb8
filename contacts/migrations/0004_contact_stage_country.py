from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built without locking writes out: the table may hold millions of contacts.
    atomic = False

    dependencies = [("contacts", "0003_drop_id_like_indexes")]

    operations = [
        AddIndexConcurrently(
            model_name="contact",
            index=models.Index(
                "account", "lifecycle_stage", "country", "created_at", "id", name="contact_stage_country"
            ),
        ),
    ]
