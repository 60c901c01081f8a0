# The flake's cheap checks (the VM test is ./vm.nix):
#
# - nix-lib: the pure tests of ../lib.nix (./pure.nix), and every generated loft.toml in
#   ./cases.nix read by the packaged Loft's own config loader (./check-toml.mjs).
# - module-eval: the module evaluated by the real NixOS module system; the rendered
#   loft.service must carry the credentials, identity and hardening, the post-build hook must
#   reach nix.conf, and the assertions must refuse a cache path outside /var/lib/loft.
{ pkgs, nixosSystem }:
let
  inherit (pkgs) lib;
  pure = import ./pure.nix;
  cases = import ./cases.nix;

  system =
    loft:
    (nixosSystem {
      modules = [
        ../module.nix
        {
          nixpkgs.pkgs = pkgs;
          boot.isContainer = true;
          system.stateVersion = lib.trivial.release;
          services.loft = {
            enable = true;
            s3 = {
              bucket = "nix-cache";
              endpoint = "http://garage.example.internal:3900";
              accessKeyFile = "/run/secrets/s3-access-key";
              secretKeyFile = "/run/secrets/s3-secret-key";
              extraHeadersFile."CF-Access-Client-Secret" = "/run/secrets/cf-access-secret";
            };
            signingKeyPath = "/run/secrets/nix-signing-key";
            postBuildHook.enable = true;
          } // loft;
        }
      ];
    }).config;

  good = system { };
  bad = system { localCachePath = "/srv/loft/cache.db"; };
  failed = config: map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
  goodFailures = failed good;
  badFailures = failed bad;
in
{
  nix-lib =
    pkgs.runCommand "loft-nix-lib-tests"
      {
        nativeBuildInputs = [ pkgs.nodejs ];
        casesJson = builtins.toJSON cases;
        pureJson = builtins.toJSON pure;
        passAsFile = [
          "casesJson"
          "pureJson"
        ];
      }
      ''
        node -e '
          const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
          if (r.count === 0 || r.failures.length > 0) {
            console.error(JSON.stringify(r.failures, null, 2));
            process.exit(1);
          }
          console.log(`lib.nix: ''${r.count} tests passed`);
        ' "$pureJsonPath"
        node ${./check-toml.mjs} "$casesJsonPath" ${pkgs.loft}/lib/node_modules/loft
        touch $out
      '';

  module-eval =
    pkgs.runCommand "loft-module-eval"
      {
        unit = good.systemd.units."loft.service".text;
        nixConf = good.environment.etc."nix/nix.conf".source;
        goodFailures = builtins.toJSON goodFailures;
        badFailures = builtins.toJSON badFailures;
        hook = good.nix.settings.post-build-hook;
        passAsFile = [ "unit" ];
      }
      ''
        fail() { echo "module-eval: $*" >&2; exit 1; }
        [ "$goodFailures" = "[]" ] || fail "assertions failed for a valid configuration: $goodFailures"
        grep -q 'localCachePath = \\"/srv/loft/cache.db\\"' <<<"$badFailures" \
          || fail "no assertion refused localCachePath outside /var/lib/loft: $badFailures"
        for line in \
          'DynamicUser=true' 'StateDirectory=loft' 'StateDirectory=loft/inbox' 'UMask=0077' \
          'ProtectSystem=strict' 'ProtectHome=true' 'PrivateTmp=true' 'NoNewPrivileges=true' \
          'RestrictAddressFamilies=AF_INET' 'RestrictAddressFamilies=AF_INET6' 'RestrictAddressFamilies=AF_UNIX' \
          'SystemCallFilter=@system-service' 'SystemCallFilter=~@privileged' 'Restart=on-failure' \
          'KillSignal=SIGTERM' 'KillMode=mixed' 'TimeoutStopSec=5min' \
          'LoadCredential=s3-access-key:/run/secrets/s3-access-key' \
          'LoadCredential=s3-secret-key:/run/secrets/s3-secret-key' \
          'LoadCredential=extra-header-CF-Access-Client-Secret:/run/secrets/cf-access-secret' \
          'LoadCredential=signing-key:/run/secrets/nix-signing-key' \
          'After=network-online.target nix-daemon.socket' 'Wants=network-online.target'; do
          grep -qxF "$line" "$unitPath" || fail "loft.service lacks the line: $line"
        done
        if grep -q 'MemoryDenyWriteExecute=true' "$unitPath"; then fail "MemoryDenyWriteExecute breaks Node's JIT"; fi
        grep -qxF "post-build-hook = $hook" "$nixConf" || fail "nix.conf lacks post-build-hook = $hook"
        cp "$unitPath" $out
      '';
}
