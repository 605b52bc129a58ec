//! Replays the committed crash regressions (`fuzz/regressions/<target>/`) and seeds
//! (`fuzz/seeds/<target>/`) of a fuzz target through its entry function, as an ordinary
//! `cargo test`: no fuzz build needed. A panic fails the test even where the server code
//! contains it (the connection loop's `catch_unwind`), as it crashes the fuzzer.

use std::cell::Cell;
use std::path::Path;
use std::sync::Once;

thread_local! {
    /// Panics on this thread: the targets run on the calling thread, and other tests of the
    /// same binary panic on theirs.
    static PANICS: Cell<usize> = const { Cell::new(0) };
}

pub(crate) fn replay(target: &str, run: fn(&[u8])) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|count| count.set(count.get() + 1));
            previous(info);
        }));
    });
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut replayed = 0;
    for kind in ["regressions", "seeds"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(kind).join(target)) else {
            continue;
        };
        let mut paths: Vec<_> = entries
            .map(|entry| entry.expect("list fuzz inputs").path())
            .collect();
        paths.sort();
        for path in paths {
            let input = std::fs::read(&path).expect("read a fuzz input");
            let before = PANICS.with(Cell::get);
            let outcome = std::panic::catch_unwind(|| run(&input));
            assert!(
                outcome.is_ok() && PANICS.with(Cell::get) == before,
                "{} panicked",
                path.display()
            );
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no inputs for fuzz target {target}");
}
