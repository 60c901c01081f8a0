# NixOS module: services.loft runs Loft as a hardened systemd service that uploads what the
# machine builds to an S3 binary cache. The logic (TOML, credentials, assertions, scripts)
# lives in ./lib.nix as pure functions with their own tests; this file declares the options
# and wires those functions into systemd and nix.conf.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;
  loftLib = import ./lib.nix;
  d = loftLib.defaults;
  cfg = config.services.loft;

  secretPath = types.addCheck types.str loftLib.isSecretPath // {
    description = "absolute path outside the Nix store (as a string)";
  };
  bucketName = types.addCheck types.str loftLib.isBucketName // {
    description = "S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)";
  };

  # A positive number of gigabytes (integer or fractional).
  positiveNumber = types.addCheck types.number (x: x > 0) // {
    description = "positive number";
  };

  configFile = pkgs.writeText "loft.toml" (loftLib.configText cfg);
  loftExe = "${cfg.package}/bin/loft";
  credentials = loftLib.credentials cfg;

  startScript = pkgs.writeShellScript "loft-start" (
    loftLib.startScript {
      inherit cfg configFile;
      loft = loftExe;
    }
  );
  hookScript = pkgs.writeShellScript "loft-post-build-hook" (
    loftLib.hookScript {
      inherit configFile;
      loft = loftExe;
      timeout = "${pkgs.coreutils}/bin/timeout";
    }
  );

  adminScript = pkgs.writeShellScriptBin "loft-admin" (
    loftLib.adminScript {
      inherit cfg;
      startScript = "${startScript}";
      systemdRun = "${config.systemd.package}/bin/systemd-run";
    }
  );

  option =
    default: type: description:
    mkOption { inherit default type description; };
