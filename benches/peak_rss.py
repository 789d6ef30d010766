#!/usr/bin/env python3
"""Peak memory of a command: runs it, polls /proc/PID/status every 10 ms and
prints one JSON line with its wall time, exit status and peak resident
memory in KiB, split into anonymous (heap) and file-backed (mapped files:
page cache the kernel can drop or write back); `maxrss_kb` is VmHWM, what
/usr/bin/time reports.

    benches/peak_rss.py [--extra JSON] [--require-ok] -- CMD [ARG...]

--extra merges a JSON object into the output; --require-ok fails when the
command does. Used by benches/tag_vs_datatrove.sh and benches/dedup_memory.sh.
"""
import json
import subprocess
import sys
import time


def main(argv):
    extra, require_ok = {}, False
    while argv and argv[0] != "--":
        if argv[0] == "--extra":
            extra = json.loads(argv[1])
            argv = argv[2:]
        elif argv[0] == "--require-ok":
            require_ok = True
            argv = argv[1:]
        else:
            sys.exit(f"peak_rss.py: unknown option {argv[0]}")
    cmd = argv[1:]
    if not cmd:
        sys.exit("usage: peak_rss.py [--extra JSON] [--require-ok] -- CMD [ARG...]")
    peak = {"RssAnon": 0, "RssFile": 0, "VmHWM": 0}
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    while p.poll() is None:
        try:
            for line in open(f"/proc/{p.pid}/status"):
                k, _, v = line.partition(":")
                if k in peak:
                    peak[k] = max(peak[k], int(v.split()[0]))
        except OSError:
            break
        time.sleep(0.01)
    rc = p.wait()
    if require_ok and rc != 0:
        sys.exit(f"peak_rss.py: {cmd} exited with {rc}")
    out = dict(extra)
    out.update({
        "rc": rc,
        "wall_s": round(time.perf_counter() - t0, 2),
        "maxrss_kb": peak["VmHWM"],
        "anon_kb": peak["RssAnon"],
        "file_kb": peak["RssFile"],
    })
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
