/**
 * Vectors made by real Nix 2.8 (Debian's nix-bin) with `experimental-features = nix-command
 * ca-derivations` and `secret-key-files` = the demo key (seed 32 x 0x07), from test/unit/nix/
 * vectors/ca.nix built with nix-build through a daemon with those settings: the .drv files as
 * Nix wrote them, and the realisations as `nix realisation info --json` printed them (the
 * top derivation's from the daemon's Realisations and RealisationsRefs tables, which that
 * command cannot show for a derivation with an unbuilt second output). Nix signed them.
 */

/** .drv file texts by role; paths are `/nix/store/<key>.drv`. */
export const DRV_BASENAMES = {
  top: 'h559f12qma4xi932g8jx5925qbkg2p5v-vec-top.drv',
  topResolved: '21fmspkpxqg4xiql0qliikdb9idj12a8-vec-top.drv',
  dep: 'n20czcqc6jvfy73m7l5bb0299r3lwl6a-vec-dep.drv',
  ia: '6xadj9jn55py4q3cy01ihf7b9rrnr65v-vec-ia.drv',
  fod: 'gp6dwjvzfm40aniz3l6p54k8751cr25k-vec-fod.drv',
} as const;

export const DRV_TEXTS: Record<keyof typeof DRV_BASENAMES, string> = {
  top: 'Derive([("dev","","r:sha256",""),("out","","r:sha256","")],[("/nix/store/6xadj9jn55py4q3cy01ihf7b9rrnr65v-vec-ia.drv",["out"]),("/nix/store/n20czcqc6jvfy73m7l5bb0299r3lwl6a-vec-dep.drv",["out"])],[],"x86_64-linux","/bin/sh",["-c","mkdir $out $dev; echo /1gyrbs388b48kf5ifm2fysvj0ybs8yaqq2phypw0kdslsn3iavds /nix/store/vx2fpl9lkrkgkfywpw87zhrsv6jdgi69-vec-ia > $out/ref; echo $out > $dev/d"],[("PATH","/usr/bin:/bin"),("builder","/bin/sh"),("dev","/02qcpld1y6xhs5gz9bchpxaw0xdhmsp5dv88lh25r2ss44kh8dxz"),("name","vec-top"),("out","/1rz4g4znpzjwh1xymhjpm42vipw92pr73vdgl6xs1hycac8kf2n9"),("outputHashAlgo","sha256"),("outputHashMode","recursive"),("outputs","out dev"),("salt","loft-vector-1"),("system","x86_64-linux")])',
  topResolved:
    'Derive([("dev","","r:sha256",""),("out","","r:sha256","")],[],["/nix/store/s7kvpscfgk5nlqrigqq7dv4ml58wywzb-vec-dep","/nix/store/vx2fpl9lkrkgkfywpw87zhrsv6jdgi69-vec-ia"],"x86_64-linux","/bin/sh",["-c","mkdir $out $dev; echo /nix/store/s7kvpscfgk5nlqrigqq7dv4ml58wywzb-vec-dep /nix/store/vx2fpl9lkrkgkfywpw87zhrsv6jdgi69-vec-ia > $out/ref; echo $out > $dev/d"],[("PATH","/usr/bin:/bin"),("builder","/bin/sh"),("dev","/02qcpld1y6xhs5gz9bchpxaw0xdhmsp5dv88lh25r2ss44kh8dxz"),("name","vec-top"),("out","/1rz4g4znpzjwh1xymhjpm42vipw92pr73vdgl6xs1hycac8kf2n9"),("outputHashAlgo","sha256"),("outputHashMode","recursive"),("outputs","out dev"),("salt","loft-vector-1"),("system","x86_64-linux")])',
  dep: 'Derive([("out","","r:sha256","")],[],[],"x86_64-linux","/bin/sh",["-c","echo \\"quote\\\\\\" tab\\t\\" > $out"],[("PATH","/usr/bin:/bin"),("builder","/bin/sh"),("name","vec-dep"),("out","/1rz4g4znpzjwh1xymhjpm42vipw92pr73vdgl6xs1hycac8kf2n9"),("outputHashAlgo","sha256"),("outputHashMode","recursive"),("salt","loft-vector-1"),("system","x86_64-linux")])',
  ia: 'Derive([("out","/nix/store/vx2fpl9lkrkgkfywpw87zhrsv6jdgi69-vec-ia","","")],[("/nix/store/gp6dwjvzfm40aniz3l6p54k8751cr25k-vec-fod.drv",["out"])],[],"x86_64-linux","/bin/sh",["-c","mkdir $out; cat /nix/store/8qnzxahzvnymahr79rxsbygnfw8fvgal-vec-fod > $out/x"],[("PATH","/usr/bin:/bin"),("builder","/bin/sh"),("name","vec-ia"),("out","/nix/store/vx2fpl9lkrkgkfywpw87zhrsv6jdgi69-vec-ia"),("salt","loft-vector-1"),("system","x86_64-linux")])',
  fod: 'Derive([("out","/nix/store/8qnzxahzvnymahr79rxsbygnfw8fvgal-vec-fod","sha256","73cb3858a687a8494ca3323053016282f3dad39d42cf62ca4e79dda2aac7d9ac")],[],[],"x86_64-linux","/bin/sh",["-c","echo x > $out"],[("PATH","/usr/bin:/bin"),("builder","/bin/sh"),("name","vec-fod"),("out","/nix/store/8qnzxahzvnymahr79rxsbygnfw8fvgal-vec-fod"),("outputHash","sha256-c8s4WKaHqElMozIwUwFigvPa051Cz2LKTnndoqrH2aw="),("outputHashAlgo","sha256"),("outputHashMode","flat"),("salt","loft-vector-1"),("system","x86_64-linux")])',
};

