"""The machine a process runs on, read from /proc/cpuinfo (imports nothing: the benchmarks' --help uses it too)."""

import platform


def _cpuinfo_lines(cpuinfo):
    try:
        with open(cpuinfo) as f:
            return f.readlines()
    except OSError:
        return []


def cpu_model(cpuinfo="/proc/cpuinfo"):
    """The CPU's model name (platform.processor() where the file has none)."""
    for line in _cpuinfo_lines(cpuinfo):
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The flags the first CPU reports, as a frozenset; None where the file has none (not Linux), so a caller can
    tell "no such flag" from "not known"."""
    for line in _cpuinfo_lines(cpuinfo):
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return None
