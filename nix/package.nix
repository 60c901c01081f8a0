# Loft as a Nix package, built offline from package-lock.json (every entry carries its
# registry URL and integrity hash, so importNpmLock fetches each tarball as a fixed-output
# derivation and no npmDepsHash has to be kept in sync).
{
  lib,
  buildNpmPackage,
  importNpmLock,
  nodejs,
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
    ];
  };
in
# Node: nixpkgs' default `nodejs` (an LTS release, 20 or newer). importNpmLock's config
# hook compiles native modules against the headers of that same default, so any other Node
# would need matching headers (given below) or better-sqlite3 fails to load with a
# NODE_MODULE_VERSION mismatch; the install check catches that.
assert lib.assertMsg (lib.versionAtLeast nodejs.version "20") "Loft needs Node.js 20 or newer, got ${nodejs.version}";
buildNpmPackage {
  pname = "loft";
  inherit (packageJson) version;
  inherit src nodejs;

  npmDeps = importNpmLock { npmRoot = src; };
  npmConfigHook = importNpmLock.npmConfigHook;

  # better-sqlite3 and zstd-napi try a prebuilt download first, which the sandbox refuses,
  # then build with node-gyp (python3 comes with nodejs, the C++ compiler with stdenv).
  # Point node-gyp at the headers of the Node that will run Loft.
  npmRebuildFlags = [ "--nodedir=${srcOnly nodejs}" ];

  # `npm run build` (tsc) compiles src/ into dist/src/; the install keeps bin/, dist/src/,
  # package.json and the production node_modules. xz compression runs the `xz` program.
  makeWrapperArgs = [
    "--prefix"
    "PATH"
    ":"
    (lib.makeBinPath [ xz ])
  ];

  doInstallCheck = true;
  installCheckPhase = ''
    runHook preInstallCheck
    [ "$($out/bin/loft --version)" = "loft ${packageJson.version}" ]
    # Both native modules load and work under the Node that runs Loft.
    (cd $out/lib/node_modules/loft && ${lib.getExe nodejs} -e '
      const Database = require("better-sqlite3");
      const db = new Database(":memory:");
      if (db.prepare("select 41 + 1 as n").get().n !== 42) process.exit(1);
      db.close();
      const zstd = require("zstd-napi");
      if (zstd.decompress(zstd.compress(Buffer.from("loft"))).toString() !== "loft") process.exit(1);
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
