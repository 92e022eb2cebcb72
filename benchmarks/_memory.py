"""Peak resident memory of the current process, for the benchmarks' child processes."""

import resource

__all__ = ["peak_rss_mb"]


def peak_rss_mb():
    """High-water mark of this process's resident memory, in MiB.

    Linux's ``VmHWM`` (``/proc/self/status``) belongs to the running program alone.
    ``ru_maxrss`` also keeps the parent's resident size at the fork that started a child
    (it survives ``exec``): a child started by a driver holding 2 GB reported 2 GB before
    doing anything, so a peak measured above a base taken after loading the data came
    out far too small. ``ru_maxrss`` is the fallback where ``/proc`` is missing.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
