// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The p2m reader against simulated guests: layouts of both widths and
//! many sizes, one hostile guest per reading rule of docs/design.md section 4,
//! the generation race, and refresh. Runs anywhere (no Xen).

// A list of one pfn range is what the guest builder takes here.
#![allow(clippy::single_range_in_vec_init)]

use hv_feature::domain;
use hv_feature::p2m::{self, Entry, P2m, ReadOptions, Refresh, Source, SourcePref, TreeStatus};
use hv_feature::sim::{GuestSpec, SimHost, TreeMode};
use hv_feature::{Backend, DomId, Error, GuestWidth, Mapping, Mfn, Pfn};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const W64: GuestWidth = GuestWidth::W64;
const W32: GuestWidth = GuestWidth::W32;

fn host() -> SimHost {
    SimHost::new(1 << 20).unwrap()
}

fn opts() -> ReadOptions {
    ReadOptions::default().with_retry_delay(Duration::from_micros(50))
}

fn with(source: SourcePref) -> ReadOptions {
    opts().with_source(source)
}

/// Entries of `p2m` at `pfns` equal the simulation's records.
fn assert_truth(h: &SimHost, dom: DomId, p: &P2m<SimHost>, pfns: impl IntoIterator<Item = u64>) {
    for pfn in pfns {
        let want = h.expected_entry(dom, Pfn(pfn)).unwrap();
        assert_eq!(
            p.raw(Pfn(pfn)).unwrap(),
            want,
            "pfn {pfn:#x} of {:?}",
            p.source()
        );
    }
}

/// Checks a guest end to end: list (and tree where present) against the
/// simulation, against each other, against the M2P.
fn check_guest(h: &SimHost, spec: &GuestSpec, sample: &[u64]) {
    let dom = h.add_guest(spec).unwrap();
    let calls = h.map_calls();
    let list = P2m::read(h, dom, &opts()).unwrap();
    assert_eq!(list.source(), Source::List);
    let levels = if spec.width == W64 { 4 } else { 3 };
    assert_eq!(list.stats().walk_map_calls, levels + 1);
    assert_eq!(
        h.map_calls() - calls,
        levels as u64 + 2,
        "shared_info + levels + leaves"
    );
    assert_eq!(list.max_pfn(), spec.max_pfn);
    assert_truth(h, dom, &list, sample.iter().copied());
    let fpp = list.entries_per_page();
    for &pfn in sample {
        let k = pfn / fpp;
        assert_eq!(list.leaf_frame(k), Some(h.leaf_frame(dom, k).unwrap()));
    }
    let v = p2m::verify(h, dom, &opts()).unwrap();
    assert!(v.consistent(), "{v:?}");
    assert_eq!(v.m2p_checked, v.entries.valid);
    assert_eq!(
        v.entries.valid + v.entries.invalid + v.entries.identity + v.entries.foreign,
        spec.max_pfn
    );
    let ram: u64 = spec.ram.iter().map(|r| r.end - r.start).sum();
    assert_eq!(v.entries.valid, ram);
    if spec.tree == TreeMode::Keep && spec.max_pfn <= p2m::tree_capacity(spec.width) {
        assert_eq!(v.tree, TreeStatus::Present);
        assert_eq!(v.list_tree_compared, spec.max_pfn);
        let tree = P2m::read(h, dom, &with(SourcePref::Tree)).unwrap();
        assert_eq!(tree.source(), Source::Tree);
        assert_eq!(tree.stats().walk_map_calls, 3);
        assert_truth(h, dom, &tree, sample.iter().copied());
    } else {
        assert_ne!(v.tree, TreeStatus::Present);
    }
    let checked = P2m::read(h, dom, &opts().with_verify_m2p(true)).unwrap();
    assert_eq!(checked.generation(), 0);
}

fn sample(max_pfn: u64, extra: &[u64]) -> Vec<u64> {
    let mut v: Vec<u64> = (0..max_pfn)
        .step_by(((max_pfn / 3000) as usize).max(1))
        .collect();
    v.extend(extra.iter().copied().filter(|&p| p < max_pfn));
    v.push(max_pfn - 1);
    v
}

