{
  "targets": [
    {
      "target_name": "devmapper",
      "sources": [
        "<!@(node -p \"require('fs').readdirSync('src-native').filter((f) => f.endsWith('.cc')).sort().map((f) => 'src-native/' + f).join(' ')\")"
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
