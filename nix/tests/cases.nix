# Option sets for the options -> loft.toml function (../lib.nix), each with what must come
# out: `document` is the exact TOML document (as a TOML parser returns it), `config` holds
# values Loft's own loader must read back from it (paths into LoftConfig, with extra headers
# as a name -> value record), `warnings` the exact key paths Loft must warn about (nothing
# else may warn, and nothing may be an error). Options not given take the module's defaults,
# as the NixOS module system would fill them in.
#
# Evaluated by test/integration/nixos (Debian's Nix, Loft's parseConfig) and by the flake's
# `nix-lib` check (nixpkgs' Node, the built package's parseConfig).
let
  loftLib = import ../lib.nix;
  withDefaults = options: loftLib.mergeRecursive loftLib.defaults options;

  cases = {
    # Only the required bucket: every other key is the module default, which must equal
    # Loft's own default (`sameAsLoftDefaults`: parsing it gives the same configuration as a
    # file that sets only the bucket and the module's localCachePath).
    defaults = {
      options = {
        s3.bucket = "nix-cache";
      };
      sameAsLoftDefaults = true;
      document = {
        s3 = {
          bucket = "nix-cache";
          region = "us-east-1";
        };
        loft = {
          upload_threads = 12;
          scan_on_startup = false;
          populate_cache_on_startup = false;
          local_cache_path = "/var/lib/loft/cache.db";
          compression = "zstd";
          skip_signed_by_keys = [ "cache.nixos.org-1" ];
          prune_enabled = false;
          prune_schedule = "24h";
          prune_retention_days = 30;
        };
      };
      config = {
        "s3.bucket" = "nix-cache";
        "s3.endpoint" = null;
        "s3.extraHeaders" = { };
        "uploadThreads" = 12;
        "localCachePath" = "/var/lib/loft/cache.db";
        "signingKeyPath" = null;
        "skipSignedByKeys" = [ "cache.nixos.org-1" ];
        "prune.enabled" = false;
        "prune.schedule.text" = "24h";
        "prune.maxSizeGb" = null;
      };
      warnings = [ ];
    };

    # Every option the module has, none at its default.
    every-option = {
      options = {
        debug = true;
        s3 = {
          bucket = "nix-cache.example";
          region = "garage";
          endpoint = "http://garage.example.internal:3900";
          accessKeyFile = "/run/secrets/s3-access-key";
          secretKeyFile = "/run/secrets/s3-secret-key";
          extraHeaders = {
            "CF-Access-Client-Id" = "0123.access";
          };
          extraHeadersFile = {
            "CF-Access-Client-Secret" = "/run/secrets/cf-access-secret";
          };
        };
        localCachePath = "/var/lib/loft/index/cache.db";
        uploadThreads = 4;
        scanOnStartup = true;
        populateCacheOnStartup = true;
        compression = "xz";
        signingKeyPath = "/run/secrets/nix-signing-key";
        signingKeyName = "nix-cache";
        skipSignedByKeys = [
          "cache.nixos.org-1"
          "nix-community.cachix.org-1"
        ];
        pruning = {
          enable = true;
          schedule = "00:00";
          retentionDays = 14;
          maxSizeGb = 1000;
          targetPercentage = 70;
        };
        postBuildHook.enable = true;
      };
      # No secret and no secret file path reaches the document: keys and header files go
      # through systemd credentials, the signing key is read from its credential copy.
      document = {
        s3 = {
          bucket = "nix-cache.example";
          region = "garage";
          endpoint = "http://garage.example.internal:3900";
          extra_headers = {
            "CF-Access-Client-Id" = "0123.access";
          };
        };
        loft = {
          upload_threads = 4;
          scan_on_startup = true;
          populate_cache_on_startup = true;
          local_cache_path = "/var/lib/loft/index/cache.db";
          compression = "xz";
          signing_key_name = "nix-cache";
          skip_signed_by_keys = [
            "cache.nixos.org-1"
            "nix-community.cachix.org-1"
          ];
          prune_enabled = true;
          prune_schedule = "00:00";
          prune_retention_days = 14;
          prune_max_size_gb = 1000;
          prune_target_percentage = 70;
        };
      };
      config = {
        "s3.bucket" = "nix-cache.example";
        "s3.region" = "garage";
        "s3.endpoint" = "http://garage.example.internal:3900";
        "s3.extraHeaders" = {
          "cf-access-client-id" = "0123.access";
        };
        "uploadThreads" = 4;
        "scanOnStartup" = true;
        "populateCacheOnStartup" = true;
        "localCachePath" = "/var/lib/loft/index/cache.db";
        "compression" = "xz";
        "signingKeyPath" = "/run/credentials/loft.service/signing-key";
        "signingKeyName" = "nix-cache";
        "skipSignedByKeys" = [
          "cache.nixos.org-1"
          "nix-community.cachix.org-1"
        ];
        "prune.enabled" = true;
        "prune.schedule.kind" = "daily";
        "prune.schedule.text" = "00:00";
        "prune.retentionDays" = 14;
        "prune.maxSizeGb" = 1000;
        "prune.maxSizeBytes" = 1000000000000;
        "prune.targetPercentage" = 70;
        "logLevel" = "info";
      };
      warnings = [ ];
    };

    # extraConfig: merged into sections key by key, overriding generated values, adding
    # keys Loft knows (its additions) and keys it does not (warned about), removing a
    # generated key with null.
    extra-config = {
      options = {
        s3.bucket = "nix-cache";
        s3.extraHeaders."X-Inline" = "inline";
        pruning.schedule = "03:30";
        extraConfig = {
          loft = {
            upload_threads = 32;
            compression_level = 19;
            write_nar_listing = true;
            some_new_feature_flag = true;
            prune_schedule = null;
          };
          s3 = {
            max_attempts = 8;
            extra_headers."X-From-Extra" = "extra";
          };
          future_section = {
            enabled = true;
            nested.depth = 2;
          };
        };
      };
      document = {
        s3 = {
          bucket = "nix-cache";
          region = "us-east-1";
          max_attempts = 8;
          extra_headers = {
            "X-Inline" = "inline";
            "X-From-Extra" = "extra";
          };
        };
        loft = {
          upload_threads = 32;
          scan_on_startup = false;
          populate_cache_on_startup = false;
          local_cache_path = "/var/lib/loft/cache.db";
          compression = "zstd";
          compression_level = 19;
          write_nar_listing = true;
          some_new_feature_flag = true;
          skip_signed_by_keys = [ "cache.nixos.org-1" ];
          prune_enabled = false;
          prune_retention_days = 30;
        };
        future_section = {
          enabled = true;
          nested.depth = 2;
        };
      };
      config = {
        "uploadThreads" = 32;
        "compressionLevel" = 19;
        "writeNarListing" = true;
        "s3.maxAttempts" = 8;
        "s3.extraHeaders" = {
          "x-inline" = "inline";
          "x-from-extra" = "extra";
        };
        # The module's "03:30" was removed, so Loft's default applies.
        "prune.schedule.text" = "24h";
      };
      warnings = [
        "loft.some_new_feature_flag"
        "future_section"
      ];
    };

    # Pruning on with a fractional size limit: the percentage is written.
    pruning-on = {
      options = {
        s3.bucket = "nix-cache";
        pruning = {
          enable = true;
          schedule = "1h30m";
          retentionDays = 7;
          maxSizeGb = 1.5;
          targetPercentage = 90;
        };
      };
      document = {
        s3 = {
          bucket = "nix-cache";
          region = "us-east-1";
        };
        loft = {
          upload_threads = 12;
          scan_on_startup = false;
          populate_cache_on_startup = false;
          local_cache_path = "/var/lib/loft/cache.db";
          compression = "zstd";
          skip_signed_by_keys = [ "cache.nixos.org-1" ];
          prune_enabled = true;
          prune_schedule = "1h30m";
          prune_retention_days = 7;
          prune_max_size_gb = 1.5;
          prune_target_percentage = 90;
        };
      };
      config = {
        "prune.enabled" = true;
        "prune.schedule.kind" = "interval";
        "prune.schedule.ms" = 5400000;
        "prune.retentionDays" = 7;
        "prune.maxSizeGb" = 1.5;
        "prune.maxSizeBytes" = 1500000000;
        "prune.targetPercentage" = 90;
      };
      warnings = [ ];
    };

    # Pruning off without a size limit: a percentage set anyway is left out, so Loft does not
    # warn that it has no effect.
    pruning-off = {
      options = {
        s3.bucket = "nix-cache";
        pruning = {
          enable = false;
          schedule = "12:00 UTC";
          targetPercentage = 50;
        };
      };
      document = {
        s3 = {
          bucket = "nix-cache";
          region = "us-east-1";
        };
        loft = {
          upload_threads = 12;
          scan_on_startup = false;
          populate_cache_on_startup = false;
          local_cache_path = "/var/lib/loft/cache.db";
          compression = "zstd";
          skip_signed_by_keys = [ "cache.nixos.org-1" ];
          prune_enabled = false;
          prune_schedule = "12:00 UTC";
          prune_retention_days = 30;
        };
      };
      config = {
        "prune.enabled" = false;
        "prune.schedule.kind" = "daily";
        "prune.schedule.utc" = true;
        "prune.schedule.hour" = 12;
        "prune.maxSizeGb" = null;
        "prune.targetPercentage" = 80;
      };
      warnings = [ ];
    };

    # Inline headers with names and values that need care in TOML: mixed case, digits,
    # and values holding quotes, backslashes, non-ASCII text and a tab.
    extra-headers-inline = {
      options = {
        s3.bucket = "nix-cache";
        s3.extraHeaders = {
          "CF-Access-Client-Id" = "abc.access";
          "X-Trace-42" = ''a "quoted" \ value'';
          "x-lower" = "grüße\tzwei";
        };
        skipSignedByKeys = [ ];
        compression = "none";
      };
      document = {
        s3 = {
          bucket = "nix-cache";
          region = "us-east-1";
          extra_headers = {
            "CF-Access-Client-Id" = "abc.access";
            "X-Trace-42" = ''a "quoted" \ value'';
            "x-lower" = "grüße\tzwei";
          };
        };
        loft = {
          upload_threads = 12;
          scan_on_startup = false;
          populate_cache_on_startup = false;
          local_cache_path = "/var/lib/loft/cache.db";
          compression = "none";
          skip_signed_by_keys = [ ];
          prune_enabled = false;
          prune_schedule = "24h";
          prune_retention_days = 30;
        };
      };
      config = {
        "s3.extraHeaders" = {
          "cf-access-client-id" = "abc.access";
          "x-trace-42" = ''a "quoted" \ value'';
          "x-lower" = "grüße\tzwei";
        };
        "skipSignedByKeys" = [ ];
        "compression" = "none";
      };
      warnings = [ ];
    };
  };
in
builtins.mapAttrs (
  name: c:
  c
  // {
    toml = loftLib.configText (withDefaults c.options);
    sameAsLoftDefaults = c.sameAsLoftDefaults or false;
  }
) cases