#[test]
fn small_64bit_guest_list_tree_truth_and_m2p_agree() {
    let h = host();
    let spec = GuestSpec::new(DomId(1), W64, 1024)
        .ram([0..600, 700..1000])
        .identity([600..650])
        .foreign([650..660]);
    check_guest(&h, &spec, &(0..1024).collect::<Vec<_>>());
    let p = P2m::read(&h, DomId(1), &opts()).unwrap();
    assert!(matches!(
        p.lookup(Pfn(600)).unwrap(),
        Entry::Identity(Mfn(600))
    ));
    assert!(matches!(p.lookup(Pfn(655)).unwrap(), Entry::Foreign(_)));
    assert_eq!(p.lookup(Pfn(660)).unwrap(), Entry::Invalid);
    assert_eq!(
        p.lookup(Pfn(5)).unwrap(),
        Entry::Mfn(h.ram_mfn(DomId(1), Pfn(5)).unwrap().unwrap())
    );
    assert!(matches!(
        p.lookup(Pfn(1024)),
        Err(Error::PfnOutOfRange {
            pfn: Pfn(1024),
            max_pfn: 1024
        })
    ));
    assert_eq!(p.entries().count(), 1024);
}

#[test]
fn small_32bit_pae_guest_with_extended_cr3() {
    let h = host();
    let spec = GuestSpec::new(DomId(2), W32, 4096)
        .ram([0..3000])
        .identity([3000..4096]);
    check_guest(&h, &spec, &(0..4096).collect::<Vec<_>>());
    let a = h.arch(DomId(2)).unwrap();
    let root = h.list_layout(DomId(2)).unwrap().root.0 as u32;
    // xen_pfn_to_cr3 for x86_32: (pfn << 12) | (pfn >> 20).
    #[allow(clippy::manual_rotate)] // spelled as the header spells it
    let folded = (root << 12) | (root >> 20);
    assert_eq!(a.p2m_cr3, folded as u64);
    assert_eq!(a.p2m_cr3 as u32, root.rotate_left(12));
}

#[test]
fn guests_of_many_sizes_both_widths() {
    let h = SimHost::new(1 << 21).unwrap();
    let mut id = 10;
    let mut next = || {
        id += 1;
        DomId(id)
    };
    // 64-bit: a few MiB, a partial last leaf, more than one mid page,
    // identity gaps, and exactly 512 GiB (the largest a tree covers).
    check_guest(&h, &GuestSpec::new(next(), W64, 2048), &sample(2048, &[]));
    check_guest(
        &h,
        &GuestSpec::new(next(), W64, 300_001),
        &sample(300_001, &[262_143, 262_144]),
    );
    let big = 1 << 27;
    let spec = GuestSpec::new(next(), W64, big)
        .ram([0..20_000, big - 700..big])
        .identity([0x40_000..0x80_000, 0x80_100..0x80_180]);
    check_guest(
        &h,
        &spec,
        &sample(big, &[19_999, 20_000, 0x40_000, 0x80_0ff, 0x80_100]),
    );
    // 32-bit: a few MiB to 8 GiB (several mid pages), sparse.
    check_guest(&h, &GuestSpec::new(next(), W32, 1000), &sample(1000, &[]));
    let g8 = 2 << 20;
    let spec = GuestSpec::new(next(), W32, g8)
        .ram([0..30_000, g8 - 1000..g8])
        .identity([0xa0..0x100]);
    check_guest(&h, &spec, &sample(g8, &[0x9f, 0xa0, 0xff, 0x100]));
}

#[test]
fn huge_64bit_guest_beyond_512g_has_list_only_and_stays_cheap() {
    let h = host();
    let max = 1u64 << 29; // 2 TiB
    let spec = GuestSpec::new(DomId(7), W64, max).ram([
        0..16_384,
        (1 << 28)..(1 << 28) + 1024,
        max - 512..max,
    ]);
    assert_eq!(spec.tree, TreeMode::Dropped);
    let before = h.frames_allocated();
    check_guest(&h, &spec, &sample(max, &[16_383, 16_384, 1 << 28]));
    // Shared missing pages: the whole guest costs little more than its RAM.
    assert!(h.frames_allocated() - before < 16_384 + 1024 + 512 + 200);
    let p = P2m::read(&h, DomId(7), &opts()).unwrap();
    assert_eq!(p.leaf_count(), max / 512);
    assert!(p.stats().distinct_leaves < 50, "{:?}", p.stats());
    // Forcing the tree on a guest that dropped it is a typed error.
    assert!(matches!(
        P2m::read(&h, DomId(7), &with(SourcePref::Tree)),
        Err(Error::TreeDropped { list: true, .. })
    ));
    let v = p2m::verify(&h, DomId(7), &opts()).unwrap();
    assert_eq!(v.tree, TreeStatus::Dropped);
    assert_eq!(v.entries.valid, 16_384 + 1024 + 512);
}