/** Realisations Nix registered and signed, as it prints them (key order, no spaces). */
export const REALISATIONS = {
  /** The top derivation as written (its inputs are derivations). */
  top: '{"dependentRealisations":{"sha256:767a973c73d88d58dfa76d5b86f2c0d676ad2a7b53a50b46edf84e1d3628dc7d!out":"s7kvpscfgk5nlqrigqq7dv4ml58wywzb-vec-dep","sha256:ad5917941d6a8344121c44af73ff18f102405baecfef4ac025f4969a208327fa!out":"vx2fpl9lkrkgkfywpw87zhrsv6jdgi69-vec-ia"},"id":"sha256:c129648e6f55a2125e813f0ded8a08d5c64c8ad9becc6e85cb858af352fa3cdd!out","outPath":"fzy5frzlh2bg4nv0f0s7r7qzd8349p7z-vec-top","signatures":["demo-1:AgH+WGK5+a+MsoyTGnvxP26uiKE8jjjXf79qlSUbzUFDkT5m1s4xBufcCobziACakMLOz99IXPLkxSMPP0sBAA=="]}',
  /** The resolved top derivation (inputs replaced by their outputs), which built it. */
  topResolvedOut:
    '{"dependentRealisations":{},"id":"sha256:92268f876ebd8fe2fe344b04d24a0247b674c5d94326d56228a518ce219821ab!out","outPath":"fzy5frzlh2bg4nv0f0s7r7qzd8349p7z-vec-top","signatures":["demo-1:K9qpFuQyI2ml7QLqHsG/XddxShMJlIV40AB+DbxW3mKIjezv1TGbIu3Ihvmz1OhHo6agpf5lYNNlyvXzx4VTBw=="]}',
  topResolvedDev:
    '{"dependentRealisations":{},"id":"sha256:92268f876ebd8fe2fe344b04d24a0247b674c5d94326d56228a518ce219821ab!dev","outPath":"jd3yywg4z5ywxag1cwbf7llqr699mhr4-vec-top-dev","signatures":["demo-1:KlKILjcuyG+yRmkk0riuueQD9oC1475mM2AYHeI+EJl6Ad5hlNI+gwfzdeYFlKVYpfmrCpaIqkhvbxyzd+KFAg=="]}',
  dep: '{"dependentRealisations":{},"id":"sha256:767a973c73d88d58dfa76d5b86f2c0d676ad2a7b53a50b46edf84e1d3628dc7d!out","outPath":"s7kvpscfgk5nlqrigqq7dv4ml58wywzb-vec-dep","signatures":["demo-1:UCP3SxglE1OtXhMwClpocOkd1fi/yNmHVX99wOy2wJNT9be3Zkd2Y0Y6Rqo4RPVTP3zbKrpeIT+r2tg+zGUlCw=="]}',
  /** An input-addressed derivation: Nix 2.8 with ca-derivations registers those too. */
  ia: '{"dependentRealisations":{},"id":"sha256:ad5917941d6a8344121c44af73ff18f102405baecfef4ac025f4969a208327fa!out","outPath":"vx2fpl9lkrkgkfywpw87zhrsv6jdgi69-vec-ia","signatures":["demo-1:ZLfzWzrBbuUcSpjC3c0lcQyREn1Ex7tKM5WlF1gCFpNfn5UwwSEu7pzCfwQgivBZH0H3ePu3Zm3yYP9VHIONDQ=="]}',
  /** A fixed-output derivation (unsigned: Nix does not sign those). */
  fod: '{"dependentRealisations":{},"id":"sha256:9a5292bb4980f8a7e301ebf4764e78a083c10c1c97f4f1a56d6c95820cdba07d!out","outPath":"8qnzxahzvnymahr79rxsbygnfw8fvgal-vec-fod","signatures":[]}',
} as const;

/** The key Nix signed with: `secret-key-files` held this (docs/nix-formats.md's demo key). */
export const DEMO_SECRET_KEY =
  'demo-1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwfqSmxj4pxSCr71UHsTLsX5lUd2rr6+e5JCHuppFEbSLA==';
