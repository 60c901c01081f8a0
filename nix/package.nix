# Loft as a Nix package, built offline from package-lock.json (every entry carries its
# registry URL and integrity hash, so importNpmLock fetches each tarball as a fixed-output
# derivation and no npmDepsHash has to be kept in sync).
{
  lib,
  buildNpmPackage,
  importNpmLock,
  nodejs_24,
  srcOnly,
  xz,
}:
let
  packageJson = lib.importJSON ../package.json;
  # Only what the build reads: editing tests, docs or Nix files does not rebuild Loft.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../package.json
      ../package-lock.json
      ../tsconfig.json
      ../bin
      ../src
      ../scripts/bundle.mjs
    ];
  };
  # The Node major Loft is tested with (CI runs 24 and 22; 22.15 is the oldest with zstd
  # in node:zlib). better-sqlite3 is compiled against this Node's headers (given below),
  # so it loads without a NODE_MODULE_VERSION mismatch; the install check proves it.
  nodejs = nodejs_24;
in
assert lib.assertMsg (lib.versionAtLeast nodejs.version "22.15") "Loft needs Node.js 22.15 or newer, got ${nodejs.version}";
buildNpmPackage {
  pname = "loft";
  inherit (packageJson) version;
  inherit src nodejs;

  npmDeps = importNpmLock { npmRoot = src; };
  npmConfigHook = importNpmLock.npmConfigHook;

  # better-sqlite3 tries a prebuilt download first, which the sandbox refuses,
  # then build with node-gyp (python3 comes with nodejs, the C++ compiler with stdenv).
  # Point node-gyp at the headers of the Node that will run Loft.
  npmRebuildFlags = [ "--nodedir=${srcOnly nodejs}" ];

  # `npm run build` compiles src/ into dist/src/ (tsc) and bundles the CLI into dist/bundle/
  # (esbuild, whose binary comes from the lock like any dependency); the install keeps bin/,
  # dist/src/, dist/bundle/, package.json and the production node_modules. xz compression
  # runs the `xz` program.
  makeWrapperArgs = [
    "--prefix"
    "PATH"
    ":"
    (lib.makeBinPath [ xz ])
  ];

  doInstallCheck = true;
  installCheckPhase = ''
    runHook preInstallCheck
    [ "$($out/bin/loft --version)" = "loft ${packageJson.version} (node ${nodejs.version})" ]
    # The bundle is installed with the workers it starts by URL, and without tsc's build stamp
    # (bin/loft.js would take a newer stamp for a stale bundle and run dist/src/).
    for f in main.js zstd-worker.js pack-worker.js; do
      [ -f $out/lib/node_modules/loft/dist/bundle/$f ]
    done
    [ ! -e $out/lib/node_modules/loft/dist/.tsbuildinfo ]
    # The native module loads, and zstd (node:zlib) works, under the Node that runs Loft.
    (cd $out/lib/node_modules/loft && ${lib.getExe nodejs} -e '
      const Database = require("better-sqlite3");
      const db = new Database(":memory:");
      if (db.prepare("select 41 + 1 as n").get().n !== 42) process.exit(1);
      db.close();
      const zlib = require("node:zlib");
      if (zlib.zstdDecompressSync(zlib.zstdCompressSync("loft")).toString() !== "loft") process.exit(1);
    ')
    grep -q ${lib.escapeShellArg "${xz}/bin"} $out/bin/loft
    runHook postInstallCheck
  '';

  passthru = {
    inherit nodejs;
  };

  meta = {
    description = "Client-only uploader that keeps a Nix binary cache in S3-compatible storage";
    license = lib.licenses.mit;
    mainProgram = "loft";
    platforms = lib.platforms.linux;
  };
}
