# The NixOS module's logic as pure functions: option values -> loft.toml, the checks the
# module asserts, the credentials it loads and the scripts it runs. Only builtins are used
# (no nixpkgs `lib`), so the tests evaluate exactly this file with a bare
# `nix-instantiate --eval --strict`, and the module deploys exactly what was tested.
let
  inherit (builtins)
    attrNames
    concatLists
    concatStringsSep
    elemAt
    filter
    foldl'
    fromJSON
    genList
    isAttrs
    isBool
    isFloat
    isFunction
    isInt
    isList
    isPath
    isString
    length
    listToAttrs
    map
    match
    replaceStrings
    stringLength
    substring
    toJSON
    typeOf
    ;

  hasPrefix = prefix: s: substring 0 (stringLength prefix) s == prefix;
  hasSuffix =
    suffix: s:
    let
      n = stringLength s;
      m = stringLength suffix;
    in
    n >= m && substring (n - m) m s == suffix;
  removePrefix = prefix: s: if hasPrefix prefix s then substring (stringLength prefix) (-1) s else s;
  hasInfix =
    infix: s:
    let
      n = stringLength s;
      m = stringLength infix;
    in
    n >= m && builtins.any (i: substring i m s == infix) (genList (i: i) (n - m + 1));
  noControlChars = s: match "[^[:cntrl:]]*" s != null;

  lowerChars = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  upperChars = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  toUpper = replaceStrings lowerChars upperChars;
  toLower = replaceStrings upperChars lowerChars;

  # A derivation (or anything with an outPath) is a value, not a table.
  isTable = v: isAttrs v && !(v ? outPath);

  # ---- recursive merge ----------------------------------------------------------------------

  /**
    Merge `override` into `base`: tables merge key by key, any other value (lists included)
    replaces. A null in `override` survives the merge and removes the key when rendered.
  */
  mergeRecursive =
    base: override:
    base
    // builtins.mapAttrs (
      k: v: if base ? ${k} && isTable base.${k} && isTable v then mergeRecursive base.${k} v else v
    ) override;

  # ---- TOML ---------------------------------------------------------------------------------

  hexDigits = [ "0" "1" "2" "3" "4" "5" "6" "7" "8" "9" "A" "B" "C" "D" "E" "F" ];
  hex2 = n: elemAt hexDigits (n / 16) + elemAt hexDigits (n - (n / 16) * 16);

  # TOML basic strings may not hold control characters (U+0000-U+001F, U+007F) raw. Nix has
  # no character literals for most of them, so make each from a JSON escape.
  controlCodes = filter (n: n != 8 && n != 9 && n != 10 && n != 12 && n != 13) (genList (n: n + 1) 31)
    ++ [ 127 ];
  controlChar = n: fromJSON ''"\u00${hex2 n}"'';

  # "\b" and "\f" are not escapes in Nix strings, so those two come from JSON as well.
  backspace = fromJSON ''"\b"'';
  formfeed = fromJSON ''"\f"'';
  escapeFrom = [ "\\" "\"" backspace "\t" "\n" formfeed "\r" ] ++ map controlChar controlCodes;
  escapeTo = [ "\\\\" "\\\"" "\\b" "\\t" "\\n" "\\f" "\\r" ] ++ map (n: "\\u00${hex2 n}") controlCodes;

  quote = s: "\"" + replaceStrings escapeFrom escapeTo s + "\"";

  renderKey = k: if match "[A-Za-z0-9_-]+" k != null then k else quote k;
  renderPath = path: concatStringsSep "." (map renderKey path);
  showPath = path: if path == [ ] then "(top level)" else concatStringsSep "." path;

  # Floats must come out exactly. Whole numbers are written from their integer value; for
  # others, builtins.toJSON keeps only 6 significant digits in older Nix (2.8), so a value
  # it cannot reproduce is refused rather than silently rounded.
  renderFloat =
    path: f:
    let
      s = toJSON f;
      # Whole floats below 2^63 convert to an integer exactly.
      whole = f > -9.2e18 && f < 9.2e18 && builtins.floor f == f;
    in
    if whole then
      "${toString (builtins.floor f)}.0"
    else if fromJSON s != f then
      throw "loft.toml: ${showPath path}: a float with more than 6 significant digits (about ${s}) cannot be written exactly by this version of Nix; use an integer or at most 6 significant digits"
    else if match ".*[.eE].*" s != null then
      s
    else
      "${s}.0";

  renderValue =
    path: v:
    if v == null then
      throw "loft.toml: ${showPath path}: null inside a list cannot be written as TOML"
    else if isBool v then
      (if v then "true" else "false")
    else if isInt v then
      toString v
    else if isFloat v then
      renderFloat path v
    else if isString v then
      quote v
    else if isPath v then
      throw "loft.toml: ${showPath path}: a Nix path value would be copied into the world-readable Nix store; give the path as a string instead"
    else if isList v then
      "[" + concatStringsSep ", " (genList (i: renderValue (path ++ [ "[${toString i}]" ]) (elemAt v i)) (length v)) + "]"
    else if isAttrs v && v ? outPath then
      quote (toString v)
    else if isAttrs v then
      let
        keys = filter (k: v.${k} != null) (attrNames v);
      in
      if keys == [ ] then
        "{}"
      else
        "{ " + concatStringsSep ", " (map (k: "${renderKey k} = ${renderValue (path ++ [ k ]) v.${k}}") keys) + " }"
    else if isFunction v then
      throw "loft.toml: ${showPath path}: a function cannot be written as TOML"
    else
      throw "loft.toml: ${showPath path}: a ${typeOf v} cannot be written as TOML";

  # Key/value lines of one table first, then its sub-tables, each under its own header.
  # Null values are left out (TOML has no null): that is how extraConfig removes a key.
  renderTable =
    path: t:
    let
      keys = filter (k: t.${k} != null) (attrNames t);
      scalars = filter (k: !isTable t.${k}) keys;
      tables = filter (k: isTable t.${k}) keys;
      header = if path != [ ] && (scalars != [ ] || tables == [ ]) then [ "[${renderPath path}]" ] else [ ];
      lines = map (k: "${renderKey k} = ${renderValue (path ++ [ k ]) t.${k}}") scalars;
      own = if header ++ lines == [ ] then [ ] else [ (concatStringsSep "\n" (header ++ lines) + "\n") ];
    in
    own ++ concatLists (map (k: renderTable (path ++ [ k ]) t.${k}) tables);

  /**
    Attribute set -> TOML document. Tables become `[a.b]` sections, tables inside lists become
    inline tables, derivations become their store path, nulls are omitted. Keys come out sorted,
    so the output is stable.
  */
  toTOML =
    t:
    if !isTable t then
      throw "loft.toml: the document must be an attribute set, got a ${typeOf t}"
    else
      concatStringsSep "\n" (renderTable [ ] t);

  # ---- the module's values ------------------------------------------------------------------

  unitName = "loft";
  stateRoot = "/var/lib/loft";
  envPrefix = "LOFT_EXTRA_HEADER_";

  /**
    Option defaults. They equal Loft's own defaults (src/config/schema.ts; a test checks
    that the TOML they produce parses to the same configuration as an empty file), except
    localCachePath, which the sandbox requires under /var/lib/loft.
  */
  defaults = {
    enable = false;
    debug = false;
    s3 = {
      region = "us-east-1";
      endpoint = null;
      accessKeyFile = null;
      secretKeyFile = null;
      extraHeaders = { };
      extraHeadersFile = { };
    };
    localCachePath = "${stateRoot}/cache.db";
    uploadThreads = 12;
    scanOnStartup = false;
    populateCacheOnStartup = false;
    compression = "zstd";
    signingKeyPath = null;
    signingKeyName = null;
    skipSignedByKeys = [ "cache.nixos.org-1" ];
    pruning = {
      enable = false;
      schedule = "24h";
      retentionDays = 30;
      maxSizeGb = null;
      targetPercentage = 80;
    };
    extraConfig = { };
    postBuildHook.enable = false;
  };

  /**
    A header name's environment variable, as Loft reads it back (src/config/extra-headers.ts:
    prefix stripped, `_` -> `-`, case ignored): `CF-Access-Client-Id` ->
    `LOFT_EXTRA_HEADER_CF_ACCESS_CLIENT_ID`. Only names of letters, digits and hyphens survive
    that round trip (an `_` would come back as `-`), see `isMappableHeaderName`.
  */
  headerEnvName = name: envPrefix + toUpper (replaceStrings [ "-" ] [ "_" ] name);
  isMappableHeaderName = name: match "[A-Za-z0-9-]+" name != null;

  # Secret files are given as strings: a Nix path literal would be copied into the
  # world-readable store, and a path already in the store is readable by every user.
  isSecretPath =
    p:
    isString p
    && hasPrefix "/" p
    && !hasPrefix "/nix/store/" p
    && noControlChars p;

  # S3 bucket naming rules, checked at evaluation so a typo fails `nixos-rebuild`, not the unit.
  isBucketName = b: isString b && match "[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]" b != null;

  /**
    The credentials the unit loads with systemd's LoadCredential=: each secret file is read by
    systemd at start (as root, so the file can be root-only) and handed to the service in
    $CREDENTIALS_DIRECTORY. `env` names the variable the start script exports it as.
  */
  credentials =
    cfg:
    let
      keyPair =
        if cfg.s3.accessKeyFile != null && cfg.s3.secretKeyFile != null then
          [
            {
              id = "s3-access-key";
              path = cfg.s3.accessKeyFile;
              env = "AWS_ACCESS_KEY_ID";
            }
            {
              id = "s3-secret-key";
              path = cfg.s3.secretKeyFile;
              env = "AWS_SECRET_ACCESS_KEY";
            }
          ]
        else
          [ ];
      headers = map (name: {
        id = "extra-header-${name}";
        path = cfg.s3.extraHeadersFile.${name};
        env = headerEnvName name;
      }) (attrNames cfg.s3.extraHeadersFile);
      signing =
        if cfg.signingKeyPath != null then
          [
            {
              id = "signing-key";
              path = cfg.signingKeyPath;
              env = null;
            }
          ]
        else
          [ ];
    in
    keyPair ++ headers ++ signing;

  /**
    Option values -> the loft.toml settings, before extraConfig. Every option with a value is
    written, not only those that differ from Loft's defaults: the file then says exactly what
    the service runs with, and the post-build hook (which runs outside the unit, as root)
    reads the same values. Unset (null) options are left out, so Loft applies its own default.
  */
  settings =
    cfg:
    let
      p = cfg.pruning;
    in
    {
      s3 = {
        inherit (cfg.s3) bucket region endpoint;
        extra_headers = if cfg.s3.extraHeaders == { } then null else cfg.s3.extraHeaders;
      };
      loft = {
        upload_threads = cfg.uploadThreads;
        scan_on_startup = cfg.scanOnStartup;
        populate_cache_on_startup = cfg.populateCacheOnStartup;
        local_cache_path = cfg.localCachePath;
        inherit (cfg) compression;
        # Not here: the start script points Loft at its own unit's credential copy
        # ($LOFT_SIGNING_KEY_PATH), since loft-admin's transient units have their own.
        signing_key_path = null;
        signing_key_name = cfg.signingKeyName;
        skip_signed_by_keys = cfg.skipSignedByKeys;
        prune_enabled = p.enable;
        prune_schedule = p.schedule;
        prune_retention_days = p.retentionDays;
        prune_max_size_gb = p.maxSizeGb;
        # Loft warns that the percentage means nothing without a size limit.
        prune_target_percentage = if p.maxSizeGb == null then null else p.targetPercentage;
      };
    };

  /** The loft.toml text the module writes: settings, then extraConfig merged over them. */
  configText = cfg: toTOML (mergeRecursive (settings cfg) cfg.extraConfig);

  # A state path must stay inside /var/lib/loft: the unit can write nowhere else.
  isUnderStateRoot =
    p:
    isString p
    && noControlChars p
    && hasPrefix "${stateRoot}/" p
    && !hasSuffix "/" p
    && !hasInfix "/../" p
    && !hasInfix "/./" p
    && !hasInfix "//" p
    && !hasSuffix "/.." p
    && !hasSuffix "/." p;

  /**
    The state directories systemd creates and owns for the service (StateDirectory=, relative
    to /var/lib): loft, the directory holding localCachePath if deeper, and the `inbox/` next
    to it where the root-run post-build hook drops paths. Creating the inbox here makes it
    the service user's even when the hook ran first (systemd re-owns it at each start), so
    the service can always delete what the hook wrote.
  */
  stateDirectories =
    cfg:
    let
      dir = removePrefix "/var/lib/" (builtins.dirOf cfg.localCachePath);
    in
    if !isUnderStateRoot cfg.localCachePath then
      [ unitName ]
    else if dir == unitName then
      [
        unitName
        "${unitName}/inbox"
      ]
    else
      [
        unitName
        dir
        "${dir}/inbox"
      ];

  headerNames = cfg: attrNames cfg.s3.extraHeaders ++ attrNames cfg.s3.extraHeadersFile;
  duplicates =
    names:
    let
      lower = map toLower names;
      counts = foldl' (acc: n: acc // { ${n} = (acc.${n} or 0) + 1; }) { } lower;
    in
    filter (n: counts.${n} > 1) (attrNames counts);

  /** The module's assertions, as `{ assertion; message; }` like NixOS's `assertions`. */
  assertions =
    cfg:
    let
      unmappable = filter (n: !isMappableHeaderName n) (attrNames cfg.s3.extraHeadersFile);
      dups = duplicates (headerNames cfg);
    in
    [
      {
        assertion = isUnderStateRoot cfg.localCachePath;
        message = "services.loft.localCachePath = \"${cfg.localCachePath}\": it must be a file under ${stateRoot}/ (e.g. ${defaults.localCachePath}), because the service's sandbox can write nowhere else.";
      }
      {
        assertion = (cfg.s3.accessKeyFile == null) == (cfg.s3.secretKeyFile == null);
        message = "services.loft.s3.accessKeyFile and services.loft.s3.secretKeyFile must be set together (or both left null to use the standard AWS credential chain).";
      }
      {
        assertion = unmappable == [ ];
        message = "services.loft.s3.extraHeadersFile: ${concatStringsSep ", " unmappable}: header names given as files must consist of letters, digits and hyphens, because each becomes an environment variable ${envPrefix}<NAME> in which \"_\" stands for \"-\". Put such headers in extraHeaders, or set the variable yourself.";
      }
      # NixOS checks an option's type only when its value is read, and loft.toml reads this
      # one only with maxSizeGb: without this, a bad value would pass silently.
      {
        assertion =
          let
            t = cfg.pruning.targetPercentage;
          in
          builtins.isInt t && t >= 1 && t <= 100;
        message = "services.loft.pruning.targetPercentage = ${builtins.toJSON cfg.pruning.targetPercentage}: it must be a whole number from 1 to 100 (it is checked whether or not maxSizeGb is set).";
      }
      {
        assertion = dups == [ ];
        message = "services.loft.s3: header(s) ${concatStringsSep ", " dups} are set more than once across extraHeaders and extraHeadersFile (names are case-insensitive); keep one.";
      }
    ];

  # toString: store paths arrive as derivations (pkgs.writeText), not strings.
  shellQuote = s: "'" + replaceStrings [ "'" ] [ "'\\''" ] (toString s) + "'";

  /**
    The unit's ExecStart script: export each credential systemd loaded as the variable Loft
    reads, then replace itself with Loft. `$(<file)` drops trailing newlines, which secret
    files often end with and which Loft would refuse in a header value.
  */
  startScript =
    {
      cfg,
      loft,
      configFile,
    }:
    let
      # Assign, then export: `export X="$(<f)"` would hide a failed read from `set -e`.
      exports = concatLists (
        map (c: [
          "${c.env}=\"$(<\"$CREDENTIALS_DIRECTORY\"/${shellQuote c.id})\""
          "export ${c.env}"
        ]) (filter (c: c.env != null) (credentials cfg))
      );
      # The signing key is read from this unit's copy (loft.service's, or loft-admin's).
      keyPath =
        if cfg.signingKeyPath == null then
          [ ]
        else
          [ "export LOFT_SIGNING_KEY_PATH=\"$CREDENTIALS_DIRECTORY\"/signing-key" ];
      args = [ "-c" configFile ] ++ (if cfg.debug then [ "--debug" ] else [ ]);
      # "$@": the service passes nothing; loft-admin passes the one-off command's flags.
    in
    concatStringsSep "\n" (
      [ "set -euo pipefail" ]
      ++ (
        if exports == [ ] && keyPath == [ ] then
          [ ]
        else
          [ ": \"\${CREDENTIALS_DIRECTORY:?systemd did not load the credentials}\"" ]
      )
      ++ exports
      ++ keyPath
      ++ [ "exec ${shellQuote loft} ${concatStringsSep " " (map shellQuote args)} \"$@\"" ]
    )
    + "\n";

  /**
    Nix runs post-build-hook as root after every build, with OUT_PATHS set, and fails the
    build when the hook fails. Recording the paths only speeds the service up (its store
    watcher finds them anyway), so a failing or hanging hook is reported in the build log and
    never fails the build.
  */
  hookScript =
    {
      loft,
      configFile,
      timeout,
    }:
    ''
      if ! ${shellQuote timeout} 30 ${shellQuote loft} -c ${shellQuote configFile} --post-build-hook; then
        echo "loft: the post-build hook could not record $OUT_PATHS; the loft service will still find them by watching the store" >&2
      fi
      exit 0
    '';
  /**
    `loft-admin`: runs a one-off Loft command (`--status`, `--prune`, `--clear-cache`, ...) the
    way the service runs: as the service's dynamic user, with its state directory and its
    credentials, through the same start script. Running Loft as root instead would leave
    root-owned files in the state directory that the service then cannot open.
  */
  adminScript =
    {
      cfg,
      systemdRun,
      startScript,
    }:
    let
      props =
        [
          "DynamicUser=yes"
          "User=${unitName}"
          "UMask=0077"
        ]
        ++ map (d: "StateDirectory=${d}") (stateDirectories cfg)
        ++ map (c: "LoadCredential=${c.id}:${c.path}") (credentials cfg);
    in
    ''
      if [ "$(id -u)" != 0 ]; then
        echo "loft-admin: run it as root (it starts Loft as the ${unitName} service's user with systemd-run)" >&2
        exit 1
      fi
      if [ -t 0 ] && [ -t 1 ]; then io=--pty; else io=--pipe; fi
      exec ${shellQuote systemdRun} --quiet --wait --collect --service-type=exec "$io" \
        ${concatStringsSep " " (map (p: "--property=${shellQuote p}") props)} \
        ${shellQuote startScript} "$@"
    '';

in
{
  inherit
    mergeRecursive
    toTOML
    defaults
    headerEnvName
    isMappableHeaderName
    isSecretPath
    isBucketName
    credentials
    settings
    configText
    isUnderStateRoot
    stateDirectories
    assertions
    startScript
    hookScript
    adminScript
    unitName
    stateRoot
    ;
}
