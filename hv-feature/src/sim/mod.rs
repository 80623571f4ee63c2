// SPDX-License-Identifier: Apache-2.0 OR MIT
//! A simulated Xen host: sparse machine memory, an M2P, and PV guests of
//! either width whose `shared_info`, page tables, linear p2m list and
//! 3-level tree are real data in that memory, laid out the way Linux lays
//! them out (`arch/x86/xen/p2m.c`).
//!
//! [`SimHost`] implements [`Backend`]: it answers the typed calls from its
//! own state as Xen would, and maps frames with the same per-frame checks
//! Xen makes (a frame must belong to the
//! domain named; dom0 names its own frames with `DOMID_SELF`). Mappings are
//! live, like privcmd's: a guest's later writes show through them.
//!
//! Guests can change their p2m while a reader works, following the
//! `p2m_generation` protocol ([`SimHost::begin_p2m_update`],
//! [`SimHost::map_leaf`], [`SimHost::populate`]), and tests can make them
//! hostile: arbitrary `shared_info` fields ([`SimHost::update_arch`]),
//! arbitrary page-table entries ([`SimHost::pte_location`] with
//! [`SimHost::write_word`]), a generation that moves on every map
//! ([`SimHost::set_churn`]), a wrong address size, and so on.
//!
//! ```
//! use hv_feature::sim::{GuestSpec, SimHost};
//! use hv_feature::{DomId, GuestWidth};
//! let host = SimHost::new(1 << 20).unwrap();
//! let dom = host.add_guest(&GuestSpec::new(DomId(1), GuestWidth::W64, 4096)).unwrap();
//! assert_eq!(dom, DomId(1));
//! ```

mod alias;
pub mod fuzz;
mod guest;
mod map;
mod memory;

pub use alias::AliasedList;
pub use guest::{GuestSpec, ListLayout, TreeMode};
use map::Contents;
pub use map::SimMap;

use crate::backend::Backend;
use crate::domain::DomainInfo;
use crate::error::Error;
use crate::features::{Features, XenVersion};
use crate::shared_info::ArchSharedInfo;
use crate::types::{DomId, GuestWidth, Mfn, Pfn};
use guest::Guest;
use memory::{Memory, XEN};
use nix::errno::Errno;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};

/// What the simulation refuses to do (test set-up errors, not guest data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// No free frame left.
    #[error("simulated host is out of memory")]
    OutOfMemory,
    /// The domain does not exist in the simulation.
    #[error("no simulated domain {0}")]
    NoSuchDomain(DomId),
    /// The domain id is taken.
    #[error("simulated domain {0} exists already")]
    DomainExists(DomId),
    /// A frame that does not exist or is not owned.
    #[error("no such simulated frame {0:#x}")]
    NoSuchFrame(u64),
    /// A virtual address the guest has not mapped (as its own page
    /// tables say).
    #[error("vaddr {0:#x} is not mapped by the guest's p2m page tables")]
    NotMapped(u64),
    /// A request the simulation does not support.
    #[error("bad simulation request: {0}")]
    BadConfig(&'static str),
}

/// Default feature bits the simulated Xen reports to dom0 (the patched
/// 4.17.5 value measured on it: bits 4,5,6,7,11,13,17 and 21).
pub const DEFAULT_FEATURES: u32 = 0x0022_28f0;

/// State behind the lock: memory and domains.
#[derive(Debug)]
struct State {
    mem: Memory,
    domains: BTreeMap<u16, Guest>,
}

/// Shared by the host and its mappings.
#[derive(Debug)]
struct Inner {
    state: RwLock<State>,
    /// Bumped after every change of the state, under its write lock.
    epoch: AtomicU64,
    map_calls: AtomicU64,
    frames_mapped: AtomicU64,
    hypercalls: AtomicU64,
    features: AtomicU64,
    version: AtomicU64,
    /// See [`SimHost::set_zero_copy`].
    zero_copy: AtomicBool,
    /// Contents of earlier mappings, by frame list (zero-copy mode).
    shared: Mutex<HashMap<Vec<u64>, Arc<Contents>>>,
}

/// Frame lists whose contents the zero-copy mode keeps.
const SHARED_LISTS: usize = 64;

