{
  "targets": [
    {
      "target_name": "mixroom_srtp",
      "sources": ["srtp.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS"]
    }
  ]
}
