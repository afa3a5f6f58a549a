#!/usr/bin/env python3
"""The access log's table alone, before and after migration 000017 (SQLite): the same rows
inserted into each schema, one transaction per batch (8 rows by default: the access-log writer's
batches are a few rows; a large batch shows the b-trees without the commits), every row with a fresh v7-like id and the indexes of its schema. Prints the time
per row and the file size. Python's sqlite3, not the server's SQLite build, so read the ratio,
not the absolute figures.

    python3 docs/bench/round8/audit_btrees.py [rows] [rows per transaction]
"""
import os, sqlite3, sys, tempfile, time, uuid


def v7_like():
    """Time first, as `Uuid::now_v7()`: new ids go to the end of the `id` index."""
    h = f"{time.time_ns() // 1_000_000:012x}" + uuid.uuid4().hex[12:]
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

COLUMNS = """seq {seq} PRIMARY KEY NOT NULL, id TEXT NOT NULL UNIQUE, at TIMESTAMP NOT NULL,
    request_id TEXT NOT NULL, actor_sub TEXT NOT NULL, actor_org TEXT NOT NULL, actor_roles TEXT NOT NULL,
    client_id TEXT, action TEXT NOT NULL, resource_type TEXT NOT NULL, resource_id TEXT, patient_id TEXT,
    outcome TEXT NOT NULL, status INTEGER NOT NULL, purpose TEXT NOT NULL, reason TEXT,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL"""
COMMON = ["CREATE INDEX p ON audit_events (patient_id, seq)", "CREATE INDEX a ON audit_events (actor_sub, seq)",
          "CREATE INDEX t ON audit_events (at)"]
SCHEMAS = {
    "before (000003)": [f"CREATE TABLE audit_events ({COLUMNS.format(seq='BIGINT')})", *COMMON,
                        "CREATE INDEX u ON audit_events (purpose, seq)"],
    "after (000017)": [f"CREATE TABLE audit_events ({COLUMNS.format(seq='INTEGER')})", *COMMON,
                       "CREATE INDEX b ON audit_events (seq) WHERE purpose = 'break_glass'"],
}


def run(name, ddl, rows, batch, actors, patients):
    path = os.path.join(tempfile.mkdtemp(), "a.db")
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode = WAL")
    c.execute("PRAGMA synchronous = NORMAL")
    for s in ddl:
        c.execute(s)
    sql = "INSERT INTO audit_events VALUES (" + ",".join("?" * 18) + ")"
    start = time.perf_counter()
    seq = 0
    while seq < rows:
        c.execute("BEGIN IMMEDIATE")
        for _ in range(batch):
            seq += 1
            c.execute(sql, (seq, v7_like(), f"2026-11-25 03:{seq // 60000 % 60:02}:{seq // 1000 % 60:02}.{seq % 1000:06}",
                            "r" * 32, actors[seq % len(actors)], "org", '["physician"]', None, "case.read", "case",
                            patients[seq % len(patients)], patients[seq % len(patients)], "success", 200,
                            "break_glass" if seq % 1000 == 0 else "normal", None, "0" * 64, "f" * 64))
        c.execute("COMMIT")
    took = time.perf_counter() - start
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = os.path.getsize(path)
    c.close()
    print(f"{name:16} {rows:>8} rows, {batch:>4} a transaction  {1e6 * took / rows:6.1f} µs/row  file {size / 1e6:6.1f} MB")
    return took, size


def main():
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    actors = [str(uuid.uuid4()) for _ in range(3000)]
    patients = [str(uuid.uuid4()) for _ in range(5000)]
    out = {}
    for _ in range(3):  # alternate, three times each
        for name, ddl in SCHEMAS.items():
            out.setdefault(name, []).append(run(name, ddl, rows, batch, actors, patients))
    (tb, sb), (ta, sa) = [sorted(v)[1] for v in out.values()]
    print(f"median time per row after / before: {ta / tb:.2f}; file size after / before: {sa / sb:.2f}")


if __name__ == "__main__":
    main()
