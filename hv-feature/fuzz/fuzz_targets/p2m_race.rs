// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Fuzz target `p2m_race`: a simulated guest built from the input, with a
//! concurrent writer's schedule, read with the hardened reader and
//! `verify`; see `hv_feature::sim::fuzz` for the input format and the
//! properties. A broken property panics, which the fuzzer reports.

#![no_main]

#[path = "../counting_alloc.rs"]
mod counting_alloc;

use hv_feature::sim::fuzz::{run, Target};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static HEAP: counting_alloc::Counting = counting_alloc::Counting::new();

fuzz_target!(|data: &[u8]| {
    if let Err(v) = run(Target::Race, data, Some(&HEAP)) {
        panic!("property violated: {v}");
    }
});
