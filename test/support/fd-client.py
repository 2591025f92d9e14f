#!/usr/bin/python3
# A client of the helper that is not the project's own: Python's socket.recvmsg with room for fds,
# as qemu's or any other program's reading of a fd-handoff reply would be. One JSON spec argument:
#
#   {"connect": PATH}                      the helper's Unix socket, or
#   {"spawn": [ARGV...], "via": "socketpair"|"pipes"}
#                                          run ARGV (a --stdio helper) with one end of a socketpair
#                                          as its stdin and stdout (as xkvm does over pkexec), or
#                                          with two pipes
#   "requests": [HEX...]                   frames to send, one at a time, each reply read in full
#   "maxFds": MAX                          room for that many fds per recvmsg (default 32)
#   "hold": true                           after the report keep the fds (and, unless "hangUp",
#                                          the connection) until a line comes on stdin, then close
#                                          the fds and print {"closed": true}
#   "hangUp": true                         close the connection right after the last reply
#
# Prints one JSON line: {"replies": [{"frame": HEX, "fds": [{"at", "iff", "target"}...]}...],
# "ctrunc": bool}; each fd's "at" is the offset in its reply frame where it arrived.
import array
import json
import os
import socket
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
from fdinfo import iff  # noqa: E402 (after the line above)

spec = json.loads(sys.argv[1])
max_fds = spec.get("maxFds", 32)
child = None
if "connect" in spec:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(spec["connect"])
    send = lambda data: s.sendall(data)
    def receive():
        data, anc, flags, _ = s.recvmsg(1 << 16, socket.CMSG_SPACE(max_fds * 4))
        return data, anc, flags
elif spec.get("via") == "socketpair":
    s, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    child = subprocess.Popen(spec["spawn"], stdin=theirs, stdout=theirs)
    theirs.close()
    send = lambda data: s.sendall(data)
    def receive():
        data, anc, flags, _ = s.recvmsg(1 << 16, socket.CMSG_SPACE(max_fds * 4))
        return data, anc, flags
else:
    to_child, from_child = os.pipe(), os.pipe()
    child = subprocess.Popen(spec["spawn"], stdin=to_child[0], stdout=from_child[1])
    os.close(to_child[0])
    os.close(from_child[1])
    s = None
    send = lambda data: os.write(to_child[1], data)
    def receive():
        return os.read(from_child[0], 1 << 16), [], 0




held = []
replies = []
ctrunc = False
pending = b""
for request in spec["requests"]:
    send(bytes.fromhex(request))
    frame = pending
    fds = []
    while len(frame) < 4 or len(frame) < 4 + int.from_bytes(frame[:4], "big"):
        data, anc, flags = receive()
        if flags & socket.MSG_CTRUNC:
            ctrunc = True
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                got = array.array("i")
                got.frombytes(payload[: len(payload) - len(payload) % 4])
                for fd in got:
                    fds.append({"at": len(frame), "iff": iff(fd), "target": os.readlink(f"/proc/self/fd/{fd}")})
                    held.append(fd)
        if not data:
            break
        frame += data
    size = 4 + int.from_bytes(frame[:4], "big") if len(frame) >= 4 else len(frame)
    frame, pending = frame[:size], frame[size:]
    replies.append({"frame": frame.hex(), "fds": fds})
if spec.get("hangUp"):
    if s is not None:
        s.close()
    else:
        os.close(to_child[1])
print(json.dumps({"replies": replies, "ctrunc": ctrunc}), flush=True)
if spec.get("hold"):
    sys.stdin.readline()
for fd in held:
    os.close(fd)
if spec.get("hold"):
    print(json.dumps({"closed": True}), flush=True)
    sys.stdin.readline()