#[test]
fn unaligned_list_address_and_noise_around_it() {
    let h = host();
    let spec = GuestSpec::new(DomId(3), W64, 5000).vaddr(0xffff_c900_0000_3000);
    check_guest(&h, &spec, &(0..5000).collect::<Vec<_>>());
    let spec = GuestSpec::new(DomId(4), W32, 5000).vaddr(0xd000_5000);
    check_guest(&h, &spec, &(0..5000).collect::<Vec<_>>());
}

#[test]
fn old_guest_without_list_is_read_through_its_tree() {
    let h = host();
    let spec = GuestSpec::new(DomId(5), W64, 3000).publish_list(false);
    let dom = h.add_guest(&spec).unwrap();
    let p = P2m::read(&h, dom, &opts()).unwrap();
    assert_eq!(p.source(), Source::Tree);
    assert_truth(&h, dom, &p, 0..3000);
    assert!(matches!(
        P2m::read(&h, dom, &with(SourcePref::List)),
        Err(Error::ListNotPublished { .. })
    ));
    let v = p2m::verify(&h, dom, &opts()).unwrap();
    assert_eq!(
        (v.source, v.list.is_none(), v.consistent()),
        (Source::Tree, true, true)
    );
}

#[test]
fn dom0_reads_its_own_p2m_with_domid_self() {
    let h = host();
    let dom = h.add_guest(&GuestSpec::new(DomId(0), W64, 4096)).unwrap();
    let p = P2m::read(&h, dom, &opts().with_verify_m2p(true)).unwrap();
    assert_truth(&h, dom, &p, 0..4096);
    // Naming domid 0 in a foreign map is refused, as Xen does.
    let si = h.shared_info_frame(dom).unwrap();
    assert!(matches!(
        h.map_frames(DomId(0), &[si]),
        Err(Error::MapFrame {
            errno: nix::errno::Errno::ESRCH,
            ..
        })
    ));
}

#[test]
fn hypercalls_answer_as_xen_does() {
    let h = host();
    h.add_guest(&GuestSpec::new(DomId(1), W64, 64)).unwrap();
    h.add_guest(&GuestSpec::new(DomId(5), W32, 64)).unwrap();
    let i = domain::domain_info(&h, DomId(5)).unwrap();
    assert_eq!(i.shared_info_frame, h.shared_info_frame(DomId(5)).unwrap());
    assert!(!i.hvm);
    // A domain that does not exist, below or above the existing ones.
    assert!(matches!(
        domain::domain_info(&h, DomId(2)),
        Err(Error::NoSuchDomain(DomId(2)))
    ));
    assert!(matches!(
        domain::domain_info(&h, DomId(6)),
        Err(Error::NoSuchDomain(DomId(6)))
    ));
    assert_eq!(domain::guest_width(&h, DomId(1)).unwrap(), W64);
    assert_eq!(domain::guest_width(&h, DomId(5)).unwrap(), W32);
    assert_eq!(domain::max_mfn(&h).unwrap(), h.max_mfn());
    let m2p = domain::map_m2p(&h, h.max_mfn()).unwrap();
    let mfn = h.ram_mfn(DomId(5), Pfn(9)).unwrap().unwrap();
    assert_eq!(m2p.get(mfn), Some(Pfn(9)));
    // XENVER_get_features submap 0, and XENVER_version.
    assert_eq!(h.features().unwrap().bits(), 0x0022_28f0);
    h.set_features(0x1234);
    assert_eq!(hv_feature::features::query(&h).unwrap().bits(), 0x1234);
    let v = hv_feature::features::version(&h).unwrap();
    assert_eq!((v.major, v.minor), (4, 17));
    // Not what a PV guest's reader needs: refused as Xen without it does.
    assert!(matches!(
        domain::set_max_mem(&h, DomId(1), 1 << 20),
        Err(Error::Hypercall {
            errno: nix::errno::Errno::ENOSYS,
            ..
        })
    ));
    // Per-frame errors name the first failing frame.
    let own = h.shared_info_frame(DomId(1)).unwrap();
    let other = h.shared_info_frame(DomId(5)).unwrap();
    match h.map_frames(DomId(1), &[own, other, own]) {
        Err(Error::MapFrame {
            frame,
            index: 1,
            count: 3,
            ..
        }) => assert_eq!(frame, other.0),
        r => panic!("{r:?}"),
    }
    assert!(matches!(
        h.map_frames(DomId(1), &[own, Mfn(1 << 30)]),
        Err(Error::MapFrame { index: 1, .. })
    ));
}

