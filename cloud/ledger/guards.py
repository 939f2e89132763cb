"""Whether the ledger's guards are in place: the append-only triggers and the roles' privileges.

A superuser can drop or disable the triggers, rewrite, and switch them back on; the hash chain
and the signatures show the rewrite, and this check shows the guard itself changed (a trigger
missing, disabled, not ENABLE ALWAYS, redefined, or joined by another; a rule or row-level
security on the table) and any privilege the least-privilege roles must not have (docs/security.md).
Read-only catalog queries: any role can run them.
"""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

EXPECTED_TRIGGERS = {
    "ledger_entries_no_update": "CREATE TRIGGER ledger_entries_no_update BEFORE DELETE OR UPDATE"
    " ON public.ledger_entries FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only()",
    "ledger_entries_no_truncate": "CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE"
    " ON public.ledger_entries FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only()",
}
GUARD_BODY = (
    "\nBEGIN\n    RAISE EXCEPTION 'ledger_entries is append-only: % refused', TG_OP\n"
    "        USING ERRCODE = 'insufficient_privilege';\nEND "
)
"""``ledger_entries_append_only``'s body as migration 0001 wrote it."""

APPEND_ONLY = ("ledger_entries", "audit_log")
FORBIDDEN_ON_APPEND_ONLY = ("UPDATE", "DELETE", "TRUNCATE", "TRIGGER", "REFERENCES")
WRITES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "TRIGGER", "REFERENCES")
SERVER_ACCESS = ("pg_execute_server_program", "pg_read_server_files", "pg_write_server_files")


async def check_guards(conn: AsyncConnection[TupleRow]) -> list[str]:
    """Problems with the guards, in words; an empty list when they are all in place."""
    return [*await _triggers(conn), *await _table_flags(conn), *await _roles(conn)]


async def _triggers(conn: AsyncConnection[TupleRow]) -> list[str]:
    cur = await conn.execute(
        "SELECT tgname, tgenabled, pg_get_triggerdef(oid) FROM pg_trigger"
        " WHERE tgrelid = 'ledger_entries'::regclass AND NOT tgisinternal"
    )
    found = {str(name): (str(state), str(text)) for name, state, text in await cur.fetchall()}
    problems = []
    for name, definition in EXPECTED_TRIGGERS.items():
        if name not in found:
            problems.append(f"trigger {name} on ledger_entries is missing")
            continue
        state, text = found[name]
        if state != "A":
            words = {"D": "disabled", "O": "not ENABLE ALWAYS (replica sessions skip it)"}
            problems.append(f"trigger {name} is {words.get(state, 'in state ' + state)}")
        if text != definition:
            problems.append(f"trigger {name} was redefined: {text}")
    problems.extend(
        f"unexpected trigger {name} on ledger_entries: {text}"
        for name, (_, text) in sorted(found.items())
        if name not in EXPECTED_TRIGGERS
    )
    cur = await conn.execute(
        "SELECT prosrc FROM pg_proc WHERE proname = 'ledger_entries_append_only'"
        " AND pronamespace = 'public'::regnamespace"
    )
    row = await cur.fetchone()
    if row is None:
        problems.append("function ledger_entries_append_only is missing")
    elif row[0] != GUARD_BODY:
        problems.append("function ledger_entries_append_only was redefined")
    return problems


async def _table_flags(conn: AsyncConnection[TupleRow]) -> list[str]:
    cur = await conn.execute(
        "SELECT c.relrowsecurity, (SELECT count(*) FROM pg_rewrite r WHERE r.ev_class = c.oid)"
        " FROM pg_class c WHERE c.oid = 'ledger_entries'::regclass"
    )
    row = await cur.fetchone()
    assert row is not None
    problems = []
    if row[0]:
        problems.append("row-level security is on for ledger_entries (rows can be hidden)")
    if row[1]:
        problems.append("ledger_entries has rewrite rules (writes can be redirected)")
    # nobody but the owner may change the append-only tables, whatever database_roles says
    # (grantee 0 is PUBLIC)
    cur = await conn.execute(
        "SELECT c.relname, CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)"
        " END, a.privilege_type FROM pg_class c, aclexplode(c.relacl) a"
        " WHERE c.oid = ANY(%s::regclass[]) AND a.grantee <> c.relowner"
        " AND a.privilege_type = ANY(%s) ORDER BY 1, 2, 3",
        (list(APPEND_ONLY), list(FORBIDDEN_ON_APPEND_ONLY)),
    )
    problems.extend(f"{who} was granted {p} on {t}" for t, who, p in await cur.fetchall())
    return problems


async def _roles(conn: AsyncConnection[TupleRow]) -> list[str]:
    cur = await conn.execute("SELECT to_regclass('database_roles') IS NOT NULL")
    row = await cur.fetchone()
    if row is None or not row[0]:
        return ["no least-privilege roles are recorded (migration 0060 not applied)"]
    cur = await conn.execute("SELECT purpose, role_name FROM database_roles ORDER BY purpose")
    roles = {str(p): str(r) for p, r in await cur.fetchall()}
    problems = []
    for purpose, role in sorted(roles.items()):
        problems.extend(await _role_attributes(conn, purpose, role))
    service, reader = roles.get("service"), roles.get("readonly")
    if service is not None:
        cur = await conn.execute(
            "SELECT t, p FROM unnest(%s::text[]) t, unnest(%s::text[]) p"
            " WHERE has_table_privilege(%s, t, p) ORDER BY 1, 2",
            (list(APPEND_ONLY), list(FORBIDDEN_ON_APPEND_ONLY), service),
        )
        problems.extend(
            f"the service role {service} may {p} on {t}" for t, p in await cur.fetchall()
        )
    if reader is not None:
        cur = await conn.execute(
            "SELECT c.relname, p FROM pg_class c, unnest(%s::text[]) p"
            " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')"
            " AND has_table_privilege(%s, c.oid, p) ORDER BY 1, 2",
            (list(WRITES), reader),
        )
        problems.extend(
            f"the read-only role {reader} may {p} on {t}" for t, p in await cur.fetchall()
        )
    return problems


async def _role_attributes(conn: AsyncConnection[TupleRow], purpose: str, role: str) -> list[str]:
    cur = await conn.execute(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication,"
        " pg_has_role(%s, (SELECT relowner FROM pg_class WHERE oid = 'ledger_entries'::regclass),"
        "   'MEMBER'),"
        " array(SELECT g FROM unnest(%s::text[]) g WHERE pg_has_role(%s, g, 'MEMBER'))"
        " FROM pg_roles WHERE rolname = %s",
        (role, list(SERVER_ACCESS), role, role),
    )
    row = await cur.fetchone()
    if row is None:
        return [f"the {purpose} role {role} does not exist"]
    flags = ("SUPERUSER", "CREATEROLE", "CREATEDB", "BYPASSRLS", "REPLICATION")
    problems = [
        f"the {purpose} role {role} has {f}" for f, on in zip(flags, row[:5], strict=True) if on
    ]
    if row[5]:
        problems.append(f"the {purpose} role {role} is (a member of) the ledger's owner")
    problems.extend(f"the {purpose} role {role} is a member of {g}" for g in row[6])
    return problems
