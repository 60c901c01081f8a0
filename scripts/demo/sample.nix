# A small sample closure for the demo, built offline with /bin/sh (no nixpkgs needed):
# a library with a binary-ish blob, a tool that references it (through a file and a
# symlink), and an app on top. `salt` lets each run build fresh paths.
{ salt ? "demo" }:
let
  mk = name: script: derivation {
    inherit name salt;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" script ];
    PATH = "/usr/bin:/bin";
  };
  lib = mk "loft-demo-lib" ''
    mkdir -p $out/lib $out/share
    head -c 4000000 /dev/urandom > $out/lib/libdemo.so
    seq 1 200000 > $out/share/numbers.txt
  '';
  tool = mk "loft-demo-tool" ''
    mkdir -p $out/bin
    printf '#!/bin/sh\necho "demo tool using ${lib}"\n' > $out/bin/demo-tool
    chmod +x $out/bin/demo-tool
    ln -s ${lib}/lib/libdemo.so $out/bin/libdemo.so
  '';
in
mk "loft-demo-app" ''
  mkdir -p "$out/with spaces"
  echo "${tool}/bin/demo-tool" > "$out/with spaces/launcher"
  echo "app built with ${lib}" > $out/README
''
