#!/usr/bin/python3
# A client that sends requests to the helper and never reads a reply (issue 9, attack 4). Run as
# an ordinary user with one JSON spec as its argument:
#
#   {"socket": S, "connections": 4, "requests": 25000, "frame": HEX, "startMs": 200}
#
# It opens `connections` connections, waits `startMs`, then on each writes the request `frame`
# `requests` times, one at a time: the next only once the helper has read the previous one (the
# socket's unread output, TIOCOUTQ/SIOCOUTQ, is 0), so that the helper never has more than one
# request of it queued and never has a reason to close the connection but the replies piling up.
# Not one byte of the replies is read. JSON lines on stdout: {"event":"opened","count":N},
# {"event":"written","i":I} when all of a connection's requests were read by the helper, and
# {"event":"closed","i":I} when the helper closed it first.
import array
import fcntl
import json
import socket
import sys
import termios
import time


def say(event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def unread_output(sock):
    """Bytes written on sock that the other end has not read yet."""
    buf = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, buf, True)
    return buf[0]


def main():
    spec = json.loads(sys.argv[1])
    frame = bytes.fromhex(spec["frame"])
    socks = []
    for _ in range(spec["connections"]):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(spec["socket"])
        s.setblocking(False)
        socks.append(s)
    say({"event": "opened", "count": len(socks)})
    time.sleep(spec.get("startMs", 200) / 1000)
    left = [spec["requests"]] * len(socks)
    running = set(range(len(socks)))
    while running:
        progressed = False
        for i in sorted(running):
            s = socks[i]
            try:
                if unread_output(s) > 0:
                    continue
                if left[i] == 0:
                    running.discard(i)
                    say({"event": "written", "i": i})
                    continue
                s.send(frame)
                left[i] -= 1
                progressed = True
            except BlockingIOError:
                continue
            except OSError:
                running.discard(i)
                say({"event": "closed", "i": i})
        if not progressed:
            time.sleep(0.0002)
    # Hold the connections (and their unread replies) until stdin ends.
    sys.stdin.read()


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # reported to the test, which fails with it
        say({"event": "error", "message": repr(error)})
        sys.exit(1)