// ---- One hostile guest per reading rule (docs/design.md section 4) ----

fn hostile(width: GuestWidth) -> (SimHost, DomId) {
    let h = host();
    let dom = h.add_guest(&GuestSpec::new(DomId(9), width, 4096)).unwrap();
    (h, dom)
}

fn read(h: &SimHost, dom: DomId) -> Result<P2m<'_, SimHost>, Error> {
    P2m::read(h, dom, &opts().with_attempts(3))
}

#[test]
fn rule1_guest_width_and_pv_only() {
    let (h, dom) = hostile(W64);
    h.set_address_bits(dom, 16).unwrap();
    assert!(matches!(
        read(&h, dom),
        Err(Error::BadGuestWidth { bits: 16, .. })
    ));
    let hvm = h
        .add_guest(&GuestSpec::new(DomId(10), W64, 64).hvm(true))
        .unwrap();
    assert!(matches!(read(&h, hvm), Err(Error::NotPv(DomId(10)))));
    // A 64-bit layout read as 32-bit fails a check, it does not misread.
    let (h, dom) = hostile(W64);
    h.set_address_bits(dom, 32).unwrap();
    assert!(read(&h, dom).unwrap_err().is_guest_data());
}

#[test]
fn rule2_max_pfn_bounds() {
    for bad in [0, p2m::MAX_PFN_BOUND + 1, u64::MAX] {
        let (h, dom) = hostile(W64);
        h.update_arch(dom, |a| a.max_pfn = bad).unwrap();
        assert!(
            matches!(read(&h, dom), Err(Error::BadMaxPfn { value, .. }) if value == bad),
            "{bad:#x}"
        );
    }
    let (h, dom) = hostile(W32);
    h.update_arch(dom, |a| a.max_pfn = 0).unwrap();
    assert!(matches!(
        read(&h, dom),
        Err(Error::BadMaxPfn { value: 0, .. })
    ));
}

#[test]
fn rule3_p2m_cr3() {
    let (h, dom) = hostile(W64);
    let cr3 = h.arch(dom).unwrap().p2m_cr3;
    h.update_arch(dom, |a| a.p2m_cr3 = cr3 | 0x18).unwrap();
    assert!(matches!(
        read(&h, dom),
        Err(Error::P2mCr3StrayBits { stray: 0x18, .. })
    ));
    h.update_arch(dom, |a| a.p2m_cr3 = 1 << 52).unwrap();
    assert!(matches!(read(&h, dom), Err(Error::P2mCr3StrayBits { .. })));
    let max = h.max_mfn().0;
    h.update_arch(dom, |a| a.p2m_cr3 = (max + 1) << 12).unwrap();
    assert!(
        matches!(read(&h, dom), Err(Error::P2mCr3Frame { mfn, .. }) if mfn.0 == h.max_mfn().0 + 1)
    );
    // A frame that is not the guest's: the map's per-frame error, the guest's fault.
    let other = h.add_guest(&GuestSpec::new(DomId(11), W64, 64)).unwrap();
    let root = h.list_layout(other).unwrap().root;
    h.update_arch(dom, |a| a.p2m_cr3 = root.0 << 12).unwrap();
    let e = read(&h, dom).unwrap_err();
    assert!(matches!(e, Error::GuestFrameUnmappable { frame, .. } if frame == root.0));
    assert!(
        e.is_guest_data(),
        "a frame the guest named is the guest's fault"
    );
    // 32-bit: the folded mfn is bounded too (0xfff folds to mfn 0xfff00000).
    let (h, dom) = hostile(W32);
    h.update_arch(dom, |a| a.p2m_cr3 = 0xfff).unwrap();
    assert!(matches!(
        read(&h, dom),
        Err(Error::P2mCr3Frame {
            mfn: Mfn(0xfff0_0000),
            ..
        })
    ));
}

