// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `hv-feature`: query Xen's features and read a PV guest's p2m from dom0,
//! from an `xl dump-core` file (`core`), or dom0's from a Xen host crash
//! dump (`vmcore`); the last two need no Xen.
//!
//! Exit status: 0 success; 1 the domain's data failed a check (an
//! inconsistent or hostile p2m, a generation that kept changing); 2 usage or
//! environment error (not dom0, module not loaded, interface mismatch).

use hv_feature::backend::Backend;
use hv_feature::dump_core::CoreFile;
use hv_feature::features::{self, Features};
use hv_feature::p2m::{self, P2m, ReadOptions, SourcePref};
use hv_feature::privcmd::Privcmd;
use hv_feature::shared_info::ArchSharedInfo;
use hv_feature::vmcore::{self, VmcoreFile};
use hv_feature::{domain, DomId, Error, ErrorClass, Pfn};
use serde_json::json;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "\
usage: hv-feature [--json] COMMAND
commands:
  features                    the features Xen reports to this domain, each bit named
  info DOMID                  the domain's shared_info p2m fields, decoded
  p2m DOMID [--source S] [--entries-out OUT]
                              read the domain's p2m (S: auto, list or tree; default auto:
                              the linear list when published, else the tree) and summarise it;
                              OUT: write every entry, pfn 0..max_pfn-1, as a little-endian u64
  verify DOMID                check the linear list against the tree and the M2P, every pfn
  core FILE [--source S]      rebuild the p2m of the PV guest dumped in FILE (`xl dump-core`)
                              from the dump's shared_info and page tables (S: list, the
                              default, auto or tree) and compare it with the dump's .xen_p2m
  vmcore FILE [--source S] [--entries-out OUT]
                              rebuild dom0's p2m from a Xen host crash dump (/proc/vmcore
                              saved by the kdump kernel) with Xen's XEN_ELFNOTE_CRASH_DOM0_P2M
                              note, or from the tree without it (S: auto, the default: the list,
                              compared with the tree where dom0 kept one; list; tree); OUT as
                              for p2m
options:
  --json                      one JSON object on stdout instead of text
exit status: 0 success, 1 the domain's data failed a check (inconsistent or hostile p2m,
generation kept changing; core: a malformed or hostile dump, or a p2m that disagrees with
.xen_p2m; vmcore: a malformed or hostile dump, no way to locate dom0's p2m in it, or a list
that disagrees with the tree), 2 usage or environment error (core, vmcore: the file cannot
be read; --entries-out cannot be written)";

/// Most entries `--entries-out` writes (a 32 GiB file): the count comes
/// from the guest or the dump.
const MAX_ENTRIES_OUT: u64 = 1 << 32;

/// A failure and its exit status.
enum Failure {
    Usage(String),
    Env(Error),
    Data(Error),
    Inconsistent(String),
    Io(String),
}

impl Failure {
    /// 1: the domain's (or dump's) data; 2: usage or environment.
    fn exit_status(&self) -> u8 {
        match self {
            Failure::Data(_) | Failure::Inconsistent(_) => 1,
            Failure::Usage(_) | Failure::Env(_) | Failure::Io(_) => 2,
        }
    }
}

impl From<Error> for Failure {
    /// Guest (or dump) data: exit 1; the environment or the request:
    /// exit 2.
    fn from(e: Error) -> Failure {
        match e.class() {
            ErrorClass::GuestData => Failure::Data(e),
            _ => Failure::Env(e),
        }
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    args.retain(|a| a != "--json");
    let r = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["features"] => cmd_features(json),
        ["info", d] => parse_domid(d).and_then(|d| cmd_info(d, json)),
        ["p2m", d, ref rest @ ..] => parse_domid(d).and_then(|d| {
            let o = parse_opts(rest, &["--source", "--entries-out"])?;
            cmd_p2m(
                d,
                source_opt(&o, SourcePref::Auto)?,
                o.get("--entries-out"),
                json,
            )
        }),
        ["verify", d] => parse_domid(d).and_then(|d| cmd_verify(d, json)),
        ["core", f] => cmd_core(f, SourcePref::List, json),
        ["core", f, "--source", s] => parse_source(s).and_then(|s| cmd_core(f, s, json)),
        ["vmcore", f, ref rest @ ..] => {
            parse_opts(rest, &["--source", "--entries-out"]).and_then(|o| {
                cmd_vmcore(
                    f,
                    source_opt(&o, SourcePref::Auto)?,
                    o.get("--entries-out"),
                    json,
                )
            })
        }
        ["-h"] | ["--help"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(Failure::Usage(format!("unknown command line {args:?}"))),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            match &f {
                Failure::Usage(m) => eprintln!("hv-feature: {m}\n{USAGE}"),
                Failure::Env(e) | Failure::Data(e) => eprintln!("hv-feature: {e}"),
                Failure::Inconsistent(m) | Failure::Io(m) => eprintln!("hv-feature: {m}"),
            }
            ExitCode::from(f.exit_status())
        }
    }
}

