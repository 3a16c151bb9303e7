#!/usr/bin/env python3
"""Summarizes a cubecl persistent store and writes a slim copy of its autotune results.

    python3 scripts/gpu/cubecl-store.py STORE.db [SLIM.db]

cubecl 0.11 keeps one database per environment (<cache>/cubecl/<environment>.db, written by Turso in the SQLite
file format, table entries(namespace, key, value, origin)). This prints one JSON line per namespace (entries,
bytes) and every autotune key as text. SLIM.db gets the same schema with only the autotune namespaces
(autotune/...): the tuning results, small enough to keep in the repository; the compiled kernels (most of the file
with [compilation] cache on) are rebuilt by NVRTC on any machine. The store may be in use: it is read from a copy
(with its write-ahead log).
"""
import json
import os
import shutil
import sqlite3
import sys
import tempfile


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    src = sys.argv[1]
    tmp = tempfile.mkdtemp()
    copy = os.path.join(tmp, "store.db")
    shutil.copy(src, copy)
    if os.path.exists(src + "-wal"):
        shutil.copy(src + "-wal", copy + "-wal")
    db = sqlite3.connect(copy)
    for ns, n, size in db.execute(
            "select namespace, count(*), sum(length(key) + length(value)) from entries group by namespace order by namespace"):
        print(json.dumps({"namespace": ns, "entries": n, "bytes": size}))
    for ns, key in db.execute("select namespace, key from entries where namespace like 'autotune/%' order by namespace"):
        text = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        print(json.dumps({"autotune_key": ns, "key": text[:400]}))
    if len(sys.argv) == 3:
        slim = sqlite3.connect(sys.argv[2])
        for (sql,) in db.execute("select sql from sqlite_master where type = 'table'"):
            slim.execute(sql)
        for row in db.execute("select k, v from meta"):
            slim.execute("insert into meta values (?, ?)", row)
        rows = db.execute("select namespace, key, value, origin from entries where namespace like 'autotune/%'").fetchall()
        slim.executemany("insert into entries values (?, ?, ?, ?)", rows)
        slim.commit()
        slim.close()
        print(json.dumps({"slim": sys.argv[2], "autotune_entries": len(rows), "bytes": os.path.getsize(sys.argv[2])}))
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
