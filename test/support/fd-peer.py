#!/usr/bin/python3
# The far end of an fd-passing test, not the project's own code: Python's socket.recvmsg with
# room for up to MAX fds, as any client of the helper could read a reply. One JSON spec argument:
#
#   {"connect": PATH} or {"fd": N}      the Unix stream socket to read (N: inherited), or
#   {"listen": PATH}                    listen there, print {"listening": true}, read the first caller
#   "expect": BYTES                     read until that many bytes came, or end of stream
#   "maxFds": MAX                       room for that many fds per recvmsg (default 8)
#   "delayMs": MS                       wait before the first read (so the sender's buffer fills)
#   "hold": true                        keep the fds received open after the report, until stdin ends
#   "send": {"data": HEX, "files": [PATH...]}   instead of reading: send data once, with those
#                                       files opened read-only as SCM_RIGHTS, then exit
#
# Prints one JSON object: {"total", "sha256", "fdsAt": [{"at": OFFSET, "targets": [readlink...],
# "iffs": [tun device or null...]}], "ctrunc": bool}: where in the stream each batch of fds
# arrived and what each fd is.
import array
import hashlib
import json
import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
from fdinfo import iff  # noqa: E402 (after the line above)

spec = json.loads(sys.argv[1])
if "connect" in spec:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(spec["connect"])
elif "listen" in spec:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(spec["listen"])
    server.listen(1)
    print(json.dumps({"listening": True}), flush=True)
    s, _ = server.accept()
else:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=spec["fd"])

if "send" in spec:
    fds = [os.open(p, os.O_RDONLY) for p in spec["send"]["files"]]
    data = bytes.fromhex(spec["send"]["data"])
    sent = s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else [])
    if sent < len(data):
        s.sendall(data[sent:])
    print(json.dumps({"sent": len(data)}), flush=True)
    sys.exit(0)

time.sleep(spec.get("delayMs", 0) / 1000)
expect = spec["expect"]
max_fds = spec.get("maxFds", 8)
digest = hashlib.sha256()
total = 0
fds_at = []
ctrunc = False
held = []



while total < expect:
    data, ancdata, flags, _ = s.recvmsg(1 << 16, socket.CMSG_SPACE(max_fds * 4))
    if flags & socket.MSG_CTRUNC:
        ctrunc = True
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - len(payload) % 4])
            fds_at.append({"at": total, "targets": [os.readlink(f"/proc/self/fd/{fd}") for fd in fds], "iffs": [iff(fd) for fd in fds]})
            held.extend(fds)
    if not data:
        break
    digest.update(data)
    total += len(data)
print(json.dumps({"total": total, "sha256": digest.hexdigest(), "fdsAt": fds_at, "ctrunc": ctrunc}), flush=True)
if spec.get("hold"):
    sys.stdin.read()
for fd in held:
    os.close(fd)