/// Options of the form `--name VALUE`, each at most once, from `known`.
fn parse_opts<'a>(args: &[&'a str], known: &[&str]) -> Result<HashMap<&'a str, String>, Failure> {
    let mut o = HashMap::new();
    let mut it = args.iter();
    while let Some(&name) = it.next() {
        if !known.contains(&name) {
            return Err(Failure::Usage(format!("unknown option {name:?}")));
        }
        let Some(&value) = it.next() else {
            return Err(Failure::Usage(format!("{name} needs a value")));
        };
        if o.insert(name, value.to_string()).is_some() {
            return Err(Failure::Usage(format!("{name} given twice")));
        }
    }
    Ok(o)
}

fn source_opt(o: &HashMap<&str, String>, default: SourcePref) -> Result<SourcePref, Failure> {
    o.get("--source").map_or(Ok(default), |s| parse_source(s))
}

/// Writes every entry of `p`, pfn 0 to max_pfn - 1, as a little-endian
/// u64 (a 32-bit guest's entries zero-extended, so `~0` is `0xffffffff`).
fn write_entries<B: Backend>(p: &P2m<B>, out: &str) -> Result<(), Failure> {
    if p.max_pfn() > MAX_ENTRIES_OUT {
        return Err(Failure::Inconsistent(format!(
            "max_pfn {:#x} would make --entries-out {out} larger than 32 GiB; refusing",
            p.max_pfn()
        )));
    }
    let io = |e: std::io::Error| Failure::Io(format!("cannot write --entries-out {out:?}: {e}"));
    let mut w = BufWriter::new(File::create(out).map_err(io)?);
    for pfn in 0..p.max_pfn() {
        let raw = p.raw(Pfn(pfn))?;
        w.write_all(&raw.to_le_bytes()).map_err(io)?;
    }
    w.flush().map_err(io)
}

fn parse_domid(s: &str) -> Result<DomId, Failure> {
    s.parse::<u16>()
        .ok()
        .filter(|&d| d < 0x7ff0)
        .map(DomId)
        .ok_or_else(|| Failure::Usage(format!("DOMID must be a domain id below 0x7ff0, not {s:?}")))
}

fn parse_source(s: &str) -> Result<SourcePref, Failure> {
    match s {
        "auto" => Ok(SourcePref::Auto),
        "list" => Ok(SourcePref::List),
        "tree" => Ok(SourcePref::Tree),
        _ => Err(Failure::Usage(format!(
            "--source takes auto, list or tree, not {s:?}"
        ))),
    }
}

fn cmd_p2m(
    dom: DomId,
    source: SourcePref,
    entries_out: Option<&String>,
    json: bool,
) -> Result<(), Failure> {
    let pc = Privcmd::open()?;
    let opts = ReadOptions::default().with_source(source);
    let p = P2m::read(&pc, dom, &opts)?;
    if let Some(out) = entries_out {
        write_entries(&p, out)?;
    }
    let st = p.stats();
    let counts = p.entry_counts();
    if json {
        let out = json!({
            "domid": dom.0,
            "guest_width": p.width().bytes(),
            "source": p.source(),
            "max_pfn": p.max_pfn(),
            "generation": p.generation(),
            "stats": st,
            "entries": counts,
        });
        println!("{out}");
    } else {
        println!(
            "domain {dom}: p2m read from the {} ({}-bit), max_pfn {:#x}, generation {}",
            p.source(),
            p.width().bytes() * 8,
            p.max_pfn(),
            p.generation()
        );
        println!("  {st}");
        println!("  entries: {counts}");
    }
    Ok(())
}

fn cmd_verify(dom: DomId, json: bool) -> Result<(), Failure> {
    let pc = Privcmd::open()?;
    let r = p2m::verify(&pc, dom, &ReadOptions::default())?;
    if json {
        let mut v = serde_json::to_value(&r).map_err(|e| {
            Failure::Env(Error::Unexpected {
                what: "JSON encoding failure",
                value: e.line() as u64,
            })
        })?;
        v["consistent"] = json!(r.consistent());
        v["round_trips"] = json!(r.round_trips());
        v["uncovered_pages"] = json!(r.uncovered_pages());
        println!("{v}");
    } else {
        println!("{r}");
    }
    if r.consistent() {
        Ok(())
    } else {
        Err(Failure::Inconsistent(format!(
            "domain {dom}: list, tree and M2P disagree, or the p2m leaves out pages the domain owns"
        )))
    }
}

fn cmd_core(path: &str, source: SourcePref, json: bool) -> Result<(), Failure> {
    let core = CoreFile::open(Path::new(path))?;
    let r = hv_feature::dump_core::compare(&core, source)?;
    if json {
        let mut v = serde_json::to_value(&r).map_err(|e| {
            Failure::Env(Error::Unexpected {
                what: "JSON encoding failure",
                value: e.line() as u64,
            })
        })?;
        v["file"] = json!(path);
        v["agree"] = json!(r.agree());
        println!("{v}");
    } else {
        println!("core {path}: {r}");
    }
    if r.agree() {
        Ok(())
    } else {
        Err(Failure::Inconsistent(format!(
            "core {path}: the p2m rebuilt from the dump's page tables disagrees with .xen_p2m on {} pfns",
            r.mismatches
        )))
    }
}

