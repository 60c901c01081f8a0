{
  description = "Loft: a client-only uploader that keeps a Nix binary cache in S3-compatible storage";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      # Loft reads the store through the nix-daemon and watches it with inotify: Linux only.
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems =
        f:
        lib.genAttrs systems (
          system:
          f (
            import nixpkgs {
              inherit system;
              overlays = [ self.overlays.default ];
            }
          )
        );
    in
    {
      overlays.default = final: _prev: {
        loft = final.callPackage ./nix/package.nix { };
      };

      packages = forAllSystems (pkgs: {
        inherit (pkgs) loft;
        default = pkgs.loft;
      });

      # The module alone: its `package` defaults to `pkgs.loft` when the system applies
      # overlays.default, else to Loft built from this flake with the system's nixpkgs. It
      # sets no `nixpkgs.*` option, so it also works where the package set is read-only
      # (nixpkgs' readOnlyPkgs module, as runNixOSTest uses with `node.pkgs`).
      nixosModules = {
        loft = {
          imports = [ ./nix/module.nix ];
        };
        default = self.nixosModules.loft;
      };

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            pkgs.nodejs_24
            pkgs.python3
            pkgs.xz
            pkgs.nix
          ];
        };
      });

      checks = forAllSystems (
        pkgs:
        let
          tests = import ./nix/tests/checks.nix {
            inherit pkgs;
            nixosSystem = lib.nixosSystem;
          };
        in
        {
          inherit (tests) nix-lib module-eval;
          vm = import ./nix/tests/vm.nix { inherit pkgs; };
        }
      );
    };
}
