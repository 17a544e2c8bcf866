{
  "targets": [
    {
      "target_name": "devmapper",
      "sources": [
        "src-native/addon.cc",
        "src-native/dm_task.cc",
        "src-native/libdm_lock.cc",
        "src-native/native_error.cc",
        "src-native/sys_block.cc",
        "src-native/sys_loop.cc",
        "src-native/sys_mount.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "<!@(sh scripts/pkg-config-devmapper.sh --cflags)"],
      "libraries": ["<!@(sh scripts/pkg-config-devmapper.sh --libs)"]
    }
  ]
}
