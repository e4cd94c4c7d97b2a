//! Where in a record a rule may start: every `=`, `:`, `@`, `<`, `J` and `K`, found in one
//! vectorised pass.
//!
//! agent-logship asks this of every record it ships, and most records hold a few of these
//! bytes. `memchr` looks for at most three bytes at once and starts over after each one found,
//! so two passes over each record were paid for with some ten restarts of its search. Here one
//! pass tests 32 bytes at a time and every byte found comes out of the same bit mask.

/// The positions in `bytes[from..]` that hold one of the bytes the rules start from, in order,
/// and some that do not: `;`, `>` and `?` (a cheaper test takes in the whole range `:` to `@`),
/// which the caller passes over when it looks at the byte.
pub(super) fn candidates(bytes: &[u8], from: usize) -> impl Iterator<Item = usize> + '_ {
    Candidates { bytes, next: from, base: from, mask: 0 }
}

struct Candidates<'a> {
    bytes: &'a [u8],
    /// Where the next block starts.
    next: usize,
    /// Where the block of `mask` starts.
    base: usize,
    /// One bit per byte of the block that is a candidate, not yet handed out.
    mask: u32,
}

impl Iterator for Candidates<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            let block = self.bytes.get(self.next..)?.first_chunk::<32>().copied().or_else(|| {
                // The last, short block, filled up with a byte that is no candidate.
                let rest = &self.bytes[self.next..];
                let mut block = [b' '; 32];
                block[..rest.len()].copy_from_slice(rest);
                (!rest.is_empty()).then_some(block)
            })?;
            self.mask = block_mask(&block);
            self.base = self.next;
            self.next += 32;
        }
        let at = self.base + self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        Some(at)
    }
}

/// A bit for each candidate of `block`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn block_mask(block: &[u8; 32]) -> u32 {
    use safe_arch::{
        cmp_eq_mask_i8_m128i, load_unaligned_m128i, min_u8_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
        sub_i8_m128i,
    };
    // SSE2, which every x86-64 has: AVX2 would need it chosen at run time, which takes `unsafe`.
    let half = |bytes: &[u8]| {
        let v = load_unaligned_m128i(bytes.try_into().unwrap_or(&[0; 16]));
        // `:` to `@` (0x3A-0x40) in one unsigned range test: v - 0x3A <= 6.
        let d = sub_i8_m128i(v, set_splat_i8_m128i(0x3A));
        let range = cmp_eq_mask_i8_m128i(min_u8_m128i(d, set_splat_i8_m128i(6)), d);
        // `J` (0x4A) and `K` (0x4B) differ in their lowest bit only.
        let jk = cmp_eq_mask_i8_m128i(v | set_splat_i8_m128i(1), set_splat_i8_m128i(0x4B));
        move_mask_i8_m128i(range | jk) as u32 & 0xFFFF
    };
    half(&block[..16]) | half(&block[16..]) << 16
}

/// A bit for each candidate of `block`: the same test, a byte at a time (where there is no
/// SSE2, and as the check of the vectorised one).
#[cfg(any(test, not(target_arch = "x86_64")))]
fn block_mask_bytewise(block: &[u8; 32]) -> u32 {
    block
        .iter()
        .enumerate()
        .fold(0, |mask, (i, &b)| mask | u32::from(matches!(b, b':'..=b'@') || b | 1 == b'K') << i)
}

#[cfg(not(target_arch = "x86_64"))]
use block_mask_bytewise as block_mask;

#[cfg(test)]
mod tests {
    use super::{block_mask, block_mask_bytewise, candidates};

    /// Every byte the scan must report, and the near ones it reports too.
    const CANDIDATES: &[u8] = b"=:@<JK;>?";

    #[test]
    fn finds_each_candidate_at_every_position_of_a_block_and_of_the_short_last_one() {
        // Lengths around one and two blocks, a candidate at every position, from every start.
        for len in [1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100] {
            for at in 0..len {
                for &c in CANDIDATES {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = c;
                    for from in [0, at.saturating_sub(1), at, at + 1] {
                        let want: Vec<usize> = (at >= from).then_some(at).into_iter().collect();
                        let got: Vec<usize> = candidates(&bytes, from).collect();
                        assert_eq!(got, want, "len {len}, {:?} at {at}, from {from}", c as char);
                    }
                }
            }
        }
    }

    #[test]
    fn the_vectorised_test_agrees_with_the_bytewise_one_on_every_byte_at_every_position() {
        for b in 0..=255u8 {
            for at in 0..32 {
                let mut block = [b'a'; 32];
                block[at] = b;
                assert_eq!(block_mask(&block), block_mask_bytewise(&block), "byte {b:#04x} at {at}");
            }
        }
    }

    #[test]
    fn reports_exactly_the_candidates_of_every_byte_value_in_order() {
        let bytes: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
        let want: Vec<usize> = (0..bytes.len()).filter(|&i| CANDIDATES.contains(&bytes[i])).collect();
        assert_eq!(candidates(&bytes, 0).collect::<Vec<_>>(), want);
        assert_eq!(candidates(&bytes, bytes.len()).count(), 0);
    }
}
