//! The two key streams compiled AutoIt 3 scripts are encrypted with, each byte XORed with the stream's
//! next byte, the stream seeded anew for every field (public descriptions: the MyAutToExe notes and
//! AutoIt-Ripper's documentation of them):
//!
//! - EA05: the Mersenne Twister MT19937 (Matsumoto and Nishimura's reference `init_genrand` and
//!   `genrand_int32`); each key byte is bits 1 to 8 of an output word (`(word >> 1) & 0xFF`).
//! - EA06: a lagged generator of 17 words: seeded by `s = 1 - s * 0x53A9B4FB` (mod 2^32) per word, then
//!   stepped nine times; a step sets `w[i] = rol(w[i], 9) + rol(w[j], 13)` with `i` from 0 and `j` from
//!   10, both going down modulo 17. Each key byte takes two steps and is the top byte of the second (the
//!   program builds the double `1 + w / 2^32` and multiplies its fraction by 256, which is exactly that).
//!
//! Owns: the key streams. Never: allocates (a stream is its state), or knows what it decrypts.

/// MT19937's state size and its parameters from the reference implementation.
const MT_N: usize = 624;
const MT_M: usize = 397;

struct Mt {
    state: [u32; MT_N],
    next: usize,
}

impl Mt {
    fn new(seed: u32) -> Self {
        let mut state = [0u32; MT_N];
        state[0] = seed;
        for i in 1..MT_N {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Mt { state, next: MT_N }
    }

    fn twist(&mut self) {
        for i in 0..MT_N {
            let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % MT_N] & 0x7fff_ffff);
            let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
            self.state[i] = self.state[(i + MT_M) % MT_N] ^ (y >> 1) ^ mag;
        }
        self.next = 0;
    }

    fn word(&mut self) -> u32 {
        if self.next >= MT_N {
            self.twist();
        }
        let mut y = self.state[self.next];
        self.next += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }
}

struct Lagged {
    words: [u32; 17],
    i: usize,
    j: usize,
}

impl Lagged {
    fn new(seed: u32) -> Self {
        let mut words = [0u32; 17];
        let mut s = seed;
        for w in &mut words {
            s = 1u32.wrapping_sub(s.wrapping_mul(0x53A9_B4FB));
            *w = s;
        }
        let mut g = Lagged { words, i: 0, j: 10 };
        for _ in 0..9 {
            g.step();
        }
        g
    }

    fn step(&mut self) -> u32 {
        let w = self.words[self.i]
            .rotate_left(9)
            .wrapping_add(self.words[self.j].rotate_left(13));
        self.words[self.i] = w;
        self.i = if self.i == 0 { 16 } else { self.i - 1 };
        self.j = if self.j == 0 { 16 } else { self.j - 1 };
        w
    }

    fn byte(&mut self) -> u8 {
        self.step();
        (self.step() >> 24) as u8
    }
}

/// Which of the two streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stream {
    Ea05,
    Ea06,
}

/// `data` decrypted with the stream `kind` seeded with `seed`.
pub(super) fn decrypt(kind: Stream, seed: u32, data: &[u8]) -> Vec<u8> {
    match kind {
        Stream::Ea05 => {
            let mut mt = Mt::new(seed);
            data.iter().map(|b| b ^ (mt.word() >> 1) as u8).collect()
        }
        Stream::Ea06 => {
            let mut g = Lagged::new(seed);
            data.iter().map(|b| b ^ g.byte()).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference implementation's first outputs for `init_genrand(5489)` (its default seed).
    #[test]
    fn mt19937_matches_the_reference_outputs() {
        let mut mt = Mt::new(5489);
        assert_eq!(mt.word(), 3_499_211_612);
        assert_eq!(mt.word(), 581_869_302);
        assert_eq!(mt.word(), 3_890_346_734);
    }

    #[test]
    fn decrypting_twice_gives_the_bytes_back() {
        for kind in [Stream::Ea05, Stream::Ea06] {
            let plain = b"FILE and more bytes than one word".to_vec();
            let once = decrypt(kind, 0x16FA, &plain);
            assert_ne!(once, plain);
            assert_eq!(decrypt(kind, 0x16FA, &once), plain);
        }
    }
}
