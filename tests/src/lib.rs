// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Tests that need a Xen dom0, run on the real hypervisor.
//!
//! On a Xen host: `cargo test --manifest-path tests/Cargo.toml` (as root in dom0). The
//! ballooning tests change dom0's memory (they raise its maximum and grow
//! it by 192 MiB), so they are `#[ignore]`d: run them with `-- --ignored`
//! on a host you can spare; `make test` does, in its own boot. So are the
//! domU tests (`domu::`): they need a PV domU named by `VP2M_DOMU`, which
//! they dump, save, restore and balloon; `make test` creates them in a boot
//! with the toolstack built from the patched tree, plus controls made by the
//! pristine tree's toolstack and Debian's (see `domu`).
//! `make test` builds them as a static binary and runs them inside the QEMU
//! dom0 on the patched Xen, once per boot configuration. Elsewhere they
//! refuse: every test fails with a message saying it needs a Xen dom0.
//!
//! What a boot is expected to show comes from the environment (the harness
//! sets it per boot; the defaults are what the patched Xen with default
//! options shows):
//! - `VP2M_EXPECT_VIRTUAL_P2M`: `1` (default) the features word has
//!   `XENFEAT_virtual_p2m`; `0` it must not (pristine Xen, `pv=virt-p2m=no`).
//! - `VP2M_EXPECT_DOM0_TREE`: `present` dom0 keeps its 3-level tree,
//!   `dropped` it stores `~0` (Xen booted with `dom0=virt-p2m`), `any`
//!   (default) either, but consistent.

use hv_feature::privcmd::Privcmd;

/// Opens privcmd, or panics with the reason these tests cannot run here.
pub fn dom0() -> Privcmd {
    match Privcmd::open() {
        Ok(p) => p,
        Err(e) => panic!(
            "these tests need a Xen dom0 (run them as root in dom0, or `make test` \
             to run them in the QEMU dom0): {e}"
        ),
    }
}

/// The value of expectation variable `name`, or `default`.
pub fn expect(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[cfg(test)]
mod features;

#[cfg(test)]
mod dom0;

#[cfg(test)]
mod p2m;

#[cfg(test)]
mod balloon;

#[cfg(test)]
mod domu;
