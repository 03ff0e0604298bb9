use crate::unpack::emu;

fn ranges(a: &[u8], b: &[u8], from: usize, to: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for i in from..to.min(a.len()) {
        if a[i] != b[i] {
            match out.last_mut() {
                Some(r) if r.1 + 8 >= i => r.1 = i + 1,
                _ => out.push((i, i + 1)),
            }
        }
    }
    out
}

#[test]
#[ignore]
fn explore_stages() {
    let data = std::fs::read("/usr/share/clamav-testfiles/clam-pespin.exe").unwrap();
    let steps: Vec<u64> = std::env::var("PS_STEPS")
        .unwrap()
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    let (lo, hi) = std::env::var("PS_RANGE")
        .map(|v| {
            let (a, b) = v.split_once('-').unwrap();
            (usize::from_str_radix(a, 16).unwrap(), usize::from_str_radix(b, 16).unwrap())
        })
        .unwrap_or((0x1000, 0x5000));
    let mut prev = emu::emulated_image_after(&data, steps[0]).unwrap().0;
    for &s in &steps[1..] {
        let (now, outcome) = emu::emulated_image_after(&data, s).unwrap();
        let r = ranges(&prev, &now, lo, hi);
        eprintln!("to {s} ({outcome:x?}): {:x?}", r);
        if std::env::var_os("PS_SHOW").is_some() {
            for (a, b) in &r {
                eprintln!("  {a:x}: {}", hex::encode(&now[*a..(*b).min(*a + 64)]));
            }
        }
        prev = now;
    }
    if let Ok(p) = std::env::var("PS_DUMP") {
        std::fs::write(p, &prev).unwrap();
    }
}

#[test]
fn stages_a_to_c_match_the_emulated_loader() {
    let Ok(data) = std::fs::read("/usr/share/clamav-testfiles/clam-pespin.exe") else {
        return;
    };
    let (_, native) = super::decoded_sections(&data, u64::MAX).expect("decoded");
    let (emulated, _) = emu::emulated_image_after(&data, 1_593_830).unwrap();
    let r = ranges(&native, &emulated, 0x1000, 0x5000);
    assert!(r.is_empty(), "{r:x?}");
}