fn cmd_vmcore(
    path: &str,
    source: SourcePref,
    entries_out: Option<&String>,
    json: bool,
) -> Result<(), Failure> {
    let mut v = VmcoreFile::open(Path::new(path))?;
    v.set_progress(!json && std::io::stderr().is_terminal());
    // Said before the read, which may then fail for want of a tree.
    let no_note = v.info().dom0_p2m.is_none() && source != SourcePref::List;
    if no_note {
        eprintln!("hv-feature: {}", vmcore::NO_NOTE_NOTICE);
    }
    let (r, p) = vmcore::read(&mut v, source)?;
    for n in r
        .notices
        .iter()
        .filter(|n| !no_note || *n != vmcore::NO_NOTE_NOTICE)
    {
        eprintln!("hv-feature: {n}");
    }
    if let Some(out) = entries_out {
        write_entries(&p, out)?;
    }
    if json {
        let mut j = serde_json::to_value(&r).map_err(|e| {
            Failure::Env(Error::Unexpected {
                what: "JSON encoding failure",
                value: e.line() as u64,
            })
        })?;
        j["file"] = json!(path);
        j["consistent"] = json!(r.consistent());
        println!("{j}");
    } else {
        println!("vmcore {path}: {r}");
    }
    if r.consistent() {
        Ok(())
    } else {
        Err(Failure::Inconsistent(format!(
            "vmcore {path}: dom0's p2m in the dump is inconsistent (list vs tree, or the two notes' tree roots)"
        )))
    }
}

fn cmd_features(json: bool) -> Result<(), Failure> {
    let pc = Privcmd::open()?;
    let f = features::query(&pc)?;
    let v = features::version(&pc)?;
    let bits = f.set_bits();
    if json {
        let named: Vec<_> = bits
            .iter()
            .map(|(b, n)| json!({"bit": b, "name": n}))
            .collect();
        let out = json!({
            "xen_version": v.to_string(),
            "submap": f.bits(),
            "bits": named,
            "virtual_p2m": f.contains(Features::VIRTUAL_P2M),
        });
        println!("{out}");
    } else {
        println!("Xen version: {v}");
        println!("features (submap 0): {:#010x}", f.bits());
        for (b, n) in bits {
            let mark = if b == xen_sys::XENFEAT_virtual_p2m {
                "  <== this project's feature"
            } else {
                ""
            };
            println!("  bit {b:2}  {}{mark}", n.unwrap_or("(unknown)"));
        }
        let state = if f.contains(Features::VIRTUAL_P2M) {
            "set"
        } else {
            "NOT set"
        };
        println!("XENFEAT_virtual_p2m: {state}");
    }
    Ok(())
}

fn cmd_info(dom: DomId, json: bool) -> Result<(), Failure> {
    let pc = Privcmd::open()?;
    let pv = domain::PvDomain::open(&pc, dom)?;
    let (info, width) = (pv.info, pv.width);
    let a: ArchSharedInfo = pv.arch()?;
    if json {
        let out = json!({
            "domid": dom.0,
            "guest_width": width.bytes(),
            "tot_pages": info.tot_pages,
            "max_pages": info.max_pages,
            "shared_info_frame": info.shared_info_frame.0,
            "max_pfn": a.max_pfn,
            "pfn_to_mfn_frame_list_list": a.pfn_to_mfn_frame_list_list,
            "nmi_reason": a.nmi_reason,
            "p2m_cr3": a.p2m_cr3,
            "p2m_vaddr": a.p2m_vaddr,
            "p2m_generation": a.p2m_generation,
        });
        println!("{out}");
    } else {
        let tree = match a.pfn_to_mfn_frame_list_list {
            0 => "not set up".to_string(),
            v if v == p2m::all_ones(width) => "~0: dropped, use the linear list".to_string(),
            v => format!("{v:#x}"),
        };
        println!(
            "domain {dom}: {}-bit PV, {} pages (max {})",
            width.bytes() * 8,
            info.tot_pages,
            info.max_pages
        );
        println!("  shared_info frame           {}", info.shared_info_frame);
        println!("  max_pfn                     {:#x}", a.max_pfn);
        println!("  pfn_to_mfn_frame_list_list  {tree}");
        println!("  p2m_cr3                     {:#x}", a.p2m_cr3);
        println!("  p2m_vaddr                   {:#x}", a.p2m_vaddr);
        println!("  p2m_generation              {}", a.p2m_generation);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_data_exits_1_the_rest_2() {
        let dom = DomId(1);
        let data = [
            Error::TreeDropped { dom, list: true },
            Error::ListNotPublished { dom },
            Error::CoreFrameMissing {
                mfn: 1,
                index: 0,
                count: 1,
            },
        ];
        for e in data {
            assert_eq!(Failure::from(e).exit_status(), 1);
        }
        let other = [
            Error::NotPv(dom),
            Error::NoSuchDomain(dom),
            Error::NoPrivcmd { path: "/dev/x" },
        ];
        for e in other {
            assert_eq!(Failure::from(e).exit_status(), 2);
        }
    }
}
