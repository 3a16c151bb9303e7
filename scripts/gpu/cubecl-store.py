#!/usr/bin/env python3
"""Summarizes a cubecl persistent store and writes a slim copy of its autotune results.

    python3 scripts/gpu/cubecl-store.py STORE.db [SLIM.db]
    python3 scripts/gpu/cubecl-store.py --records STORE.db     (needs the cbor2 package)

cubecl 0.11 keeps one database per environment (<cache>/cubecl/<environment>.db, written by Turso in the SQLite
file format, table entries(namespace, key, value, origin)). This prints one JSON line per namespace (entries,
bytes) and every autotune key as text. SLIM.db gets the same schema with only the autotune namespaces
(autotune/...): the tuning results, small enough to keep in the repository; the compiled kernels (most of the file
with [compilation] cache on) are rebuilt by NVRTC on any machine. The store may be in use: it is read from a copy
(with its write-ahead log).

--records reads what cubecl recorded of how the store was built (namespaces records/v1/*, CBOR): per session
(one process), each autotune key in the order tuned, with the second it began (since the session started), how
long it took and how many candidates it had; then the session's kernel compilations (count, sum, the last one's
second) and those after its last key ended: the key still in flight when the process stopped.
"""
import json
import os
import shutil
import sqlite3
import sys
import tempfile


def seconds(d):
    return d["secs"] + d["nanos"] / 1e9


def records(db):
    import collections
    import cbor2

    def load(ns):
        return [cbor2.loads(v) for (v,) in db.execute("select value from entries where namespace = ?", (ns,))]

    tunes, compiles = load("records/v1/autotune"), load("records/v1/compilation")
    for sess in sorted(load("records/v1/sessions"), key=lambda s: s["started_unix_ms"]):
        sid = sess["id"]
        mine = lambda rs: sorted((r for r in rs if r["stamp"]["session"] == sid), key=lambda r: r["stamp"]["seq"])
        ts, cs = mine(tunes), mine(compiles)
        print(f"session pid {sess['process']}, started {sess['started_unix_ms'] / 1000:.0f} (unix s), cubecl {sess['cubecl_version']}: "
              f"{len(ts)} keys tuned")
        for r in ts:
            rec = r["record"]
            trials = rec.get("trials", [])
            print(f"  key began at {seconds(r['stamp']['offset']):7.1f} s, took {seconds(rec['wall']):6.1f} s  "
                  f"{rec['table'].split('/')[-1]:50s} {len(trials):3d} candidates")
        if not cs:
            continue
        last = max((seconds(r["stamp"]["offset"]) + seconds(r["record"]["wall"]) for r in ts), default=0)
        after = [r for r in cs if seconds(r["stamp"]["offset"]) > last]
        took = sorted(seconds(r["record"]["duration"]) for r in after)
        print(f"  {len(cs)} kernel compilations, {sum(seconds(r['record']['duration']) for r in cs):.1f} s in all, the last at "
              f"{max(seconds(r['stamp']['offset']) for r in cs):.1f} s")
        if after:
            kinds = collections.Counter(r["record"]["kernel"].split("::")[-1] for r in after).most_common(3)
            print(f"  after the last key ended ({last:.1f} s), in the key still in flight: {len(after)} compilations, {sum(took):.1f} s (median {took[len(took) // 2]:.1f}, "
                  f"max {took[-1]:.1f} s): {kinds}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--records":
        db = sqlite3.connect(f"file:{sys.argv[2]}?mode=ro", uri=True)
        records(db)
        return
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
    try:  # keys are CBOR (cubecl 0.11): decoded where the cbor2 package is installed, else shown as text
        import cbor2
    except ImportError:
        cbor2 = None
    for ns, key in db.execute("select namespace, key from entries where namespace like 'autotune/%' order by namespace"):
        if cbor2 is not None:
            text = json.dumps(cbor2.loads(key), default=str)
        else:
            text = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        print(json.dumps({"autotune_key": ns, "key": text[:600]}))
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
