//! `.hdb` `.hsb` (`HASH:SIZE:NAME[:MinFL[:MaxFL]]`) and the allowlists `.fp` `.sfp` (same layout).
