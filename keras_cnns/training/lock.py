"""One run per output directory: a lock file that a training run holds while it writes there.

``<output>/.lock`` is created atomically (``O_CREAT | O_EXCL``) and holds the holder's pid, host and start
time as JSON. A second run into the same directory is refused (:class:`OutputLocked`, naming the holder).
A lock whose holder is gone (same host, pid no longer alive: a run killed with SIGKILL) is taken over, so
rerunning a killed command still resumes from its checkpoints. A lock held from another host is never
taken over: its pid means nothing here; delete the file by hand if that run is known to be dead.
"""

import contextlib
import datetime
import json
import os
import socket

LOCK_FILENAME = ".lock"


class OutputLocked(OSError):
    """The output directory is held by another run; the message names the holder and what to do."""


def _alive(pid):
    """Whether a process with this pid exists on this host (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def read_holder(directory):
    """The holder recorded in ``directory``'s lock ({"pid", "host", "started"}), or None without a lock.
    An unreadable or half-written file gives {} (a holder that cannot be identified)."""
    try:
        with open(os.path.join(directory, LOCK_FILENAME)) as f:
            holder = json.load(f)
        return holder if isinstance(holder, dict) else {}
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def _describe(holder):
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {holder.get('started', '?')}"


def _is_stale(holder):
    if not holder or holder.get("host") != socket.gethostname():
        return False
    pid = holder.get("pid")
    return isinstance(pid, int) and pid != os.getpid() and not _alive(pid)


def acquire(directory):
    """Takes the lock of ``directory`` (created if missing) for this process; returns the lock path.

    Raises OutputLocked when a live run holds it. A stale lock (its process gone, this host) is removed and
    taken; two runs racing for a stale lock cannot both win, since the new file is created with O_EXCL.
    """
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, LOCK_FILENAME)
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                         "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")})
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = read_holder(directory)
            if holder is None:      # released in between: try again
                continue
            if _is_stale(holder):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                continue
            raise OutputLocked(f"{directory} is in use by another run ({_describe(holder)}); wait for it "
                               f"to finish, use another --output, or delete {path} if that run is dead.")
        with os.fdopen(fd, "w") as f:
            f.write(record)
        return path
    raise OutputLocked(f"{directory}: could not take the lock {path} (another run keeps taking it); "
                       "use another --output.")


def release(directory):
    """Removes ``directory``'s lock if this process holds it."""
    holder = read_holder(directory)
    if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(directory, LOCK_FILENAME))


@contextlib.contextmanager
def output_lock(directory):
    """Holds ``directory``'s lock for the ``with`` block, released on the way out (exceptions too)."""
    acquire(directory)
    try:
        yield
    finally:
        release(directory)
