//! The browser's CSPRNG (`crypto.getRandomValues` through getrandom), as the `CryptoRng`
//! that `tandem-core` takes as an argument.

use getrandom::SysRng;
use getrandom::rand_core::UnwrapErr;

/// The system RNG. It only fails if the platform has no CSPRNG, which a browser always has;
/// `UnwrapErr` turns that impossible failure into a panic rather than weak randomness.
pub fn system_rng() -> UnwrapErr<SysRng> {
    UnwrapErr(SysRng)
}

/// `N` fresh random bytes.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand_core::Rng::fill_bytes(&mut system_rng(), &mut out);
    out
}
