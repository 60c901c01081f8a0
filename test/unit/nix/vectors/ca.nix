let
  mk = name: script: extra: derivation ({
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" script ];
    PATH = "/usr/bin:/bin";
    salt = "loft-vector-1";
  } // extra);
  ca = { __contentAddressed = true; outputHashMode = "recursive"; outputHashAlgo = "sha256"; };
  fod = mk "vec-fod" "echo x > $out" { outputHashMode = "flat"; outputHashAlgo = "sha256"; outputHash = "sha256-c8s4WKaHqElMozIwUwFigvPa051Cz2LKTnndoqrH2aw="; };
  ia = mk "vec-ia" "mkdir $out; cat ${fod} > $out/x" {};
  dep = mk "vec-dep" "echo \"quote\\\" tab\t\" > $out" ca;
in mk "vec-top" "mkdir $out $dev; echo ${dep} ${ia} > $out/ref; echo $out > $dev/d" (ca // { outputs = [ "out" "dev" ]; })
