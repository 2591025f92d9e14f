{
  "targets": [
    {
      "target_name": "peercred",
      "sources": ["peercred.c", "flock.c", "fd-arg.c", "terminal.c", "datagram.c", "tap.c", "fdpass.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-std=gnu11"]
    },
    {
      "target_name": "fdpass",
      "sources": ["fdpass-main.c", "fdpass.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-std=gnu11"]
    }
  ]
}
