//! The tally every category keeps: each attack is one case with the refusal it expects.
//! `finish` prints `adversarial CATEGORY: N cases held` and fails the test naming every case
//! that did not hold, so one broken defence never hides the others.

use std::fmt::Display;

#[must_use = "call finish() to print the count and fail on broken cases"]
pub(crate) struct Tally {
    category: &'static str,
    held: usize,
    broken: Vec<String>,
    finished: bool,
}

impl Tally {
    pub(crate) fn new(category: &'static str) -> Tally {
        Tally {
            category,
            held: 0,
            broken: Vec::new(),
            finished: false,
        }
    }

    /// One attack: `held` says whether the expected refusal came; `got` describes what came.
    pub(crate) fn case(&mut self, case: impl Display, held: bool, got: impl Display) {
        if held {
            self.held += 1;
        } else {
            self.broken.push(format!("{case}: got {got}"));
        }
    }

    /// An attack answered with an HTTP status: it holds when the status is `expected`.
    pub(crate) fn status(&mut self, case: impl Display, got: u16, expected: u16) {
        self.case(
            case,
            got == expected,
            format_args!("status {got}, expected {expected}"),
        );
    }

    /// An attack whose refusal may take one of several statuses (e.g. 400 or 401).
    pub(crate) fn status_in(&mut self, case: impl Display, got: u16, expected: &[u16]) {
        self.case(
            case,
            expected.contains(&got),
            format_args!("status {got}, expected one of {expected:?}"),
        );
    }

    /// Prints the count; fails listing every case that did not hold, or when there was none.
    pub(crate) fn finish(mut self) {
        self.finished = true;
        let total = self.held + self.broken.len();
        assert!(total > 0, "adversarial {}: no case ran", self.category);
        if self.broken.is_empty() {
            println!("adversarial {}: {total} cases held", self.category);
            return;
        }
        panic!(
            "adversarial {}: {} of {total} cases did not hold:\n  {}",
            self.category,
            self.broken.len(),
            self.broken.join("\n  ")
        );
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        // A tally dropped without finish() would count nothing: make that a failure too.
        if !self.finished && !std::thread::panicking() {
            panic!("adversarial {}: finish() was never called", self.category);
        }
    }
}
