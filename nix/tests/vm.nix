# NixOS VM test: Loft as the module deploys it, end to end. A server runs Garage (S3) and
# services.loft with secrets written at run time (as sops-nix or agenix would), builds a
# two-path closure and must get it uploaded and signed, by the store watcher and through the
# post-build hook; a client with an empty store then substitutes the closure over HTTP with
# signatures required, refusing it while the cache's key is not trusted.
#
#   nix build .#checks.x86_64-linux.vm      (needs nixpkgs, KVM and network for the inputs)
#
# Written against nixpkgs' runNixOSTest and services.garage; it could not be run where it
# was written (Debian's Nix 2.8, no nixpkgs), see the README.
{ pkgs }:
let
  bucket = "loft-cache";
  # Garage key ids are "GK" + 24 hex digits, secrets 64 hex digits. Test-only values.
  accessKey = "GK0123456789abcdef01234567";
  secretKey = "5d1c3b4a29f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e";
  headerSecret = "vm-header-secret-7f3a";
  webHost = "${bucket}.web.garage";
  keysDir = "/run/keys/loft";

  # Two store paths, one referring to the other, built from nothing (the VM is offline).
  closureNix = ''
    { salt }:
    let
      mk = name: script: derivation {
        inherit name;
        system = builtins.currentSystem;
        builder = "/bin/sh";
        args = [ "-c" script ];
      };
      dep = mk "loft-vm-dep-''${salt}" "echo dep ''${salt} > $out";
    in
    mk "loft-vm-top-''${salt}" "echo top ''${salt} uses ''${dep} > $out"
  '';
