#!/usr/bin/env python3
"""How long agents take to stop, as the engine saw it (issue 32's shutdown false failure).

    bench/stop-times.py watch LOG      # follow the engine's events; one line per stop into LOG
    bench/stop-times.py summary LOG    # the distribution of what LOG holds

`watch` follows `docker events` for containers: at each SIGTERM (`kill`, signal 15) it notes the
time; at the container's `die` it inspects it at once and writes the time from the signal to the
process's exit (`State.FinishedAt`, the engine's record of it) and to the `die` event (when the
engine had handled the exit, which is when an inspect first says "not running"). Run it beside
`bench/repeat.sh`; stop it with Ctrl-C. `summary` leaves crossbar out (it is stopped by removal,
not by the clean-shutdown check).
"""
import datetime
import json
import subprocess
import sys


def unix(rfc3339):
    base, _, frac = rfc3339.rstrip("Z").partition(".")
    t = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp() + float("0." + (frac or "0"))


def watch(path):
    events = subprocess.Popen(
        ["docker", "events", "--filter", "type=container", "--filter", "event=kill",
         "--filter", "event=die", "--format", "{{json .}}"],
        stdout=subprocess.PIPE, text=True)
    signalled = {}
    with open(path, "a", buffering=1) as out:
        for line in events.stdout:
            e = json.loads(line)
            attrs = e["Actor"]["Attributes"]
            name, t = attrs.get("name", ""), e["timeNano"] / 1e9
            if e["Action"] == "kill" and attrs.get("signal") == "15":
                signalled[name] = t
            elif e["Action"] == "die" and name in signalled:
                k = signalled.pop(name)
                r = subprocess.run(["docker", "inspect", "-f", "{{.State.FinishedAt}}", name],
                                   capture_output=True, text=True)
                try:
                    process = f"{unix(r.stdout.strip()) - k:.2f}"
                except ValueError:
                    process = "nan"
                when = datetime.datetime.fromtimestamp(k, datetime.timezone.utc)
                out.write(f"{when:%H:%M:%S} {name} exit={attrs.get('exitCode')} "
                          f"process_exit={process}s die_event={t - k:.2f}s\n")


def summary(path):
    process, lag = [], []
    for line in open(path):
        f = dict(p.split("=", 1) for p in line.split()[2:])
        if "crossbar" in line.split()[1] or f["process_exit"] == "nans":
            continue
        p, d = float(f["process_exit"].rstrip("s")), float(f["die_event"].rstrip("s"))
        process.append(p)
        lag.append(d - p)
    if not process:
        sys.exit("no agent stop in " + path)
    process.sort()
    lag.sort()
    n = len(process)
    print(f"{n} agent stops")
    print(f"process out after SIGTERM: median {process[n // 2]:.2f} s, "
          f"p99 {process[int(n * 0.99)]:.2f} s, max {process[-1]:.2f} s")
    print(f"engine's die event after the process's exit: median {lag[n // 2]:.3f} s, "
          f"max {lag[-1]:.3f} s")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("watch", "summary"):
        sys.exit(__doc__)
    {"watch": watch, "summary": summary}[sys.argv[1]](sys.argv[2])
