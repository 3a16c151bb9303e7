#!/usr/bin/env python3
"""Summarizes a cubecl persistent store and writes a slim copy of its autotune results.

    python3 scripts/gpu/cubecl-store.py STORE.db [SLIM.db]
    python3 scripts/gpu/cubecl-store.py --records STORE.db

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


def cbor_loads(b):
    """cbor_loads decodes one CBOR item (RFC 8949: the subset cubecl's records use — integers, byte and text strings,
    arrays, maps, tags, simple values and floats), so the GPU host, which has no cbor2 package, can read the records."""
    import struct

    def item(i):
        ib = b[i]
        major, info = ib >> 5, ib & 31
        i += 1
        if major == 7:
            if info == 20:
                return False, i
            if info == 21:
                return True, i
            if info in (22, 23):
                return None, i
            if info == 25:
                return struct.unpack(">e", b[i:i + 2])[0], i + 2
            if info == 26:
                return struct.unpack(">f", b[i:i + 4])[0], i + 4
            if info == 27:
                return struct.unpack(">d", b[i:i + 8])[0], i + 8
            raise ValueError(f"cbor: simple value {info}")
        if info < 24:
            n = info
        elif info in (24, 25, 26, 27):
            size = 1 << (info - 24)
            n = int.from_bytes(b[i:i + size], "big")
            i += size
        elif info == 31 and major in (2, 3, 4, 5):
            n = None  # indefinite length, ended by 0xff
        else:
            raise ValueError(f"cbor: additional info {info}")
        if major == 0:
            return n, i
        if major == 1:
            return -1 - n, i
        if major in (2, 3):
            if n is None:
                parts = []
                while b[i] != 0xFF:
                    part, i = item(i)
                    parts.append(part)
                out = (b"" if major == 2 else "").join(parts)
                return out, i + 1
            raw = bytes(b[i:i + n])
            return (raw if major == 2 else raw.decode("utf-8", "replace")), i + n
        if major == 4:
            out = []
            while (n is None and b[i] != 0xFF) or (n is not None and len(out) < n):
                v, i = item(i)
                out.append(v)
            return out, (i + 1 if n is None else i)
        if major == 5:
            out = {}
            count = 0
            while (n is None and b[i] != 0xFF) or (n is not None and count < n):
                k, i = item(i)
                v, i = item(i)
                out[k if not isinstance(k, (list, dict)) else str(k)] = v
                count += 1
            return out, (i + 1 if n is None else i)
        if major == 6:
            v, i = item(i)
            if n == 2:  # a bignum (cubecl's 128-bit ids)
                return int.from_bytes(v, "big"), i
            if n == 3:
                return -1 - int.from_bytes(v, "big"), i
            return v, i  # another tag: its item
        raise ValueError(f"cbor: major type {major}")

    v, _ = item(0)
    return v


def cbor():
    """cbor is cbor2.loads where that package is installed, else the decoder above."""
    try:
        import cbor2
        return cbor2.loads
    except ImportError:
        return cbor_loads


def seconds(d):
    return d["secs"] + d["nanos"] / 1e9


def records(db):
    import collections
    loads = cbor()

    def load(ns):
        return [loads(v) for (v,) in db.execute("select value from entries where namespace = ?", (ns,))]

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


def opened(src, tmp):
    """opened is a connection to a copy of the store (with its write-ahead log): the store may be in use."""
    copy = os.path.join(tmp, "store.db")
    shutil.copy(src, copy)
    if os.path.exists(src + "-wal"):
        shutil.copy(src + "-wal", copy + "-wal")
    return sqlite3.connect(copy)


def main():
    records_only = len(sys.argv) == 3 and sys.argv[1] == "--records"
    if not records_only and len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    tmp = tempfile.mkdtemp()
    try:
        db = opened(sys.argv[-1] if records_only else sys.argv[1], tmp)
        if records_only:
            records(db)
        else:
            summary(db, sys.argv[2] if len(sys.argv) == 3 else None)
    finally:
        shutil.rmtree(tmp)


def summary(db, slim_path):
    for ns, n, size in db.execute(
            "select namespace, count(*), sum(length(key) + length(value)) from entries group by namespace order by namespace"):
        print(json.dumps({"namespace": ns, "entries": n, "bytes": size}))
    loads = cbor()  # keys are CBOR (cubecl 0.11)
    for ns, key in db.execute("select namespace, key from entries where namespace like 'autotune/%' order by namespace"):
        text = json.dumps(loads(key), default=str)
        print(json.dumps({"autotune_key": ns, "key": text[:600]}))
    if slim_path:
        slim = sqlite3.connect(slim_path)
        for (sql,) in db.execute("select sql from sqlite_master where type = 'table'"):
            slim.execute(sql)
        for row in db.execute("select k, v from meta"):
            slim.execute("insert into meta values (?, ?)", row)
        rows = db.execute("select namespace, key, value, origin from entries where namespace like 'autotune/%'").fetchall()
        slim.executemany("insert into entries values (?, ?, ?, ?)", rows)
        slim.commit()
        slim.close()
        print(json.dumps({"slim": slim_path, "autotune_entries": len(rows), "bytes": os.path.getsize(slim_path)}))


if __name__ == "__main__":
    main()
