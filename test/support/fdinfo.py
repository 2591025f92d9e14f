"""What /proc says about this process's fds, for the fd-passing test peers (fd-client.py, fd-peer.py)."""


def iff(fd):
    """The tun device fd is attached to (fdinfo's `iff:`), or None for anything else."""
    with open(f"/proc/self/fdinfo/{fd}") as info:
        for line in info:
            if line.startswith("iff:"):
                return line.split()[1]
    return None
