"""Keep ContactList.member_count exact with statement-level triggers.

Every INSERT into or DELETE from the membership table, whatever issued it
(the API's bulk add, the cascade from a deleted contact, the admin, an import),
adjusts the counts of the lists it touched by the number of rows it touched,
in the same transaction. The list rows are locked in id order first, so two
statements touching the same lists in different orders cannot deadlock.
"""

from django.db import migrations

FUNCTION = """
CREATE FUNCTION lists_adjust_member_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM lists_contactlist
     WHERE id IN (SELECT contact_list_id FROM changed_rows) ORDER BY id FOR UPDATE;
    UPDATE lists_contactlist l
       SET member_count = l.member_count + CASE TG_OP WHEN 'INSERT' THEN d.n ELSE -d.n END
      FROM (SELECT contact_list_id, count(*) AS n FROM changed_rows GROUP BY contact_list_id) d
     WHERE l.id = d.contact_list_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER membership_count_insert AFTER INSERT ON lists_listmembership
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION lists_adjust_member_count();
CREATE TRIGGER membership_count_delete AFTER DELETE ON lists_listmembership
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION lists_adjust_member_count();
"""

REVERSE = """
DROP TRIGGER IF EXISTS membership_count_insert ON lists_listmembership;
DROP TRIGGER IF EXISTS membership_count_delete ON lists_listmembership;
DROP FUNCTION IF EXISTS lists_adjust_member_count();
"""


class Migration(migrations.Migration):
    dependencies = [("lists", "0001_initial")]

    operations = [migrations.RunSQL(FUNCTION, REVERSE)]
