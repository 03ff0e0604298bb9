//! `.ndb` body signatures: `Name:Target:Offset:HexSig[:MinFL[:MaxFL]]`.
