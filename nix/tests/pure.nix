# Unit tests of ../lib.nix in plain Nix. Evaluates to the list of failures (empty: all pass):
#
#   nix-instantiate --eval --strict --json nix/tests/pure.nix
#
# Each test is `{ expr; expected; }`, or `{ throws; }` for an expression that must fail to
# evaluate (with `throw`, as the TOML writer does for values TOML cannot hold).
let
  l = import ../lib.nix;
  inherit (builtins) attrNames concatMap deepSeq filter tryEval;
  cfg = options: l.mergeRecursive (l.mergeRecursive l.defaults { s3.bucket = "nix-cache"; }) options;
  failing = c: map (a: a.message) (filter (a: !a.assertion) (l.assertions c));
  # The characters TOML needs escaped, made from JSON since Nix has no literal for most.
  ctl = builtins.fromJSON ''"\u0001\u001f\u007f\b\f"'';

  tests = {
    # ---- TOML writer ------------------------------------------------------------------------
    toml-scalars = {
      expr = l.toTOML {
        b = true;
        f = false;
        i = -42;
        s = "text";
      };
      expected = "b = true\nf = false\ni = -42\ns = \"text\"\n";
    };
    toml-floats-exact = {
      expr = l.toTOML {
        a = 100.0;
        b = 1.5;
        c = 1.0e-7;
        d = 3.0e300;
        e = -2.0;
      };
      expected = "a = 100.0\nb = 1.5\nc = 1e-07\nd = 3e+300\ne = -2.0\n";
    };
    # Nix before 2.12 prints floats with 6 significant digits (toJSON): such a float is
    # refused rather than rounded silently. Later Nix prints every digit: written exactly.
    toml-float-exact-or-refused =
      if builtins.toJSON 0.123456789 == "0.123456789" then
        {
          expr = l.toTOML { a = 0.123456789; };
          expected = "a = 0.123456789\n";
        }
      else
        { throws = l.toTOML { a = 0.123456789; }; };
    toml-string-escapes = {
      expr = l.toTOML { s = "q\" b\\ t\t n\n r\r"; };
      expected = ''s = "q\" b\\ t\t n\n r\r"'' + "\n";
    };
    toml-control-characters = {
      expr = l.toTOML { s = ctl; };
      expected = ''s = "\u0001\u001F\u007F\b\f"'' + "\n";
    };
    toml-unicode-kept = {
      expr = l.toTOML { s = "grüße ☃"; };
      expected = "s = \"grüße ☃\"\n";
    };
    toml-keys-bare-or-quoted = {
      expr = l.toTOML {
        "CF-Access_1" = 1;
        "a b" = 2;
        "" = 3;
        "dotted.key" = 4;
        "ключ" = 5;
      };
      expected = ''
        "" = 3
        CF-Access_1 = 1
        "a b" = 2
        "dotted.key" = 4
        "ключ" = 5
      '';
    };
    toml-tables-after-keys = {
      expr = l.toTOML {
        top = 1;
        b.x = 2;
        a = {
          y = 3;
          sub.z = 4;
        };
      };
      expected = "top = 1\n\n[a]\ny = 3\n\n[a.sub]\nz = 4\n\n[b]\nx = 2\n";
    };
    toml-table-of-tables-has-no-own-header = {
      expr = l.toTOML { a.b.c = 1; };
      expected = "[a.b]\nc = 1\n";
    };
    toml-empty-table-kept = {
      expr = l.toTOML { e = { }; };
      expected = "[e]\n";
    };
    toml-quoted-table-names = {
      expr = l.toTOML { s3.extra_headers."X Y".v = 1; };
      expected = "[s3.extra_headers.\"X Y\"]\nv = 1\n";
    };
    toml-arrays = {
      expr = l.toTOML {
        a = [ ];
        b = [
          1
          "two"
          [ true ]
        ];
        c = [
          {
            k = "v";
            n = null;
          }
          { }
        ];
      };
      expected = "a = []\nb = [1, \"two\", [true]]\nc = [{ k = \"v\" }, {}]\n";
    };
    toml-nulls-dropped = {
      expr = l.toTOML {
        a = null;
        t = {
          b = null;
          c = 1;
        };
      };
      expected = "[t]\nc = 1\n";
    };
    toml-derivation-is-its-path = {
      expr = l.toTOML {
        p = {
          outPath = "/nix/store/00000000000000000000000000000000-x";
          type = "derivation";
        };
      };
      expected = "p = \"/nix/store/00000000000000000000000000000000-x\"\n";
    };
    toml-path-refused.throws = l.toTOML { p = ./pure.nix; };
    toml-function-refused.throws = l.toTOML { f = x: x; };
    toml-null-in-list-refused.throws = l.toTOML { l = [ null ]; };
    toml-document-must-be-a-table.throws = l.toTOML [ ];

    # ---- recursive merge ----------------------------------------------------------------------
    merge-nested = {
      expr = l.mergeRecursive {
        a = {
          x = 1;
          y = {
            p = 1;
            q = 2;
          };
        };
        b = 1;
      } { a.y.q = 3; a.z = 4; c = 5; };
      expected = {
        a = {
          x = 1;
          y = {
            p = 1;
            q = 3;
          };
          z = 4;
        };
        b = 1;
        c = 5;
      };
    };
    merge-lists-replace = {
      expr = l.mergeRecursive { a = [ 1 2 ]; } { a = [ 3 ]; };
      expected = {
        a = [ 3 ];
      };
    };
    merge-null-kept-for-removal = {
      expr = l.mergeRecursive { a.b = 1; } { a.b = null; };
      expected = {
        a.b = null;
      };
    };
    merge-table-replaces-scalar = {
      expr = l.mergeRecursive { a = 1; } { a.b = 2; };
      expected = {
        a.b = 2;
      };
    };
    merge-derivation-not-merged-into = {
      expr = l.mergeRecursive {
        d = {
          outPath = "/x";
          k = 1;
        };
      } { d.j = 2; };
      expected = {
        d.j = 2;
      };
    };

    # ---- headers -> environment -----------------------------------------------------------------
    header-env-name = {
      expr = map l.headerEnvName [
        "CF-Access-Client-Id"
        "x-trace-42"
        "Authorization2"
      ];
      expected = [
        "LOFT_EXTRA_HEADER_CF_ACCESS_CLIENT_ID"
        "LOFT_EXTRA_HEADER_X_TRACE_42"
        "LOFT_EXTRA_HEADER_AUTHORIZATION2"
      ];
    };
    header-mappable = {
      expr = map l.isMappableHeaderName [
        "CF-Access-Client-Id"
        "X_Under"
        "X.Dot"
        "X Space"
        ""
      ];
      expected = [
        true
        false
        false
        false
        false
      ];
    };

    # ---- option value checks ----------------------------------------------------------------------
    secret-paths = {
      expr = map l.isSecretPath [
        "/run/secrets/key"
        "relative/key"
        "/nix/store/00000000000000000000000000000000-key"
        ./pure.nix
        "/run/secrets/a\nb"
        null
      ];
      expected = [
        true
        false
        false
        false
        false
        false
      ];
    };
    bucket-names = {
      expr = map l.isBucketName [
        "nix-cache"
        "nix.cache.example"
        "ab"
        "Nix-Cache"
        "-cache"
        "cache-"
        "a23456789012345678901234567890123456789012345678901234567890123"
        "a234567890123456789012345678901234567890123456789012345678901234"
      ];
      expected = [
        true
        true
        false
        false
        false
        false
        true
        false
      ];
    };
    state-root = {
      expr = map l.isUnderStateRoot [
        "/var/lib/loft/cache.db"
        "/var/lib/loft/a/b/cache.db"
        "/var/lib/loft"
        "/var/lib/loft/"
        "/var/lib/loft/../shadow"
        "/var/lib/loft/./x"
        "/var/lib/loft//x"
        "/var/lib/loft/x/.."
        "/var/lib/lofty/cache.db"
        "/var/lib/loftcache.db"
        "/tmp/cache.db"
        ".direnv/cache.db"
      ];
      expected = [
        true
        true
        false
        false
        false
        false
        false
        false
        false
        false
        false
        false
      ];
    };
    state-directories-default = {
      expr = l.stateDirectories (cfg { });
      expected = [
        "loft"
        "loft/inbox"
      ];
    };
    state-directories-deeper = {
      expr = l.stateDirectories (cfg { localCachePath = "/var/lib/loft/index/cache.db"; });
      expected = [
        "loft"
        "loft/index"
        "loft/index/inbox"
      ];
    };

    # ---- assertions -------------------------------------------------------------------------------
    assertions-pass-for-defaults = {
      expr = failing (cfg { });
      expected = [ ];
    };
    assertion-cache-path-outside-state = {
      expr = failing (cfg { localCachePath = "/srv/loft/cache.db"; });
      expected = [
        "services.loft.localCachePath = \"/srv/loft/cache.db\": it must be a file under /var/lib/loft/ (e.g. /var/lib/loft/cache.db), because the service's sandbox can write nowhere else."
      ];
    };
    assertion-key-files-together = {
      expr = builtins.length (failing (cfg { s3.accessKeyFile = "/run/secrets/a"; }));
      expected = 1;
    };
    assertion-header-file-names = {
      expr = failing (cfg {
        s3.extraHeadersFile = {
          "X_Under" = "/run/secrets/h";
          "Good-Name" = "/run/secrets/g";
        };
      });
      expected = [
        "services.loft.s3.extraHeadersFile: X_Under: header names given as files must consist of letters, digits and hyphens, because each becomes an environment variable LOFT_EXTRA_HEADER_<NAME> in which \"_\" stands for \"-\". Put such headers in extraHeaders, or set the variable yourself."
      ];
    };
    assertion-header-twice = {
      expr = failing (cfg {
        s3.extraHeaders."CF-Access-Client-Id" = "x";
        s3.extraHeadersFile."cf-access-client-id" = "/run/secrets/h";
      });
      expected = [
        "services.loft.s3: header(s) cf-access-client-id are set more than once across extraHeaders and extraHeadersFile (names are case-insensitive); keep one."
      ];
    };

    # ---- credentials ------------------------------------------------------------------------------
    credentials-none-by-default = {
      expr = l.credentials (cfg { });
      expected = [ ];
    };
    credentials-all = {
      expr = l.credentials (cfg {
        s3.accessKeyFile = "/run/secrets/a";
        s3.secretKeyFile = "/run/secrets/s";
        s3.extraHeadersFile."CF-Access-Client-Secret" = "/run/secrets/cf";
        signingKeyPath = "/run/secrets/sk";
      });
      expected = [
        {
          id = "s3-access-key";
          path = "/run/secrets/a";
          env = "AWS_ACCESS_KEY_ID";
        }
        {
          id = "s3-secret-key";
          path = "/run/secrets/s";
          env = "AWS_SECRET_ACCESS_KEY";
        }
        {
          id = "extra-header-CF-Access-Client-Secret";
          path = "/run/secrets/cf";
          env = "LOFT_EXTRA_HEADER_CF_ACCESS_CLIENT_SECRET";
        }
        {
          id = "signing-key";
          path = "/run/secrets/sk";
          env = null;
        }
      ];
    };
    # loft.toml names no key file: the start script points Loft at its own unit's
    # credential copy (never the original file), so loft-admin's units work too.
    signing-key-not-in-toml = {
      expr = (l.settings (cfg { signingKeyPath = "/run/secrets/sk"; })).loft.signing_key_path;
      expected = null;
    };
    no-secret-file-path-in-toml = {
      expr =
        let
          text = l.configText (cfg {
            s3.accessKeyFile = "/run/secrets/a-key";
            s3.secretKeyFile = "/run/secrets/s-key";
            s3.extraHeadersFile."X-Secret" = "/run/secrets/h-key";
            signingKeyPath = "/run/secrets/sign-key";
          });
        in
        builtins.match ".*(a-key|s-key|h-key|sign-key).*" (builtins.replaceStrings [ "\n" ] [ " " ] text);
      expected = null;
    };
  };

  run =
    name: t:
    if t ? throws then
      (
        if (tryEval (deepSeq t.throws t.throws)).success then
          [
            {
              inherit name;
              problem = "evaluated, but should have failed";
            }
          ]
        else
          [ ]
      )
    else
      let
        r = tryEval (deepSeq t.expr t.expr);
      in
      if !r.success then
        [
          {
            inherit name;
            problem = "failed to evaluate";
          }
        ]
      else if r.value != t.expected then
        [
          {
            inherit name;
            inherit (t) expected;
            actual = r.value;
          }
        ]
      else
        [ ];
in
{
  count = builtins.length (attrNames tests);
  failures = concatMap (name: run name tests.${name}) (attrNames tests);
}
