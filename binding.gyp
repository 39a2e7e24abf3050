{
  "targets": [
    {
      "target_name": "criu_native",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/ptrace.cc",
        "native/inject.cc",
        "native/memory.cc",
        "native/pidfd.cc",
        "native/uffd.cc",
        "native/pagemap.cc",
        "native/process.cc",
        "native/misc.cc",
        "native/fdops.cc",
        "native/sockets.cc",
        "native/fdkinds.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-fno-exceptions"],
      "defines!": ["NAPI_DISABLE_CPP_EXCEPTIONS"],
      "defines+": ["NAPI_CPP_EXCEPTIONS"]
    },
    {
      "target_name": "stub",
      "type": "executable",
      "sources": ["native/stub/stub.c"],
      "cflags": ["-O2", "-static", "-nostdlib", "-fno-stack-protector", "-fno-pie", "-fno-asynchronous-unwind-tables"],
      "ldflags": ["-static", "-nostdlib", "-no-pie", "-Wl,--build-id=none"]
    },
    {
      "target_name": "tracker",
      "type": "executable",
      "sources": ["native/tracker/tracker.c"],
      "cflags": ["-O2"]
    },
    {
      "target_name": "guardian",
      "type": "executable",
      "sources": ["native/guardian/guardian.c"],
      "cflags": ["-O2"]
    }
  ]
}