in
pkgs.testers.runNixOSTest {
  name = "loft";

  nodes = {
    server =
      { lib, pkgs, ... }:
      {
        imports = [ ../module.nix ];
        virtualisation.memorySize = 2048;
        virtualisation.diskSize = 4096;
        # Offline: no substituter to time out on.
        nix.settings.substituters = lib.mkForce [ ];
        networking.firewall.allowedTCPPorts = [ 3902 ];
        environment.etc."loft-vm/closure.nix".text = closureNix;
        environment.systemPackages = [ pkgs.curl ];

        services.garage = {
          enable = true;
          package = pkgs.garage_2 or pkgs.garage;
          settings = {
            replication_factor = 1;
            rpc_bind_addr = "[::]:3901";
            rpc_public_addr = "[::1]:3901";
            rpc_secret = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
            s3_api = {
              s3_region = "garage";
              api_bind_addr = "[::]:3900";
              root_domain = ".s3.garage";
            };
            # The cache is read over plain HTTP, as Nix clients read any binary cache.
            s3_web = {
              bind_addr = "[::]:3902";
              root_domain = ".web.garage";
              index = "index.html";
            };
          };
        };

        services.loft = {
          enable = true;
          s3 = {
            inherit bucket;
            region = "garage";
            endpoint = "http://localhost:3900";
            accessKeyFile = "${keysDir}/s3-access-key";
            secretKeyFile = "${keysDir}/s3-secret-key";
            extraHeaders."X-Loft-Inline" = "inline";
            extraHeadersFile."X-Loft-Secret" = "${keysDir}/x-loft-secret";
          };
          signingKeyPath = "${keysDir}/signing.sec";
          uploadThreads = 4;
          postBuildHook.enable = true;
          # A key this Loft does not know: it must warn and run.
          extraConfig.loft.vm_test_unknown_key = true;
        };
        # The secrets appear at run time (written by the test script, as a secrets manager
        # would at activation), so the service is started by hand once they exist.
        systemd.services.loft.wantedBy = lib.mkForce [ ];
      };

    client =
      { lib, nodes, ... }:
      {
        nix.settings.substituters = lib.mkForce [ ];
        networking.hosts.${nodes.server.networking.primaryIPAddress} = [ webHost ];
      };
  };

  testScript =
    { nodes, ... }:
    let
      loftUnit = nodes.server.systemd.services.loft.serviceConfig;
      version = nodes.server.services.loft.package.version;
    in
    ''
      def narinfo_url(path, host="localhost"):
          return f"http://{host}:3902/{path.removeprefix('/nix/store/')[:32]}.narinfo"

      def wait_uploaded(path):
          # Signed by the cache's key; the narinfo is written only after its NAR.
          server.wait_until_succeeds(
              f"curl -fsS -H 'Host: ${webHost}' {narinfo_url(path)} | grep -q '^Sig: loft-vm-1:'",
              timeout=180,
          )

      start_all()

      with subtest("Garage: one node, a bucket, a key, web access"):
          server.wait_for_unit("garage.service")
          server.wait_for_open_port(3901)
          node_id = server.succeed("garage node id 2>/dev/null").split("@")[0].strip()
          server.succeed(f"garage layout assign -z dc1 -c 1G {node_id}")
          server.succeed("garage layout apply --version 1")
          server.succeed("garage bucket create ${bucket}")
          server.succeed("garage key import --yes ${accessKey} ${secretKey}")
          server.succeed("garage bucket allow --read --write --owner ${bucket} --key ${accessKey}")
          server.succeed("garage bucket website --allow ${bucket}")
          server.wait_for_open_port(3900)
          server.wait_for_open_port(3902)

      with subtest("secrets exist only outside the store, readable by root only"):
          server.succeed("install -d -m 0700 ${keysDir}")
          # Trailing newlines, as secret files often have: the start script drops them.
          server.succeed("printf '%s\\n' ${accessKey} > ${keysDir}/s3-access-key")
          server.succeed("printf '%s\\n' ${secretKey} > ${keysDir}/s3-secret-key")
          server.succeed("printf '%s\\n' ${headerSecret} > ${keysDir}/x-loft-secret")
          server.succeed(
              "nix-store --generate-binary-cache-key loft-vm-1 ${keysDir}/signing.sec ${keysDir}/signing.pub"
          )
          server.succeed("chmod 0400 ${keysDir}/*")
          public_key = server.succeed("cat ${keysDir}/signing.pub").strip()

      with subtest("the service runs in its sandbox with the secrets in its environment only"):
          server.succeed("systemctl start loft.service")
          server.wait_for_unit("loft.service")
          pid = server.succeed("systemctl show -p MainPID --value loft.service").strip()
          assert pid != "0", "loft.service has no main process"
          assert server.succeed(f"stat -c %U /proc/{pid}").strip() != "root"
          env = server.succeed(f"tr '\\0' '\\n' < /proc/{pid}/environ").splitlines()
          assert "AWS_ACCESS_KEY_ID=${accessKey}" in env, "access key not exported"
          assert "LOFT_EXTRA_HEADER_X_LOFT_SECRET=${headerSecret}" in env, "header file not exported"
          # Neither the unit, its start script nor loft.toml holds a secret (grep: 1 = no
          # match; 2 would mean a file is missing and the check proved nothing).
          server.succeed(
              "grep -rlF -e ${secretKey} -e ${headerSecret} /etc/systemd/system/loft.service "
              "${loftUnit.ExecStart} /etc/loft/loft.toml; test $? -eq 1"
          )
          server.succeed("test -L /var/lib/loft && test -d /var/lib/private/loft/inbox")
          print(server.succeed("systemd-analyze security loft.service | tail -n 1"))

      with subtest("a build is uploaded with its closure and signed"):
          top = server.succeed("nix-build --no-out-link /etc/loft-vm/closure.nix --argstr salt one").strip()
          refs = server.succeed(f"nix-store -q --references {top}").split()
          assert len(refs) == 1, f"expected one reference, got {refs}"
          for path in [top] + refs:
              wait_uploaded(path)
          server.succeed(
              "curl -fsS -H 'Host: ${webHost}' http://localhost:3902/nix-cache-info | grep -qx 'StoreDir: /nix/store'"
          )
          server.succeed("test \"$(stat -c %U /var/lib/private/loft/cache.db)\" != root")

      with subtest("the root-run post-build hook queues builds for the service's user"):
          server.succeed("grep -q '^post-build-hook = ' /etc/nix/nix.conf")
          # With the service stopped, only the hook can record the build.
          server.succeed("systemctl stop loft.service")
          top2 = server.succeed("nix-build --no-out-link /etc/loft-vm/closure.nix --argstr salt two").strip()
          server.succeed("test -n \"$(ls -A /var/lib/private/loft/inbox)\"")
          server.succeed("systemctl start loft.service")
          wait_uploaded(top2)
          # The service (not root) could read and remove what the hook (root) wrote.
          server.wait_until_succeeds("test -z \"$(ls -A /var/lib/private/loft/inbox)\"", timeout=60)

      with subtest("a client substitutes the closure only when the cache's key is trusted"):
          client.wait_for_unit("multi-user.target")
          client.wait_until_succeeds("curl -fsS http://${webHost}:3902/nix-cache-info", timeout=60)
          client.succeed("nix-store --generate-binary-cache-key other-1 /tmp/other.sec /tmp/other.pub")
          other_key = client.succeed("cat /tmp/other.pub").strip()
          subst = "--option substituters http://${webHost}:3902 --option require-sigs true"
          client.fail(f"nix-store -r {top} {subst} --option trusted-public-keys '{other_key}'")
          client.fail(f"test -e {top}")
          client.succeed(f"nix-store -r {top} {subst} --option trusted-public-keys '{public_key}'")
          client.succeed(f"grep -q 'top one uses {refs[0]}' {top}")
          client.succeed(f"nix-store --verify-path {top} {refs[0]}")
          client.succeed(f"nix-store -r {top2} {subst} --option trusted-public-keys '{public_key}'")

      with subtest("loft-admin runs one-off commands as the service's user"):
          assert server.succeed("loft-admin --version").strip() == "loft ${version}"
          # A command that reads the signing key, from loft-admin's own credentials, also
          # while loft.service (whose credentials directory it cannot use) is stopped.
          server.succeed("loft-admin --prune --dry-run")
          server.succeed("systemctl stop loft.service")
          server.succeed("loft-admin --prune --dry-run")
          server.succeed("systemctl start loft.service")

      with subtest("a stop drains and is not a failure"):
          server.succeed("systemctl stop loft.service")
          server.fail("systemctl is-failed --quiet loft.service")
    '';
}
