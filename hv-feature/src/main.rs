//! `hv-feature`: query Xen's features and read a PV guest's p2m from dom0.
//!
//! Exit status: 0 success; 1 the domain's data failed a check (an
//! inconsistent or hostile p2m, a generation that kept changing); 2 usage or
//! environment error (not dom0, module not loaded, interface mismatch).

use hv_feature::features::{self, Features};
use hv_feature::privcmd::Privcmd;
use hv_feature::shared_info::{self, ArchSharedInfo};
use hv_feature::{domain, DomId, Error};
use serde_json::json;
use std::process::ExitCode;

const USAGE: &str = "\
usage: hv-feature [--json] COMMAND
commands:
  features        the features Xen reports to this domain, each bit named
  info DOMID      the domain's shared_info p2m fields, decoded
exit status: 0 success, 1 the domain's data failed a check, 2 usage or environment error";

/// A failure and its exit status.
enum Failure {
    Usage(String),
    Env(Error),
    Data(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        if e.is_guest_data() {
            Failure::Data(e)
        } else {
            Failure::Env(e)
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
        ["-h"] | ["--help"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(Failure::Usage(format!("unknown command line {args:?}"))),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("hv-feature: {m}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Env(e)) => {
            eprintln!("hv-feature: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Data(e)) => {
            eprintln!("hv-feature: {e}");
            ExitCode::from(1)
        }
    }
}

fn parse_domid(s: &str) -> Result<DomId, Failure> {
    s.parse::<u16>()
        .ok()
        .filter(|&d| d < 0x7ff0)
        .map(DomId)
        .ok_or_else(|| Failure::Usage(format!("DOMID must be a domain id below 0x7ff0, not {s:?}")))
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
    let info = domain::domain_info(&pc, dom)?;
    if info.hvm {
        return Err(Failure::Env(Error::NotPv(dom)));
    }
    let width = domain::guest_width(&pc, dom)?;
    let map_dom = if dom == DomId(0) { DomId::SELF } else { dom };
    let a: ArchSharedInfo = shared_info::read(&pc, map_dom, info.shared_info_frame, width)?;
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
        let all_ones = if width.bytes() == 8 {
            u64::MAX
        } else {
            u32::MAX as u64
        };
        let tree = match a.pfn_to_mfn_frame_list_list {
            0 => "not set up".to_string(),
            v if v == all_ones => "~0: dropped, use the linear list".to_string(),
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