/// The simulated host. Cheap to share between threads (`Sync`); all
/// methods take `&self`.
#[derive(Debug, Clone)]
pub struct SimHost {
    inner: Arc<Inner>,
}

impl SimHost {
    /// A host with machine frames `0..=max_mfn` (at least 1024, at most
    /// 2^28) and no domains. The top of memory holds the M2P.
    pub fn new(max_mfn: u64) -> Result<SimHost, SimError> {
        Ok(SimHost {
            inner: Arc::new(Inner {
                state: RwLock::new(State {
                    mem: Memory::new(max_mfn)?,
                    domains: BTreeMap::new(),
                }),
                epoch: AtomicU64::new(0),
                map_calls: AtomicU64::new(0),
                frames_mapped: AtomicU64::new(0),
                hypercalls: AtomicU64::new(0),
                features: AtomicU64::new(DEFAULT_FEATURES as u64),
                version: AtomicU64::new((4 << 16) | 17),
                zero_copy: AtomicBool::new(false),
                shared: Mutex::new(HashMap::new()),
            }),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the state under the write lock, then bumps the memory
    /// epoch so that live mappings look again.
    fn write<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut g = self
            .inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let r = f(&mut g);
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        r
    }

    /// Sets the feature bits of submap 0 that `XENVER_get_features` reports.
    pub fn set_features(&self, bits: u32) {
        self.inner.features.store(bits as u64, Ordering::Relaxed);
    }

    /// Sets the version `XENVER_version` reports.
    pub fn set_version(&self, major: u16, minor: u16) {
        self.inner
            .version
            .store(((major as u64) << 16) | minor as u64, Ordering::Relaxed);
    }

    /// Zero-copy mode: a mapping of the same frames as an earlier one,
    /// none of whose pages changed since, shares that mapping's bytes
    /// instead of copying the frames (privcmd copies nothing; the
    /// simulator then copies each distinct frame list's contents once).
    /// Mappings stay live either way. Off by default.
    pub fn set_zero_copy(&self, on: bool) {
        self.inner.zero_copy.store(on, Ordering::Relaxed);
        if !on {
            self.shared().clear();
        }
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u64>, Arc<Contents>>> {
        self.inner
            .shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The contents of `frames` now: shared with an earlier mapping in
    /// zero-copy mode when none of its pages changed, else a fresh copy.
    fn contents(&self, frames: &[u64], pages: Vec<Arc<memory::Page>>) -> Arc<Contents> {
        if !self.inner.zero_copy.load(Ordering::Relaxed) {
            return Arc::new(Contents::new(pages));
        }
        let mut shared = self.shared();
        if let Some(c) = shared.get(frames).filter(|c| c.holds(&pages)) {
            return c.clone();
        }
        if shared.len() >= SHARED_LISTS {
            shared.clear();
        }
        let c = Arc::new(Contents::new(pages));
        shared.insert(frames.to_vec(), c.clone());
        c
    }

    /// The M2P's frames, in mfn order (Xen's, mapped with `DOMID_XEN`).
    pub fn m2p_frames(&self) -> Vec<Mfn> {
        self.read()
            .mem
            .m2p_extents()
            .into_iter()
            .flat_map(|b| (b..b + memory::M2P_EXTENT).map(Mfn))
            .collect()
    }

    /// `map_frames` calls so far (failed ones included).
    pub fn map_calls(&self) -> u64 {
        self.inner.map_calls.load(Ordering::Relaxed)
    }

    /// Frames mapped so far by successful `map_frames` calls.
    pub fn frames_mapped(&self) -> u64 {
        self.inner.frames_mapped.load(Ordering::Relaxed)
    }

    /// Calls of the backend so far, other than `map_frames` (what would be
    /// hypercalls on a real host).
    pub fn hypercalls(&self) -> u64 {
        self.inner.hypercalls.load(Ordering::Relaxed)
    }

    /// The host's largest mfn (what `XENMEM_maximum_ram_page` answers).
    pub fn max_mfn(&self) -> Mfn {
        Mfn(self.read().mem.max_mfn())
    }

    /// Frames allocated to domains so far (the M2P not counted).
    pub fn frames_allocated(&self) -> u64 {
        self.read().mem.allocated()
    }

    /// `m2p[mfn]` as the simulated Xen holds it.
    pub fn m2p(&self, mfn: Mfn) -> Option<Pfn> {
        self.read().mem.m2p(mfn.0).map(Pfn)
    }

    /// Sets `m2p[mfn]` (for hostile set-ups; guests' own frames get theirs
    /// when they are populated).
    pub fn set_m2p(&self, mfn: Mfn, pfn: Pfn) -> Result<(), SimError> {
        self.write(|s| s.mem.set_m2p(mfn.0, pfn.0))
    }

    /// Owner of frame `mfn`.
    pub fn owner(&self, mfn: Mfn) -> Option<DomId> {
        self.read().mem.owner(mfn.0)
    }

    /// Reads the `width`-byte (4 or 8) little-endian word at byte `off`
    /// of frame `mfn`.
    pub fn read_word(&self, mfn: Mfn, off: usize, width: usize) -> Option<u64> {
        self.read().mem.read_word(mfn.0, off, width)
    }

    /// Writes the `width`-byte (4 or 8) little-endian word at byte `off`
    /// of frame `mfn`: raw memory, no generation bump. The tool for
    /// hostile page-table entries, tree entries and leaf values.
    pub fn write_word(
        &self,
        mfn: Mfn,
        off: usize,
        width: usize,
        value: u64,
    ) -> Result<(), SimError> {
        self.write(|s| s.mem.write_word(mfn.0, off, width, value))
    }

    /// Allocates a fresh zeroed frame owned by `owner`.
    pub fn alloc_frame(&self, owner: DomId) -> Result<Mfn, SimError> {
        self.write(|s| {
            let zero = s.mem.zero.clone();
            s.mem.alloc(owner.0, zero).map(Mfn)
        })
    }

    fn map_owner(&self, state: &State, dom: DomId) -> Result<u16, Errno> {
        if dom == DomId::SELF {
            return Ok(0);
        }
        if dom == DomId::XEN {
            return Ok(XEN);
        }
        if dom.0 == 0 {
            // Xen refuses a foreign map naming the caller's own id.
            return Err(Errno::ESRCH);
        }
        if state.domains.contains_key(&dom.0) {
            Ok(dom.0)
        } else {
            Err(Errno::ESRCH)
        }
    }

    /// Counts one call, as a hypercall would be.
    fn call(&self) -> RwLockReadGuard<'_, State> {
        self.inner.hypercalls.fetch_add(1, Ordering::Relaxed);
        self.read()
    }
}

impl Backend for SimHost {
    type Map = SimMap;

    fn domain_info(&self, dom: DomId) -> Result<DomainInfo, Error> {
        let state = self.call();
        let g = state.domains.get(&dom.0).ok_or(Error::NoSuchDomain(dom))?;
        let flags = g.flags();
        Ok(DomainInfo {
            dom,
            flags,
            tot_pages: g.tot_pages,
            max_pages: g.max_pages,
            shared_info_frame: Mfn(g.shared_info),
            hvm: flags & xen_sys::XEN_DOMINF_hvm_guest != 0,
            domctl_interface: xen_sys::XEN_DOMCTL_INTERFACE_VERSION,
        })
    }

    fn guest_width(&self, dom: DomId) -> Result<GuestWidth, Error> {
        let state = self.call();
        let g = state.domains.get(&dom.0).ok_or(Error::NoSuchDomain(dom))?;
        let bits = g.address_bits as u64;
        GuestWidth::from_bytes(bits / 8).ok_or(Error::BadGuestWidth { dom, bits })
    }

    fn max_mfn(&self) -> Result<Mfn, Error> {
        Ok(Mfn(self.call().mem.max_mfn()))
    }

    fn m2p_extents(&self, max_extents: u32) -> Result<Vec<Mfn>, Error> {
        let mut e = self.call().mem.m2p_extents();
        e.truncate(max_extents as usize);
        Ok(e.into_iter().map(Mfn).collect())
    }

    fn features(&self) -> Result<Features, Error> {
        self.inner.hypercalls.fetch_add(1, Ordering::Relaxed);
        let bits = self.inner.features.load(Ordering::Relaxed) as u32;
        Ok(Features::from_bits_retain(bits))
    }

    fn xen_version(&self) -> Result<XenVersion, Error> {
        self.inner.hypercalls.fetch_add(1, Ordering::Relaxed);
        let v = self.inner.version.load(Ordering::Relaxed) as u32;
        Ok(XenVersion::from_raw(v, b""))
    }

    fn map_frames(&self, dom: DomId, frames: &[Mfn]) -> Result<SimMap, Error> {
        self.inner.map_calls.fetch_add(1, Ordering::Relaxed);
        let frames: Vec<u64> = frames.iter().map(|m| m.0).collect();
        let frames = &frames[..];
        let fail = |index: usize, errno: Errno| Error::MapFrame {
            dom,
            frame: frames.get(index).copied().unwrap_or(0),
            index,
            count: frames.len(),
            errno,
        };
        if frames.is_empty() {
            return Err(fail(0, Errno::EINVAL));
        }
        let (map, churn) = {
            let state = self.read();
            let owner = self.map_owner(&state, dom).map_err(|e| fail(0, e))?;
            let mut pages = Vec::with_capacity(frames.len());
            for (i, &m) in frames.iter().enumerate() {
                state.mem.check_mappable(owner, m).map_err(|e| fail(i, e))?;
                match state.mem.page(m) {
                    Some(p) => pages.push(p.clone()),
                    None => return Err(fail(i, Errno::EINVAL)),
                }
            }
            let epoch = self.inner.epoch.load(Ordering::Acquire);
            let churn = state
                .domains
                .get(&owner)
                .filter(|g| g.churn && !frames.contains(&g.shared_info))
                .map(|_| owner);
            let contents = self.contents(frames, pages);
            (
                SimMap::new(self.inner.clone(), frames.to_vec(), contents, epoch),
                churn,
            )
        };
        self.inner
            .frames_mapped
            .fetch_add(frames.len() as u64, Ordering::Relaxed);
        if let Some(owner) = churn {
            // A guest that changes its list while it is being read.
            let _ = self.write(|s| guest::bump_generation(s, owner, 2));
        }
        Ok(map)
    }
}

impl SimHost {
    /// The arch fields of `dom`'s shared_info as they are now.
    pub fn arch(&self, dom: DomId) -> Result<ArchSharedInfo, SimError> {
        let s = self.read();
        let g = s.domains.get(&dom.0).ok_or(SimError::NoSuchDomain(dom))?;
        guest::read_arch(&s.mem, g)
    }

    /// Rewrites `dom`'s shared_info arch fields with `f` (no generation
    /// protocol: the hostile-guest knob for arbitrary values).
    pub fn update_arch(
        &self,
        dom: DomId,
        f: impl FnOnce(&mut ArchSharedInfo),
    ) -> Result<(), SimError> {
        self.write(|s| {
            let g = s.domains.get(&dom.0).ok_or(SimError::NoSuchDomain(dom))?;
            let mut a = guest::read_arch(&s.mem, g)?;
            f(&mut a);
            guest::write_arch(&mut s.mem, g, &a)
        })
    }

    /// Makes `dom`'s generation move by 2 after every map of its frames
    /// other than its shared_info: a guest that changes its list during
    /// every read.
    pub fn set_churn(&self, dom: DomId, on: bool) -> Result<(), SimError> {
        self.write(|s| {
            s.domains
                .get_mut(&dom.0)
                .ok_or(SimError::NoSuchDomain(dom))
                .map(|g| g.churn = on)
        })
    }

    /// Overrides the address size (bits) `XEN_DOMCTL_get_address_size`
    /// reports for `dom`.
    pub fn set_address_bits(&self, dom: DomId, bits: u32) -> Result<(), SimError> {
        self.write(|s| {
            s.domains
                .get_mut(&dom.0)
                .ok_or(SimError::NoSuchDomain(dom))
                .map(|g| g.address_bits = bits)
        })
    }

    /// Domain ids of the simulated domains.
    pub fn domains(&self) -> Vec<DomId> {
        self.read().domains.keys().map(|&d| DomId(d)).collect()
    }
}