#[test]
fn rule4_p2m_vaddr() {
    type Check = fn(&Error) -> bool;
    let cases: [(u64, Check); 5] = [
        (0xffff_c900_0000_0800, |e| {
            matches!(
                e,
                Error::P2mVaddrUnaligned {
                    vaddr: 0xffff_c900_0000_0800,
                    ..
                }
            )
        }),
        (0x0000_8000_0000_0000, |e| {
            matches!(e, Error::P2mVaddrNonCanonical { .. })
        }),
        (
            0x0000_7fff_ffff_f000,
            |e| matches!(e, Error::P2mVaddrNonCanonical { end, .. } if *end > 0x0000_8000_0000_0000),
        ),
        (0xffff_8400_0000_0000, |e| {
            matches!(e, Error::P2mVaddrXenHole { .. })
        }),
        (0xffff_ffff_ffff_f000, |e| {
            matches!(e, Error::P2mListOverflow { max_pfn: 4096, .. })
        }),
    ];
    for (vaddr, ok) in cases {
        let (h, dom) = hostile(W64);
        h.update_arch(dom, |a| a.p2m_vaddr = vaddr).unwrap();
        let e = read(&h, dom).unwrap_err();
        assert!(ok(&e), "{vaddr:#x}: {e}");
    }
    // Starting in the hole's last page and running past it is caught too.
    let (h, dom) = hostile(W64);
    h.update_arch(dom, |a| a.p2m_vaddr = 0xffff_87ff_ffff_f000)
        .unwrap();
    let e = read(&h, dom).unwrap_err();
    assert!(matches!(e, Error::P2mVaddrXenHole { .. }), "{e}");
    let (h, dom) = hostile(W32);
    h.update_arch(dom, |a| a.p2m_vaddr = 0xf57f_f000).unwrap();
    assert!(matches!(
        read(&h, dom),
        Err(Error::P2mVaddrAbove32 {
            limit: 0xf580_0000,
            ..
        })
    ));
}

#[test]
fn rule5_page_table_entries() {
    // Not present, at level 3.
    let (h, dom) = hostile(W64);
    let va = h.list_layout(dom).unwrap().vaddr;
    let (t, off) = h.pte_location(dom, 3, va).unwrap();
    let pte = h.read_word(t, off, 8).unwrap();
    h.write_word(t, off, 8, pte & !1).unwrap();
    assert!(
        matches!(read(&h, dom), Err(Error::PteNotPresent { level: 3, vaddr, .. }) if vaddr == va)
    );
    // Superpage at level 2.
    let (h, dom) = hostile(W64);
    let (t, off) = h.pte_location(dom, 2, va).unwrap();
    let pte = h.read_word(t, off, 8).unwrap();
    h.write_word(t, off, 8, pte | 0x80).unwrap();
    assert!(matches!(
        read(&h, dom),
        Err(Error::PteSuperpage { level: 2, .. })
    ));
    // Frame 0 at level 1 (flags kept), and a frame above the maximum at 4.
    let (h, dom) = hostile(W64);
    let leaf_va = va + 3 * 4096;
    let (t, off) = h.pte_location(dom, 1, leaf_va).unwrap();
    h.write_word(t, off, 8, 0x8000_0000_0000_0163).unwrap();
    assert!(
        matches!(read(&h, dom), Err(Error::PteFrame { level: 1, mfn: Mfn(0), vaddr, .. }) if vaddr == leaf_va)
    );
    let (h, dom) = hostile(W64);
    let (t, off) = h.pte_location(dom, 4, va).unwrap();
    h.write_word(t, off, 8, ((h.max_mfn().0 + 5) << 12) | 0x63)
        .unwrap();
    assert!(matches!(
        read(&h, dom),
        Err(Error::PteFrame { level: 4, .. })
    ));
    // Bits outside the frame field are masked off, not misread as frame.
    let (h, dom) = hostile(W64);
    let (t, off) = h.pte_location(dom, 1, va).unwrap();
    let pte = h.read_word(t, off, 8).unwrap();
    h.write_word(t, off, 8, pte | 0x7ff0_0000_0000_0000)
        .unwrap();
    assert_truth(&h, dom, &read(&h, dom).unwrap(), 0..4096);
    // A leaf that is another domain's frame: the per-frame map error.
    let (h, dom) = hostile(W64);
    let other = h.add_guest(&GuestSpec::new(DomId(12), W64, 64)).unwrap();
    let foreign = h.shared_info_frame(other).unwrap();
    let (t, off) = h.pte_location(dom, 1, va + 4096).unwrap();
    h.write_word(t, off, 8, (foreign.0 << 12) | 0x163).unwrap();
    let e = read(&h, dom).unwrap_err();
    assert!(matches!(e, Error::GuestFrameUnmappable { frame, .. } if frame == foreign.0));
    assert!(
        e.is_guest_data(),
        "a frame the guest named is the guest's fault"
    );
    // PAE: a not-present page-directory-pointer entry.
    let (h, dom) = hostile(W32);
    let va = h.list_layout(dom).unwrap().vaddr;
    let (t, off) = h.pte_location(dom, 3, va).unwrap();
    h.write_word(t, off, 8, 0).unwrap();
    assert!(matches!(
        read(&h, dom),
        Err(Error::PteNotPresent { level: 3, .. })
    ));
}

