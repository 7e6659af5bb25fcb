"""The machine a process runs on, read from /proc/cpuinfo (imports nothing: the benchmarks' --help uses it too)."""

import platform


def _first_cpu(cpuinfo):
    """The first CPU's entry of a cpuinfo file as {lower-case key: value} (its lines up to the first blank one);
    {} where the file cannot be read."""
    try:
        with open(cpuinfo) as f:
            lines = f.readlines()
    except OSError:
        return {}
    fields = {}
    for line in lines:
        if not line.strip():
            break
        key, _, value = line.partition(":")
        fields[key.strip().lower()] = value.strip()
    return fields


def cpu_model(cpuinfo="/proc/cpuinfo"):
    """The CPU's model name (platform.processor() where the file has none)."""
    return _first_cpu(cpuinfo).get("model name") or platform.processor() or "unknown CPU"


def cpu_family(cpuinfo="/proc/cpuinfo"):
    """"family F model M" from the first CPU's entry (x86 Linux), None where the file does not say. A virtual
    machine's model name can be as bare as "AMD EPYC"; the family and model tell its generations apart (AMD's
    family 23 is Zen 1 and 2, 25 Zen 3 and 4, 26 Zen 5; Intel's Sapphire Rapids is family 6, model 143)."""
    fields = _first_cpu(cpuinfo)
    if "cpu family" not in fields or "model" not in fields:
        return None
    return f"family {fields['cpu family']} model {fields['model']}"


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The flags the first CPU reports, as a frozenset; None where the file has none (not Linux), so a caller can
    tell "no such flag" from "not known"."""
    flags = _first_cpu(cpuinfo).get("flags")
    return None if flags is None else frozenset(flags.split())