in
{
  options.services.loft = {
    enable = lib.mkEnableOption "Loft, which uploads this machine's Nix store paths to an S3 binary cache";

    package = mkOption {
      type = types.package;
      default = pkgs.loft or (pkgs.callPackage ./package.nix { });
      defaultText = lib.literalExpression "pkgs.loft (from Loft's overlay), else Loft built from this flake with your nixpkgs";
      description = "The Loft package to run.";
    };

    debug = option d.debug types.bool "Log at debug level (runs Loft with `--debug`).";

    s3 = {
      bucket = mkOption {
        type = bucketName;
        example = "nix-cache";
        description = "Bucket that holds the cache.";
      };
      region =
        option d.s3.region types.str
          "Region used to sign requests; it must match the server (`garage` for a default Garage, `auto` for R2).";
      endpoint = mkOption {
        type = types.nullOr types.str;
        default = d.s3.endpoint;
        example = "http://garage.example.internal:3900";
        description = "Base URL of the S3 API (`http://` or `https://`). Null means AWS S3's regional endpoint.";
      };
      accessKeyFile = mkOption {
        type = types.nullOr secretPath;
        default = d.s3.accessKeyFile;
        example = "/run/secrets/loft-s3-access-key";
        description = ''
          File holding the S3 access key id. systemd reads it when the service starts
          (`LoadCredential=`), so it may be readable by root only; it never enters the Nix store.
          Set together with `secretKeyFile`; with both null Loft uses the standard AWS credential
          chain (for example `AWS_*` variables you set on the unit, or an instance role).
        '';
      };
      secretKeyFile = mkOption {
        type = types.nullOr secretPath;
        default = d.s3.secretKeyFile;
        example = "/run/secrets/loft-s3-secret-key";
        description = "File holding the S3 secret access key, read at service start like `accessKeyFile`.";
      };
      extraHeaders = mkOption {
        type = types.attrsOf types.str;
        default = d.s3.extraHeaders;
        example = {
          "CF-Access-Client-Id" = "0123.access";
        };
        description = ''
          HTTP headers added to every S3 request, after request signing (for authentication
          proxies such as Cloudflare Access). These values are written into loft.toml in the
          world-readable Nix store: put secrets in `extraHeadersFile` instead. Combined with
          `extraHeadersFile`; a header may appear in only one of the two.
        '';
      };
      extraHeadersFile = mkOption {
        type = types.attrsOf secretPath;
        default = d.s3.extraHeadersFile;
        example = {
          "CF-Access-Client-Secret" = "/run/secrets/cf-access-secret";
        };
        description = ''
          HTTP headers whose values are read from files when the service starts (for secrets
          from sops-nix or agenix). Each is handed to Loft as the environment variable
          `LOFT_EXTRA_HEADER_<NAME>` (hyphens become underscores, upper case), never through the
          Nix store. Names may use letters, digits and hyphens. Trailing newlines are dropped.
        '';
      };
    };

    localCachePath =
      option d.localCachePath types.str
        "SQLite file with Loft's local index and upload queue. It must lie under /var/lib/loft: the service's sandbox can write nowhere else.";
    uploadThreads =
      option d.uploadThreads (types.ints.between 1 256)
        "How many store paths are uploaded at once.";
    scanOnStartup =
      option d.scanOnStartup types.bool
        "Upload every valid store path missing from the cache once, when the service first starts (resumed after a crash, never repeated).";
    populateCacheOnStartup =
      option d.populateCacheOnStartup types.bool
        "Fill the local index from the bucket's narinfo listing at start, so later uploads skip what the cache holds without asking S3.";
    compression =
      option d.compression
        (types.enum [
          "zstd"
          "xz"
          "none"
        ])
        "How NARs are compressed.";

    signingKeyPath = mkOption {
      type = types.nullOr secretPath;
      default = d.signingKeyPath;
      example = "/run/secrets/nix-signing-key";
      description = ''
        Nix secret key file (from `nix-store --generate-binary-cache-key`) used to sign every
        uploaded narinfo. systemd reads it at service start (`LoadCredential=`), so it may be
        readable by root only. Null: narinfos are not signed.
      '';
    };
    signingKeyName = mkOption {
      type = types.nullOr types.str;
      default = d.signingKeyName;
      example = "nix-cache";
      description = "Name of the signing key. Optional: a Nix key file names itself, and when this is set it must match.";
    };
    skipSignedByKeys = mkOption {
      type = types.listOf types.str;
      default = d.skipSignedByKeys;
      example = [
        "cache.nixos.org-1"
        "nix-community.cachix.org-1"
      ];
      description = "Key names whose signature marks a path as coming from that upstream cache; such paths are not uploaded.";
    };

    pruning = {
      enable = option d.pruning.enable types.bool "Prune the cache on `pruning.schedule` while the service runs.";
      schedule = mkOption {
        type = types.str;
        default = d.pruning.schedule;
        example = "00:00";
        description = ''When to prune: an interval such as "24h" or "1h30m", or a daily local time "HH:MM" (append " UTC" for UTC).'';
      };
      retentionDays =
        option d.pruning.retentionDays (types.ints.between 1 36500)
          "Paths whose narinfo was written or refreshed within this many days are kept, with their closures.";
      maxSizeGb = mkOption {
        type = types.nullOr positiveNumber;
        default = d.pruning.maxSizeGb;
        example = 1000;
        description = "Size budget in GB (10^9 bytes); when the cache is larger, the least recently refreshed closures are deleted. Null: no size limit.";
      };
      targetPercentage =
        option d.pruning.targetPercentage (types.ints.between 1 100)
          "Percentage of `maxSizeGb` that a size-triggered prune shrinks the cache to (used only with `maxSizeGb`).";
    };

    extraConfig = mkOption {
      type = types.attrsOf types.anything;
      default = d.extraConfig;
      example = {
        loft.write_nar_listing = true;
      };
      description = ''
        Settings merged recursively into the generated loft.toml, for keys this module has no
        option for (Loft warns about keys it does not know, and runs). A value here replaces
        the generated one; `null` removes a generated key. Ends up in the world-readable Nix
        store, like the rest of loft.toml.
      '';
    };

    postBuildHook.enable = option d.postBuildHook.enable types.bool ''
      Set Nix's `post-build-hook` so each finished build's outputs are queued for the service at
      once (`loft --post-build-hook`). Without it the service still finds new paths by watching
      the store. The hook never fails a build.
    '';

    configFile = mkOption {
      type = types.path;
      readOnly = true;
      default = configFile;
      defaultText = lib.literalExpression "the generated loft.toml in the Nix store";
      description = "The generated loft.toml (also linked at /etc/loft/loft.toml), for running one-off Loft commands.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = loftLib.assertions cfg ++ [
      {
        assertion = config.nix.enable;
        message = "services.loft needs the Nix daemon (nix.enable = true): Loft reads the store through it.";
      }
    ];

    environment.etc."loft/loft.toml".source = configFile;
    # One-off commands as the service's user: `loft-admin --status`, `loft-admin --prune`.
    environment.systemPackages = [ adminScript ];

    nix.settings = lib.mkIf cfg.postBuildHook.enable {
      post-build-hook = hookScript;
    };

    systemd.services.loft = {
      description = "Loft: upload new Nix store paths to an S3 binary cache";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [
        "network-online.target"
        "nix-daemon.socket"
      ];

      serviceConfig = {
        Type = "exec";
        ExecStart = startScript;
        Restart = "on-failure";
        RestartSec = "10s";
        # 2: bad command line, 3: bad configuration. Retrying cannot fix either.
        RestartPreventExitStatus = [
          2
          3
        ];
        # Loft exits 130 after a signal; a stop is not a failure.
        SuccessExitStatus = [ 130 ];

        # The first SIGTERM makes Loft finish the uploads in flight; give them time. Only the
        # main process gets it (KillMode=mixed): the xz compressors it runs must keep going
        # until their stream ends, or the drain would fail the very uploads it waits for.
        KillSignal = "SIGTERM";
        KillMode = "mixed";
        TimeoutStopSec = lib.mkDefault "5min";

        LoadCredential = map (c: "${c.id}:${c.path}") credentials;

        # Identity and state. A throwaway user suffices: the store is world-readable, the
        # daemon socket accepts any user Nix's allowed-users admits, and the only writable
        # place is the state directory.
        DynamicUser = true;
        StateDirectory = loftLib.stateDirectories cfg;
        StateDirectoryMode = "0700";
        UMask = "0077";

        # Filesystem: everything read-only but the state directory; no homes, private /tmp.
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        DevicePolicy = "closed";
        ProtectProc = "invisible";
        RemoveIPC = true;
        PrivateIPC = true;

        # Kernel and system state.
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        PrivateUsers = true;
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        NoNewPrivileges = true;
        CapabilityBoundingSet = "";
        AmbientCapabilities = "";

        # Network: S3 over IP, the daemon over a Unix socket.
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          "AF_UNIX"
        ];

        # System calls. EPERM rather than a kill for anything outside the list, so a probe
        # such as libuv's io_uring check falls back instead of killing the service.
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "~@privileged"
        ];
        SystemCallErrorNumber = "EPERM";

        # Not set: MemoryDenyWriteExecute (Node's JIT needs writable+executable memory) and
        # ProcSubset=pid (Node sizes its heap from /proc/meminfo and reads /proc/stat).
      };
    };
  };
}
