// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Generates the bindings from the public headers of a Xen tree and compiles
//! the C layout table against the same headers.
//!
//! The tree is `$XEN_TREE` if set, else the patched tree of the Makefile's
//! build folder (`build/xen-patched`).

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=XEN_TREE");
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let tree = match env::var_os("XEN_TREE") {
        Some(t) => PathBuf::from(t),
        None => manifest.join("../build/xen-patched"),
    };
    let public = tree.join("xen/include/public");
    if !public.join("xen.h").is_file() {
        panic!(
            "xen-sys: no Xen public headers at {}.\n\
             The patched Xen tree is not fetched yet: run `make xen-trees` in the \
             repository root, or set XEN_TREE to a Xen source tree.",
            public.display()
        );
    }
    println!("cargo:rerun-if-changed={}", public.display());
    for h in [
        "xen.h",
        "features.h",
        "version.h",
        "memory.h",
        "domctl.h",
        "arch-x86/xen.h",
        "elfnote.h",
    ] {
        println!("cargo:rerun-if-changed={}", public.join(h).display());
    }
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=layout.c");

    let bindings = bindgen::Builder::default()
        .header(manifest.join("wrapper.h").to_string_lossy())
        .clang_arg(format!("-I{}", public.display()))
        .clang_arg("-ffreestanding")
        .use_core()
        .derive_default(true)
        .derive_debug(true)
        .layout_tests(true)
        .clang_macro_fallback()
        .allowlist_type("shared_info|arch_shared_info|vcpu_info|xen_feature_info")
        .allowlist_type("xen_domctl|xen_domctl_getdomaininfo|xen_domctl_address_size")
        .allowlist_type("xen_extraversion_t|xen_capabilities_info_t|xen_machphys_mfn_list")
        .allowlist_type("xen_crash_dom0_p2m")
        .allowlist_var("XENFEAT_.*|XENVER_.*|XEN_DOMCTL_.*|__HYPERVISOR_.*|XENMEM_.*")
        .allowlist_var("DOMID_.*|SIF_.*|XEN_DOMINF_.*|XEN_ELFNOTE_CRASH_.*|XEN_CRASH_DOM0_P2M_.*")
        .generate()
        .unwrap_or_else(|e| panic!("xen-sys: bindgen failed on {}: {e}", public.display()));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("xen-sys: cannot write bindings.rs");

    cc::Build::new()
        .file("layout.c")
        .include(&public)
        .include(&manifest)
        .flag("-ffreestanding")
        .compile("xen_sys_layout");
}