#[test]
fn rule6_m2p_round_trip() {
    let (h, dom) = hostile(W64);
    let stolen = h.ram_mfn(dom, Pfn(100)).unwrap().unwrap();
    h.set_entry(dom, Pfn(200), stolen.0).unwrap();
    assert!(read(&h, dom).is_ok(), "entry values are data");
    let e = P2m::read(&h, dom, &opts().with_verify_m2p(true)).unwrap_err();
    assert!(
        matches!(e, Error::M2pMismatch { pfn: Pfn(200), mfn, m2p: Some(Pfn(100)), .. } if mfn == stolen),
        "{e}"
    );
    let v = p2m::verify(&h, dom, &opts()).unwrap();
    assert_eq!((v.m2p_mismatches, v.consistent()), (1, false));
    // An entry beyond the M2P.
    let (h, dom) = hostile(W32);
    h.set_entry(dom, Pfn(7), 0x3fff_ffff).unwrap();
    let e = P2m::read(&h, dom, &opts().with_verify_m2p(true)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::M2pMismatch {
                pfn: Pfn(7),
                m2p: None,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn rule7_generation() {
    let (h, dom) = hostile(W64);
    h.update_arch(dom, |a| a.p2m_generation = 7).unwrap();
    assert!(matches!(
        read(&h, dom),
        Err(Error::GenerationOdd {
            generation: 7,
            attempts: 3,
            ..
        })
    ));
    // verify retries as often, and its error says how often it tried.
    let e = p2m::verify(&h, dom, &opts().with_attempts(3)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::GenerationOdd {
                generation: 7,
                attempts: 3,
                ..
            }
        ),
        "{e}"
    );
    let (h, dom) = hostile(W64);
    h.set_churn(dom, true).unwrap();
    assert!(matches!(
        read(&h, dom),
        Err(Error::GenerationUnstable { attempts: 3, .. })
    ));
    h.set_churn(dom, false).unwrap();
    let p = read(&h, dom).unwrap();
    assert_eq!(p.stats().attempts, 1);
    // Equality only: a generation that went backwards (resume) is fine.
    let (h, dom) = hostile(W32);
    h.update_arch(dom, |a| a.p2m_generation = 0xffff_fffe)
        .unwrap();
    let mut p = read(&h, dom).unwrap();
    h.update_arch(dom, |a| a.p2m_generation = 0).unwrap();
    assert!(matches!(
        p.refresh().unwrap(),
        Refresh::Changed {
            generation_after: 0,
            ..
        }
    ));
}

#[test]
fn rule8_tree() {
    let tree = || with(SourcePref::Tree).with_attempts(2);
    let (h, dom) = hostile(W64);
    h.update_arch(dom, |a| (a.p2m_cr3, a.pfn_to_mfn_frame_list_list) = (0, 0))
        .unwrap();
    assert!(matches!(
        read(&h, dom),
        Err(Error::TreeNotSetUp { list: false, .. })
    ));
    h.update_arch(dom, |a| a.pfn_to_mfn_frame_list_list = u64::MAX)
        .unwrap();
    assert!(matches!(
        read(&h, dom),
        Err(Error::TreeDropped { list: false, .. })
    ));
    assert!(matches!(
        p2m::verify(&h, dom, &opts()),
        Err(Error::TreeDropped { .. })
    ));
    let (h, dom) = hostile(W64);
    let max = h.max_mfn().0;
    h.update_arch(dom, |a| a.pfn_to_mfn_frame_list_list = max + 1)
        .unwrap();
    assert!(matches!(
        P2m::read(&h, dom, &tree()),
        Err(Error::TreeRoot { .. })
    ));
    let (h, dom) = hostile(W64);
    h.update_arch(dom, |a| a.max_pfn = (1 << 27) + 1).unwrap();
    assert!(matches!(
        P2m::read(&h, dom, &tree()),
        Err(Error::TreeTooSmall {
            capacity: 0x800_0000,
            ..
        })
    ));
    let (h, dom) = hostile(W64);
    let root = h.list_layout(dom).unwrap().tree_root.unwrap();
    h.write_word(root, 0, 8, 0).unwrap();
    assert!(matches!(
        P2m::read(&h, dom, &tree()),
        Err(Error::TreeEntry {
            level: "root",
            index: 0,
            value: 0,
            ..
        })
    ));
    let (h, dom) = hostile(W32);
    let root = h.list_layout(dom).unwrap().tree_root.unwrap();
    let mid = Mfn(h.read_word(root, 0, 4).unwrap());
    h.write_word(mid, 2 * 4, 4, 0xffff_fff0).unwrap();
    assert!(matches!(
        P2m::read(&h, dom, &tree()),
        Err(Error::TreeEntry {
            level: "mid",
            index: 2,
            ..
        })
    ));
    // The list is unaffected by a broken tree; verify names the tree's.
    assert!(read(&h, dom).is_ok());
    assert!(matches!(
        p2m::verify(&h, dom, &opts()),
        Err(Error::TreeEntry { .. })
    ));
}

// ---- Concurrency ----

#[test]
fn refresh_costs_no_map_call_when_nothing_moved() {
    let h = host();
    let dom = h
        .add_guest(&GuestSpec::new(DomId(1), W64, 1 << 18).ram([0..2000]))
        .unwrap();
    let mut p = P2m::read(&h, dom, &opts()).unwrap();
    let calls = h.map_calls();
    for _ in 0..10 {
        assert_eq!(p.refresh().unwrap(), Refresh::Unchanged);
    }
    assert_eq!(h.map_calls(), calls);
    // Entry values are not covered by the generation; the live mapping
    // shows the new value without a refresh.
    let orig = p.raw(Pfn(5)).unwrap();
    h.set_entry(dom, Pfn(5), 0x1234).unwrap();
    assert_eq!(p.refresh().unwrap(), Refresh::Unchanged);
    assert_eq!(p.raw(Pfn(5)).unwrap(), 0x1234);
    h.set_entry(dom, Pfn(5), orig).unwrap();
    // Growing into missing leaves moves the generation: walk again and
    // report exactly the leaves that changed.
    h.populate(dom, 5000..6100).unwrap();
    let Refresh::Changed {
        changed_leaves,
        generation_before: 0,
        generation_after,
        ..
    } = p.refresh().unwrap()
    else {
        panic!("expected a change")
    };
    assert_eq!(generation_after % 2, 0);
    assert!(generation_after > 0);
    let leaves: Vec<u64> = changed_leaves.iter().map(|c| c.leaf).collect();
    assert_eq!(leaves, vec![9, 10, 11]);
    assert_eq!(
        changed_leaves[0].before,
        Some(h.list_layout(dom).unwrap().missing_leaf)
    );
    assert_eq!(changed_leaves[0].after, Some(h.leaf_frame(dom, 9).unwrap()));
    assert_truth(&h, dom, &p, 4990..6200);
    assert!(p2m::verify(&h, dom, &opts()).unwrap().consistent());
    // Growth past max_pfn is seen too.
    h.populate(dom, (1 << 18) - 10..(1 << 18)).unwrap();
    assert!(matches!(p.refresh().unwrap(), Refresh::Changed { .. }));
}

#[test]
fn growth_keeps_list_tree_and_m2p_in_agreement() {
    let h = host();
    let dom = h
        .add_guest(&GuestSpec::new(DomId(2), W32, 1 << 20).ram([0..1000]))
        .unwrap();
    h.populate(dom, 600_000..601_500).unwrap();
    let v = p2m::verify(&h, dom, &opts()).unwrap();
    assert!(v.consistent(), "{v:?}");
    assert_eq!(v.tree, TreeStatus::Present);
    assert_eq!(v.entries.valid, 2500);
    assert_eq!(v.generation % 2, 0);
}

/// A writer flips every leaf of the list between two page sets, A (the
/// guest's RAM mfns) and B (`FOREIGN | pfn`), one leaf at a time inside
/// one generation window; readers must only ever see all-A or all-B.
#[test]
fn generation_race_never_yields_a_mixed_view() {
    let h = host();
    let n_pfn = 16 * 512;
    let dom = h.add_guest(&GuestSpec::new(DomId(1), W64, n_pfn)).unwrap();
    let leaves = n_pfn / 512;
    let a: Vec<Mfn> = (0..leaves).map(|k| h.leaf_frame(dom, k).unwrap()).collect();
    let b: Vec<Mfn> = (0..leaves)
        .map(|k| h.new_leaf_page(dom, k, |p| p.0 | 1 << 63).unwrap())
        .collect();
    let stop = AtomicBool::new(false);
    let (seen_a, seen_b, retried) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|s| {
        s.spawn(|| {
            for round in 0..60 {
                let to = if round % 2 == 0 { &b } else { &a };
                h.begin_p2m_update(dom).unwrap();
                for (k, m) in to.iter().enumerate() {
                    h.map_leaf(dom, k as u64, *m).unwrap();
                    std::thread::yield_now();
                }
                h.end_p2m_update(dom).unwrap();
                std::thread::sleep(Duration::from_micros(300));
            }
            stop.store(true, Ordering::Relaxed);
        });
        for _ in 0..3 {
            s.spawn(|| {
                let o = opts()
                    .with_attempts(50)
                    .with_retry_delay(Duration::from_micros(20));
                while !stop.load(Ordering::Relaxed) {
                    let p = match P2m::read(&h, dom, &o) {
                        Ok(p) => p,
                        Err(Error::GenerationOdd { .. } | Error::GenerationUnstable { .. }) => {
                            continue
                        }
                        Err(e) => panic!("{e}"),
                    };
                    if p.stats().attempts > 1 {
                        retried.fetch_add(1, Ordering::Relaxed);
                    }
                    let frames: Vec<Mfn> = (0..leaves).map(|k| p.leaf_frame(k).unwrap()).collect();
                    let is_b = frames == b;
                    assert!(
                        is_b || frames == a,
                        "mixed view at generation {}",
                        p.generation()
                    );
                    for (pfn, e) in p.entries() {
                        let want_b = Entry::Foreign(Mfn(pfn.0));
                        assert_eq!(e == want_b, is_b, "pfn {pfn} mixed");
                    }
                    if is_b { &seen_b } else { &seen_a }.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let (na, nb) = (
        seen_a.load(Ordering::Relaxed),
        seen_b.load(Ordering::Relaxed),
    );
    assert!(na > 0 && nb > 0, "saw A {na} times, B {nb} times");
    eprintln!(
        "race: {na} views A, {nb} views B, {} reads retried",
        retried.load(Ordering::Relaxed)
    );
}

#[test]
fn mappings_are_live_and_keep_what_they_showed() {
    let (h, dom) = hostile(W64);
    let si = h.shared_info_frame(dom).unwrap();
    let m = h.map_frames(dom, &[si]).unwrap();
    let before = m.mem().to_vec();
    h.update_arch(dom, |a| a.p2m_generation = 2).unwrap();
    let after = m.mem().to_vec();
    assert_ne!(before, after);
    assert_eq!(
        hv_feature::shared_info::ArchSharedInfo::decode(&after, W64)
            .unwrap()
            .p2m_generation,
        2
    );
    assert_eq!(m.versions(), 2);
    let _ = m.mem();
    assert_eq!(m.versions(), 2);
}

#[test]
fn refresh_caps_the_leaf_changes_a_guest_can_make_it_list() {
    // A 2 TiB list-only guest (2^20 leaf positions) that shrinks max_pfn to
    // one leaf: every other position changes, but the report stays capped.
    let h = host();
    let max = 1u64 << 29;
    let spec = GuestSpec::new(DomId(12), W64, max).ram([0..512]);
    let dom = h.add_guest(&spec).unwrap();
    let mut p = P2m::read(&h, dom, &opts()).unwrap();
    h.update_arch(dom, |a| {
        a.max_pfn = 512;
        a.p2m_generation += 2;
    })
    .unwrap();
    let Refresh::Changed {
        changed_leaves,
        changed_count,
        ..
    } = p.refresh().unwrap()
    else {
        panic!("refresh did not see the change");
    };
    assert_eq!(changed_count, (max / 512) - 1);
    assert_eq!(changed_leaves.len(), hv_feature::p2m::MAX_LEAF_CHANGES);
    assert_eq!(changed_leaves[0].leaf, 1);
    assert_eq!(changed_leaves[0].after, None);
}
