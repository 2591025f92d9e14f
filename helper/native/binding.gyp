{
  "targets": [
    {
      "target_name": "peercred",
      "sources": ["peercred.c", "flock.c", "fd-arg.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-std=gnu11"]
    }
  ]
}
