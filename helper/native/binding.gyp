{
  "targets": [
    {
      "target_name": "peercred",
      "sources": ["peercred.c", "flock.c", "fd-arg.c", "terminal.c", "datagram.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-std=gnu11"]
    }
  ]
}
