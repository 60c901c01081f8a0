# Evaluates ../module.nix without nixpkgs, with a tiny stand-in for the parts of `lib` and
# `pkgs` it uses, and returns what the module would configure, as JSON-able data:
#
#   nix-instantiate --eval --strict --json nix/tests/module-stub.nix \
#     --argstr overrides '{"s3":{"bucket":"nix-cache"}}' --argstr loft /path/to/loft
#
# `loft`, `coreutils` and `systemd` stand for those packages' directories, so a test can
# point them at stand-ins and run the scripts the module writes.
#
# It stands in for the module system only as far as this module needs: option defaults are
# collected from the declarations and overlaid with `overrides` (as NixOS fills in unset
# options), each value is checked against a stand-in of its declared type, `mkIf` keeps or
# drops its contents, and `pkgs.write*` return their text so tests can run the scripts.
# What it cannot show (real type merging, systemd's rendering) is the flake's `module-eval`
# check's and the VM test's job on a machine with nixpkgs.
{
  overrides ? "{}",
  loft ? "/nix/store/00000000000000000000000000000000-loft",
  coreutils ? "/nix/store/00000000000000000000000000000000-coreutils",
  systemd ? "/nix/store/00000000000000000000000000000000-systemd",
}:
let
  inherit (builtins)
    all
    attrNames
    attrValues
    concatMap
    elem
    filter
    isAttrs
    isBool
    isFloat
    isInt
    isList
    isPath
    isString
    substring
    ;
  loftLib = import ../lib.nix;

  # ---- lib stand-in -----------------------------------------------------------------------------
  type = name: check: {
    inherit name check;
    description = name;
  };
  stringLike = v: isString v || (isAttrs v && v ? outPath);
  types = {
    str = type "str" isString;
    bool = type "bool" isBool;
    int = type "int" isInt;
    number = type "number" (v: isInt v || isFloat v);
    package = type "package" (v: isAttrs v && v ? outPath);
    path = type "path" (
      v: isPath v || (stringLike v && substring 0 1 (if isString v then v else v.outPath) == "/")
    );
    anything = type "anything" (_: true);
    nullOr = t: type "null or ${t.name}" (v: v == null || t.check v);
    listOf = t: type "list of ${t.name}" (v: isList v && all t.check v);
    attrsOf = t: type "attrs of ${t.name}" (v: isAttrs v && all t.check (attrValues v));
    enum = values: type "one of ${toString values}" (v: elem v values);
    ints.between = lo: hi: type "int ${toString lo}-${toString hi}" (v: isInt v && v >= lo && v <= hi);
    addCheck = t: f: t // { check = v: t.check v && f v; };
  };
  lib = {
    inherit types;
    mkOption = attrs: attrs // { _type = "option"; };
    mkEnableOption = what: {
      _type = "option";
      type = types.bool;
      default = false;
      description = "Whether to enable ${what}.";
    };
    mkIf = cond: value: if cond then value else { };
    mkDefault = v: v;
    literalExpression = text: {
      _type = "literalExpression";
      inherit text;
    };
  };

  # ---- pkgs stand-in ----------------------------------------------------------------------------
  file = name: text: {
    inherit name text;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };
  pkgs = {
    writeText = file;
    writeShellScript = file;
    writeShellScriptBin = name: text: file name text // { bin = name; };
    coreutils.outPath = coreutils;
    loft.outPath = loft;
    callPackage = _: _: throw "module-stub: the package default should come from pkgs.loft";
  };

  # ---- the module system, as far as this module needs it ---------------------------------------
  isOption = v: isAttrs v && (v._type or null) == "option";
  optionList =
    prefix: tree:
    concatMap (
      k:
      let
        v = tree.${k};
      in
      if isOption v then [ { path = prefix ++ [ k ]; option = v; } ] else optionList (prefix ++ [ k ]) v
    ) (attrNames tree);
  setAt =
    path: value:
    if path == [ ] then
      value
    else
      {
        ${builtins.head path} = setAt (builtins.tail path) value;
      };
  getAt = path: set: builtins.foldl' (s: k: s.${k}) set path;
  hasAt =
    path: set:
    path == [ ] || (isAttrs set && set ? ${builtins.head path} && hasAt (builtins.tail path) set.${builtins.head path});

  given = builtins.fromJSON overrides;
  options = optionList [ ] evaluated.options.services.loft;
  defaultsTree = builtins.foldl' (
    acc: o: if o.option ? default then loftLib.mergeRecursive acc (setAt o.path o.option.default) else acc
  ) { } options;
  cfg = loftLib.mergeRecursive (loftLib.mergeRecursive defaultsTree { enable = true; }) given;

  evaluated = import ../module.nix {
    inherit lib pkgs;
    config = {
      services.loft = cfg;
      nix.enable = true;
      systemd.package.outPath = systemd;
    };
  };
  c = evaluated.config;
  unit = c.systemd.services.loft;
in
{
  options = map (o: {
    path = builtins.concatStringsSep "." o.path;
    type = o.option.type.name or null;
    hasDescription = isString (o.option.description or null) && o.option.description != "";
    hasDefault = o.option ? default;
    readOnly = o.option.readOnly or false;
  }) options;
  # Options whose value (default or given) fails its declared type.
  typeErrors = map (o: builtins.concatStringsSep "." o.path) (
    filter (o: hasAt o.path cfg && !(o.option.type.check (getAt o.path cfg))) options
  );
  # Given settings that name no option (a typo in a test would otherwise pass silently).
  unknownOverrides =
    let
      known = map (o: o.path) options;
      leaves =
        prefix: t:
        concatMap (
          k:
          let
            p = prefix ++ [ k ];
          in
          if elem p known then [ ] else if isAttrs t.${k} then leaves p t.${k} else [ p ]
        ) (attrNames t);
    in
    map (builtins.concatStringsSep ".") (leaves [ ] given);
  failedAssertions = map (a: a.message) (filter (a: !a.assertion) (c.assertions or [ ]));
  unit = {
    inherit (unit)
      description
      wantedBy
      wants
      after
      ;
    serviceConfig = unit.serviceConfig // {
      ExecStart = unit.serviceConfig.ExecStart.outPath;
    };
  };
  startScript = unit.serviceConfig.ExecStart.text;
  configText = c.environment.etc."loft/loft.toml".source.text;
  configFile = c.environment.etc."loft/loft.toml".source.outPath;
  hookScript = if c.nix.settings ? post-build-hook then c.nix.settings.post-build-hook.text else null;
  adminScript = (builtins.head c.environment.systemPackages).text;
}
